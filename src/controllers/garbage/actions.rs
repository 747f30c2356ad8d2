//! What the collector's workers do against the API: look owners up, delete objects
//! whose owners are gone, drop ownerReferences and remove the collector's finalizers
//! (`attemptToDeleteItem`, `attemptToOrphan` and `removeFinalizer` of Kubernetes'
//! garbage collector).
//!
//! Every write is guarded: deletions carry a uid precondition, metadata patches the
//! resourceVersion they were computed from, so an object replaced or changed in the
//! meantime is never touched by mistake.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions,
    PropagationPolicy,
};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use super::graph::{Candidate, Identity, Kind, Plan};
use crate::api::finalizers::{FOREGROUND, ORPHAN};
use crate::api::registry::Registry;
use crate::events::{Involved, Kind as EventKind, Recorder};

/// How often a metadata update is retried after losing a race with another writer.
const CONFLICT_RETRIES: usize = 5;

/// Why a piece of work failed (it is retried after a back-off).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("garbage collection: {0}")]
    Api(#[from] kube::Error),
    /// An ownerReference names a kind no served resource has.
    #[error("garbage collection: no served resource has apiVersion {api_version} and kind {kind}")]
    UnknownKind {
        /// The reference's apiVersion.
        api_version: String,
        /// The reference's kind.
        kind: String,
    },
    /// Every attempt to update an object lost a race with another writer.
    #[error("garbage collection: {object} kept changing while being updated")]
    Conflicts {
        /// The object.
        object: String,
    },
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a piece of work ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Finished.
    Done,
    /// Look again after a back-off: an owner was found by a GET that the graph has not
    /// observed yet, and it might vanish unobserved.
    Recheck,
}

/// What an ownerReference resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// No object of that kind, name and uid where the reference points.
    Absent,
    /// There, possibly waiting for its dependents in foreground deletion.
    Present { deleting_dependents: bool },
    /// A cluster-scoped object cannot have a namespaced owner.
    Invalid,
}

fn has_finalizer(meta: &ObjectMeta, f: &str) -> bool {
    meta.finalizers
        .as_ref()
        .is_some_and(|l| l.iter().any(|x| x == f))
}

/// The API client side of the collector.
pub(crate) struct Actions {
    client: kube::Client,
    registry: Arc<Registry>,
    recorder: Recorder,
}

impl Actions {
    /// Actions through `client`, resolving owner kinds in `registry`.
    pub fn new(client: kube::Client, registry: Arc<Registry>) -> Actions {
        let recorder = Recorder::new(client.clone(), "garbage-collector-controller", None);
        Actions {
            client,
            registry,
            recorder,
        }
    }

    /// Carry out a plan.
    pub async fn run(&self, plan: Plan) -> Result<Outcome> {
        match plan {
            Plan::Nothing | Plan::Enqueue(_) => Ok(Outcome::Done),
            Plan::Collect(c) => self.collect(c).await,
            Plan::Finish(owner) => {
                // The graph is fed by one watch per type, and one may lag another: a
                // dependent created just before its owner's deletion may not be in
                // the graph yet. Removing the finalizer cannot be undone, so the
                // store is asked first.
                if self.has_blocking_dependents(&owner).await? {
                    tracing::debug!(object = %owner, "a blocking dependent is not observed yet; waiting");
                    return Ok(Outcome::Recheck);
                }
                tracing::debug!(object = %owner, "dependents deleted; removing the foregroundDeletion finalizer");
                self.remove_finalizer(&owner, FOREGROUND).await?;
                Ok(Outcome::Done)
            }
            Plan::Orphan { owner, dependents } => {
                for d in &dependents {
                    tracing::debug!(object = %d, owner = %owner, "orphaning dependent");
                    self.drop_references(d, |r| r.uid == owner.uid).await?;
                }
                self.remove_finalizer(&owner, ORPHAN).await?;
                Ok(Outcome::Done)
            }
        }
    }

    fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, &kind.plural);
        match namespace {
            Some(ns) if kind.namespaced => Api::namespaced_with(self.client.clone(), ns, &ar),
            _ => Api::all_with(self.client.clone(), &ar),
        }
    }

    /// The object's metadata now, unless it is gone or replaced by another uid.
    async fn current(&self, id: &Identity) -> Result<Option<ObjectMeta>> {
        let found = self
            .api(&id.kind, id.namespace.as_deref())
            .get_metadata_opt(&id.name)
            .await?;
        Ok(found
            .map(|p| p.metadata)
            .filter(|m| m.uid.as_deref() == Some(id.uid.as_str())))
    }

    /// The served type an ownerReference names: its exact version if served, else
    /// any version of the same group and kind.
    fn resolve(&self, r: &OwnerReference) -> Result<Kind> {
        let (group, version) = r
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", &r.api_version));
        self.registry
            .by_kind(group, version, &r.kind)
            .or_else(|| {
                self.registry
                    .all()
                    .iter()
                    .find(|t| t.group == group && t.kind == r.kind)
                    .cloned()
            })
            .map(|t| Kind::of(&t))
            .ok_or_else(|| Error::UnknownKind {
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
            })
    }

    /// Look an owner up where the reference from `item` points (`isDangling`).
    async fn look_up(&self, item: &Identity, r: &OwnerReference) -> Result<Owner> {
        let kind = self.resolve(r)?;
        if kind.namespaced && item.namespace.is_none() {
            return Ok(Owner::Invalid);
        }
        let found = self
            .api(&kind, item.namespace.as_deref())
            .get_metadata_opt(&r.name)
            .await?;
        Ok(match found {
            Some(o) if o.metadata.uid.as_deref() == Some(r.uid.as_str()) => Owner::Present {
                deleting_dependents: o.metadata.deletion_timestamp.is_some()
                    && has_finalizer(&o.metadata, FOREGROUND),
            },
            _ => Owner::Absent,
        })
    }

    /// Decide a dependent's fate from its owners: keep it (dropping references to
    /// owners gone or deleting), delete it in the foreground for an owner waiting on
    /// it, or delete it as its own finalizers ask.
    async fn collect(&self, c: Candidate) -> Result<Outcome> {
        let Some(latest) = self.current(&c.item).await? else {
            return Ok(Outcome::Done);
        };
        // Deletion is a one-way trip; a foreground one is seen by the graph.
        if latest.deletion_timestamp.is_some() {
            return Ok(Outcome::Done);
        }
        let refs = latest.owner_references.clone().unwrap_or_default();
        if refs.is_empty() {
            return Ok(Outcome::Done);
        }
        for r in &c.misplaced {
            self.report_invalid_owner(&c.item, r).await;
        }
        let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        let mut unobserved = false;
        for r in &refs {
            let owner = match c.known.get(&r.uid) {
                Some(k) => Owner::Present {
                    deleting_dependents: k.deleting_dependents,
                },
                None => {
                    let found = self.look_up(&c.item, r).await?;
                    unobserved |= matches!(found, Owner::Present { .. });
                    found
                }
            };
            match owner {
                Owner::Absent => dangling.push(r.uid.clone()),
                Owner::Present {
                    deleting_dependents: true,
                } => waiting.push(r.uid.clone()),
                Owner::Present { .. } => solid.push(r.uid.clone()),
                Owner::Invalid => {
                    tracing::debug!(object = %c.item, owner = %r.name, "a cluster-scoped object cannot have a namespaced owner");
                    if !c.misplaced.iter().any(|m| m.uid == r.uid) {
                        self.report_invalid_owner(&c.item, r).await;
                    }
                    return Ok(Outcome::Done);
                }
            }
        }
        if !solid.is_empty() {
            if !dangling.is_empty() || !waiting.is_empty() {
                tracing::debug!(object = %c.item, "removing references to owners that are gone or being deleted");
                self.drop_references(&c.item, |r| {
                    dangling.contains(&r.uid) || waiting.contains(&r.uid)
                })
                .await?;
            }
            return Ok(if unobserved {
                Outcome::Recheck
            } else {
                Outcome::Done
            });
        }
        let policy = if !waiting.is_empty() && c.has_dependents {
            if c.dependent_deleting_dependents {
                // A dependent of ours waits for us while our owner waits for us:
                // stop blocking the owner, so the cycle can unwind.
                self.unblock_owners(&c.item).await?;
            }
            PropagationPolicy::Foreground
        } else if has_finalizer(&latest, ORPHAN) {
            PropagationPolicy::Orphan
        } else if has_finalizer(&latest, FOREGROUND) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        tracing::debug!(object = %c.item, ?policy, "deleting object whose owners are gone");
        self.delete(&c.item, policy).await?;
        Ok(Outcome::Done)
    }

    /// Delete `id` if it is still the object with that uid.
    async fn delete(&self, id: &Identity, policy: PropagationPolicy) -> Result<()> {
        let params = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(id.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self
            .api(&id.kind, id.namespace.as_deref())
            .delete(&id.name, &params)
            .await
        {
            Ok(_) => Ok(()),
            // Gone already, or replaced by an object with another uid.
            Err(kube::Error::Api(s)) if s.is_not_found() || s.is_conflict() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove the ownerReferences `drop` picks from `id`.
    async fn drop_references(
        &self,
        id: &Identity,
        drop: impl Fn(&OwnerReference) -> bool,
    ) -> Result<()> {
        self.update_meta(id, |meta| {
            let refs = meta.owner_references.clone().unwrap_or_default();
            let kept: Vec<&OwnerReference> = refs.iter().filter(|r| !drop(r)).collect();
            if kept.len() == refs.len() {
                return None;
            }
            Some(json!({
                "ownerReferences": if kept.is_empty() { Value::Null } else { json!(kept) }
            }))
        })
        .await
    }

    /// Whether any stored object still names `owner` with `blockOwnerDeletion`
    /// (a namespaced owner's dependents live in its namespace).
    async fn has_blocking_dependents(&self, owner: &Identity) -> Result<bool> {
        let namespace = owner.namespace.as_deref();
        let kinds = super::watchable(&self.registry)
            .into_iter()
            .filter(|k| namespace.is_none() || k.namespaced);
        for kind in kinds {
            let list = self
                .api(&kind, namespace)
                .list_metadata(&ListParams::default())
                .await?;
            let blocking = list.items.iter().any(|o| {
                o.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.uid == owner.uid && r.block_owner_deletion == Some(true))
            });
            if blocking {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Turn `blockOwnerDeletion` off on every ownerReference of `id`.
    async fn unblock_owners(&self, id: &Identity) -> Result<()> {
        self.update_meta(id, |meta| {
            let mut refs = meta.owner_references.clone().unwrap_or_default();
            if !refs.iter().any(|r| r.block_owner_deletion == Some(true)) {
                return None;
            }
            for r in &mut refs {
                r.block_owner_deletion = Some(false);
            }
            Some(json!({ "ownerReferences": refs }))
        })
        .await
    }

    /// Remove one finalizer from `id`; the API server removes an object being
    /// deleted once its last finalizer is gone.
    async fn remove_finalizer(&self, id: &Identity, finalizer: &str) -> Result<()> {
        self.update_meta(id, |meta| {
            let all = meta.finalizers.clone().unwrap_or_default();
            let kept: Vec<&String> = all.iter().filter(|f| *f != finalizer).collect();
            if kept.len() == all.len() {
                return None;
            }
            Some(json!({
                "finalizers": if kept.is_empty() { Value::Null } else { json!(kept) }
            }))
        })
        .await
    }

    /// Read `id`, let `change` compute a metadata merge patch from what is there (or
    /// `None`: nothing to do), and write it with the read resourceVersion as a
    /// precondition; retried when another writer came first. Objects gone or
    /// replaced are left alone.
    async fn update_meta(
        &self,
        id: &Identity,
        change: impl Fn(&ObjectMeta) -> Option<Value>,
    ) -> Result<()> {
        let api = self.api(&id.kind, id.namespace.as_deref());
        for _ in 0..CONFLICT_RETRIES {
            let Some(meta) = self.current(id).await? else {
                return Ok(());
            };
            let Some(mut patch) = change(&meta) else {
                return Ok(());
            };
            patch["resourceVersion"] = json!(meta.resource_version);
            let body = json!({ "metadata": patch });
            match api
                .patch_metadata(&id.name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(s)) if s.is_conflict() => continue,
                Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflicts {
            object: id.to_string(),
        })
    }

    /// The warning Kubernetes records about an ownerReference that cannot resolve
    /// from where the dependent is.
    async fn report_invalid_owner(&self, item: &Identity, r: &OwnerReference) {
        let ns = item.namespace.as_deref().unwrap_or("");
        let about = Involved::object(
            &item.kind.api_version(),
            &item.kind.kind,
            item.namespace.as_deref(),
            &item.name,
            &item.uid,
        );
        let message = format!(
            "ownerRef [{}/{}, namespace: {ns}, name: {}, uid: {}] does not exist in namespace {ns:?}",
            r.api_version, r.kind, r.name, r.uid
        );
        self.recorder
            .record(
                &about,
                EventKind::Warning,
                "OwnerRefInvalidNamespace",
                message,
            )
            .await;
    }
}
