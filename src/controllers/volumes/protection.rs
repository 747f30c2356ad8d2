//! Storage object in-use protection: the `kubernetes.io/pvc-protection` finalizer
//! holds a deleted claim while a scheduled pod of its namespace still mounts it,
//! and `kubernetes.io/pv-protection` holds a deleted volume while it is Bound.
//! Admission adds the finalizers to new objects; these controllers remove them
//! when the object is no longer in use (and add them to objects that lack them).

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use super::binding::Result;
use super::claim::uses_claim;
use super::matching::{PV_PROTECTION, PVC_PROTECTION, volume_phase};

/// Run both protection controllers until the cluster stops.
pub(crate) async fn run(client: kube::Client) {
    let ctx = Arc::new(client.clone());
    let claims = Controller::new(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .watches(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        |pod| claims_of(&pod),
    )
    .run(sync_claim, super::binding::retry, ctx.clone())
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "pvc protection");
        }
    });
    let volumes = Controller::new(
        Api::<PersistentVolume>::all(client),
        watcher::Config::default(),
    )
    .run(sync_volume, super::binding::retry, ctx)
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "pv protection");
        }
    });
    futures::join!(claims, volumes);
}

/// The claims a pod mounts.
fn claims_of(pod: &Pod) -> Vec<ObjectRef<PersistentVolumeClaim>> {
    let Some(ns) = pod.metadata.namespace.as_deref() else {
        return Vec::new();
    };
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| ObjectRef::new(&c.claim_name).within(ns))
        .collect()
}

fn has(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

/// The object's metadata with `finalizer` added or removed; `None` if unchanged.
fn with_finalizer(meta: &ObjectMeta, finalizer: &str, present: bool) -> Option<ObjectMeta> {
    if has(meta, finalizer) == present {
        return None;
    }
    let mut next = meta.clone();
    let list = next.finalizers.get_or_insert_default();
    if present {
        list.push(finalizer.into());
    } else {
        list.retain(|f| f != finalizer);
    }
    Some(next)
}

/// A scheduled pod (any phase: the kubelet may still hold the volume) that mounts it.
async fn in_use(client: &kube::Client, pvc: &PersistentVolumeClaim) -> Result<bool> {
    let ns = pvc.metadata.namespace.as_deref().unwrap_or_default();
    let name = pvc.metadata.name.as_deref().unwrap_or_default();
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?
        .items;
    Ok(pods.iter().any(|p| {
        p.spec
            .as_ref()
            .is_some_and(|s| s.node_name.as_deref().is_some_and(|n| !n.is_empty()))
            && uses_claim(p, name)
    }))
}

async fn sync_claim(pvc: Arc<PersistentVolumeClaim>, client: Arc<kube::Client>) -> Result<Action> {
    let deleting = pvc.metadata.deletion_timestamp.is_some();
    let keep = if deleting {
        has(&pvc.metadata, PVC_PROTECTION) && in_use(&client, &pvc).await?
    } else {
        true
    };
    let Some(meta) = with_finalizer(&pvc.metadata, PVC_PROTECTION, keep) else {
        return Ok(Action::await_change());
    };
    if deleting && keep {
        return Ok(Action::await_change());
    }
    let mut next = (*pvc).clone();
    next.metadata = meta;
    let ns = pvc.metadata.namespace.as_deref().unwrap_or_default();
    let name = pvc.metadata.name.as_deref().unwrap_or_default();
    Api::<PersistentVolumeClaim>::namespaced((*client).clone(), ns)
        .replace(name, &PostParams::default(), &next)
        .await?;
    tracing::debug!(claim = %format!("{ns}/{name}"), keep, "pvc protection finalizer updated");
    Ok(Action::await_change())
}

async fn sync_volume(pv: Arc<PersistentVolume>, client: Arc<kube::Client>) -> Result<Action> {
    let deleting = pv.metadata.deletion_timestamp.is_some();
    let keep = !deleting || volume_phase(&pv) == "Bound";
    if deleting && keep {
        return Ok(Action::await_change());
    }
    let Some(meta) = with_finalizer(&pv.metadata, PV_PROTECTION, keep) else {
        return Ok(Action::await_change());
    };
    let mut next = (*pv).clone();
    next.metadata = meta;
    let name = pv.metadata.name.as_deref().unwrap_or_default();
    Api::<PersistentVolume>::all((*client).clone())
        .replace(name, &PostParams::default(), &next)
        .await?;
    tracing::debug!(volume = %name, keep, "pv protection finalizer updated");
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finalizers_are_added_or_removed_once_and_others_are_kept() {
        let meta = ObjectMeta {
            finalizers: Some(vec!["example.com/x".into()]),
            ..ObjectMeta::default()
        };
        let added = with_finalizer(&meta, PVC_PROTECTION, true).expect("added");
        assert_eq!(
            added.finalizers.as_deref(),
            Some(&["example.com/x".to_string(), PVC_PROTECTION.to_string()][..])
        );
        assert!(with_finalizer(&added, PVC_PROTECTION, true).is_none());
        let removed = with_finalizer(&added, PVC_PROTECTION, false).expect("removed");
        assert_eq!(removed.finalizers, meta.finalizers);
    }
}
