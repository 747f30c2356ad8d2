//! The StatefulSet controller: pods `<set>-<ordinal>` with a stable identity
//! (hostname, the governing Service as subdomain, the `statefulset.kubernetes.io/pod-name`
//! and `apps.kubernetes.io/pod-index` labels) and their own claims
//! `<template>-<set>-<ordinal>` from `volumeClaimTemplates`, made before the pod and
//! kept after scale-down and deletion unless `persistentVolumeClaimRetentionPolicy`
//! says Delete. Templates are recorded as ControllerRevisions (`history`); each pod
//! carries its revision's name in `controller-revision-hash`. What to do next is
//! decided by [`plan`] (OrderedReady or Parallel; RollingUpdate with a partition,
//! or OnDelete); status reports replicas, ready/available/current/updated counts
//! and the current and update revisions.

mod plan;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use self::plan::{Member, Step, Want};
use super::history::{self, History};
use super::pods::{self, Naming};
use crate::events::{Involved, Kind, Recorder};

/// The label naming a pod's revision.
const REVISION_LABEL: &str = "controller-revision-hash";
/// The label with the pod's own name.
const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label with the pod's ordinal.
const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The label on a StatefulSet's ControllerRevisions (`history.ControllerRevisionHashLabel`).
const HISTORY_HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// What the reconciler needs.
pub(crate) struct Context {
    client: kube::Client,
    recorder: Recorder,
}

/// Reconcile failures (retried with a delay).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("statefulset sync: {0}")]
    Api(#[from] kube::Error),
    /// Recording the template failed.
    #[error("statefulset sync: {0}")]
    History(#[from] history::Error),
    /// A status could not be encoded.
    #[error("statefulset sync: {0}")]
    Json(#[from] serde_json::Error),
}

/// Run the controller until the cluster stops.
pub(crate) async fn run(client: kube::Client) {
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "statefulset-controller", None),
        client: client.clone(),
    });
    Controller::new(
        Api::<StatefulSet>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<Pod>::all(client), watcher::Config::default())
    .run(sync, |_, _, _| Action::requeue(Duration::from_secs(1)), ctx)
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "statefulset sync");
        }
    })
    .await;
}

/// The ordinal in a pod name `<set>-<n>`, when the pod belongs to `set`.
fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    let n = pod.strip_prefix(set)?.strip_prefix('-')?;
    if n.is_empty() || (n.len() > 1 && n.starts_with('0')) {
        return None;
    }
    n.parse().ok()
}

/// The pod template a revision records (`data.spec.template` without `$patch`).
fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.0.get("spec")?.get("template")?.clone();
    t.as_object_mut()?.remove("$patch");
    serde_json::from_value(t).ok()
}

/// The claim name for template `claim` of pod `<set>-<ordinal>`.
fn claim_name(claim: &str, set: &str, ordinal: i32) -> String {
    format!("{claim}-{set}-{ordinal}")
}

/// Pod `ordinal` of `set` from `template`, at revision `revision`.
fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32, revision: &str) -> Pod {
    let set_name = set.name_any();
    let name = format!("{set_name}-{ordinal}");
    let mut pod = pods::from_template(template, Naming::Exact(&name), pods::owner_ref(set));
    pod.metadata.namespace = set.namespace();
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(REVISION_LABEL.into(), revision.into());
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = Some(name.clone());
    if let Some(service) = set.spec.service_name.as_ref().filter(|s| !s.is_empty()) {
        spec.subdomain = Some(service.clone());
    }
    for claim in set.spec.volume_claim_templates.iter().flatten() {
        let Some(claim_template) = claim.metadata.name.as_deref() else {
            continue;
        };
        let volume = Volume {
            name: claim_template.to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(claim_template, &set_name, ordinal),
                read_only: None,
            }),
            ..Volume::default()
        };
        let volumes = spec.volumes.get_or_insert_with(Vec::new);
        volumes.retain(|v| v.name != claim_template);
        volumes.push(volume);
    }
    pod
}

/// The claims pod `ordinal` needs, as they would be created.
fn new_claims(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let set_name = set.name_any();
    let delete_with_set = set
        .spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .and_then(|p| p.when_deleted.as_deref())
        == Some("Delete");
    set.spec
        .volume_claim_templates
        .iter()
        .flatten()
        .filter_map(|t| {
            let template = t.metadata.name.as_deref()?;
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            labels.extend(set.spec.selector.match_labels.clone().unwrap_or_default());
            Some(PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(template, &set_name, ordinal)),
                    namespace: set.namespace(),
                    labels: Some(labels),
                    annotations: t.metadata.annotations.clone(),
                    owner_references: delete_with_set.then(|| {
                        let mut r = pods::owner_ref(set);
                        r.controller = None;
                        r.block_owner_deletion = None;
                        vec![r]
                    }),
                    ..ObjectMeta::default()
                },
                spec: t.spec.clone(),
                status: None,
            })
        })
        .collect()
}

/// The revisions this sync works with: (current, update, all owned), recording
/// the template as a new revision when no revision has it yet.
async fn revisions(
    set: &StatefulSet,
    hist: &History,
) -> Result<
    (
        ControllerRevision,
        ControllerRevision,
        Vec<ControllerRevision>,
    ),
    Error,
> {
    let mut owned = hist.claim(set, &set.spec.selector).await?;
    history::sort_by_revision(&mut owned);
    let status = set.status.clone().unwrap_or_default();
    let data = history::template_patch(&set.spec.template);
    let newest = history::max_revision(&owned);
    let update = match owned.iter().position(|r| history::records(r, &data)) {
        Some(i) => {
            // A template rolled back to becomes the newest revision.
            let rev = owned[i].clone();
            if history::number(&rev) < newest {
                let renumbered = hist.renumber(&rev, newest + 1).await?;
                owned[i] = renumbered.clone();
                renumbered
            } else {
                rev
            }
        }
        None => {
            let collisions = status.collision_count.unwrap_or(0);
            let hash = history::hash(&serde_json::to_vec(&data)?, collisions);
            let rev = history::new_revision(
                set,
                data,
                HISTORY_HASH_LABEL,
                &hash,
                set.spec
                    .template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default(),
                set.annotations().clone(),
                newest + 1,
            );
            let created = hist.create(&rev).await?;
            owned.push(created.clone());
            created
        }
    };
    let current = status
        .current_revision
        .as_deref()
        .and_then(|name| owned.iter().find(|r| r.name_any() == name))
        .cloned()
        .unwrap_or_else(|| update.clone());
    Ok((current, update, owned))
}

/// One sync of one StatefulSet.
async fn sync(set: Arc<StatefulSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (Some(ns), Some(uid)) = (set.namespace(), set.uid()) else {
        return Ok(Action::await_change());
    };
    if set.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let set_name = set.name_any();
    let hist = History::new(ctx.client.clone(), &ns);
    let (current, update, owned_revisions) = match revisions(&set, &hist).await {
        Ok(r) => r,
        Err(Error::History(e)) if e.is_collision() => {
            // Another template took the name: count the collision and try again.
            let collisions = set
                .status
                .as_ref()
                .and_then(|s| s.collision_count)
                .unwrap_or(0)
                + 1;
            let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
            let patch = json!({"status": {"collisionCount": collisions}});
            api.patch_status(&set_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            return Ok(Action::requeue(Duration::from_millis(100)));
        }
        Err(e) => return Err(e),
    };

    // The set's pods: controlled ones that still match, plus adopted orphans.
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let min_ready = set.spec.min_ready_seconds.unwrap_or(0);
    let mut owned: Vec<Pod> = Vec::new();
    for pod in pod_api.list(&ListParams::default()).await?.items {
        let matches = pods::selects(Some(&set.spec.selector), pod.metadata.labels.as_ref());
        let member = ordinal_of(&set_name, &pod.name_any()).is_some();
        match pods::controller_of(&pod.metadata) {
            Some(r) if r.uid == uid => {
                if matches && member {
                    owned.push(pod);
                } else {
                    pods::release(&pod_api, &pod, &uid).await;
                }
            }
            Some(_) => {}
            None if matches && member && pods::adopt(&pod_api, &pod, &*set).await => {
                owned.push(pod);
            }
            None => {}
        }
    }
    let now = jiff::Timestamp::now();
    let available = |p: &Pod| {
        pods::ready_since(p)
            .is_some_and(|t| now.duration_since(t).as_secs() >= i64::from(min_ready))
    };
    let members: Vec<Member> = owned
        .iter()
        .filter_map(|p| {
            Some(Member {
                ordinal: ordinal_of(&set_name, &p.name_any())?,
                revision: p.labels().get(REVISION_LABEL).cloned().unwrap_or_default(),
                terminating: p.metadata.deletion_timestamp.is_some(),
                finished: pods::is_terminal(p),
                healthy: pods::phase(p) == "Running" && available(p),
            })
        })
        .collect();
    let spec = &set.spec;
    let strategy = spec.update_strategy.as_ref();
    let on_delete = strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete");
    let want = Want {
        start: spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0),
        replicas: spec.replicas.unwrap_or(1),
        ordered: spec.pod_management_policy.as_deref() != Some("Parallel"),
        partition: (!on_delete).then(|| {
            strategy
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.partition)
                .unwrap_or(0)
        }),
        current: current.name_any(),
        update: update.name_any(),
    };
    let about = Involved::of(&*set);
    let note = |reason: &'static str, message: String| {
        let about = about.clone();
        let ctx = ctx.clone();
        async move {
            if let Some(a) = &about {
                ctx.recorder.record(a, Kind::Normal, reason, message).await;
            }
        }
    };
    let claim_api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    for step in plan::plan(&want, &members) {
        match step {
            Step::Create(ordinal) => {
                let name = format!("{set_name}-{ordinal}");
                for claim in new_claims(&set, ordinal) {
                    let claim_name = claim.name_any();
                    match claim_api.get_opt(&claim_name).await? {
                        Some(c) if c.metadata.deletion_timestamp.is_some() => {
                            // Wait for the old claim to go before making the pod.
                            return Ok(Action::requeue(Duration::from_secs(1)));
                        }
                        Some(_) => {}
                        None => match claim_api.create(&PostParams::default(), &claim).await {
                            Ok(_) => {
                                note(
                                    "SuccessfulCreate",
                                    format!("create Claim {claim_name} Pod {name} in StatefulSet {set_name} success"),
                                )
                                .await;
                            }
                            Err(kube::Error::Api(s)) if s.code == 409 => {}
                            Err(e) => return Err(e.into()),
                        },
                    }
                }
                let revision = want.revision_for(ordinal);
                let template = if revision == current.name_any() {
                    template_of(&current).unwrap_or_else(|| spec.template.clone())
                } else {
                    spec.template.clone()
                };
                let pod = new_pod(&set, &template, ordinal, revision);
                match pod_api.create(&PostParams::default(), &pod).await {
                    Ok(_) => {
                        note(
                            "SuccessfulCreate",
                            format!("create Pod {name} in StatefulSet {set_name} successful"),
                        )
                        .await;
                    }
                    // The old pod of that name is still going away.
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Step::Delete(ordinal) => {
                let name = format!("{set_name}-{ordinal}");
                let condemned = ordinal >= want.start + want.replicas || ordinal < want.start;
                if condemned {
                    release_claims_on_scale_down(&set, &claim_api, ordinal, &owned).await;
                }
                match pod_api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {
                        note(
                            "SuccessfulDelete",
                            format!("delete Pod {name} in StatefulSet {set_name} successful"),
                        )
                        .await;
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }

    // Status from the pods as they are now.
    let pods_now: Vec<Pod> = pod_api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| pods::controller_of(&p.metadata).is_some_and(|r| r.uid == uid))
        .collect();
    let counted: Vec<&Pod> = pods_now
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && !pods::phase(p).is_empty())
        .collect();
    let at = |rev: &str| {
        counted
            .iter()
            .filter(|p| p.labels().get(REVISION_LABEL).map(String::as_str) == Some(rev))
            .count()
    };
    let replicas = counted.len();
    let ready = counted.iter().filter(|p| pods::is_ready(p)).count();
    let available_count = counted.iter().filter(|p| available(p)).count();
    let updated = at(&want.update);
    let mut current_name = want.current.clone();
    let mut current_count = at(&want.current);
    let want_replicas = usize::try_from(want.replicas).unwrap_or(0);
    if updated == want_replicas && replicas == want_replicas && ready == want_replicas {
        // The rollout is complete: the update revision is current now.
        current_name = want.update.clone();
        current_count = updated;
    }
    let mut status = json!({
        "observedGeneration": set.meta().generation,
        "replicas": replicas,
        "readyReplicas": ready,
        "currentReplicas": current_count,
        "updatedReplicas": updated,
        "availableReplicas": available_count,
        "currentRevision": current_name,
        "updateRevision": want.update,
        "collisionCount": set.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0),
    });
    if let Some(m) = status.as_object_mut() {
        // Zero counts are omitted, as Go's omitempty leaves them out.
        m.retain(|k, v| k == "replicas" || !(v == &json!(0) || v.is_null()));
    }
    let stored = serde_json::to_value(&set.status)?;
    if !same_status(&stored, &status) {
        let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({"status": super::replace(&stored, status)});
        api.patch_status(&set_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }

    // History: keep revisionHistoryLimit old ones besides those in use.
    let limit = spec
        .revision_history_limit
        .unwrap_or(history::DEFAULT_LIMIT);
    let live: Vec<String> = pods_now
        .iter()
        .filter_map(|p| p.labels().get(REVISION_LABEL).cloned())
        .chain([current_name, want.update.clone()])
        .collect();
    let old: Vec<ControllerRevision> = owned_revisions
        .into_iter()
        .filter(|r| !live.contains(&r.name_any()))
        .collect();
    for rev in history::to_truncate(&old, limit, |_| false) {
        hist.delete(rev).await?;
    }

    // minReadySeconds: look again when a pod becomes available.
    Ok(if min_ready > 0 && available_count < ready {
        Action::requeue(Duration::from_secs(1))
    } else {
        Action::requeue(Duration::from_secs(300))
    })
}

/// Whether two statuses say the same (conditions kept as stored).
fn same_status(stored: &Value, wanted: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("conditions");
        }
        v
    };
    strip(stored) == strip(wanted)
}

/// With `whenScaled: Delete`, the claims of a pod removed by a scale-down become
/// owned by that pod, so the garbage collector deletes them with it.
async fn release_claims_on_scale_down(
    set: &StatefulSet,
    claims: &Api<PersistentVolumeClaim>,
    ordinal: i32,
    owned: &[Pod],
) {
    let delete = set
        .spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .and_then(|p| p.when_scaled.as_deref())
        == Some("Delete");
    let name = format!("{}-{ordinal}", set.name_any());
    let Some(pod) = owned.iter().find(|p| p.name_any() == name) else {
        return;
    };
    if !delete {
        return;
    }
    for claim in new_claims(set, ordinal) {
        let mut r = pods::owner_ref(pod);
        r.controller = None;
        r.block_owner_deletion = None;
        let patch = json!({"metadata": {"ownerReferences": [r]}});
        if let Err(e) = claims
            .patch(
                &claim.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            tracing::debug!(claim = %claim.name_any(), error = %e, "handing a claim to its pod");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_come_from_names_of_the_set_only() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-01"), None);
        assert_eq!(ordinal_of("web", "webby-1"), None);
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web-a", "web-a-3"), Some(3));
    }

    #[test]
    fn pods_get_identity_labels_and_their_claims() {
        let set: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {
                "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "kv", "image": "minke/kv"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
            },
        }))
        .expect("set");
        let pod = new_pod(&set, &set.spec.template, 2, "web-abc");
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(pod.metadata.name.as_deref(), Some("web-2"));
        assert_eq!(labels[REVISION_LABEL], "web-abc");
        assert_eq!(labels[POD_NAME_LABEL], "web-2");
        assert_eq!(labels[POD_INDEX_LABEL], "2");
        let spec = pod.spec.expect("spec");
        assert_eq!(spec.hostname.as_deref(), Some("web-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let volumes = spec.volumes.expect("volumes");
        assert_eq!(
            volumes[0]
                .persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.as_str()),
            Some("www-web-2")
        );
        let claims = new_claims(&set, 2);
        assert_eq!(claims[0].metadata.name.as_deref(), Some("www-web-2"));
        assert_eq!(
            claims[0]
                .metadata
                .labels
                .as_ref()
                .map(|l| l["app"].as_str()),
            Some("web")
        );
        assert!(
            claims[0].metadata.owner_references.is_none(),
            "kept by default"
        );
    }
}
