//! The PV controller's claim side (`syncClaim`): a Pending claim is bound to the
//! best Available volume (or the one it names), given the default class when it
//! has none (retroactively, once a default appears), or handed to its class's
//! provisioner — for a class that waits for the first consumer, only after the
//! scheduler picked a node. A bound claim whose volume vanished or went to
//! another claim is Lost. Events are worded as kube-controller-manager's.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use super::binding::{self, Context, Result};
use super::matching::{
    self, BETA_STORAGE_PROVISIONER, BIND_COMPLETED, BOUND_BY_CONTROLLER, SELECTED_NODE,
    STORAGE_PROVISIONER, claim_class, claim_has_class, claim_volume, has_annotation,
};
use crate::controllers::pods;
use crate::events::{Involved, Kind, Recorder};

/// How often a claim still waiting is looked at again (the PV controller's resync
/// period): a volume may have appeared, and the waiting event is repeated.
const RESYNC: Duration = Duration::from_secs(15);

/// Run the claim side of the PV controller until the cluster stops.
pub(crate) async fn run(client: kube::Client) {
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "persistentvolume-controller", None),
        client: client.clone(),
    });
    let controller = Controller::new(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    );
    let (by_volume, by_class) = (controller.store(), controller.store());
    controller
        .watches(
            Api::<PersistentVolume>::all(client.clone()),
            watcher::Config::default(),
            move |pv| claims_for_volume(&by_volume, &pv),
        )
        .watches(
            Api::<StorageClass>::all(client),
            watcher::Config::default(),
            move |_| pending(&by_class),
        )
        .run(sync, binding::retry, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "claim sync");
            }
        })
        .await;
}

/// The claim a volume points at; for a volume free to take, every claim still
/// waiting for one (Kubernetes finds those at its next 15 s resync; looking at
/// once binds sooner).
fn claims_for_volume(
    store: &Store<PersistentVolumeClaim>,
    pv: &PersistentVolume,
) -> Vec<ObjectRef<PersistentVolumeClaim>> {
    match pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
        Some(r) => match (r.namespace.as_deref(), r.name.as_deref()) {
            (Some(ns), Some(name)) => vec![ObjectRef::new(name).within(ns)],
            _ => Vec::new(),
        },
        None if matching::volume_phase(pv) == "Available" => pending(store),
        None => Vec::new(),
    }
}

/// Claims whose binding has not completed.
fn pending(store: &Store<PersistentVolumeClaim>) -> Vec<ObjectRef<PersistentVolumeClaim>> {
    store
        .state()
        .iter()
        .filter(|c| !has_annotation(&c.metadata, BIND_COMPLETED))
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

async fn sync(pvc: Arc<PersistentVolumeClaim>, ctx: Arc<Context>) -> Result<Action> {
    let claim = (*pvc).clone();
    if has_annotation(&claim.metadata, BIND_COMPLETED) {
        sync_bound(&ctx, claim).await?;
        Ok(Action::await_change())
    } else {
        sync_unbound(&ctx, claim).await
    }
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

/// `syncUnboundClaim`.
async fn sync_unbound(ctx: &Context, claim: PersistentVolumeClaim) -> Result<Action> {
    let volumes = Api::<PersistentVolume>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let class_name = claim_class(&claim).to_string();
    let classes: Api<StorageClass> = Api::all(ctx.client.clone());
    let class = match class_name.as_str() {
        "" => None,
        name => classes.get_opt(name).await?,
    };
    let wanted = claim_volume(&claim).to_string();
    if wanted.is_empty() {
        let delay = matching::waits_for_first_consumer(class.as_ref());
        if let Some(pv) = matching::find_best_match(&claim, &volumes, delay) {
            binding::bind(ctx, pv.clone(), claim).await?;
            return Ok(Action::await_change());
        }
        if !claim_has_class(&claim) && assign_default_class(ctx, &claim).await? {
            return Ok(Action::await_change());
        }
        if delay && !has_annotation(&claim.metadata, SELECTED_NODE) {
            wait_for_consumer(ctx, &claim).await?;
        } else if !class_name.is_empty() {
            provision(ctx, claim, &class_name, class.as_ref()).await?;
            return Ok(Action::requeue(RESYNC));
        } else {
            record(
                ctx,
                &claim,
                Kind::Normal,
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set".into(),
            )
            .await;
        }
        binding::claim_status(ctx, claim, "Pending", None).await?;
        return Ok(Action::requeue(RESYNC));
    }
    // The user asked for a specific volume.
    let Some(pv) = volumes
        .into_iter()
        .find(|v| v.metadata.name.as_deref() == Some(wanted.as_str()))
    else {
        binding::claim_status(ctx, claim, "Pending", None).await?;
        return Ok(Action::requeue(RESYNC));
    };
    let claimed = pv.spec.as_ref().is_some_and(|s| s.claim_ref.is_some());
    if !claimed {
        if let Err(why) = matching::check_satisfies(&pv, &claim) {
            let message = format!("Cannot bind to requested volume \"{wanted}\": {why}");
            record(ctx, &claim, Kind::Warning, "VolumeMismatch", message).await;
            binding::claim_status(ctx, claim, "Pending", None).await?;
            return Ok(Action::requeue(RESYNC));
        }
        binding::bind(ctx, pv, claim).await?;
        return Ok(Action::await_change());
    }
    if matching::is_bound_to_claim(&pv, &claim) {
        binding::bind(ctx, pv, claim).await?;
        return Ok(Action::await_change());
    }
    let message = format!("volume \"{wanted}\" already bound to a different claim.");
    record(ctx, &claim, Kind::Warning, "FailedBinding", message).await;
    if has_annotation(&claim.metadata, BOUND_BY_CONTROLLER) {
        // Someone removed bind-completed from a claim the binder had bound.
        return Err(binding::Error::Volume(format!(
            "invalid binding of claim to volume \"{wanted}\": volume already claimed by another claim"
        )));
    }
    binding::claim_status(ctx, claim, "Pending", None).await?;
    Ok(Action::requeue(RESYNC))
}

/// `syncBoundClaim`: a claim whose binding completed keeps it, or is Lost.
async fn sync_bound(ctx: &Context, claim: PersistentVolumeClaim) -> Result<()> {
    let name = claim_volume(&claim).to_string();
    if name.is_empty() {
        binding::claim_status_with_event(
            ctx,
            claim,
            "Lost",
            Kind::Warning,
            "ClaimLost",
            "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
        )
        .await?;
        return Ok(());
    }
    let Some(pv) = Api::<PersistentVolume>::all(ctx.client.clone())
        .get_opt(&name)
        .await?
    else {
        binding::claim_status_with_event(
            ctx,
            claim,
            "Lost",
            Kind::Warning,
            "ClaimLost",
            "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
        )
        .await?;
        return Ok(());
    };
    let bound_uid = pv
        .spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref())
        .map(|r| r.uid.clone());
    match bound_uid {
        // Unbound, or bound to this claim: (re)write both sides.
        None => binding::bind(ctx, pv, claim).await,
        Some(uid) if uid == claim.metadata.uid => binding::bind(ctx, pv, claim).await,
        Some(_) => {
            binding::claim_status_with_event(
                ctx,
                claim,
                "Lost",
                Kind::Warning,
                "ClaimMisbound",
                "Two claims are bound to the same volume, this one is bound incorrectly",
            )
            .await?;
            Ok(())
        }
    }
}

/// `assignDefaultStorageClass`: a claim created before any default class existed
/// gets it once one does. True when the claim was updated.
async fn assign_default_class(ctx: &Context, claim: &PersistentVolumeClaim) -> Result<bool> {
    let classes = Api::<StorageClass>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let Some(default) = matching::default_class(&classes) else {
        return Ok(false);
    };
    let mut next = claim.clone();
    next.spec.get_or_insert_default().storage_class_name = default.metadata.name.clone();
    let ns = claim.metadata.namespace.as_deref().unwrap_or_default();
    let name = claim.metadata.name.as_deref().unwrap_or_default();
    Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), ns)
        .replace(name, &PostParams::default(), &next)
        .await?;
    tracing::info!(claim = %format!("{ns}/{name}"), class = ?default.metadata.name, "assigned the default storage class");
    Ok(true)
}

/// `emitEventForUnboundDelayBindingClaim`: say whom the claim waits for.
async fn wait_for_consumer(ctx: &Context, claim: &PersistentVolumeClaim) -> Result<()> {
    let ns = claim.metadata.namespace.as_deref().unwrap_or_default();
    let name = claim.metadata.name.as_deref().unwrap_or_default();
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), ns)
        .list(&ListParams::default())
        .await?
        .items;
    let waiting: Vec<String> = pods
        .iter()
        .filter(|p| !pods::is_terminal(p))
        .filter(|p| {
            p.spec
                .as_ref()
                .is_some_and(|s| s.node_name.as_deref().unwrap_or_default().is_empty())
        })
        .filter(|p| uses_claim(p, name))
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let (reason, message) = match waiting.as_slice() {
        [] => (
            "WaitForFirstConsumer",
            "waiting for first consumer to be created before binding".to_string(),
        ),
        [one] => (
            "WaitForPodScheduled",
            format!("waiting for pod {one} to be scheduled"),
        ),
        many => (
            "WaitForPodScheduled",
            format!("waiting for pods {} to be scheduled", many.join(",")),
        ),
    };
    record(ctx, claim, Kind::Normal, reason, message).await;
    Ok(())
}

/// Whether the pod mounts the claim `name` (of its own namespace).
pub(crate) fn uses_claim(pod: &Pod, name: &str) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .any(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name == name)
        })
}

/// `provisionClaim` for a class whose provisioner is external (every provisioner
/// here is, minke's local-path one included): name the provisioner on the claim
/// and say so; the provisioner takes it from there.
async fn provision(
    ctx: &Context,
    claim: PersistentVolumeClaim,
    class_name: &str,
    class: Option<&StorageClass>,
) -> Result<()> {
    let Some(class) = class else {
        let message = format!("storageclass.storage.k8s.io \"{class_name}\" not found");
        record(ctx, &claim, Kind::Warning, "ProvisioningFailed", message).await;
        return Ok(());
    };
    let provisioner = class.provisioner.clone();
    if provisioner.starts_with("kubernetes.io/") {
        // In-tree provisioners are not part of minke.
        let message = format!("no volume plugin matched name: {provisioner}");
        record(ctx, &claim, Kind::Warning, "ProvisioningFailed", message).await;
        return Ok(());
    }
    let current = claim
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(STORAGE_PROVISIONER));
    let claim = if current == Some(&provisioner) {
        claim
    } else {
        let mut next = claim.clone();
        let annotations = next.metadata.annotations.get_or_insert_default();
        annotations.insert(BETA_STORAGE_PROVISIONER.into(), provisioner.clone());
        annotations.insert(STORAGE_PROVISIONER.into(), provisioner.clone());
        let ns = claim.metadata.namespace.as_deref().unwrap_or_default();
        let name = claim.metadata.name.as_deref().unwrap_or_default();
        match Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), ns)
            .replace(name, &PostParams::default(), &next)
            .await
        {
            Ok(stored) => stored,
            // A conflict is a newer claim to look at, not a failure to report.
            Err(kube::Error::Api(s)) if s.code == 409 => return Err(kube::Error::Api(s).into()),
            Err(e) => {
                let message = format!("Error saving claim: {e}");
                record(ctx, &claim, Kind::Warning, "ProvisioningFailed", message).await;
                return Err(e.into());
            }
        }
    };
    let message = format!(
        "Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
    );
    record(ctx, &claim, Kind::Normal, "ExternalProvisioning", message).await;
    Ok(())
}
