//! The pod loop: starts a worker for each pod bound to this node, and stops
//! workers of deleted pods.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
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
    pub(super) pod_ips: Arc<crate::net::ipam::PodIps>,
    /// Resource usage rates for metrics.k8s.io.
    pub metrics: super::metrics::Metrics,
    /// The local image store (imports and pulls).
    pub images: Store,
    /// First back-offs (image pulls, container restarts); each doubles up to 5 min.
    pub backoff: Backoff,
    /// The canonical dir hostPath volumes must stay under; `None` refuses them all.
    pub host_path_root: Option<PathBuf>,
    /// Reports this kubelet's events (repeats aggregated).
    pub recorder: crate::events::Recorder,
    /// The cluster's pod network.
    pub network: crate::net::Network,
    workers: Mutex<HashMap<String, Worker>>,
}

/// How a kubelet is set up.
#[derive(Debug)]
pub struct Config {
    /// The Node it runs.
    pub node: String,
    /// Which of the cluster's nodes it is (its block of pod IPs).
    pub index: usize,
    /// Where container logs go.
    pub logs_dir: PathBuf,
    /// The local image store.
    pub images: Store,
    /// First back-offs.
    pub backoff: Backoff,
    /// The dir hostPath volumes must stay under.
    pub host_path_root: Option<PathBuf>,
    /// The cluster's pod network.
    pub network: crate::net::Network,
}

impl std::fmt::Debug for Kubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubelet")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Kubelet {
    /// A kubelet for `config.node`.
    pub fn new(client: kube::Client, runtime: Arc<Runtime>, config: Config) -> Arc<Kubelet> {
        Arc::new(Kubelet {
            recorder: crate::events::Recorder::new(
                client.clone(),
                "kubelet",
                Some(config.node.clone()),
            ),
            client,
            node: config.node,
            runtime,
            logs_dir: config.logs_dir,
            sandboxes: Arc::default(),
            pod_ips: Arc::new(crate::net::ipam::PodIps::for_node(config.index)),
            metrics: super::metrics::Metrics::default(),
            images: config.images,
            backoff: config.backoff,
            host_path_root: config.host_path_root,
            network: config.network,
            workers: Mutex::new(HashMap::new()),
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

fn on_apply(k: &Arc<Kubelet>, pod: Pod) {
    let id = uid(&pod);
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    let deleting = pod.metadata.deletion_timestamp.is_some();
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
    let name = pod.metadata.name.clone().unwrap_or_default();
    match workers.get(&uid(&pod)) {
        Some(w) if !w.task.is_finished() => {
            tracing::debug!(pod = %name, ?grace, "stopping the pod's containers");
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
            tracing::debug!(pod = %name, "no running worker: deleting the pod");
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
    // A failed attempt must not leave the pod Terminating for ever: try again
    // while this very pod is still there. A 409 is either the uid precondition
    // (the pod was replaced) or a write that raced ours: look before giving up.
    let mut pause = Duration::from_millis(100);
    for _ in 0..FINISH_ATTEMPTS {
        match api.delete(name, &params).await {
            Ok(_) => {
                tracing::debug!(pod = %name, "pod deleted");
                return;
            }
            Err(kube::Error::Api(s)) if s.code == 404 => return,
            Err(kube::Error::Api(s)) if s.code == 409 => match api.get_opt(name).await {
                Ok(Some(p)) if p.metadata.uid == pod.metadata.uid => {
                    tracing::debug!(pod = %name, message = %s.message, "deleting the pod raced a write; retrying");
                }
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(pod = %name, error = %e, "finishing the pod's deletion; retrying")
                }
            },
            Err(e) => {
                tracing::warn!(pod = %name, error = %e, "finishing the pod's deletion; retrying");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
    tracing::warn!(pod = %name, "gave up deleting the stopped pod");
}

/// How often the kubelet tries to delete a stopped pod before leaving it.
const FINISH_ATTEMPTS: usize = 60;

fn on_delete(k: &Kubelet, pod: &Pod) {
    let id = uid(pod);
    if let Ok(mut w) = k.workers.lock()
        && let Some(w) = w.remove(&id)
    {
        w.task.abort();
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
    let heartbeat = super::node::heartbeat(k.client.clone(), k.node.clone());
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
