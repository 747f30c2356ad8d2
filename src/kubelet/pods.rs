//! The pod loop: binds unscheduled pods to this node (until the scheduler lands),
//! starts a worker for each pod bound here, and stops workers of deleted pods.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};
use tokio::task::AbortHandle;

use super::images::Store;
use super::runtime::Runtime;
use super::worker;

/// What the kubelet's tasks share.
pub struct Kubelet {
    /// API client (in-process).
    pub client: kube::Client,
    /// The Node this kubelet runs.
    pub node: String,
    /// The wasm engine.
    pub runtime: Arc<Runtime>,
    /// Where container logs go (`pods/log` reads them from here).
    pub logs_dir: PathBuf,
    /// The local image store (imports and pulls).
    pub images: Store,
    /// First image pull back-off; doubles up to 5 min.
    pub image_backoff: Duration,
    workers: Mutex<HashMap<String, AbortHandle>>,
    binding: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Kubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubelet")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Kubelet {
    /// A kubelet for `node`.
    pub fn new(
        client: kube::Client,
        node: String,
        runtime: Arc<Runtime>,
        logs_dir: PathBuf,
        images: Store,
        image_backoff: Duration,
    ) -> Arc<Kubelet> {
        Arc::new(Kubelet {
            client,
            node,
            runtime,
            logs_dir,
            images,
            image_backoff,
            workers: Mutex::new(HashMap::new()),
            binding: Mutex::new(HashSet::new()),
        })
    }
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

/// Assign an unscheduled pod to this node through the `binding` subresource.
async fn bind(k: &Kubelet, pod: &Pod) {
    let (Some(ns), Some(name)) = (
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref(),
    ) else {
        return;
    };
    let api: Api<Pod> = Api::namespaced(k.client.clone(), ns);
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": name, "namespace": ns},
        "target": {"apiVersion": "v1", "kind": "Node", "name": k.node},
    });
    match api
        .create_subresource::<Value, Value>("binding", name, &PostParams::default(), &binding)
        .await
    {
        Ok(_) => {
            let message = format!("Successfully assigned {ns}/{name} to {}", k.node);
            super::events::Recorder {
                client: k.client.clone(),
                component: "default-scheduler",
                node: k.node.clone(),
            }
            .record(pod, None, super::events::Kind::Normal, "Scheduled", message)
            .await;
        }
        Err(e) => tracing::debug!(pod = %name, error = %e, "binding failed"),
    }
}

fn on_apply(k: &Arc<Kubelet>, pod: Pod) {
    let id = uid(&pod);
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    let deleting = pod.metadata.deletion_timestamp.is_some();
    if node.is_empty() {
        let first = k.binding.lock().map(|mut b| b.insert(id)).unwrap_or(false);
        if first && !deleting {
            let k = k.clone();
            tokio::spawn(async move { bind(&k, &pod).await });
        }
        return;
    }
    if node != k.node || deleting {
        return;
    }
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    let mut workers = match k.workers.lock() {
        Ok(w) => w,
        Err(_) => return,
    };
    if workers.contains_key(&id) || phase == "Succeeded" || phase == "Failed" {
        return;
    }
    let task = tokio::spawn(worker::run(k.clone(), pod));
    workers.insert(id, task.abort_handle());
}

fn on_delete(k: &Kubelet, pod: &Pod) {
    let id = uid(pod);
    if let Ok(mut w) = k.workers.lock()
        && let Some(h) = w.remove(&id)
    {
        h.abort();
    }
    if let Ok(mut b) = k.binding.lock() {
        b.remove(&id);
    }
}

/// Aborts every pod worker when the kubelet loop stops (it is dropped at shutdown),
/// so no container outlives its cluster.
struct StopWorkers(Arc<Kubelet>);

impl Drop for StopWorkers {
    fn drop(&mut self) {
        if let Ok(mut w) = self.0.workers.lock() {
            w.drain().for_each(|(_, h)| h.abort());
        }
    }
}

/// Follow every pod until the stream ends (the cluster's shutdown stops it).
pub async fn run(k: Arc<Kubelet>) {
    let _stop = StopWorkers(k.clone());
    let heartbeat = super::lease::heartbeat(k.client.clone(), k.node.clone());
    tokio::select! {
        () = heartbeat => {}
        () = follow(k.clone()) => {}
    }
}

/// React to every pod change until the watch stream ends.
async fn follow(k: Arc<Kubelet>) {
    let api: Api<Pod> = Api::all(k.client.clone());
    let mut events = watcher(api, watcher::Config::default()).boxed();
    while let Some(ev) = events.next().await {
        match ev {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => on_apply(&k, p),
            Ok(watcher::Event::Delete(p)) => on_delete(&k, &p),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "pod watch error (retrying)"),
        }
    }
}
