//! minke's local-path provisioner (`minke.dev/local-path`), working as an
//! external provisioner does (sig-storage-lib-external-provisioner, as kind's and
//! k3s's `rancher.io/local-path`): a claim the PV controller handed to it (the
//! `volume.kubernetes.io/storage-provisioner` annotation) — for a class that waits
//! for the first consumer, once the scheduler chose a node — gets a directory
//! under the cluster's volumes dir and a `hostPath` PV `pvc-<claim uid>`
//! pre-bound to it, with the node affinity of the chosen node; the PV controller
//! then binds them. A Released volume it made with the Delete policy loses its
//! directory and is deleted; such a volume carries the provisioner's finalizer
//! (as csi-provisioner's), so its directory goes even when the PV object is
//! deleted first.
//!
//! Every node of a minke cluster shares the host's filesystem, so a volume
//! provisioned without a selected node (a class with Immediate binding) gets no
//! node affinity and can be used from any node.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::json;

use super::binding::{self, Result};
use super::matching::{
    BETA_STORAGE_PROVISIONER, PROVISIONED_BY, SELECTED_NODE, STORAGE_PROVISIONER, claim_class,
    claim_volume, volume_phase,
};
use crate::events::{Involved, Kind, Recorder};

/// The provisioner name StorageClasses use to ask for minke's local volumes.
pub const NAME: &str = "minke.dev/local-path";

/// Holds a provisioned volume with the Delete policy until its directory is gone.
pub const FINALIZER: &str = "external-provisioner.volume.kubernetes.io/finalizer";

/// What the provisioner needs.
pub(crate) struct Context {
    client: kube::Client,
    recorder: Recorder,
    /// Where volume directories are made.
    root: PathBuf,
}

/// Provision and delete volumes under `root` until the cluster stops.
pub(crate) async fn run(client: kube::Client, root: PathBuf) {
    if let Err(e) = std::fs::create_dir_all(&root) {
        tracing::warn!(root = %root.display(), error = %e, "cannot create the local-path volumes dir");
    }
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), NAME, None),
        client: client.clone(),
        root,
    });
    let claims = Controller::new(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .run(provision, binding::retry, ctx.clone())
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "local-path provision");
        }
    });
    let volumes = Controller::new(
        Api::<PersistentVolume>::all(client),
        watcher::Config::default(),
    )
    .run(delete, binding::retry, ctx)
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "local-path delete");
        }
    });
    futures::join!(claims, volumes);
}

fn annotation<'a>(pvc: &'a PersistentVolumeClaim, key: &str) -> Option<&'a str> {
    pvc.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

async fn record(
    ctx: &Context,
    pvc: &PersistentVolumeClaim,
    kind: Kind,
    reason: &str,
    message: String,
) {
    if let Some(about) = Involved::of(pvc) {
        ctx.recorder.record(&about, kind, reason, message).await;
    }
}

/// The volume name of a claim's provisioned volume.
pub(crate) fn volume_name(pvc: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", pvc.metadata.uid.as_deref().unwrap_or_default())
}

/// Whether the claim is ours to provision now (`shouldProvision`).
fn should_provision(pvc: &PersistentVolumeClaim, class: &StorageClass) -> bool {
    let asked =
        annotation(pvc, STORAGE_PROVISIONER).or_else(|| annotation(pvc, BETA_STORAGE_PROVISIONER));
    let waits = super::matching::waits_for_first_consumer(Some(class));
    claim_volume(pvc).is_empty()
        && pvc.metadata.deletion_timestamp.is_none()
        && asked == Some(NAME)
        && class.provisioner == NAME
        && (!waits || annotation(pvc, SELECTED_NODE).is_some_and(|n| !n.is_empty()))
}

async fn provision(pvc: Arc<PersistentVolumeClaim>, ctx: Arc<Context>) -> Result<Action> {
    let asked = annotation(&pvc, STORAGE_PROVISIONER)
        .or_else(|| annotation(&pvc, BETA_STORAGE_PROVISIONER));
    if asked != Some(NAME) || !claim_volume(&pvc).is_empty() {
        return Ok(Action::await_change());
    }
    let class_name = claim_class(&pvc).to_string();
    let Some(class) = Api::<StorageClass>::all(ctx.client.clone())
        .get_opt(&class_name)
        .await?
    else {
        return Ok(Action::await_change());
    };
    if !should_provision(&pvc, &class) {
        return Ok(Action::await_change());
    }
    let pv_name = volume_name(&pvc);
    let volumes: Api<PersistentVolume> = Api::all(ctx.client.clone());
    if volumes.get_opt(&pv_name).await?.is_some() {
        return Ok(Action::await_change());
    }
    let ns = pvc.metadata.namespace.clone().unwrap_or_default();
    let name = pvc.metadata.name.clone().unwrap_or_default();
    record(
        &ctx,
        &pvc,
        Kind::Normal,
        "Provisioning",
        format!("External provisioner is provisioning volume for claim \"{ns}/{name}\""),
    )
    .await;
    let node = match annotation(&pvc, SELECTED_NODE).filter(|n| !n.is_empty()) {
        None => None,
        Some(node) => match Api::<Node>::all(ctx.client.clone()).get_opt(node).await? {
            Some(n) => Some(n),
            None => {
                // The node is gone: let the scheduler choose again.
                let message = format!("failed to get target node: nodes \"{node}\" not found");
                record(&ctx, &pvc, Kind::Warning, "ProvisioningFailed", message).await;
                reschedule(&ctx, &pvc).await?;
                return Ok(Action::await_change());
            }
        },
    };
    let volume = match build(&ctx.root, &pvc, &class, node.as_ref()) {
        Ok(v) => v,
        Err(why) => {
            let message =
                format!("failed to provision volume with StorageClass \"{class_name}\": {why}");
            record(&ctx, &pvc, Kind::Warning, "ProvisioningFailed", message).await;
            return Ok(Action::requeue(Duration::from_secs(15)));
        }
    };
    let dir = dir_of(&ctx.root, &pvc);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        let message = format!(
            "failed to provision volume with StorageClass \"{class_name}\": create {}: {e}",
            dir.display()
        );
        record(&ctx, &pvc, Kind::Warning, "ProvisioningFailed", message).await;
        return Ok(Action::requeue(Duration::from_secs(15)));
    }
    match volumes.create(&PostParams::default(), &volume).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => return Ok(Action::await_change()),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            let message =
                format!("failed to provision volume with StorageClass \"{class_name}\": {e}");
            record(&ctx, &pvc, Kind::Warning, "ProvisioningFailed", message).await;
            return Err(e.into());
        }
    }
    tracing::info!(claim = %format!("{ns}/{name}"), volume = %pv_name, dir = %dir.display(), "volume provisioned");
    record(
        &ctx,
        &pvc,
        Kind::Normal,
        "ProvisioningSucceeded",
        format!("Successfully provisioned volume {pv_name}"),
    )
    .await;
    Ok(Action::await_change())
}

/// Drop the scheduler's node choice so it picks again (`rescheduleProvisioning`).
async fn reschedule(ctx: &Context, pvc: &PersistentVolumeClaim) -> Result<()> {
    let mut next = pvc.clone();
    if let Some(a) = next.metadata.annotations.as_mut() {
        a.remove(SELECTED_NODE);
    }
    let ns = pvc.metadata.namespace.as_deref().unwrap_or_default();
    let name = pvc.metadata.name.as_deref().unwrap_or_default();
    Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), ns)
        .replace(name, &PostParams::default(), &next)
        .await?;
    Ok(())
}

/// The directory of a claim's volume: `pvc-<uid>_<namespace>_<name>`, as
/// local-path-provisioner names them.
fn dir_of(root: &Path, pvc: &PersistentVolumeClaim) -> PathBuf {
    root.join(format!(
        "{}_{}_{}",
        volume_name(pvc),
        pvc.metadata.namespace.as_deref().unwrap_or_default(),
        pvc.metadata.name.as_deref().unwrap_or_default()
    ))
}

/// The PV for a claim: its size, modes and class, the class's reclaim policy and
/// mount options, a `hostPath` dir, the node affinity of `node`, and a
/// `claimRef` so the PV controller binds it to this claim and no other.
fn build(
    root: &Path,
    pvc: &PersistentVolumeClaim,
    class: &StorageClass,
    node: Option<&Node>,
) -> std::result::Result<PersistentVolume, String> {
    let spec = pvc.spec.clone().unwrap_or_default();
    if spec.volume_mode.as_deref() == Some("Block") {
        return Err("block volume mode is not supported".into());
    }
    if spec.selector.is_some() {
        // A selector picks among existing volumes; a new one cannot honour it.
        return Err("claim Selector is not supported".into());
    }
    if spec.data_source.is_some() || spec.data_source_ref.is_some() {
        return Err("data sources are not supported".into());
    }
    let size = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .cloned()
        .ok_or("the claim requests no storage")?;
    let mut volume = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": volume_name(pvc),
            "annotations": {PROVISIONED_BY: NAME},
        },
        "spec": {
            "capacity": {"storage": size},
            "accessModes": spec.access_modes.clone().unwrap_or_default(),
            "persistentVolumeReclaimPolicy": class.reclaim_policy.as_deref().unwrap_or("Delete"),
            "storageClassName": class.metadata.name,
            "volumeMode": "Filesystem",
            "hostPath": {"path": dir_of(root, pvc).display().to_string(), "type": "DirectoryOrCreate"},
            "claimRef": binding::claim_ref(pvc),
        },
    });
    if class.reclaim_policy.as_deref().unwrap_or("Delete") == "Delete" {
        volume["metadata"]["finalizers"] = json!([FINALIZER]);
    }
    if let Some(options) = &class.mount_options {
        volume["spec"]["mountOptions"] = json!(options);
    }
    if let Some(node) = node {
        let host = node
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/hostname"))
            .or(node.metadata.name.as_ref())
            .cloned()
            .unwrap_or_default();
        volume["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}
        ]}]}});
    }
    serde_json::from_value(volume).map_err(|e| e.to_string())
}

async fn delete(pv: Arc<PersistentVolume>, ctx: Arc<Context>) -> Result<Action> {
    let ours = pv
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PROVISIONED_BY))
        .is_some_and(|p| p == NAME);
    let policy = pv
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref());
    let deleting = pv.metadata.deletion_timestamp.is_some();
    let finalized = pv
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER));
    let released = volume_phase(&pv) == "Released";
    if !ours || (deleting && !finalized) {
        return Ok(Action::await_change());
    }
    let name = pv.metadata.name.clone().unwrap_or_default();
    if policy == Some("Delete") && (released || deleting) {
        if deleting && !released && volume_phase(&pv) == "Bound" {
            // Deleted while bound: pv-protection holds it until the claim lets go.
            return Ok(Action::await_change());
        }
        if let Some(hp) = pv.spec.as_ref().and_then(|s| s.host_path.as_ref())
            && let Err(message) = remove(&ctx.root, Path::new(&hp.path))
        {
            ctx.recorder
                .record(
                    &binding::about_volume(&pv),
                    Kind::Warning,
                    "VolumeFailedDelete",
                    message,
                )
                .await;
            return Ok(Action::requeue(Duration::from_secs(15)));
        }
        tracing::info!(volume = %name, "local-path volume deleted");
    } else if !deleting {
        return Ok(Action::await_change());
    }
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let outcome = if deleting {
        let mut next = (*pv).clone();
        if let Some(f) = next.metadata.finalizers.as_mut() {
            f.retain(|x| x != FINALIZER);
        }
        api.replace(&name, &PostParams::default(), &next)
            .await
            .map(drop)
    } else {
        api.delete(&name, &DeleteParams::default()).await.map(drop)
    };
    match outcome {
        Ok(()) => Ok(Action::await_change()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

/// Remove a volume's dir, but only one directly under `root` (a PV is editable
/// by admins; its path is checked, never trusted).
fn remove(root: &Path, dir: &Path) -> std::result::Result<(), String> {
    let canonical_root = root
        .canonicalize()
        .map_err(|e| format!("{}: {e}", root.display()))?;
    let parent_ok = dir
        .parent()
        .and_then(|p| p.canonicalize().ok())
        .is_some_and(|p| p == canonical_root);
    let is_link = std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
    if !parent_ok || is_link || dir.file_name().is_none() {
        return Err(format!(
            "refusing to delete {}: not a volume dir of {}",
            dir.display(),
            root.display()
        ));
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("remove {}: {e}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "db", "uid": "1234", "resourceVersion": "7",
                         "annotations": {STORAGE_PROVISIONER: NAME, SELECTED_NODE: "n1"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}},
                     "storageClassName": "standard"}
        }))
        .expect("claim")
    }

    fn class(mode: &str) -> StorageClass {
        serde_json::from_value(
            json!({"metadata": {"name": "standard"}, "provisioner": NAME,
            "reclaimPolicy": "Retain", "volumeBindingMode": mode}),
        )
        .expect("class")
    }

    #[test]
    fn the_volume_matches_the_claim_and_is_pinned_to_the_chosen_node() {
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1",
            "labels": {"kubernetes.io/hostname": "n1"}}}))
        .expect("node");
        let pv = build(
            Path::new("/data/volumes"),
            &claim(),
            &class("WaitForFirstConsumer"),
            Some(&node),
        )
        .expect("pv");
        let v = serde_json::to_value(&pv).expect("json");
        assert_eq!(v["metadata"]["name"], "pvc-1234");
        assert_eq!(v["metadata"]["annotations"][PROVISIONED_BY], NAME);
        assert_eq!(v["spec"]["capacity"]["storage"], "2Gi");
        assert_eq!(v["spec"]["accessModes"], json!(["ReadWriteOnce"]));
        assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(v["spec"]["storageClassName"], "standard");
        assert_eq!(
            v["spec"]["hostPath"],
            json!({"path": "/data/volumes/pvc-1234_db_data", "type": "DirectoryOrCreate"})
        );
        assert_eq!(
            v["spec"]["claimRef"],
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": "db",
                   "name": "data", "uid": "1234", "resourceVersion": "7"})
        );
        assert_eq!(
            v["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"],
            json!(["n1"])
        );
    }

    #[test]
    fn waiting_classes_need_a_selected_node_and_other_provisioners_are_ignored() {
        let mut pvc = claim();
        assert!(should_provision(&pvc, &class("WaitForFirstConsumer")));
        pvc.metadata
            .annotations
            .as_mut()
            .expect("annotations")
            .remove(SELECTED_NODE);
        assert!(!should_provision(&pvc, &class("WaitForFirstConsumer")));
        assert!(should_provision(&pvc, &class("Immediate")));
        let mut other = class("Immediate");
        other.provisioner = "example.com/nfs".into();
        assert!(!should_provision(&pvc, &other));
        let block: PersistentVolumeClaim =
            serde_json::from_value(json!({"metadata": {"name": "b", "uid": "9"},
            "spec": {"volumeMode": "Block", "resources": {"requests": {"storage": "1Gi"}}}}))
            .expect("claim");
        assert_eq!(
            build(Path::new("/v"), &block, &class("Immediate"), None).unwrap_err(),
            "block volume mode is not supported"
        );
        let mut picky = claim();
        picky.spec.as_mut().expect("spec").selector = Some(Default::default());
        assert_eq!(
            build(Path::new("/v"), &picky, &class("Immediate"), None).unwrap_err(),
            "claim Selector is not supported"
        );
    }

    #[test]
    fn only_volume_dirs_directly_under_the_root_are_removed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("volumes");
        std::fs::create_dir_all(root.join("pvc-1/data")).expect("mkdir");
        let outside = tmp.path().join("precious");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::os::unix::fs::symlink(&outside, root.join("pvc-link")).expect("symlink");
        assert!(remove(&root, &outside).is_err());
        assert!(remove(&root, &root.join("pvc-link")).is_err());
        assert!(
            remove(&root, &root.join("pvc-1/data")).is_err(),
            "not directly under the root"
        );
        assert!(outside.exists());
        remove(&root, &root.join("pvc-1")).expect("removed");
        assert!(!root.join("pvc-1").exists());
        remove(&root, &root.join("pvc-gone")).expect("already gone is fine");
    }
}
