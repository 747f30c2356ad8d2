//! The pod loop: binds unscheduled pods to this node (until the scheduler lands),
//! starts a worker for each pod bound here, and stops workers of deleted pods.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::images::Store;
use super::runtime::Runtime;
use super::sandbox::Sandboxes;
use super::worker;

/// The first back-off of image pulls and of container restarts (10 s each, as the
/// kubelet's; both double up to 5 min). Tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// After a failed image pull.
    pub image: Duration,
    /// Before restarting a container that exited.
    pub restart: Duration,
}

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
    /// The sandboxes of the pods running here (exec and metrics use them).
    pub sandboxes: Arc<Sandboxes>,
    /// Pod IPs in use on this node.
    pub(super) pod_ips: Arc<super::ipam::PodIps>,
    /// Resource usage rates for metrics.k8s.io.
    pub metrics: super::metrics::Metrics,
    /// The local image store (imports and pulls).
    pub images: Store,
    /// First back-offs (image pulls, container restarts); each doubles up to 5 min.
    pub backoff: Backoff,
    /// The canonical dir hostPath volumes must stay under; `None` refuses them all.
    pub host_path_root: Option<PathBuf>,
    workers: Mutex<HashMap<String, Worker>>,
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
        backoff: Backoff,
        host_path_root: Option<PathBuf>,
    ) -> Arc<Kubelet> {
        Arc::new(Kubelet {
            client,
            node,
            runtime,
            logs_dir,
            sandboxes: Arc::default(),
            pod_ips: Arc::default(),
            metrics: super::metrics::Metrics::default(),
            images,
            backoff,
            host_path_root,
            workers: Mutex::new(HashMap::new()),
            binding: Mutex::new(HashSet::new()),
        })
    }
}

/// A running pod worker: aborted when the pod is gone, asked to stop (its
/// containers killed, then the pod deleted) when the pod is being deleted.
struct Worker {
    task: AbortHandle,
    stop: watch::Sender<Option<Duration>>,
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
    // The Scheduled event is stamped before the binding, so it lists before the
    // kubelet's events even though the worker may start before it is written.
    let at = jiff::Timestamp::now();
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
            .record_at(
                pod,
                None,
                super::events::Kind::Normal,
                "Scheduled",
                message,
                at,
            )
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
    if node != k.node {
        return;
    }
    if deleting {
        terminate(k, pod);
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
    let (stop, stopping) = watch::channel(None);
    let task = tokio::spawn(worker::run(k.clone(), pod, stopping));
    workers.insert(
        id,
        Worker {
            task: task.abort_handle(),
            stop,
        },
    );
}

/// A pod on this node is being deleted: its worker stops the containers and then
/// deletes the pod; with no worker (already finished, or from before a restart)
/// there is nothing to stop and the pod is deleted at once.
fn terminate(k: &Arc<Kubelet>, pod: Pod) {
    let Ok(workers) = k.workers.lock() else {
        return;
    };
    let grace = Duration::from_secs(
        pod.metadata
            .deletion_grace_period_seconds
            .and_then(|g| u64::try_from(g).ok())
            .unwrap_or(0),
    );
    match workers.get(&uid(&pod)) {
        Some(w) if !w.task.is_finished() => {
            // A later, shorter grace period wins, as in the kubelet.
            w.stop.send_if_modified(|g| {
                let shorter = g.is_none_or(|g| grace < g);
                if shorter {
                    *g = Some(grace);
                }
                shorter
            });
        }
        _ => {
            let k = k.clone();
            tokio::spawn(async move { finish_deletion(&k.client, &pod).await });
        }
    }
}

/// Delete a pod whose containers are stopped (grace 0, only this very pod).
pub(super) async fn finish_deletion(client: &kube::Client, pod: &Pod) {
    let (Some(ns), Some(name)) = (
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref(),
    ) else {
        return;
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    if let Err(e) = api.delete(name, &params).await {
        tracing::debug!(pod = %name, error = %e, "finishing the pod's deletion");
    }
}

fn on_delete(k: &Kubelet, pod: &Pod) {
    let id = uid(pod);
    if let Ok(mut w) = k.workers.lock()
        && let Some(w) = w.remove(&id)
    {
        w.task.abort();
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
            w.drain().for_each(|(_, w)| w.task.abort());
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
        () = super::metrics::run(k.clone()) => {}
    }
}

/// React to every pod change until the watch stream ends.
async fn follow(k: Arc<Kubelet>) {
    let api: Api<Pod> = Api::all(k.client.clone());
    // Back off between failed attempts: an API that fails at once (say, while the
    // cluster shuts down) must not turn this loop into a busy spin.
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(ev) = events.next().await {
        match ev {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => on_apply(&k, p),
            Ok(watcher::Event::Delete(p)) => on_delete(&k, &p),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "pod watch error (retrying)"),
        }
    }
}
