//! The binding protocol's writes, in the PV controller's order: the volume's
//! `claimRef` first, then its phase, then the claim's `volumeName` and
//! annotations, then the claim's phase with the volume's capacity and modes.
//! Each step is written only when something changes and returns the stored
//! object, so a partly done binding is finished by the next sync of either side.

use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use kube::Resource;
use kube::api::{Api, PostParams};

use super::matching::{BIND_COMPLETED, BOUND_BY_CONTROLLER, has_annotation, is_bound_to_claim};
use crate::events::{Involved, Kind, Recorder};

/// What the PV controller's reconcilers share.
pub(crate) struct Context {
    pub client: kube::Client,
    pub recorder: Recorder,
}

/// Reconcile failures (retried with a delay).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("persistent volume sync: {0}")]
    Api(#[from] kube::Error),
    /// Removing a volume's data from the host failed.
    #[error("persistent volume sync: {0}")]
    Volume(String),
}

/// Result of a reconcile step.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error policy of every storage controller: look again shortly (a
/// conflict means a newer object is on its way).
pub(crate) fn retry<K, C>(
    _: std::sync::Arc<K>,
    _: &Error,
    _: std::sync::Arc<C>,
) -> kube::runtime::controller::Action {
    kube::runtime::controller::Action::requeue(std::time::Duration::from_millis(500))
}

/// `reference.GetReference` of a claim: what a volume's `claimRef` holds.
pub(crate) fn claim_ref(pvc: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: pvc.metadata.namespace.clone(),
        name: pvc.metadata.name.clone(),
        uid: pvc.metadata.uid.clone(),
        resource_version: pvc.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// An event about a volume (filed in `default`, as Kubernetes files events
/// about cluster-scoped objects).
pub(crate) fn about_volume(pv: &PersistentVolume) -> Involved {
    Involved::object(
        "v1",
        "PersistentVolume",
        None,
        pv.metadata.name.as_deref().unwrap_or_default(),
        pv.metadata.uid.as_deref().unwrap_or_default(),
    )
}

fn set_annotation(
    meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) {
    meta.annotations
        .get_or_insert_default()
        .insert(key.into(), "yes".into());
}

/// `GetBindVolumeToClaim`: the volume with its `claimRef` pointing at the claim
/// (uid included) and `bound-by-controller` when the binder chose it; `None`
/// when it already says so.
pub(crate) fn volume_bound_to(
    pv: &PersistentVolume,
    pvc: &PersistentVolumeClaim,
) -> Option<PersistentVolume> {
    let by_controller = !is_bound_to_claim(pv, pvc);
    let mut next = pv.clone();
    let mut dirty = false;
    let current = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    let same = current.is_some_and(|r| {
        r.name == pvc.metadata.name
            && r.namespace == pvc.metadata.namespace
            && r.uid == pvc.metadata.uid
    });
    if !same {
        next.spec.get_or_insert_default().claim_ref = Some(claim_ref(pvc));
        dirty = true;
    }
    if by_controller && !has_annotation(&next.metadata, BOUND_BY_CONTROLLER) {
        set_annotation(&mut next.metadata, BOUND_BY_CONTROLLER);
        dirty = true;
    }
    dirty.then_some(next)
}

/// Save the volume's binding to the claim (`bindVolumeToClaim`).
async fn bind_volume_to_claim(
    ctx: &Context,
    pv: PersistentVolume,
    pvc: &PersistentVolumeClaim,
) -> Result<PersistentVolume> {
    let Some(next) = volume_bound_to(&pv, pvc) else {
        return Ok(pv);
    };
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let name = pv.metadata.name.clone().unwrap_or_default();
    Ok(api.replace(&name, &PostParams::default(), &next).await?)
}

/// Set the volume's phase (and message), when it differs.
pub(crate) async fn volume_phase(
    ctx: &Context,
    pv: PersistentVolume,
    phase: &str,
    message: Option<String>,
) -> Result<PersistentVolume> {
    if pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase) {
        return Ok(pv);
    }
    let mut next = pv.clone();
    let status = next.status.get_or_insert_default();
    status.phase = Some(phase.into());
    status.message = message;
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let name = pv.metadata.name.clone().unwrap_or_default();
    Ok(api
        .replace_status(&name, &PostParams::default(), &next)
        .await?)
}

/// `updateVolumePhaseWithEvent`: set the phase and, only when it changed, record
/// the event.
pub(crate) async fn volume_phase_with_event(
    ctx: &Context,
    pv: PersistentVolume,
    phase: &str,
    kind: Kind,
    reason: &str,
    message: String,
) -> Result<PersistentVolume> {
    if pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase) {
        return Ok(pv);
    }
    let stored = volume_phase(ctx, pv, phase, Some(message.clone())).await?;
    ctx.recorder
        .record(&about_volume(&stored), kind, reason, message)
        .await;
    Ok(stored)
}

/// Save the claim's side of the binding (`bindClaimToVolume`): `volumeName`,
/// `bound-by-controller` when the binder filled it in, and `bind-completed`.
async fn bind_claim_to_volume(
    ctx: &Context,
    pvc: PersistentVolumeClaim,
    pv: &PersistentVolume,
) -> Result<PersistentVolumeClaim> {
    let volume = pv.metadata.name.clone().unwrap_or_default();
    let mut next = pvc.clone();
    let mut dirty = false;
    if super::matching::claim_volume(&pvc) != volume {
        next.spec.get_or_insert_default().volume_name = Some(volume);
        if !has_annotation(&next.metadata, BOUND_BY_CONTROLLER) {
            set_annotation(&mut next.metadata, BOUND_BY_CONTROLLER);
        }
        dirty = true;
    }
    if !has_annotation(&next.metadata, BIND_COMPLETED) {
        set_annotation(&mut next.metadata, BIND_COMPLETED);
        dirty = true;
    }
    if !dirty {
        return Ok(pvc);
    }
    let api: Api<PersistentVolumeClaim> = Api::namespaced(
        ctx.client.clone(),
        pvc.meta().namespace.as_deref().unwrap_or_default(),
    );
    let name = pvc.metadata.name.clone().unwrap_or_default();
    Ok(api.replace(&name, &PostParams::default(), &next).await?)
}

/// `updateClaimStatus`: the phase, and the bound volume's access modes and
/// capacity (cleared when there is no volume).
pub(crate) async fn claim_status(
    ctx: &Context,
    pvc: PersistentVolumeClaim,
    phase: &str,
    pv: Option<&PersistentVolume>,
) -> Result<PersistentVolumeClaim> {
    let mut next = pvc.clone();
    let status = next.status.get_or_insert_default();
    status.phase = Some(phase.into());
    match pv.and_then(|v| v.spec.as_ref()) {
        Some(spec) => {
            status.access_modes.clone_from(&spec.access_modes);
            if let Some(size) = spec.capacity.as_ref().and_then(|c| c.get("storage")) {
                status.capacity = Some([("storage".to_string(), size.clone())].into());
            }
        }
        None => {
            status.access_modes = None;
            status.capacity = None;
        }
    }
    if next.status == pvc.status {
        return Ok(pvc);
    }
    let api: Api<PersistentVolumeClaim> = Api::namespaced(
        ctx.client.clone(),
        pvc.meta().namespace.as_deref().unwrap_or_default(),
    );
    let name = pvc.metadata.name.clone().unwrap_or_default();
    Ok(api
        .replace_status(&name, &PostParams::default(), &next)
        .await?)
}

/// `updateClaimStatusWithEvent`: as [`claim_status`], recording the event only
/// when the phase changes.
pub(crate) async fn claim_status_with_event(
    ctx: &Context,
    pvc: PersistentVolumeClaim,
    phase: &str,
    kind: Kind,
    reason: &str,
    message: &str,
) -> Result<PersistentVolumeClaim> {
    if super::matching::claim_phase(&pvc) == phase {
        return Ok(pvc);
    }
    let stored = claim_status(ctx, pvc, phase, None).await?;
    if let Some(about) = Involved::of(&stored) {
        ctx.recorder
            .record(&about, kind, reason, message.to_string())
            .await;
    }
    Ok(stored)
}

/// `bind`: both sides of the binding and both phases, the volume first.
pub(crate) async fn bind(
    ctx: &Context,
    pv: PersistentVolume,
    pvc: PersistentVolumeClaim,
) -> Result<()> {
    let key = format!(
        "{}/{}",
        pvc.metadata.namespace.as_deref().unwrap_or_default(),
        pvc.metadata.name.as_deref().unwrap_or_default()
    );
    let pv = bind_volume_to_claim(ctx, pv, &pvc).await?;
    let pv = volume_phase(ctx, pv, "Bound", None).await?;
    let pvc = bind_claim_to_volume(ctx, pvc, &pv).await?;
    claim_status(ctx, pvc, "Bound", Some(&pv)).await?;
    tracing::debug!(claim = %key, volume = pv.metadata.name.as_deref().unwrap_or_default(), "claim bound to volume");
    Ok(())
}

/// `unbindVolume`: undo a binding the claim did not complete. A volume the
/// binder chose loses its `claimRef`; one an admin pre-bound keeps it without
/// the uid. Either way it is Available again.
pub(crate) async fn unbind_volume(ctx: &Context, pv: PersistentVolume) -> Result<()> {
    let mut next = pv.clone();
    if has_annotation(&pv.metadata, BOUND_BY_CONTROLLER) {
        next.spec.get_or_insert_default().claim_ref = None;
        if let Some(a) = next.metadata.annotations.as_mut() {
            a.remove(BOUND_BY_CONTROLLER);
        }
    } else if let Some(r) = next.spec.as_mut().and_then(|s| s.claim_ref.as_mut()) {
        r.uid = None;
    }
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let name = pv.metadata.name.clone().unwrap_or_default();
    let stored = api.replace(&name, &PostParams::default(), &next).await?;
    volume_phase(ctx, stored, "Available", None).await?;
    Ok(())
}
