//! Controllers: reconcile loops that are ordinary API clients of the in-process server.
//! One file per controller; each runs until the cluster's shutdown token fires.

pub mod garbage;
pub mod namespace;

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
