//! A DaemonSet's ControllerRevisions (`constructHistory`, `cleanupHistory`): the
//! revision recording the current template, found or recorded (an earlier one
//! rolled back to is renumbered newest; duplicates are merged), and old ones pruned
//! to revisionHistoryLimit unless pods still run them.

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::Error;
use crate::controllers::history::{self, HASH_LABEL, History};

/// `constructHistory`: the revision recording the current template (made, or an
/// earlier one renumbered newest) and the others. `None` after a hash collision
/// (the collision count was bumped; try again).
pub(super) async fn current(
    client: &kube::Client,
    ds: &DaemonSet,
    ns: &str,
    pod_api: &Api<Pod>,
    owned: &[Pod],
) -> Result<Option<(ControllerRevision, Vec<ControllerRevision>)>, Error> {
    let history = History::new(client.clone(), ns);
    let rev_api: Api<ControllerRevision> = Api::namespaced(client.clone(), ns);
    let data = history::template_patch(&ds.spec.template);
    let mut current = Vec::new();
    let mut old = Vec::new();
    for mut rev in history.claim(ds, &ds.spec.selector).await? {
        // Revisions from before the hash label are labelled with their name.
        if !rev.labels().contains_key(HASH_LABEL) {
            let patch = json!({"metadata": {"labels": {HASH_LABEL: rev.name_any()}}});
            rev = rev_api
                .patch(
                    &rev.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
        }
        if history::records(&rev, &data) {
            current.push(rev);
        } else {
            old.push(rev);
        }
    }
    let next = history::max_revision(&old) + 1;
    history::sort_by_revision(&mut current);
    let Some(keep) = current.pop() else {
        let collisions = ds
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let hash = history::template_hash(&ds.spec.template, collisions);
        let labels = ds
            .spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let annotations = ds.annotations().clone();
        let rev = history::new_revision(ds, data, HASH_LABEL, &hash, labels, annotations, next);
        return match history.create(&rev).await {
            Ok(created) => Ok(Some((created, old))),
            Err(e) if e.is_collision() => {
                tracing::info!(daemonset = %ds.name_any(), collisions = collisions + 1, "hash collision; bumping collisionCount");
                let api: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
                let patch = json!({"status": {"collisionCount": collisions + 1}});
                api.patch_status(
                    &ds.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        };
    };
    // Duplicates of the current template: their pods take the kept hash, then they go.
    let kept_hash = keep.labels().get(HASH_LABEL).cloned().unwrap_or_default();
    for dup in &current {
        let dup_hash = dup.labels().get(HASH_LABEL).cloned();
        for pod in owned
            .iter()
            .filter(|p| p.labels().get(HASH_LABEL) == dup_hash.as_ref())
        {
            let patch = json!({"metadata": {"labels": {HASH_LABEL: kept_hash}}});
            pod_api
                .patch(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
        }
        history.delete(dup).await?;
    }
    let keep = if history::number(&keep) < next {
        history.renumber(&keep, next).await?
    } else {
        keep
    };
    Ok(Some((keep, old)))
}

/// `cleanupHistory`: old revisions beyond revisionHistoryLimit go, oldest first,
/// except those some pod still runs.
pub(super) async fn prune(
    client: &kube::Client,
    ds: &DaemonSet,
    ns: &str,
    old: &[ControllerRevision],
    owned: &[Pod],
) -> Result<(), Error> {
    let limit = ds
        .spec
        .revision_history_limit
        .unwrap_or(history::DEFAULT_LIMIT);
    let live: Vec<&String> = owned
        .iter()
        .filter_map(|p| p.labels().get(HASH_LABEL))
        .collect();
    let doomed = history::to_truncate(old, limit, |r| {
        r.labels()
            .get(HASH_LABEL)
            .is_some_and(|h| live.contains(&h))
    });
    let history = History::new(client.clone(), ns);
    for rev in doomed {
        history.delete(rev).await?;
    }
    Ok(())
}
