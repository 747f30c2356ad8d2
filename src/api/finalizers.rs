//! The garbage collector's finalizers and how a delete's propagation policy sets them.
//!
//! A DELETE that asks for `propagationPolicy: Foreground` leaves the object in place
//! with the `foregroundDeletion` finalizer until the garbage collector has deleted
//! its blocking dependents; `Orphan` (or the deprecated `orphanDependents: true`)
//! leaves it with `orphan` until the collector has released them; `Background`
//! removes it at once and lets the collector find the dependents afterwards. This is
//! `deletionFinalizersForGarbageCollection` of Kubernetes' registry store.

use std::collections::BTreeSet;

use super::registry::ResourceType;

/// The finalizer that holds an owner until its blocking dependents are deleted.
pub const FOREGROUND: &str = "foregroundDeletion";

/// The finalizer that holds an owner until its dependents no longer point at it.
pub const ORPHAN: &str = "orphan";

/// `DeleteOptions.propagationPolicy`: what happens to an object's dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents lose their ownerReference to the object and stay.
    Orphan,
    /// The object goes now; the garbage collector deletes its dependents afterwards.
    Background,
    /// The object stays (with `foregroundDeletion`) until its blocking dependents are gone.
    Foreground,
}

impl Propagation {
    /// The policy named in a DeleteOptions, if it is one.
    pub fn parse(s: &str) -> Option<Propagation> {
        match s {
            "Orphan" => Some(Propagation::Orphan),
            "Background" => Some(Propagation::Background),
            "Foreground" => Some(Propagation::Foreground),
            _ => None,
        }
    }
}

/// What a kind does with its dependents when a delete does not say (the registry
/// strategy's `DefaultGarbageCollectionPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcDefault {
    /// Outside garbage collection: no finalizer is ever added (Events).
    Unsupported,
    /// Kinds kept compatible with clients older than server-side cascading.
    Orphan,
    /// Everything else: background cascading.
    DeleteDependents,
}

/// The default policy of a type: `v1` ReplicationControllers and `batch/v1` Jobs
/// orphan (as they did before server-side cascading, so a bare DELETE still leaves
/// their pods; kubectl always sends a policy), as do the old `extensions/v1beta1` and
/// `apps/v1beta*` workloads; Events are outside garbage collection; every other kind,
/// custom resources included, cascades in the background.
pub fn default_policy(rt: &ResourceType) -> GcDefault {
    match (rt.group.as_str(), rt.version.as_str(), rt.resource.as_str()) {
        ("" | "events.k8s.io", _, "events") => GcDefault::Unsupported,
        ("", "v1", "replicationcontrollers") | ("batch", "v1", "jobs") => GcDefault::Orphan,
        ("extensions", _, "replicasets" | "deployments" | "daemonsets")
        | ("apps", "v1beta1" | "v1beta2", _) => GcDefault::Orphan,
        _ => GcDefault::DeleteDependents,
    }
}

/// The finalizers an object is left with when a delete applies its propagation
/// policy; `None` when the set does not change. An explicit `orphanDependents` or
/// `propagationPolicy` wins, then a garbage-collection finalizer already on the
/// object, then the kind's default.
pub fn deletion_finalizers(
    default: GcDefault,
    finalizers: &[String],
    orphan_dependents: Option<bool>,
    propagation: Option<Propagation>,
) -> Option<Vec<String>> {
    if default == GcDefault::Unsupported {
        return None;
    }
    let first_gc = finalizers
        .iter()
        .find(|f| *f == ORPHAN || *f == FOREGROUND)
        .map(String::as_str);
    let orphan = match (orphan_dependents, propagation) {
        (Some(o), _) => o,
        (None, Some(p)) => p == Propagation::Orphan,
        (None, None) => match first_gc {
            Some(f) => f == ORPHAN,
            None => default == GcDefault::Orphan,
        },
    };
    let foreground = match (orphan_dependents, propagation) {
        (Some(_), _) => false,
        (None, Some(p)) => p == Propagation::Foreground,
        (None, None) => first_gc == Some(FOREGROUND),
    };
    let mut next: Vec<String> = finalizers
        .iter()
        .filter(|f| *f != ORPHAN && *f != FOREGROUND)
        .cloned()
        .collect();
    if orphan {
        next.push(ORPHAN.into());
    }
    if foreground {
        next.push(FOREGROUND.into());
    }
    let as_set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    (as_set(&next) != as_set(finalizers)).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry::Registry;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn foreground_and_orphan_policies_add_their_finalizer_next_to_others() {
        let d = GcDefault::DeleteDependents;
        let mine = strings(&["example.com/keep"]);
        assert_eq!(
            deletion_finalizers(d, &mine, None, Some(Propagation::Foreground)),
            Some(strings(&["example.com/keep", FOREGROUND]))
        );
        assert_eq!(
            deletion_finalizers(d, &mine, None, Some(Propagation::Orphan)),
            Some(strings(&["example.com/keep", ORPHAN]))
        );
        assert_eq!(
            deletion_finalizers(d, &[], Some(true), None),
            Some(strings(&[ORPHAN]))
        );
        assert_eq!(
            deletion_finalizers(d, &mine, None, Some(Propagation::Background)),
            None
        );
        assert_eq!(deletion_finalizers(d, &[], None, None), None);
    }

    #[test]
    fn an_explicit_policy_replaces_a_garbage_collection_finalizer_already_set() {
        let d = GcDefault::DeleteDependents;
        let fg = strings(&[FOREGROUND]);
        assert_eq!(
            deletion_finalizers(d, &fg, None, Some(Propagation::Background)),
            Some(Vec::new())
        );
        assert_eq!(
            deletion_finalizers(d, &fg, None, Some(Propagation::Orphan)),
            Some(strings(&[ORPHAN]))
        );
        assert_eq!(deletion_finalizers(d, &fg, None, None), None, "kept");
        assert_eq!(
            deletion_finalizers(d, &strings(&[ORPHAN]), Some(false), None),
            Some(Vec::new())
        );
    }

    #[test]
    fn legacy_kinds_orphan_by_default_and_events_take_no_finalizer() {
        let r = Registry::builtin();
        let ty = |g: &str, v: &str, res: &str| default_policy(&r.lookup(g, v, res).expect("type"));
        assert_eq!(ty("", "v1", "replicationcontrollers"), GcDefault::Orphan);
        assert_eq!(ty("batch", "v1", "jobs"), GcDefault::Orphan);
        assert_eq!(ty("apps", "v1", "replicasets"), GcDefault::DeleteDependents);
        assert_eq!(ty("batch", "v1", "cronjobs"), GcDefault::DeleteDependents);
        assert_eq!(ty("", "v1", "configmaps"), GcDefault::DeleteDependents);
        assert_eq!(ty("", "v1", "events"), GcDefault::Unsupported);
        assert_eq!(ty("events.k8s.io", "v1", "events"), GcDefault::Unsupported);
        assert_eq!(
            deletion_finalizers(GcDefault::Orphan, &[], None, None),
            Some(strings(&[ORPHAN]))
        );
        assert_eq!(
            deletion_finalizers(
                GcDefault::Unsupported,
                &[],
                None,
                Some(Propagation::Foreground)
            ),
            None
        );
    }
}
