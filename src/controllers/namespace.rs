//! The namespace controller: empties a namespace being deleted, then removes the
//! `kubernetes` finalizer so the API server lets the namespace go.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use crate::api::registry::Registry;

/// What the reconciler needs.
pub(crate) struct Context {
    pub client: kube::Client,
    pub registry: Arc<Registry>,
}

/// Reconcile failures (retried with a delay).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("namespace cleanup: {0}")]
    Api(#[from] kube::Error),
}

/// Delete everything in a terminating namespace; finalize it once empty.
async fn sync_namespace(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(name) = ns.metadata.name.clone() else {
        return Ok(Action::await_change());
    };
    let terminating = ns.metadata.deletion_timestamp.is_some();
    let finalizers = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    if !terminating || !finalizers.iter().any(|f| f == "kubernetes") {
        return Ok(Action::await_change());
    }
    let mut remaining = 0usize;
    let mut seen = std::collections::HashSet::new();
    for t in ctx
        .registry
        .all()
        .iter()
        .filter(|t| t.namespaced && t.verbs.contains(&"deletecollection"))
    {
        // Versions of one resource share storage: one pass per storage is enough.
        if !seen.insert(t.storage.clone()) {
            continue;
        }
        let gvk = GroupVersionKind::gvk(&t.group, &t.version, &t.kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, &t.resource);
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &name, &ar);
        api.delete_collection(&DeleteParams::background(), &ListParams::default())
            .await?;
        remaining += api
            .list_metadata(&ListParams::default().limit(1))
            .await?
            .items
            .len();
    }
    if remaining > 0 {
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let mut finalized = (*ns).clone();
    if let Some(spec) = finalized.spec.as_mut() {
        spec.finalizers = Some(
            finalizers
                .into_iter()
                .filter(|f| f != "kubernetes")
                .collect(),
        );
    }
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    api.replace_subresource("finalize", &name, &PostParams::default(), &finalized)
        .await?;
    Ok(Action::await_change())
}

fn handle_err(_ns: Arc<Namespace>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %err, "namespace reconcile failed");
    Action::requeue(Duration::from_secs(1))
}

/// Run the controller until the stream ends.
pub(crate) async fn run(ctx: Context) {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    Controller::new(api, watcher::Config::default())
        .run(sync_namespace, handle_err, Arc::new(ctx))
        .for_each(|_| async {})
        .await;
}
