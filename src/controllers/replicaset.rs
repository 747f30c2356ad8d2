//! The ReplicaSet and ReplicationController controller: keeps as many active pods
//! as `spec.replicas` asks, made from the template and controlled by the owner;
//! adopts matching orphans and releases owned pods that stopped matching; reports
//! replicas, fullyLabeled, ready and available (ready for `minReadySeconds`) in
//! the status, with `SuccessfulCreate` / `SuccessfulDelete` / `FailedCreate` events.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, stream};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::pods::{self, Naming};
use crate::events::{Involved, Kind, Recorder};

/// How many pods one sync creates or deletes at most (as Kubernetes' burst).
const BURST: usize = 500;
/// Concurrent creations or deletions.
const PARALLEL: usize = 16;
/// Resync even without changes (adopting orphans created meanwhile).
const RESYNC: Duration = Duration::from_secs(300);

/// What the controller needs of a ReplicaSet or a ReplicationController.
pub(crate) trait Replicated:
    Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// The component named in events.
    const COMPONENT: &'static str;
    /// Which pods it owns (an RC's map selector as a LabelSelector).
    fn selector(&self) -> Option<LabelSelector>;
    /// The pod template.
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// Desired replicas (default 1).
    fn replicas(&self) -> i32;
    /// Seconds a pod must be ready to count as available.
    fn min_ready_seconds(&self) -> i32;
    /// The status as stored.
    fn status_json(&self) -> Value;
}

impl Replicated for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";
    fn selector(&self) -> Option<LabelSelector> {
        Some(self.spec.selector.clone())
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.template.as_ref()
    }
    fn replicas(&self) -> i32 {
        self.spec.replicas.unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec.min_ready_seconds.unwrap_or(0)
    }
    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or_default()
    }
}

impl Replicated for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";
    fn selector(&self) -> Option<LabelSelector> {
        // An RC without a selector selects its template's labels (defaulting).
        let labels = self.spec.as_ref().and_then(|s| {
            s.selector.clone().or_else(|| {
                s.template
                    .as_ref()
                    .and_then(|t| t.metadata.as_ref())
                    .and_then(|m| m.labels.clone())
            })
        })?;
        Some(LabelSelector {
            match_labels: Some(labels),
            match_expressions: None,
        })
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or_default()
    }
}

/// What the reconciler needs.
pub(crate) struct Context {
    client: kube::Client,
    recorder: Recorder,
}

/// Reconcile failures (retried with a delay).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("replica sync: {0}")]
    Api(#[from] kube::Error),
}

/// Run the controller for kind `K` until the cluster stops.
pub(crate) async fn run<K: Replicated>(client: kube::Client) {
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), K::COMPONENT, None),
        client: client.clone(),
    });
    Controller::new(Api::<K>::all(client.clone()), watcher::Config::default())
        .owns(Api::<Pod>::all(client), watcher::Config::default())
        .run(
            sync::<K>,
            |_, _, _| Action::requeue(Duration::from_secs(1)),
            ctx,
        )
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "replica sync");
            }
        })
        .await;
}

async fn sync<K: Replicated>(owner: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (Some(ns), Some(uid)) = (owner.namespace(), owner.uid()) else {
        return Ok(Action::await_change());
    };
    if owner.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let selector = owner.selector();
    let mut owned = Vec::new();
    for pod in api.list(&ListParams::default()).await?.items {
        let matches = pods::selects(selector.as_ref(), pod.metadata.labels.as_ref());
        match pods::controller_of(&pod.metadata) {
            Some(r) if r.uid == uid => {
                if matches {
                    owned.push(pod);
                } else {
                    pods::release(&api, &pod, &uid).await;
                }
            }
            Some(_) => {}
            None => {
                let adopted =
                    matches && pods::is_active(&pod) && pods::adopt(&api, &pod, &*owner).await;
                if adopted {
                    owned.push(pod);
                }
            }
        }
    }
    let active: Vec<&Pod> = owned.iter().filter(|p| pods::is_active(p)).collect();
    let want = usize::try_from(owner.replicas()).unwrap_or(0);
    let failure = if active.len() < want {
        create(&ctx, &api, &*owner, want - active.len()).await
    } else {
        if active.len() > want {
            delete(&ctx, &api, &*owner, active.clone(), active.len() - want).await;
        }
        None
    };
    let failed = failure.is_some();
    let (status, wait) = status(&*owner, &active, failure);
    let stored = owner.status_json();
    if status != stored {
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({"status": super::replace(&stored, status)});
        api.patch_status(
            &owner.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    Ok(match wait {
        Some(d) => Action::requeue(d + Duration::from_millis(50)),
        None if failed => Action::requeue(Duration::from_secs(10)),
        None => Action::requeue(RESYNC),
    })
}

/// Create `n` pods; the first error is returned (and reported as `FailedCreate`).
async fn create<K: Replicated>(
    ctx: &Context,
    api: &Api<Pod>,
    owner: &K,
    n: usize,
) -> Option<String> {
    let template = owner.template()?;
    let prefix = format!("{}-", owner.name_any());
    let pod = pods::from_template(template, Naming::Generate(&prefix), pods::owner_ref(owner));
    let about = Involved::of(owner);
    let params = PostParams::default();
    let results: Vec<Result<Pod, kube::Error>> = stream::iter(0..n.min(BURST))
        .map(|_| api.create(&params, &pod))
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    report_creates(&ctx.recorder, about.as_ref(), results).await
}

/// Record `SuccessfulCreate` / `FailedCreate` for each pod creation, as the
/// ReplicaSet and DaemonSet controllers word them; returns the first failure.
pub(crate) async fn report_creates(
    recorder: &Recorder,
    about: Option<&Involved>,
    results: Vec<Result<Pod, kube::Error>>,
) -> Option<String> {
    let mut failure = None;
    for r in results {
        let (kind, reason, message) = match r {
            Ok(p) => (
                Kind::Normal,
                "SuccessfulCreate",
                format!("Created pod: {}", p.name_any()),
            ),
            Err(e) => {
                let message = format!("Error creating: {}", api_message(&e));
                failure.get_or_insert(message.clone());
                (Kind::Warning, "FailedCreate", message)
            }
        };
        if let Some(about) = about {
            recorder.record(about, kind, reason, message).await;
        }
    }
    failure
}

/// The message an API error carries (what kubectl would print after "Error from server").
pub(crate) fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// Delete `n` of `active`, the least valuable first (as Kubernetes ranks them:
/// unscheduled, pending, not ready, ready for less time, more restarts, newer).
async fn delete<K: Replicated>(
    ctx: &Context,
    api: &Api<Pod>,
    owner: &K,
    mut active: Vec<&Pod>,
    n: usize,
) {
    active.sort_by_key(|p| deletion_rank(p));
    let victims: Vec<(String, Option<String>)> = active
        .into_iter()
        .take(n.min(BURST))
        .map(|p| (p.name_any(), p.metadata.uid.clone()))
        .collect();
    let results: Vec<(String, Result<(), kube::Error>)> = stream::iter(victims)
        .map(|(name, uid)| async move {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid,
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            let result = api.delete(&name, &params).await.map(drop);
            (name, result)
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let Some(about) = Involved::of(owner) else {
        return;
    };
    for (name, r) in results {
        let (kind, reason, message) = match r {
            Ok(()) => (
                Kind::Normal,
                "SuccessfulDelete",
                format!("Deleted pod: {name}"),
            ),
            Err(e) => (
                Kind::Warning,
                "FailedDelete",
                format!("Error deleting: {}", api_message(&e)),
            ),
        };
        ctx.recorder.record(&about, kind, reason, message).await;
    }
}

fn deletion_rank(p: &Pod) -> impl Ord {
    let scheduled = p
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let phase = match pods::phase(p) {
        "Pending" => 0,
        "Running" => 2,
        _ => 1,
    };
    let ready = pods::ready_since(p);
    let restarts: i32 = p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum());
    let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    (
        scheduled,
        phase,
        ready.is_some(),
        std::cmp::Reverse(ready),
        std::cmp::Reverse(restarts),
        std::cmp::Reverse(created),
    )
}

/// The status for `active` pods, and when the next pod becomes available.
fn status<K: Replicated>(
    owner: &K,
    active: &[&Pod],
    failure: Option<String>,
) -> (Value, Option<Duration>) {
    let now = jiff::Timestamp::now();
    let template_labels = owner
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled = active
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        })
        .count();
    let ready = active.iter().filter(|p| pods::is_ready(p)).count();
    let mut available = 0;
    let mut wait: Option<Duration> = None;
    for p in active {
        match pods::availability(p, owner.min_ready_seconds(), now) {
            Ok(()) => available += 1,
            Err(Some(d)) => wait = Some(wait.map_or(d, |w| w.min(d))),
            Err(None) => {}
        }
    }
    let mut status = json!({
        "replicas": active.len(),
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": owner.meta().generation,
    });
    if let Some(message) = failure {
        // The transition time stays while the condition holds.
        let since = owner.status_json()["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "ReplicaFailure"))
            .map_or_else(
                || json!(crate::api::clock::now()),
                |c| c["lastTransitionTime"].clone(),
            );
        status["conditions"] = json!([{
            "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
            "message": message, "lastTransitionTime": since,
        }]);
    }
    // Zero counts are omitted, as Go's omitempty leaves them out.
    if let Some(m) = status.as_object_mut() {
        m.retain(|_, v| !(v == &json!(0) || v.is_null()));
        m.insert("replicas".into(), json!(active.len()));
    }
    (status, wait)
}
