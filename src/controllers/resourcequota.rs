//! The resourcequota controller: keeps each ResourceQuota's `status.hard` equal to its
//! `spec.hard` and `status.used` equal to what the namespace's objects use, so
//! `kubectl get quota` and `kubectl describe quota` show Used and Hard as a real
//! cluster does.
//!
//! Admission does not depend on this status (it measures usage from the store under
//! a lock, see `apiserver::admission::quota`); the status is what users read. A
//! quota is recomputed whenever an object of a commonly counted kind changes in its
//! namespace, and resynced every [`RESYNC`] for the rest (other `count/…` kinds, pods
//! whose deletion grace period ran out).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ResourceQuota, ResourceQuotaStatus};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::Value;
use tracing::Instrument;

use crate::api::quota::{self, ResourceList};
use crate::api::registry::Registry;

/// How often every quota is recomputed even when no watched object changed.
pub const RESYNC: Duration = Duration::from_secs(60);

/// Kinds whose changes recompute the quotas of their namespace at once.
const WATCHED: [(&str, &str); 13] = [
    ("", "pods"),
    ("", "services"),
    ("", "persistentvolumeclaims"),
    ("", "configmaps"),
    ("", "secrets"),
    ("", "replicationcontrollers"),
    ("", "resourcequotas"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
];

/// What the reconciler needs.
pub(crate) struct Context {
    pub client: kube::Client,
    pub registry: Arc<Registry>,
}

/// Reconcile failures (retried with a delay).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("resource quota sync: {0}")]
    Api(#[from] kube::Error),
    /// An object did not convert to or from JSON.
    #[error("resource quota sync: decoding: {0}")]
    Json(#[from] serde_json::Error),
}

/// The served type of (group, resource) as a dynamic API resource, if it is listable.
fn api_resource(registry: &Registry, group: &str, resource: &str) -> Option<ApiResource> {
    registry
        .all()
        .iter()
        .find(|t| t.group == group && t.resource == resource && t.verbs.contains(&"list"))
        .map(|t| {
            let gvk = GroupVersionKind::gvk(&t.group, &t.version, &t.kind);
            ApiResource::from_gvk_with_plural(&gvk, &t.resource)
        })
}

/// Measure what the quota's hard names use in its namespace.
async fn measure(quota_obj: &Value, namespace: &str, ctx: &Context) -> Result<ResourceList, Error> {
    let names: Vec<String> = quota::hard(quota_obj).into_keys().collect();
    let now = jiff::Timestamp::now();
    let mut used = ResourceList::new();
    for (group, resource) in quota::counted_resources(&names) {
        // A `count/…` name for a resource nobody serves measures nothing, as in Kubernetes.
        let Some(ar) = api_resource(&ctx.registry, &group, &resource) else {
            continue;
        };
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &ar);
        let objects = api
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()?;
        used = quota::add(
            &used,
            &quota::total(quota_obj, &group, &resource, &objects, now),
        );
    }
    Ok(quota::mask(&used, names.iter().map(String::as_str)))
}

/// `syncResourceQuota`: write `status.hard` = `spec.hard` and the measured
/// `status.used` when either differs from what is stored.
async fn sync_resource_quota(rq: Arc<ResourceQuota>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (Some(namespace), Some(name)) = (rq.namespace(), rq.meta().name.clone()) else {
        return Ok(Action::await_change());
    };
    let span = tracing::debug_span!("reconcile", object = %format!("{namespace}/{name}"));
    let quota_obj = serde_json::to_value(&*rq)?;
    let used = measure(&quota_obj, &namespace, &ctx)
        .instrument(span.clone())
        .await?;
    let hard = rq
        .spec
        .as_ref()
        .and_then(|s| s.hard.clone())
        .unwrap_or_default();
    let status = rq.status.clone().unwrap_or_default();
    let same_hard = status.hard.as_ref().is_some_and(|h| *h == hard);
    let same_used = serde_json::to_value(status.used.unwrap_or_default())? == quota::to_json(&used);
    if same_hard && same_used {
        return Ok(Action::requeue(RESYNC));
    }
    let mut updated = (*rq).clone();
    updated.status = Some(ResourceQuotaStatus {
        hard: Some(hard),
        used: Some(serde_json::from_value(quota::to_json(&used))?),
    });
    Api::<ResourceQuota>::namespaced(ctx.client.clone(), &namespace)
        .replace_status(&name, &PostParams::default(), &updated)
        .instrument(span.clone())
        .await?;
    span.in_scope(|| tracing::debug!(used = %quota::pretty(&used), "quota status updated"));
    Ok(Action::requeue(RESYNC))
}

impl Error {
    /// Whether the quota changed under the write (its new version is queued anyway).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Api(kube::Error::Api(s)) if s.is_conflict())
    }
}

fn handle_err(_rq: Arc<ResourceQuota>, err: &Error, _ctx: Arc<Context>) -> Action {
    if err.is_conflict() {
        tracing::debug!(error = %err, "resource quota changed during sync");
    } else {
        tracing::warn!(error = %err, "resource quota sync failed");
    }
    Action::requeue(Duration::from_millis(500))
}

/// The quotas to recompute when an object in `namespace` changes.
fn quotas_in(
    store: &Store<ResourceQuota>,
    namespace: Option<String>,
) -> Vec<ObjectRef<ResourceQuota>> {
    store
        .state()
        .iter()
        .filter(|q| q.namespace() == namespace)
        .map(|q| ObjectRef::from_obj(&**q))
        .collect()
}

/// Run the controller until the stream ends.
pub(crate) async fn run(ctx: Context) {
    let quotas: Api<ResourceQuota> = Api::all(ctx.client.clone());
    // No debounce: changes that arrive while a quota is being measured collapse into
    // one more pass, and a steady stream of pod updates cannot postpone it forever.
    let mut controller = Controller::new(quotas, watcher::Config::default());
    let store = controller.store();
    for (group, resource) in WATCHED {
        let Some(ar) = api_resource(&ctx.registry, group, resource) else {
            continue;
        };
        let store = store.clone();
        controller = controller.watches_with(
            Api::<DynamicObject>::all_with(ctx.client.clone(), &ar),
            ar,
            watcher::Config::default(),
            move |obj: DynamicObject| quotas_in(&store, obj.namespace()),
        );
    }
    controller
        .run(sync_resource_quota, handle_err, Arc::new(ctx))
        .for_each(|_| async {})
        .await;
}
