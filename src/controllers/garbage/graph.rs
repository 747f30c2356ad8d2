//! The dependency graph: every observed object with its ownerReferences, an index
//! from owner uid to dependents, and the work each change calls for (the
//! GraphBuilder of Kubernetes' garbage collector).
//!
//! The graph is plain data owned by the collector's loop: watch events go in
//! ([`Graph::observe`], [`Graph::forget`]) and come out as [`Work`]; a dequeued
//! [`Work`] becomes a [`Plan`] ([`Graph::plan`]) that a worker carries out against
//! the API. Owners are keyed by uid only, as ownerReferences are; an owner nobody has
//! observed (yet) is "virtual" and its dependents check it with a GET.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::api::finalizers::{FOREGROUND, ORPHAN};
use crate::api::registry::ResourceType;

/// An object's uid.
pub(crate) type Uid = String;

/// One watched resource type: how to reach its objects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Kind {
    /// API group, `""` for core.
    pub group: String,
    /// The version the collector reads it in.
    pub version: String,
    /// Kind, e.g. `ConfigMap`.
    pub kind: String,
    /// Plural resource, e.g. `configmaps`.
    pub plural: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// The storage the type's versions share (one watch per storage).
    pub storage: String,
}

impl Kind {
    /// The kind of a served resource type.
    pub fn of(rt: &ResourceType) -> Kind {
        Kind {
            group: rt.group.clone(),
            version: rt.version.clone(),
            kind: rt.kind.clone(),
            plural: rt.resource.clone(),
            namespaced: rt.namespaced,
            storage: rt.storage.clone(),
        }
    }

    /// `apps/v1`, or `v1` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Where one object is: enough to GET, PATCH or DELETE it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// Its type.
    pub kind: Arc<Kind>,
    /// Its namespace (`None` when cluster-scoped).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: Uid,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{ns}/{}", self.kind.plural, self.name),
            None => write!(f, "{}/{}", self.kind.plural, self.name),
        }
    }
}

/// One observed object.
#[derive(Debug, Clone)]
struct Node {
    id: Identity,
    owners: Vec<OwnerReference>,
    /// `deletionTimestamp` is set: deletion is a one-way trip.
    being_deleted: bool,
    /// Being deleted with `foregroundDeletion`: waits for its blocking dependents.
    deleting_dependents: bool,
    /// Being deleted with `orphan`: waits for its dependents to be released.
    orphaning: bool,
}

/// Something to look at again, deduplicated by the queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Work {
    /// `attemptToDelete`: collect the object if its owners are gone, or finish a
    /// foreground deletion whose blocking dependents are gone.
    Delete(Uid),
    /// `attemptToOrphan`: release the dependents of an owner deleted with `orphan`.
    Orphan(Uid),
}

/// What the collector knows of an owner it has observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Known {
    /// The owner waits in foreground deletion for its dependents.
    pub deleting_dependents: bool,
}

/// A dependent whose owners are to be checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate {
    /// The dependent.
    pub item: Identity,
    /// Owners observed where its references say they are, by uid; the rest are
    /// looked up with a GET.
    pub known: HashMap<Uid, Known>,
    /// Owners observed in another namespace than the dependent's: a reference that
    /// can never resolve (reported as `OwnerRefInvalidNamespace`).
    pub misplaced: Vec<OwnerReference>,
    /// Whether anything depends on the dependent (then it is deleted in the
    /// foreground when an owner waits for it).
    pub has_dependents: bool,
    /// Whether one of its own dependents is in foreground deletion (a cycle: it
    /// first stops blocking its owners).
    pub dependent_deleting_dependents: bool,
}

/// What a dequeued [`Work`] asks of a worker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// Nothing to do.
    Nothing,
    /// Queue these instead (no API call needed).
    Enqueue(Vec<Work>),
    /// Check a dependent's owners; delete it or drop its dangling references.
    Collect(Candidate),
    /// A foreground deletion has no blocking dependents left: remove its finalizer.
    Finish(Identity),
    /// Release these dependents of an owner deleted with `orphan`, then remove the
    /// finalizer.
    Orphan {
        /// The owner.
        owner: Identity,
        /// Its dependents.
        dependents: Vec<Identity>,
    },
}

/// Whether `r` names the owner observed as `owner` from a dependent in `namespace`:
/// same uid, name, group and kind, and (for a namespaced owner) the same namespace.
fn resolves_to(r: &OwnerReference, owner: &Identity, namespace: Option<&str>) -> bool {
    let group = r.api_version.rsplit_once('/').map_or("", |(g, _)| g);
    r.uid == owner.uid
        && r.name == owner.name
        && r.kind == owner.kind.kind
        && group == owner.kind.group
        && (owner.namespace.is_none() || owner.namespace.as_deref() == namespace)
}

fn blocks(r: &OwnerReference) -> bool {
    r.block_owner_deletion == Some(true)
}

/// The dependency graph.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    nodes: HashMap<Uid, Node>,
    /// Owner uid → uids of observed objects referencing it (observed or not).
    dependents: HashMap<Uid, BTreeSet<Uid>>,
}

impl Graph {
    /// How many objects are observed.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Uids of the observed objects of one storage (to find those a relist missed).
    pub fn uids_in(&self, storage: &str) -> Vec<Uid> {
        self.nodes
            .values()
            .filter(|n| n.id.kind.storage == storage)
            .map(|n| n.id.uid.clone())
            .collect()
    }

    /// An object was added or changed: update the graph and say what to look at.
    pub fn observe(&mut self, id: Identity, meta: &ObjectMeta) -> Vec<Work> {
        let uid = id.uid.clone();
        let mut work = Vec::new();
        let owners = meta.owner_references.clone().unwrap_or_default();
        let being_deleted = meta.deletion_timestamp.is_some();
        let has = |f: &str| {
            meta.finalizers
                .as_ref()
                .is_some_and(|l| l.iter().any(|x| x == f))
        };
        let old = self.nodes.remove(&uid);
        if old.is_none() {
            // First sight of an owner others already point at: those whose reference
            // does not resolve to it are checked again.
            for dep in self.dependents.get(&uid).into_iter().flatten() {
                let Some(d) = self.nodes.get(dep) else {
                    continue;
                };
                let ns = d.id.namespace.as_deref();
                if d.owners
                    .iter()
                    .any(|r| r.uid == uid && !resolves_to(r, &id, ns))
                {
                    work.push(Work::Delete(dep.clone()));
                }
            }
        }
        let old_owners = old.as_ref().map(|n| n.owners.clone()).unwrap_or_default();
        // Owners whose reference went away or stopped blocking may now finish.
        for before in &old_owners {
            let after = owners.iter().find(|r| r.uid == before.uid);
            if blocks(before)
                && after.is_none_or(|a| !blocks(a))
                && self
                    .nodes
                    .get(&before.uid)
                    .is_some_and(|o| o.deleting_dependents)
            {
                work.push(Work::Delete(before.uid.clone()));
            }
            if after.is_none() {
                self.unlink(&before.uid, &uid);
            }
        }
        let mut check_self = false;
        for r in &owners {
            if old_owners.iter().any(|b| b.uid == r.uid) {
                continue;
            }
            self.dependents
                .entry(r.uid.clone())
                .or_default()
                .insert(uid.clone());
            match self.nodes.get(&r.uid) {
                // Unobserved (virtual): the dependent checks it with a GET.
                None => check_self = true,
                Some(o) if !resolves_to(r, &o.id, id.namespace.as_deref()) => check_self = true,
                // A new dependent of an owner waiting for its dependents goes too.
                Some(o) if o.deleting_dependents => check_self = true,
                Some(_) => {}
            }
        }
        if check_self {
            work.push(Work::Delete(uid.clone()));
        }
        let was = |pick: fn(&Node) -> bool| old.as_ref().is_some_and(pick);
        let starts_orphaning = being_deleted && has(ORPHAN) && !was(|n| n.orphaning);
        let starts_foreground = being_deleted && has(FOREGROUND) && !was(|n| n.deleting_dependents);
        let node = Node {
            id,
            owners,
            being_deleted,
            deleting_dependents: being_deleted && has(FOREGROUND),
            orphaning: being_deleted && has(ORPHAN),
        };
        if starts_orphaning {
            work.push(Work::Orphan(uid.clone()));
        } else if starts_foreground {
            work.extend(
                self.dependents
                    .get(&uid)
                    .into_iter()
                    .flatten()
                    .map(|d| Work::Delete(d.clone())),
            );
            work.push(Work::Delete(uid.clone()));
        }
        self.nodes.insert(uid, node);
        work
    }

    /// An object is gone: its dependents may be orphans now, and owners waiting for
    /// it may finish.
    pub fn forget(&mut self, uid: &str) -> Vec<Work> {
        let Some(node) = self.nodes.remove(uid) else {
            return Vec::new();
        };
        let mut work: Vec<Work> = self
            .dependents
            .get(uid)
            .into_iter()
            .flatten()
            .map(|d| Work::Delete(d.clone()))
            .collect();
        for r in &node.owners {
            self.unlink(&r.uid, uid);
            if self
                .nodes
                .get(&r.uid)
                .is_some_and(|o| o.deleting_dependents)
            {
                work.push(Work::Delete(r.uid.clone()));
            }
        }
        work
    }

    fn unlink(&mut self, owner: &str, dependent: &str) {
        if let Some(set) = self.dependents.get_mut(owner) {
            set.remove(dependent);
            if set.is_empty() {
                self.dependents.remove(owner);
            }
        }
    }

    /// Observed dependents of `uid`.
    fn dependents_of(&self, uid: &str) -> impl Iterator<Item = &Node> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d))
    }

    /// What a dequeued piece of work asks for, from what the graph knows now.
    pub fn plan(&self, work: &Work) -> Plan {
        match work {
            Work::Orphan(uid) => match self.nodes.get(uid) {
                Some(n) if n.orphaning => Plan::Orphan {
                    owner: n.id.clone(),
                    dependents: self.dependents_of(uid).map(|d| d.id.clone()).collect(),
                },
                _ => Plan::Nothing,
            },
            Work::Delete(uid) => {
                let Some(n) = self.nodes.get(uid) else {
                    return Plan::Nothing;
                };
                if n.deleting_dependents {
                    return self.plan_foreground(n);
                }
                // Deletion is under way: wait for it to finish.
                if n.being_deleted || n.owners.is_empty() {
                    return Plan::Nothing;
                }
                let ns = n.id.namespace.as_deref();
                let mut known = HashMap::new();
                let mut misplaced = Vec::new();
                for r in &n.owners {
                    match self.nodes.get(&r.uid) {
                        Some(o) if resolves_to(r, &o.id, ns) => {
                            known.insert(
                                r.uid.clone(),
                                Known {
                                    deleting_dependents: o.deleting_dependents,
                                },
                            );
                        }
                        Some(o) if o.id.namespace.is_some() && o.id.namespace.as_deref() != ns => {
                            misplaced.push(r.clone());
                        }
                        _ => {}
                    }
                }
                Plan::Collect(Candidate {
                    item: n.id.clone(),
                    known,
                    misplaced,
                    has_dependents: self.dependents_of(uid).next().is_some(),
                    dependent_deleting_dependents: self
                        .dependents_of(uid)
                        .any(|d| d.deleting_dependents),
                })
            }
        }
    }

    /// An owner in foreground deletion: finish when no dependent blocks it, else make
    /// sure the blocking ones are being deleted.
    fn plan_foreground(&self, owner: &Node) -> Plan {
        let uid = &owner.id.uid;
        let blocking: Vec<&Node> = self
            .dependents_of(uid)
            .filter(|d| d.owners.iter().any(|r| r.uid == *uid && blocks(r)))
            .collect();
        if blocking.is_empty() {
            return Plan::Finish(owner.id.clone());
        }
        let waiting: Vec<Work> = blocking
            .iter()
            .filter(|d| !d.being_deleted)
            .map(|d| Work::Delete(d.id.uid.clone()))
            .collect();
        if waiting.is_empty() {
            Plan::Nothing
        } else {
            Plan::Enqueue(waiting)
        }
    }

    /// Every observed uid (for tests and relists).
    #[cfg(test)]
    fn uids(&self) -> std::collections::HashSet<Uid> {
        self.nodes.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn kind(k: &str, namespaced: bool) -> Arc<Kind> {
        Arc::new(Kind {
            group: String::new(),
            version: "v1".into(),
            kind: k.into(),
            plural: format!("{}s", k.to_lowercase()),
            namespaced,
            storage: format!("core/{}s", k.to_lowercase()),
        })
    }

    fn cm(name: &str, uid: &str) -> Identity {
        Identity {
            kind: kind("ConfigMap", true),
            namespace: Some("default".into()),
            name: name.into(),
            uid: uid.into(),
        }
    }

    fn owned_by(owner: &Identity, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: owner.kind.api_version(),
            kind: owner.kind.kind.clone(),
            name: owner.name.clone(),
            uid: owner.uid.clone(),
            block_owner_deletion: block.then_some(true),
            controller: None,
        }
    }

    fn meta(owners: &[OwnerReference]) -> ObjectMeta {
        ObjectMeta {
            owner_references: (!owners.is_empty()).then(|| owners.to_vec()),
            ..ObjectMeta::default()
        }
    }

    fn deleting(owners: &[OwnerReference], finalizer: &str) -> ObjectMeta {
        ObjectMeta {
            deletion_timestamp: Some(Time(jiff::Timestamp::UNIX_EPOCH)),
            finalizers: Some(vec![finalizer.into()]),
            ..meta(owners)
        }
    }

    fn delete(uid: &str) -> Work {
        Work::Delete(uid.into())
    }

    #[test]
    fn a_dependent_of_an_unobserved_owner_is_checked_and_one_of_a_known_owner_is_not() {
        let mut g = Graph::default();
        let owner = cm("owner", "o");
        assert_eq!(g.observe(owner.clone(), &meta(&[])), vec![]);
        assert_eq!(
            g.observe(cm("child", "c"), &meta(&[owned_by(&owner, false)])),
            vec![]
        );
        let ghost = cm("ghost", "never-existed");
        assert_eq!(
            g.observe(cm("orphan", "x"), &meta(&[owned_by(&ghost, false)])),
            vec![delete("x")]
        );
        let Plan::Collect(c) = g.plan(&delete("x")) else {
            panic!("collect")
        };
        assert!(c.known.is_empty(), "the ghost is looked up with a GET");
        let Plan::Collect(c) = g.plan(&delete("c")) else {
            panic!("collect")
        };
        assert_eq!(
            c.known.get("o"),
            Some(&Known {
                deleting_dependents: false
            })
        );
    }

    #[test]
    fn deleting_an_owner_queues_its_dependents() {
        let mut g = Graph::default();
        let owner = cm("owner", "o");
        g.observe(owner.clone(), &meta(&[]));
        g.observe(cm("a", "a"), &meta(&[owned_by(&owner, false)]));
        g.observe(cm("b", "b"), &meta(&[owned_by(&owner, true)]));
        let mut work = g.forget("o");
        work.sort_by_key(|w| format!("{w:?}"));
        assert_eq!(work, vec![delete("a"), delete("b")]);
        let Plan::Collect(c) = g.plan(&delete("a")) else {
            panic!("collect")
        };
        assert!(c.known.is_empty(), "the owner is gone from the graph");
        assert_eq!(g.forget("o"), vec![], "forgetting twice is harmless");
    }

    #[test]
    fn a_dependent_with_a_second_owner_knows_it_is_still_owned() {
        let mut g = Graph::default();
        let (one, two) = (cm("one", "1"), cm("two", "2"));
        g.observe(one.clone(), &meta(&[]));
        g.observe(two.clone(), &meta(&[]));
        g.observe(
            cm("shared", "s"),
            &meta(&[owned_by(&one, false), owned_by(&two, false)]),
        );
        assert_eq!(g.forget("1"), vec![delete("s")]);
        let Plan::Collect(c) = g.plan(&delete("s")) else {
            panic!("collect")
        };
        assert_eq!(c.known.keys().collect::<Vec<_>>(), vec!["2"]);
    }

    #[test]
    fn foreground_deletion_waits_for_blocking_dependents_only() {
        let mut g = Graph::default();
        let owner = cm("owner", "o");
        g.observe(owner.clone(), &meta(&[]));
        g.observe(cm("blocker", "b"), &meta(&[owned_by(&owner, true)]));
        g.observe(cm("free", "f"), &meta(&[owned_by(&owner, false)]));
        let mut work = g.observe(owner.clone(), &deleting(&[], FOREGROUND));
        work.sort_by_key(|w| format!("{w:?}"));
        assert_eq!(work, vec![delete("b"), delete("f"), delete("o")]);
        assert_eq!(g.plan(&delete("o")), Plan::Enqueue(vec![delete("b")]));
        let Plan::Collect(c) = g.plan(&delete("b")) else {
            panic!("collect")
        };
        assert_eq!(
            c.known.get("o"),
            Some(&Known {
                deleting_dependents: true
            })
        );
        // The blocker is being deleted: nothing more to ask of it.
        assert_eq!(
            g.observe(
                cm("blocker", "b"),
                &deleting(&[owned_by(&owner, true)], "x/y")
            ),
            vec![]
        );
        assert_eq!(g.plan(&delete("o")), Plan::Nothing);
        assert_eq!(g.forget("b"), vec![delete("o")]);
        assert_eq!(g.plan(&delete("o")), Plan::Finish(owner.clone()));
        // Seen again unchanged, the deletion does not start over.
        assert_eq!(g.observe(owner, &deleting(&[], FOREGROUND)), vec![]);
    }

    #[test]
    fn a_blocking_reference_turned_off_lets_the_owner_finish() {
        let mut g = Graph::default();
        let owner = cm("owner", "o");
        g.observe(owner.clone(), &deleting(&[], FOREGROUND));
        g.observe(cm("dep", "d"), &meta(&[owned_by(&owner, true)]));
        assert!(matches!(g.plan(&delete("o")), Plan::Enqueue(_)));
        assert_eq!(
            g.observe(cm("dep", "d"), &meta(&[owned_by(&owner, false)])),
            vec![delete("o")]
        );
        assert_eq!(g.plan(&delete("o")), Plan::Finish(owner));
    }

    #[test]
    fn a_new_dependent_of_a_foreground_owner_is_collected_too() {
        let mut g = Graph::default();
        let owner = cm("owner", "o");
        g.observe(owner.clone(), &deleting(&[], FOREGROUND));
        assert_eq!(
            g.observe(cm("late", "l"), &meta(&[owned_by(&owner, true)])),
            vec![delete("l")]
        );
    }

    #[test]
    fn orphaning_lists_every_dependent_once() {
        let mut g = Graph::default();
        let owner = cm("owner", "o");
        g.observe(owner.clone(), &meta(&[]));
        g.observe(cm("a", "a"), &meta(&[owned_by(&owner, true)]));
        g.observe(cm("b", "b"), &meta(&[owned_by(&owner, false)]));
        assert_eq!(
            g.observe(owner.clone(), &deleting(&[], ORPHAN)),
            vec![Work::Orphan("o".into())]
        );
        let Plan::Orphan {
            owner: o,
            dependents,
        } = g.plan(&Work::Orphan("o".into()))
        else {
            panic!("orphan")
        };
        assert_eq!(o, owner);
        let names: Vec<&str> = dependents.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b"]);
        // Released dependents drop out of the owner's list.
        g.observe(cm("a", "a"), &meta(&[]));
        let Plan::Orphan { dependents, .. } = g.plan(&Work::Orphan("o".into())) else {
            panic!("orphan")
        };
        assert_eq!(dependents.len(), 1);
    }

    #[test]
    fn a_namespaced_owner_in_another_namespace_does_not_count() {
        let mut g = Graph::default();
        let mut elsewhere = cm("owner", "o");
        elsewhere.namespace = Some("other".into());
        g.observe(elsewhere.clone(), &meta(&[]));
        assert_eq!(
            g.observe(cm("child", "c"), &meta(&[owned_by(&elsewhere, false)])),
            vec![delete("c")]
        );
        let Plan::Collect(c) = g.plan(&delete("c")) else {
            panic!("collect")
        };
        assert!(c.known.is_empty());
        assert_eq!(c.misplaced.len(), 1);
    }

    #[test]
    fn a_cluster_scoped_owner_is_known_from_any_namespace() {
        let mut g = Graph::default();
        let ns = Identity {
            kind: kind("Namespace", false),
            namespace: None,
            name: "team".into(),
            uid: "n".into(),
        };
        g.observe(ns.clone(), &meta(&[]));
        assert_eq!(
            g.observe(cm("child", "c"), &meta(&[owned_by(&ns, false)])),
            vec![]
        );
    }

    #[test]
    fn an_owner_observed_after_its_dependents_rechecks_only_mismatched_references() {
        let mut g = Graph::default();
        let owner = cm("owner", "o");
        let mut wrong_name = owned_by(&owner, false);
        wrong_name.name = "not-the-owner".into();
        assert_eq!(
            g.observe(cm("good", "g"), &meta(&[owned_by(&owner, false)])),
            vec![delete("g")]
        );
        assert_eq!(
            g.observe(cm("bad", "b"), &meta(&[wrong_name])),
            vec![delete("b")]
        );
        assert_eq!(g.observe(owner, &meta(&[])), vec![delete("b")]);
        assert_eq!(
            g.uids(),
            ["g", "b", "o"].iter().map(|s| s.to_string()).collect()
        );
    }

    #[test]
    fn objects_being_deleted_or_without_owners_need_nothing() {
        let mut g = Graph::default();
        let owner = cm("owner", "o");
        g.observe(cm("plain", "p"), &meta(&[]));
        g.observe(
            cm("going", "g"),
            &deleting(&[owned_by(&owner, false)], "x/y"),
        );
        assert_eq!(g.plan(&delete("p")), Plan::Nothing);
        assert_eq!(g.plan(&delete("g")), Plan::Nothing);
        assert_eq!(g.plan(&delete("unknown")), Plan::Nothing);
        assert_eq!(g.plan(&Work::Orphan("p".into())), Plan::Nothing);
    }

    #[test]
    fn relists_find_objects_by_storage() {
        let mut g = Graph::default();
        g.observe(cm("a", "a"), &meta(&[]));
        let ns = Identity {
            kind: kind("Namespace", false),
            namespace: None,
            name: "n".into(),
            uid: "n".into(),
        };
        g.observe(ns, &meta(&[]));
        assert_eq!(g.uids_in("core/configmaps"), vec!["a".to_string()]);
        assert_eq!(g.len(), 2);
        assert_eq!(g.forget("n"), vec![]);
        assert_eq!(g.len(), 1);
    }
}
