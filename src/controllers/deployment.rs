//! The Deployment controller: one ReplicaSet per pod template, named
//! `<deployment>-<pod-template-hash>`, with the revision and change-cause
//! annotations `kubectl rollout history|undo` read; rollouts by RollingUpdate
//! (maxSurge / maxUnavailable as numbers or percentages) or Recreate; pausing;
//! scaling; the Available and Progressing conditions (progressDeadlineSeconds);
//! old ReplicaSets pruned to revisionHistoryLimit; `ScalingReplicaSet` events.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::pods;
use crate::events::{Involved, Kind, Recorder};

const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX: &str = "deployment.kubernetes.io/max-replicas";
const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
const HASH: &str = "pod-template-hash";

/// How often a Recreate rollout looks whether the old pods are gone.
const RECREATE_POLL: Duration = Duration::from_millis(500);

/// What the reconciler needs.
pub(crate) struct Context {
    client: kube::Client,
    recorder: Recorder,
}

/// Reconcile failures (retried with a delay).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("deployment sync: {0}")]
    Api(#[from] kube::Error),
    /// The object could not be encoded.
    #[error("deployment sync: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Run the controller until the cluster stops.
pub(crate) async fn run(client: kube::Client) {
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "deployment-controller", None),
        client: client.clone(),
    });
    Controller::new(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<ReplicaSet>::all(client), watcher::Config::default())
    .run(sync, |_, _, _| Action::requeue(Duration::from_secs(1)), ctx)
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "deployment sync");
        }
    })
    .await;
}

/// The pod-template-hash of a template: FNV-1a over its encoding (and the
/// collision count), written in Kubernetes' safe alphabet.
pub fn template_hash(template: &PodTemplateSpec, collisions: i32) -> String {
    super::history::template_hash(template, collisions)
}

/// A template without the pod-template-hash label, for comparing.
fn without_hash(t: &PodTemplateSpec) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or_default();
    if let Some(labels) = v
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH);
        if labels.is_empty()
            && let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.remove("labels");
        }
    }
    v
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(0)
}

fn status_of(rs: &ReplicaSet) -> (i32, i32, i32) {
    rs.status.as_ref().map_or((0, 0, 0), |s| {
        (
            s.replicas,
            s.ready_replicas.unwrap_or(0),
            s.available_replicas.unwrap_or(0),
        )
    })
}

/// maxSurge and maxUnavailable as pod counts (surge rounds up, unavailable down;
/// both zero would stall, so unavailable becomes 1).
pub fn resolve(
    surge: Option<&IntOrString>,
    unavailable: Option<&IntOrString>,
    replicas: i32,
) -> (i32, i32) {
    let value = |v: Option<&IntOrString>, default: &str, round_up: bool| -> i32 {
        match v {
            Some(IntOrString::Int(n)) => *n,
            Some(IntOrString::String(s)) => percent(s, replicas, round_up),
            None => percent(default, replicas, round_up),
        }
    };
    let surge = value(surge, "25%", true);
    let unavailable = value(unavailable, "25%", false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

fn percent(s: &str, total: i32, round_up: bool) -> i32 {
    let p: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
    let scaled = p * i64::from(total);
    let n = if round_up {
        (scaled + 99) / 100
    } else {
        scaled / 100
    };
    i32::try_from(n).unwrap_or(0)
}

/// One sync: find or make the new ReplicaSet, move replicas toward it, prune
/// history, report status.
async fn sync(d: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (Some(ns), Some(uid)) = (d.namespace(), d.uid()) else {
        return Ok(Action::await_change());
    };
    if d.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let mut owned = Vec::new();
    for rs in rs_api.list(&ListParams::default()).await?.items {
        let matches = pods::selects(Some(&d.spec.selector), rs.metadata.labels.as_ref());
        match pods::controller_of(&rs.metadata) {
            Some(r) if r.uid == uid => {
                if matches {
                    owned.push(rs);
                } else {
                    pods::release(&rs_api, &rs, &uid).await;
                }
            }
            Some(_) => {}
            // An orphan (say, left by `delete --cascade=orphan`) is taken back.
            None if matches
                && rs.metadata.deletion_timestamp.is_none()
                && pods::adopt(&rs_api, &rs, &*d).await =>
            {
                owned.push(rs);
            }
            None => {}
        }
    }
    owned.sort_by_key(|rs| rs.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let spec = &d.spec;
    let replicas = spec.replicas.unwrap_or(1);
    let paused = spec.paused.unwrap_or(false);
    let wanted = without_hash(&spec.template);
    let new_index = owned
        .iter()
        .position(|rs| rs.spec.template.as_ref().map(without_hash).as_ref() == Some(&wanted));
    let max_old_revision = owned
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != new_index)
        .map(|(_, rs)| revision(rs))
        .max()
        .unwrap_or(0);
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let rolling = spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let (surge, unavailable) = if recreate {
        (0, 0)
    } else {
        resolve(
            rolling.and_then(|r| r.max_surge.as_ref()),
            rolling.and_then(|r| r.max_unavailable.as_ref()),
            replicas,
        )
    };
    let about = Involved::of(&*d);
    let mut created = None;

    // The new ReplicaSet: found, or made (not while paused).
    let mut new_rs = match new_index {
        Some(i) => Some(owned.remove(i)),
        None if paused => None,
        None => {
            let rs = new_replica_set(&d, max_old_revision + 1, surge)?;
            match rs_api.create(&PostParams::default(), &rs).await {
                Ok(rs) => {
                    created = Some(rs.name_any());
                    Some(rs)
                }
                // Made by an earlier sync we have not seen yet: the watch brings it.
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    return Ok(Action::requeue(Duration::from_millis(200)));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let old = owned;
    if let Some(rs) = &mut new_rs {
        // A rollback (or the first sync after one) makes it the newest revision.
        let mut annotations = BTreeMap::new();
        if revision(rs) <= max_old_revision {
            annotations.insert(REVISION, json!((max_old_revision + 1).to_string()));
        }
        let cause = d.annotations().get(CHANGE_CAUSE);
        if cause.is_some() && rs.annotations().get(CHANGE_CAUSE) != cause {
            annotations.insert(CHANGE_CAUSE, json!(cause));
        }
        if !annotations.is_empty() {
            let patch = json!({"metadata": {"annotations": annotations}});
            *rs = rs_api
                .patch(
                    &rs.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
        }
    }

    // The deployment carries its current revision (and `rollout undo` patches
    // these annotations, so they must exist).
    if let Some(rs) = &new_rs
        && d.annotations().get(REVISION) != rs.annotations().get(REVISION)
    {
        let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
        let patch =
            json!({"metadata": {"annotations": {REVISION: rs.annotations().get(REVISION)}}});
        api.patch(
            &d.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    let scaler = Scaler {
        api: &rs_api,
        recorder: &ctx.recorder,
        about: about.as_ref(),
        replicas,
        surge,
    };
    let mut old_pods_terminating = false;
    if !paused && let Some(new) = &new_rs {
        if recreate {
            // Nothing wakes this controller when the old pods finish terminating
            // (it watches ReplicaSets), so it looks again soon.
            old_pods_terminating = scaler.recreate(new, &old, &ctx.client, &ns).await?;
        } else {
            scaler.roll(new, &old, unavailable).await?;
        }
    } else if let Some(newest) = new_rs.as_ref().or(old.last()) {
        // Paused: only follow `replicas` when nothing else is active.
        if spec_replicas(newest) != replicas
            && old
                .iter()
                .all(|rs| spec_replicas(rs) == 0 || rs.uid() == newest.uid())
        {
            scaler.scale(newest, replicas).await?;
        }
    }
    prune(&rs_api, &d, &old).await;

    // Status from the ReplicaSets as they are now.
    let all: Vec<ReplicaSet> = rs_api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|rs| pods::controller_of(&rs.metadata).is_some_and(|r| r.uid == uid))
        .collect();
    let new_name = new_rs.as_ref().map(ResourceExt::name_any);
    let (status, wait) = status(
        &d,
        &all,
        new_name.as_deref(),
        created.is_some(),
        unavailable,
    );
    let stored = serde_json::to_value(&d.status)?;
    if status != stored {
        let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({"status": super::replace(&stored, status)});
        api.patch_status(
            &d.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    let wait = if old_pods_terminating {
        Some(wait.map_or(RECREATE_POLL, |w| w.min(RECREATE_POLL)))
    } else {
        wait
    };
    Ok(Action::requeue(wait.unwrap_or(Duration::from_secs(300))))
}

/// The ReplicaSet for the deployment's current template.
fn new_replica_set(d: &Deployment, revision: i64, surge: i32) -> Result<ReplicaSet, Error> {
    let collisions = d
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let hash = template_hash(&d.spec.template, collisions);
    let mut template = d.spec.template.clone();
    template
        .metadata
        .get_or_insert_default()
        .labels
        .get_or_insert_default()
        .insert(HASH.into(), hash.clone());
    let mut selector = d.spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_default()
        .insert(HASH.into(), hash.clone());
    let replicas = d.spec.replicas.unwrap_or(1);
    let mut annotations: BTreeMap<String, String> = d
        .annotations()
        .iter()
        .filter(|(k, _)| k.as_str() != "kubectl.kubernetes.io/last-applied-configuration")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    annotations.insert(REVISION.into(), revision.to_string());
    annotations.insert(DESIRED.into(), replicas.to_string());
    annotations.insert(MAX.into(), (replicas + surge).to_string());
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(HASH.into(), hash.clone());
    Ok(serde_json::from_value(json!({
        "metadata": {
            "name": format!("{}-{hash}", d.name_any()),
            "namespace": d.namespace(),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [pods::owner_ref(d)],
        },
        "spec": {
            "replicas": 0,
            "minReadySeconds": d.spec.min_ready_seconds,
            "selector": selector,
            "template": template,
        }
    }))?)
}

/// Moves replicas between ReplicaSets, with `ScalingReplicaSet` events.
struct Scaler<'a> {
    api: &'a Api<ReplicaSet>,
    recorder: &'a Recorder,
    about: Option<&'a Involved>,
    replicas: i32,
    surge: i32,
}

impl Scaler<'_> {
    async fn scale(&self, rs: &ReplicaSet, to: i32) -> Result<(), Error> {
        let from = spec_replicas(rs);
        if from == to {
            return Ok(());
        }
        let patch = json!({
            "metadata": {"annotations": {DESIRED: self.replicas.to_string(), MAX: (self.replicas + self.surge).to_string()}},
            "spec": {"replicas": to},
        });
        self.api
            .patch(
                &rs.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        if let Some(about) = self.about {
            let (reason, verb) = ("ScalingReplicaSet", if to > from { "up" } else { "down" });
            let message = format!(
                "Scaled {verb} replica set {} from {from} to {to}",
                rs.name_any()
            );
            self.recorder
                .record(about, Kind::Normal, reason, message)
                .await;
        }
        Ok(())
    }

    /// RollingUpdate: grow the new set within maxSurge, shrink old ones while at
    /// least `replicas - maxUnavailable` pods stay available.
    async fn roll(
        &self,
        new: &ReplicaSet,
        old: &[ReplicaSet],
        unavailable: i32,
    ) -> Result<(), Error> {
        let active_old: Vec<&ReplicaSet> = old.iter().filter(|rs| spec_replicas(rs) > 0).collect();
        if active_old.is_empty() {
            return self.scale(new, self.replicas).await;
        }
        let total: i32 = old.iter().map(spec_replicas).sum::<i32>() + spec_replicas(new);
        let mut new_count = spec_replicas(new);
        if new_count < self.replicas {
            let room = (self.replicas + self.surge - total).max(0);
            new_count = (new_count + room).min(self.replicas);
        } else {
            new_count = self.replicas;
        }
        self.scale(new, new_count).await?;
        let total = total - spec_replicas(new) + new_count;

        let min_available = self.replicas - unavailable;
        let new_unavailable = new_count - status_of(new).2;
        let mut budget = total - min_available - new_unavailable;
        if budget <= 0 {
            return Ok(());
        }
        // First drop old replicas that are not available anyway.
        let mut remaining: Vec<(&ReplicaSet, i32)> = active_old
            .iter()
            .map(|rs| (*rs, spec_replicas(rs)))
            .collect();
        for (rs, count) in &mut remaining {
            let unhealthy = (*count - status_of(rs).2).max(0).min(budget);
            if unhealthy > 0 {
                *count -= unhealthy;
                budget -= unhealthy;
                self.scale(rs, *count).await?;
            }
        }
        // Then available ones, oldest first, keeping the minimum available.
        let available: i32 = old.iter().map(|rs| status_of(rs).2).sum::<i32>() + status_of(new).2;
        let mut budget = (available - min_available).min(budget).max(0);
        for (rs, count) in remaining {
            if budget == 0 {
                break;
            }
            let down = count.min(budget);
            if down > 0 {
                budget -= down;
                self.scale(rs, count - down).await?;
            }
        }
        Ok(())
    }

    /// Recreate: every old pod gone before the new set grows.
    async fn recreate(
        &self,
        new: &ReplicaSet,
        old: &[ReplicaSet],
        client: &kube::Client,
        ns: &str,
    ) -> Result<bool, Error> {
        for rs in old.iter().filter(|rs| spec_replicas(rs) > 0) {
            self.scale(rs, 0).await?;
        }
        let pod_api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
        let old_uids: Vec<String> = old.iter().filter_map(ResourceExt::uid).collect();
        let old_pods_left = pod_api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .any(|p| {
                pods::controller_of(&p.metadata).is_some_and(|r| old_uids.contains(&r.uid))
                    && !pods::is_terminal(p)
            });
        if !old_pods_left {
            self.scale(new, self.replicas).await?;
        }
        Ok(old_pods_left)
    }
}

/// Delete old ReplicaSets with no pods beyond revisionHistoryLimit (default 10).
async fn prune(api: &Api<ReplicaSet>, d: &Deployment, old: &[ReplicaSet]) {
    let limit = usize::try_from(d.spec.revision_history_limit.unwrap_or(10)).unwrap_or(0);
    let mut idle: Vec<&ReplicaSet> = old
        .iter()
        .filter(|rs| spec_replicas(rs) == 0 && status_of(rs).0 == 0)
        .collect();
    if idle.len() <= limit {
        return;
    }
    idle.sort_by_key(|rs| revision(rs));
    for rs in &idle[..idle.len() - limit] {
        if let Err(e) = api
            .delete(&rs.name_any(), &DeleteParams::background())
            .await
        {
            tracing::debug!(rs = %rs.name_any(), error = %e, "pruning history");
        }
    }
}

/// The deployment's status and when to look again (progress deadline, or soon
/// while rolling).
fn status(
    d: &Deployment,
    all: &[ReplicaSet],
    new: Option<&str>,
    just_created: bool,
    unavailable: i32,
) -> (Value, Option<Duration>) {
    let replicas = d.spec.replicas.unwrap_or(1);
    let sum = |f: fn(&ReplicaSet) -> i32| all.iter().map(f).sum::<i32>();
    let total = sum(|rs| status_of(rs).0);
    let ready = sum(|rs| status_of(rs).1);
    let available = sum(|rs| status_of(rs).2);
    let spec_total = sum(spec_replicas);
    let new_rs = new.and_then(|n| all.iter().find(|rs| rs.name_any() == n));
    let updated = new_rs.map_or(0, |rs| status_of(rs).0);
    let old_stored = d.status.as_ref();
    let previous = |t: &str| {
        old_stored
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_.as_deref() == Some(t)))
    };
    let now = crate::api::clock::now();
    let condition = |t: &str, status: &str, reason: &str, message: String, progress: bool| {
        let prev = previous(t);
        let same = prev.is_some_and(|c| {
            c.status.as_deref() == Some(status) && c.reason.as_deref() == Some(reason)
        });
        let transition = prev
            .filter(|c| c.status.as_deref() == Some(status))
            .and_then(|c| c.last_transition_time.as_ref())
            .map_or_else(|| json!(now), |t| json!(t));
        let update = match prev.and_then(|c| c.last_update_time.as_ref()) {
            Some(t)
                if same
                    && !progress
                    && prev.and_then(|c| c.message.as_deref()) == Some(message.as_str()) =>
            {
                json!(t)
            }
            _ => json!(now),
        };
        json!({"type": t, "status": status, "reason": reason, "message": message,
               "lastUpdateTime": update, "lastTransitionTime": transition})
    };
    let avail = if available >= replicas - unavailable {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            false,
        )
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            false,
        )
    };
    let name = new.unwrap_or_default();
    let complete =
        updated == replicas && available == replicas && total == replicas && new.is_some();
    let before = old_stored.map(|s| {
        (
            s.updated_replicas.unwrap_or(0),
            s.ready_replicas.unwrap_or(0),
            s.available_replicas.unwrap_or(0),
            s.replicas.unwrap_or(0),
        )
    });
    let moved = before != Some((updated, ready, available, total));
    let deadline = d.spec.progress_deadline_seconds.unwrap_or(600);
    let mut wait = None;
    let progressing = if d.spec.paused.unwrap_or(false) {
        condition(
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused".into(),
            false,
        )
    } else if just_created {
        condition(
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            format!("Created new replica set \"{name}\""),
            true,
        )
    } else if complete {
        condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{name}\" has successfully progressed."),
            false,
        )
    } else if moved
        || previous("Progressing").is_none_or(|c| c.reason.as_deref() == Some("DeploymentPaused"))
    {
        wait = Some(Duration::from_secs(u64::try_from(deadline).unwrap_or(600)));
        condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{name}\" is progressing."),
            true,
        )
    } else {
        let since = previous("Progressing")
            .and_then(|c| c.last_update_time.as_ref())
            .map(|t| t.0);
        let elapsed = since.map_or(0, |t| jiff::Timestamp::now().duration_since(t).as_secs());
        if previous("Progressing")
            .is_some_and(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
            || elapsed >= i64::from(deadline)
        {
            condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{name}\" has timed out progressing."),
                false,
            )
        } else {
            wait = Some(Duration::from_secs(
                u64::try_from(i64::from(deadline) - elapsed).unwrap_or(1),
            ));
            let prev = previous("Progressing").cloned();
            serde_json::to_value(prev).unwrap_or_default()
        }
    };
    let mut status = json!({
        "observedGeneration": d.meta().generation,
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": (spec_total - available).max(0),
        "conditions": [avail, progressing],
    });
    if let Some(c) = old_stored.and_then(|s| s.collision_count) {
        status["collisionCount"] = json!(c);
    }
    if let Some(m) = status.as_object_mut() {
        m.retain(|_, v| !(v == &json!(0) || v.is_null()));
    }
    (status, wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_rounds_up_and_unavailable_down() {
        let pct = |s: &str| Some(IntOrString::String(s.into()));
        assert_eq!(resolve(None, None, 3), (1, 0));
        assert_eq!(resolve(None, None, 10), (3, 2));
        assert_eq!(
            resolve(Some(&IntOrString::Int(1)), Some(&IntOrString::Int(0)), 3),
            (1, 0)
        );
        assert_eq!(
            resolve(pct("0%").as_ref(), pct("0%").as_ref(), 5),
            (0, 1),
            "never both zero"
        );
        assert_eq!(resolve(pct("50%").as_ref(), pct("50%").as_ref(), 5), (3, 2));
    }

    #[test]
    fn template_hashes_are_stable_safe_and_change_with_the_template() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "echo", "image": "minke/echo"}]}
        }))
        .expect("template");
        let h = template_hash(&t, 0);
        assert_eq!(h, template_hash(&t, 0));
        assert!(
            h.bytes()
                .all(|c| b"bcdfghjklmnpqrstvwxz2456789".contains(&c)),
            "{h}"
        );
        let mut t2 = t.clone();
        t2.spec.as_mut().expect("spec").containers[0].image = Some("minke/echo:v2".into());
        assert_ne!(h, template_hash(&t2, 0));
        assert_ne!(h, template_hash(&t, 1), "a collision count changes it");
    }

    #[test]
    fn the_hash_label_is_ignored_when_comparing_templates() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "echo", "image": "minke/echo"}]}
        }))
        .expect("template");
        let mut labelled = t.clone();
        labelled
            .metadata
            .as_mut()
            .and_then(|m| m.labels.as_mut())
            .expect("labels")
            .insert(HASH.into(), "abc".into());
        assert_eq!(without_hash(&t), without_hash(&labelled));
    }
}
