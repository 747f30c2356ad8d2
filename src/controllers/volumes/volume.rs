//! The PV controller's volume side (`syncVolume`): a volume's phase follows its
//! binding (Available, Bound, Released, Failed), and once its claim is gone its
//! reclaim policy runs — Retain keeps it Released, Recycle scrubs a hostPath and
//! makes it Available again, Delete removes it (a hostPath only under `/tmp/`, as
//! the in-tree deleter does; volumes of an external provisioner, minke's
//! local-path one included, are left to that provisioner).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use super::binding::{self, Context, Result};
use super::matching::{BOUND_BY_CONTROLLER, PROVISIONED_BY, claim_volume, has_annotation};
use crate::events::{Kind, Recorder};

/// How often a volume whose reclaim failed is tried again.
const RETRY: Duration = Duration::from_secs(15);

/// Run the volume side of the PV controller until the cluster stops.
pub(crate) async fn run(client: kube::Client) {
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "persistentvolume-controller", None),
        client: client.clone(),
    });
    let controller = Controller::new(
        Api::<PersistentVolume>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = controller.store();
    controller
        .watches(
            Api::<PersistentVolumeClaim>::all(client),
            watcher::Config::default(),
            move |pvc| volumes_of(&store, &pvc),
        )
        .run(sync, binding::retry, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "volume sync");
            }
        })
        .await;
}

/// The volumes a claim names or that point back at it.
fn volumes_of(
    store: &Store<PersistentVolume>,
    pvc: &PersistentVolumeClaim,
) -> Vec<ObjectRef<PersistentVolume>> {
    let mut refs: Vec<ObjectRef<PersistentVolume>> = store
        .state()
        .iter()
        .filter(|pv| {
            pv.spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref())
                .is_some_and(|r| {
                    r.name == pvc.metadata.name && r.namespace == pvc.metadata.namespace
                })
        })
        .map(|pv| ObjectRef::from_obj(pv.as_ref()))
        .collect();
    let named = claim_volume(pvc);
    if !named.is_empty() {
        refs.push(ObjectRef::new(named));
    }
    refs
}

fn phase(pv: &PersistentVolume) -> &str {
    super::matching::volume_phase(pv)
}

async fn sync(pv: Arc<PersistentVolume>, ctx: Arc<Context>) -> Result<Action> {
    let volume = (*pv).clone();
    let Some(claim_ref) = volume.spec.as_ref().and_then(|s| s.claim_ref.clone()) else {
        binding::volume_phase(&ctx, volume, "Available", None).await?;
        return Ok(Action::await_change());
    };
    let uid = claim_ref.uid.clone().unwrap_or_default();
    if uid.is_empty() {
        // Pre-bound by an admin: the claim's sync completes the binding.
        binding::volume_phase(&ctx, volume, "Available", None).await?;
        return Ok(Action::await_change());
    }
    let ns = claim_ref.namespace.clone().unwrap_or_default();
    let name = claim_ref.name.clone().unwrap_or_default();
    let claim = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&name)
        .await?
        // A claim of the same name made after ours was deleted is not ours.
        .filter(|c| c.metadata.uid.as_deref() == Some(uid.as_str()));
    let Some(claim) = claim else {
        let volume = if matches!(phase(&volume), "Released" | "Failed") {
            volume
        } else {
            tracing::info!(volume = volume.metadata.name.as_deref().unwrap_or_default(),
                policy = ?volume.spec.as_ref().and_then(|s| s.persistent_volume_reclaim_policy.as_deref()),
                "volume released");
            binding::volume_phase(&ctx, volume, "Released", None).await?
        };
        return reclaim(&ctx, volume).await;
    };
    let volume_name = volume.metadata.name.clone().unwrap_or_default();
    let bound_to = claim_volume(&claim);
    if bound_to.is_empty() {
        if super::matching::volume_mode_mismatch(&claim, &volume) {
            let about = binding::about_volume(&volume);
            let message = format!(
                "Cannot bind PersistentVolume to requested PersistentVolumeClaim \"{name}\" due to incompatible volumeMode."
            );
            ctx.recorder
                .record(&about, Kind::Warning, "VolumeMismatch", message)
                .await;
            if let Some(about) = crate::events::Involved::of(&claim) {
                let message = format!(
                    "Cannot bind PersistentVolume \"{volume_name}\" to requested PersistentVolumeClaim due to incompatible volumeMode."
                );
                ctx.recorder
                    .record(&about, Kind::Warning, "VolumeMismatch", message)
                    .await;
            }
        }
        // The claim's sync (triggered by this volume's change) binds it.
        return Ok(Action::await_change());
    }
    if bound_to == volume_name {
        binding::volume_phase(&ctx, volume, "Bound", None).await?;
        return Ok(Action::await_change());
    }
    // The claim went to another volume.
    let provisioned = has_annotation(&volume.metadata, PROVISIONED_BY);
    if provisioned && policy(&volume) == "Delete" {
        let volume = if matches!(phase(&volume), "Released" | "Failed") {
            volume
        } else {
            binding::volume_phase(&ctx, volume, "Released", None).await?
        };
        return reclaim(&ctx, volume).await;
    }
    let by_controller = has_annotation(&volume.metadata, BOUND_BY_CONTROLLER);
    tracing::debug!(volume = %volume_name, by_controller, "claim bound elsewhere: unbinding");
    binding::unbind_volume(&ctx, volume).await?;
    Ok(Action::await_change())
}

fn policy(pv: &PersistentVolume) -> &str {
    pv.spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        .unwrap_or("Retain")
}

/// `reclaimVolume`: run the reclaim policy of a volume whose claim is gone.
async fn reclaim(ctx: &Context, volume: PersistentVolume) -> Result<Action> {
    match policy(&volume) {
        "Retain" => Ok(Action::await_change()),
        "Delete" => delete(ctx, volume).await,
        "Recycle" => recycle(ctx, volume).await,
        _ => {
            binding::volume_phase_with_event(
                ctx,
                volume,
                "Failed",
                Kind::Warning,
                "VolumeUnknownReclaimPolicy",
                "Volume has unrecognized PersistentVolumeReclaimPolicy".into(),
            )
            .await?;
            Ok(Action::await_change())
        }
    }
}

/// `deleteVolumeOperation` with the in-tree deleters minke has: a hostPath under
/// `/tmp/` is removed with its content; any other in-tree volume cannot be
/// deleted (Failed, with `VolumeFailedDelete`); an external provisioner's volume
/// waits for that provisioner.
async fn delete(ctx: &Context, volume: PersistentVolume) -> Result<Action> {
    let name = volume.metadata.name.clone().unwrap_or_default();
    let external = volume
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PROVISIONED_BY))
        .is_some_and(|p| !p.is_empty() && !p.starts_with("kubernetes.io/"));
    if external {
        return Ok(Action::await_change());
    }
    let outcome = match volume.spec.as_ref().and_then(|s| s.host_path.as_ref()) {
        Some(hp) if hp.path.starts_with("/tmp/") && hp.path.len() > "/tmp/".len() => {
            remove_host_dir(Path::new(&hp.path))
        }
        Some(hp) => Err(format!(
            "failed to create deleter for volume \"{name}\": host_path deleter only supports /tmp/.+ but received provided {}",
            hp.path
        )),
        None => Err(format!(
            "error getting deleter volume plugin for volume \"{name}\": no deletable volume plugin matched"
        )),
    };
    if let Err(message) = outcome {
        binding::volume_phase_with_event(
            ctx,
            volume,
            "Failed",
            Kind::Warning,
            "VolumeFailedDelete",
            message,
        )
        .await?;
        return Ok(Action::requeue(RETRY));
    }
    tracing::info!(volume = %name, "volume deleted");
    match Api::<PersistentVolume>::all(ctx.client.clone())
        .delete(&name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(Action::await_change()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

fn remove_host_dir(path: &Path) -> std::result::Result<(), String> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("remove {}: {e}", path.display())),
    }
}

/// `recycleVolumeOperation`: a hostPath volume is scrubbed (its content removed,
/// as the recycler pod's `rm -rf` does) and offered again; others have no recycler.
async fn recycle(ctx: &Context, volume: PersistentVolume) -> Result<Action> {
    let Some(path) = volume
        .spec
        .as_ref()
        .and_then(|s| s.host_path.as_ref())
        .map(|h| h.path.clone())
    else {
        binding::volume_phase_with_event(
            ctx,
            volume,
            "Failed",
            Kind::Warning,
            "VolumeFailedRecycle",
            "No recycler plugin found for the volume!".into(),
        )
        .await?;
        return Ok(Action::await_change());
    };
    if let Err(e) = scrub(Path::new(&path)) {
        binding::volume_phase_with_event(
            ctx,
            volume,
            "Failed",
            Kind::Warning,
            "VolumeFailedRecycle",
            format!("Recycle failed: {e}"),
        )
        .await?;
        return Ok(Action::requeue(RETRY));
    }
    ctx.recorder
        .record(
            &binding::about_volume(&volume),
            Kind::Normal,
            "VolumeRecycled",
            "Volume recycled".into(),
        )
        .await;
    binding::unbind_volume(ctx, volume).await?;
    Ok(Action::await_change())
}

/// Remove everything inside `dir` (not following symlinks), keeping `dir`.
fn scrub(dir: &Path) -> std::io::Result<()> {
    if !std::fs::symlink_metadata(dir)?.is_dir() {
        return Err(std::io::Error::other(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_empties_a_dir_without_following_symlinks_out() {
        let tmp = tempfile::tempdir().expect("tmp");
        let vol = tmp.path().join("vol");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(vol.join("sub/deep")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(outside.join("keep"), "x").expect("write");
        std::fs::write(vol.join("file"), "x").expect("write");
        std::os::unix::fs::symlink(&outside, vol.join("link")).expect("symlink");
        scrub(&vol).expect("scrub");
        assert!(vol.is_dir());
        assert_eq!(std::fs::read_dir(&vol).expect("read").count(), 0);
        assert!(
            outside.join("keep").exists(),
            "the link target is untouched"
        );
    }
}
