//! Controllers: reconcile loops that are ordinary API clients of the in-process server.
//! One file per controller; each runs until the cluster's shutdown token fires.

pub mod autoscaler;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod garbage;
pub mod history;
pub mod job;
pub mod namespace;
pub mod pods;
pub mod replicaset;
pub mod resourcequota;
pub mod service_pods;
pub mod serviceaccount;
pub mod statefulset;
pub mod volumes;

use std::future::Future;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Run a controller loop on `tasks` until `shutdown`, logging why it ended.
pub(crate) fn spawn<F>(name: &'static str, tasks: &TaskTracker, shutdown: CancellationToken, run: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    tasks.spawn(async move {
        tokio::select! {
            () = run => tracing::warn!(controller = name, "controller loop ended on its own"),
            () = shutdown.cancelled() => tracing::debug!(controller = name, "controller stopped: shutdown"),
        }
    });
}

/// A JSON merge patch that turns `stored` into `wanted`: keys `stored` has and
/// `wanted` lacks are set to null (removed).
pub(crate) fn replace(
    stored: &serde_json::Value,
    mut wanted: serde_json::Value,
) -> serde_json::Value {
    if let (Some(old), Some(new)) = (stored.as_object(), wanted.as_object_mut()) {
        for k in old.keys() {
            new.entry(k.clone()).or_insert(serde_json::Value::Null);
        }
    }
    wanted
}
