//! The DaemonSet controller: one pod per eligible node (nodeSelector, required node
//! affinity, taints against tolerations plus the DaemonSet defaults), pinned to its
//! node by a `metadata.name` node affinity for the scheduler to bind; pods labelled
//! with the `controller-revision-hash` of the current ControllerRevision and the
//! `pod-template-generation`; extra and misplaced pods deleted, failed ones
//! replaced (with back-off); RollingUpdate (maxUnavailable, maxSurge) or OnDelete;
//! history kept to revisionHistoryLimit; the status `kubectl rollout status` reads.
//! Node changes (labels, taints, nodes coming and going) resync every DaemonSet.

mod apply;
mod nodes;
mod plan;
mod revisions;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::history::{self, HASH_LABEL};
use super::pods;
use crate::events::{Involved, Kind, Recorder};
use plan::{GENERATION_LABEL, NodeFit, Settings};

/// The annotation the API server keeps the template generation in.
const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";
/// How many pods one sync creates or deletes at most (the controller's burstReplicas).
const BURST: usize = 250;
/// Concurrent creations or deletions.
const PARALLEL: usize = 16;
/// Resync even without changes.
const RESYNC: Duration = Duration::from_secs(300);
/// Back-off before deleting another failed pod on the same node.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// What the reconciler needs.
pub(crate) struct Context {
    client: kube::Client,
    recorder: Recorder,
    /// Failed-pod back-off per DaemonSet, generation and node.
    backoff: Backoff,
}

/// Reconcile failures (retried with a delay).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("daemonset sync: {0}")]
    Api(#[from] kube::Error),
    /// Recording the history failed.
    #[error("daemonset sync: {0}")]
    History(#[from] history::Error),
}

/// Run the controller until the cluster stops.
pub(crate) async fn run(client: kube::Client) {
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "daemonset-controller", None),
        client: client.clone(),
        backoff: Backoff::default(),
    });
    let controller = Controller::new(
        Api::<DaemonSet>::all(client.clone()),
        watcher::Config::default(),
    );
    let daemon_sets = controller.store();
    controller
        // Its own pods wake their DaemonSet; an orphan wakes those that may adopt it.
        .watches(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default(),
            move |pod: Pod| match pods::controller_of(&pod.metadata) {
                Some(r) if r.kind == "DaemonSet" && r.api_version == "apps/v1" => {
                    vec![
                        ObjectRef::new(&r.name)
                            .within(pod.namespace().as_deref().unwrap_or_default()),
                    ]
                }
                Some(_) => Vec::new(),
                None => daemon_sets
                    .state()
                    .iter()
                    .filter(|ds| {
                        ds.namespace() == pod.namespace()
                            && pods::selects(Some(&ds.spec.selector), pod.metadata.labels.as_ref())
                    })
                    .map(|ds| ObjectRef::from_obj(&**ds))
                    .collect(),
            },
        )
        .owns(
            Api::<ControllerRevision>::all(client.clone()),
            watcher::Config::default(),
        )
        .reconcile_all_on(node_changes(client))
        .run(sync, |_, _, _| Action::requeue(Duration::from_secs(1)), ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "daemonset sync");
            }
        })
        .await;
}

/// A tick whenever a node appears, goes, or changes what eligibility reads
/// (labels, taints); heartbeats and status changes are ignored.
fn node_changes(client: kube::Client) -> impl Stream<Item = ()> + Send + 'static {
    let mut seen: HashMap<String, String> = HashMap::new();
    watcher(Api::<Node>::all(client), watcher::Config::default())
        .default_backoff()
        .filter_map(move |event| {
            let changed = match event {
                Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n)) => {
                    let print = serde_json::to_string(&(
                        &n.metadata.labels,
                        n.spec.as_ref().map(|s| &s.taints),
                    ))
                    .unwrap_or_default();
                    seen.insert(n.name_any(), print.clone()) != Some(print)
                }
                Ok(watcher::Event::Delete(n)) => seen.remove(&n.name_any()).is_some(),
                Ok(_) => false,
                Err(e) => {
                    tracing::debug!(error = %e, "daemonset node watch (retrying)");
                    false
                }
            };
            futures::future::ready(changed.then_some(()))
        })
}

/// Kubernetes' failed-pod back-off: 1 s, doubling per failure up to 15 min, per key.
#[derive(Default)]
struct Backoff(Mutex<HashMap<String, (Duration, Instant)>>);

impl Backoff {
    /// `None` when a failed pod on this key may be deleted now (and the back-off
    /// grows); otherwise how long to wait.
    fn check(&self, key: String, now: Instant) -> Option<Duration> {
        let Ok(mut map) = self.0.lock() else {
            return None;
        };
        map.retain(|_, (_, last)| now.duration_since(*last) < 2 * MAX_BACKOFF);
        match map.get_mut(&key) {
            Some((delay, last)) if now.duration_since(*last) < *delay => {
                Some(*delay - now.duration_since(*last))
            }
            Some((delay, last)) => {
                *delay = (*delay * 2).min(MAX_BACKOFF);
                *last = now;
                None
            }
            None => {
                map.insert(key, (FIRST_BACKOFF, now));
                None
            }
        }
    }
}

fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.annotations().get(TEMPLATE_GENERATION)?.parse().ok()
}

/// One sync: claim pods and revisions, find or record the current revision, put
/// pods where they belong, roll out updates, prune history, report status.
async fn sync(ds: Arc<DaemonSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (Some(ns), Some(uid)) = (ds.namespace(), ds.uid()) else {
        return Ok(Action::await_change());
    };
    // Its history may be going away with it: nothing can be computed reliably.
    if ds.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let about = Involved::of(&*ds);
    let selector = &ds.spec.selector;
    if selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
    {
        if let Some(a) = &about {
            let message =
                "This daemon set is selecting all pods. A non-empty selector is required.";
            ctx.recorder
                .record(a, Kind::Warning, "SelectingAll", message.into())
                .await;
        }
        return Ok(Action::await_change());
    }
    let nodes = Api::<Node>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let owned = apply::claim(&pod_api, &ds, &uid).await?;
    let Some((cur, old)) = revisions::current(&ctx.client, &ds, &ns, &pod_api, &owned).await?
    else {
        return Ok(Action::requeue(Duration::from_millis(100)));
    };
    let hash = cur.labels().get(HASH_LABEL).cloned().unwrap_or_default();
    let generation = template_generation(&ds);
    let mut template = ds.spec.template.clone();
    nodes::add_default_tolerations(template.spec.get_or_insert_default());
    let template_spec = template.spec.clone().unwrap_or_default();
    let fits: Vec<NodeFit> = nodes
        .iter()
        .map(|n| NodeFit {
            name: n.name_any(),
            fit: nodes::fit(n, &template_spec),
        })
        .collect();
    let strategy = ds.spec.update_strategy.as_ref();
    let rolling = strategy
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate";
    let rolling_update = strategy.and_then(|s| s.rolling_update.as_ref());
    let max_surge = rolling_update.and_then(|r| r.max_surge.as_ref());
    let settings = Settings {
        hash: &hash,
        generation,
        min_ready_seconds: ds.spec.min_ready_seconds.unwrap_or(0),
        surge: rolling && plan::scaled(max_surge, 1) > 0,
        now: jiff::Timestamp::now(),
    };
    let by_node = group(&owned);
    let manage = plan::manage(&fits, &by_node, &settings);
    let mut delete = manage.delete;
    let mut retry: Option<Duration> = None;
    let observed = ds
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or(0);
    for (node, pod) in manage.failed {
        match ctx
            .backoff
            .check(format!("{uid}/{observed}/{node}"), Instant::now())
        {
            Some(wait) => retry = Some(retry.map_or(wait, |r| r.min(wait))),
            None => {
                if let Some(a) = &about {
                    let message = format!(
                        "Found failed daemon pod {ns}/{pod} on node {node}, will try to kill it"
                    );
                    ctx.recorder
                        .record(a, Kind::Warning, "FailedDaemonPod", message)
                        .await;
                }
                delete.push(pod);
            }
        }
    }
    for (node, pod) in manage.succeeded {
        if let Some(a) = &about {
            let message = format!(
                "Found succeeded daemon pod {ns}/{pod} on node {node}, will try to delete it"
            );
            ctx.recorder
                .record(a, Kind::Normal, "SucceededDaemonPod", message)
                .await;
        }
    }
    let mut labelled = template.clone();
    let labels = labelled
        .metadata
        .get_or_insert_default()
        .labels
        .get_or_insert_default();
    if let Some(g) = generation {
        labels.insert(GENERATION_LABEL.into(), g.to_string());
    }
    labels.insert(HASH_LABEL.into(), hash.clone());
    let changed = !manage.create.is_empty() || !delete.is_empty();
    let apply = apply::Apply {
        recorder: &ctx.recorder,
        api: &pod_api,
        ds: &ds,
        about: about.as_ref(),
    };
    let mut failure = apply.create(&labelled, &manage.create).await;
    apply.delete(&owned, &delete).await;
    // Update only once what manage started has been seen (the pod watch brings it).
    if !changed && rolling {
        let desired =
            i32::try_from(fits.iter().filter(|n| n.fit.should_run).count()).unwrap_or(i32::MAX);
        let (surge, unavailable) = plan::limits(
            max_surge,
            rolling_update.and_then(|r| r.max_unavailable.as_ref()),
            desired,
        );
        let roll = plan::rolling_update(&fits, &by_node, &settings, surge, unavailable);
        failure = failure.or(apply.create(&labelled, &roll.create).await);
        apply.delete(&owned, &roll.delete).await;
    }
    revisions::prune(&ctx.client, &ds, &ns, &old, &owned).await?;

    let (counts, wait) = plan::status(&fits, &by_node, &settings);
    let stored = serde_json::to_value(&ds.status).unwrap_or(Value::Null);
    let status = plan::status_json(&counts, ds.meta().generation, &stored);
    if status != stored {
        let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({"status": super::replace(&stored, status)});
        api.patch_status(
            &ds.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    let mut next = RESYNC;
    for d in [retry, wait.map(|w| w + Duration::from_millis(50))]
        .into_iter()
        .flatten()
    {
        next = next.min(d);
    }
    if failure.is_some() {
        next = next.min(Duration::from_secs(10));
    }
    Ok(Action::requeue(next))
}

/// Pods grouped by node; terminal pods already being deleted are left out.
fn group(owned: &[Pod]) -> plan::ByNode<'_> {
    let mut by: plan::ByNode<'_> = BTreeMap::new();
    for p in owned {
        if pods::is_terminal(p) && p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(node) = nodes::target(p) {
            by.entry(node).or_default().push(p);
        }
    }
    by
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_pod_back_off_doubles_per_node() {
        let b = Backoff::default();
        let t0 = Instant::now();
        assert_eq!(
            b.check("ds/1/a".into(), t0),
            None,
            "the first failure goes at once"
        );
        assert_eq!(
            b.check("ds/1/a".into(), t0 + Duration::from_millis(400)),
            Some(Duration::from_millis(600))
        );
        assert_eq!(b.check("ds/1/b".into(), t0), None, "per node");
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(b.check("ds/1/a".into(), t1), None, "after the delay");
        assert_eq!(
            b.check("ds/1/a".into(), t1 + Duration::from_secs(1)),
            Some(Duration::from_secs(1)),
            "doubled"
        );
    }
}
