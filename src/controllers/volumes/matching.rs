//! Which PersistentVolume a claim may bind to, and the vocabulary of the binding
//! protocol (annotations, finalizers, classes): Kubernetes' `storagehelpers` and
//! `FindMatchingVolume`, shared by the PV binder (which matches without a node)
//! and the scheduler's VolumeBinding plugin (which matches for the node it tries).

use std::collections::{BTreeSet, HashSet};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::api::quantity::Quantity;
use crate::controllers::pods;
use crate::scheduler::fit::{NodeInfo, term_matches};

/// On a claim: the binder has finished binding it at least once.
pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// On a claim or volume: the binder (not the user) set the binding.
pub const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// On a volume: the provisioner that made it.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// On a claim: the provisioner asked to provision it.
pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
/// The beta spelling of [`STORAGE_PROVISIONER`], still written beside it.
pub const BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// On a claim: the node the scheduler picked for its first consumer.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The legacy annotation that, when present at all, overrides `storageClassName`.
pub const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
/// The annotations that make a StorageClass the default one.
pub const DEFAULT_CLASS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];
/// Holds a claim while a scheduled pod uses it.
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
/// Holds a volume while it is bound.
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";
/// `volumeBindingMode` that delays binding until a pod using the claim is scheduled.
pub const WAIT_FOR_FIRST_CONSUMER: &str = "WaitForFirstConsumer";

fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// Whether `meta` carries annotation `key` (any value).
pub fn has_annotation(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> bool {
    annotation(meta, key).is_some()
}

/// `GetPersistentVolumeClaimClass`: the beta annotation when present, else
/// `spec.storageClassName`, else `""` (no class).
pub fn claim_class(pvc: &PersistentVolumeClaim) -> &str {
    annotation(&pvc.metadata, BETA_STORAGE_CLASS)
        .or_else(|| pvc.spec.as_ref()?.storage_class_name.as_deref())
        .unwrap_or_default()
}

/// `PersistentVolumeClaimHasClass`: the claim names a class, even `""`; a claim
/// that does not is the one the default class is given to.
pub fn claim_has_class(pvc: &PersistentVolumeClaim) -> bool {
    has_annotation(&pvc.metadata, BETA_STORAGE_CLASS)
        || pvc
            .spec
            .as_ref()
            .is_some_and(|s| s.storage_class_name.is_some())
}

/// `GetPersistentVolumeClass`: as [`claim_class`], for a volume.
pub fn volume_class(pv: &PersistentVolume) -> &str {
    annotation(&pv.metadata, BETA_STORAGE_CLASS)
        .or_else(|| pv.spec.as_ref()?.storage_class_name.as_deref())
        .unwrap_or_default()
}

/// The claim's `spec.volumeName` (`""` when unset).
pub fn claim_volume(pvc: &PersistentVolumeClaim) -> &str {
    pvc.spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or_default()
}

/// The claim's `status.phase` (`""` before it has one).
pub fn claim_phase(pvc: &PersistentVolumeClaim) -> &str {
    pvc.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// The volume's `status.phase` (`""` before it has one).
pub fn volume_phase(pv: &PersistentVolume) -> &str {
    pv.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// `IsVolumeBoundToClaim`: the volume's claimRef names the claim, with its uid or
/// none yet (pre-bound by an admin).
pub fn is_bound_to_claim(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    let uid = r.uid.as_deref().unwrap_or_default();
    r.name.as_deref() == pvc.metadata.name.as_deref()
        && r.namespace.as_deref() == pvc.metadata.namespace.as_deref()
        && (uid.is_empty() || Some(uid) == pvc.metadata.uid.as_deref())
}

/// The claim's request for storage (zero when absent).
pub fn requested(pvc: &PersistentVolumeClaim) -> Quantity {
    pvc.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Quantity::parse(&q.0))
        .unwrap_or_else(Quantity::zero)
}

/// The volume's `capacity.storage` (zero when absent).
pub fn capacity(pv: &PersistentVolume) -> Quantity {
    pv.spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| Quantity::parse(&q.0))
        .unwrap_or_else(Quantity::zero)
}

fn claim_modes(pvc: &PersistentVolumeClaim) -> &[String] {
    pvc.spec
        .as_ref()
        .and_then(|s| s.access_modes.as_deref())
        .unwrap_or_default()
}

fn volume_modes(pv: &PersistentVolume) -> &[String] {
    pv.spec
        .as_ref()
        .and_then(|s| s.access_modes.as_deref())
        .unwrap_or_default()
}

/// `CheckAccessModes`: the volume offers every mode the claim asks for.
pub fn access_modes_fit(pvc: &PersistentVolumeClaim, pv: &PersistentVolume) -> bool {
    let offered = volume_modes(pv);
    claim_modes(pvc).iter().all(|m| offered.contains(m))
}

/// `CheckVolumeModeMismatches`: Filesystem and Block never mix (unset is Filesystem).
pub fn volume_mode_mismatch(pvc: &PersistentVolumeClaim, pv: &PersistentVolume) -> bool {
    let claim = pvc.spec.as_ref().and_then(|s| s.volume_mode.as_deref());
    let volume = pv.spec.as_ref().and_then(|s| s.volume_mode.as_deref());
    claim.unwrap_or("Filesystem") != volume.unwrap_or("Filesystem")
}

/// `CheckNodeAffinity`: the volume's required node affinity admits the node (a
/// volume without one is reachable from every node).
pub fn node_affinity_allows(pv: &PersistentVolume, node: &NodeInfo) -> bool {
    let required = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref());
    required.is_none_or(|r| r.node_selector_terms.iter().any(|t| term_matches(t, node)))
}

/// `checkVolumeSatisfyClaim`: why a volume the claim names in `spec.volumeName`
/// cannot serve it, worded as the PV controller's `VolumeMismatch` event.
pub fn check_satisfies(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> Result<(), String> {
    let name = pv.metadata.name.as_deref().unwrap_or_default();
    if pv.metadata.deletion_timestamp.is_some() {
        return Err(format!("the volume is marked for deletion \"{name}\""));
    }
    if capacity(pv) < requested(pvc) {
        return Err("requested PV is too small".into());
    }
    if volume_class(pv) != claim_class(pvc) {
        return Err("storageClassName does not match".into());
    }
    if volume_mode_mismatch(pvc, pv) {
        return Err("incompatible volumeMode".into());
    }
    if !access_modes_fit(pvc, pv) {
        return Err("incompatible accessMode".into());
    }
    Ok(())
}

/// `FindMatchingVolume`: a volume pre-bound to the claim wins outright; else the
/// smallest Available volume of the claim's class with room for the request,
/// the same volume mode, labels the claim's selector accepts and, when a node is
/// given (the scheduler's path), node affinity that admits it and every access
/// mode asked for. Without a node, a claim whose binding waits for its first
/// consumer only takes a pre-bound volume. `excluded` are volumes already
/// chosen for other claims of the same pod.
pub fn find_matching<'a>(
    pvc: &PersistentVolumeClaim,
    volumes: impl IntoIterator<Item = &'a PersistentVolume>,
    node: Option<&NodeInfo>,
    excluded: &HashSet<String>,
    delay_binding: bool,
) -> Option<&'a PersistentVolume> {
    let request = requested(pvc);
    let class = claim_class(pvc);
    let selector = pvc.spec.as_ref().and_then(|s| s.selector.as_ref());
    let mut smallest: Option<(&PersistentVolume, Quantity)> = None;
    for pv in volumes {
        if pv
            .metadata
            .name
            .as_ref()
            .is_some_and(|n| excluded.contains(n))
        {
            continue;
        }
        let claimed = pv.spec.as_ref().is_some_and(|s| s.claim_ref.is_some());
        if claimed && !is_bound_to_claim(pv, pvc) {
            continue;
        }
        let size = capacity(pv);
        if size < request
            || volume_mode_mismatch(pvc, pv)
            || pv.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        let node_ok = node.is_none_or(|n| node_affinity_allows(pv, n));
        if is_bound_to_claim(pv, pvc) {
            // A pre-bound volume the node cannot reach means no match at all.
            return node_ok.then_some(pv);
        }
        if node.is_none() && delay_binding {
            continue;
        }
        if volume_phase(pv) != "Available" {
            continue;
        }
        if selector.is_some() && !pods::selects(selector, pv.metadata.labels.as_ref()) {
            continue;
        }
        if volume_class(pv) != class || !node_ok {
            continue;
        }
        if node.is_some() && !access_modes_fit(pvc, pv) {
            continue;
        }
        if smallest.is_none_or(|(_, s)| s > size) {
            smallest = Some((pv, size));
        }
    }
    smallest.map(|(pv, _)| pv)
}

/// The PV binder's `findBestMatchForClaim`: volumes are grouped by their set of
/// access modes, and only groups offering every mode the claim asks for are
/// searched, those with the fewest modes first — so a ReadWriteOnce claim takes
/// a ReadWriteOnce volume before a larger set of modes is used up.
pub fn find_best_match<'a>(
    pvc: &PersistentVolumeClaim,
    volumes: &'a [PersistentVolume],
    delay_binding: bool,
) -> Option<&'a PersistentVolume> {
    let wanted = claim_modes(pvc);
    let mut groups: Vec<BTreeSet<&str>> = Vec::new();
    for pv in volumes {
        let set: BTreeSet<&str> = volume_modes(pv).iter().map(String::as_str).collect();
        if wanted.iter().all(|m| set.contains(m.as_str())) && !groups.contains(&set) {
            groups.push(set);
        }
    }
    groups.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    let none = HashSet::new();
    groups.iter().find_map(|group| {
        let members = volumes.iter().filter(|pv| {
            volume_modes(pv)
                .iter()
                .map(String::as_str)
                .collect::<BTreeSet<_>>()
                == *group
        });
        find_matching(pvc, members, None, &none, delay_binding)
    })
}

/// Whether the class is marked default (by the GA or the beta annotation).
pub fn is_default_class(sc: &StorageClass) -> bool {
    DEFAULT_CLASS
        .iter()
        .any(|k| annotation(&sc.metadata, k) == Some("true"))
}

/// `GetDefaultClass`: among the classes marked default, the newest (by
/// creationTimestamp, then name ascending).
pub fn default_class<'a>(
    classes: impl IntoIterator<Item = &'a StorageClass>,
) -> Option<&'a StorageClass> {
    classes
        .into_iter()
        .filter(|c| is_default_class(c))
        .min_by(|a, b| {
            let created = |c: &StorageClass| c.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(b)
                .cmp(&created(a))
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        })
}

/// `IsDelayBindingMode`: the claim's class waits for the first consumer. A claim
/// without a class, or whose class does not exist, binds immediately.
pub fn waits_for_first_consumer(class: Option<&StorageClass>) -> bool {
    class.and_then(|c| c.volume_binding_mode.as_deref()) == Some(WAIT_FOR_FIRST_CONSUMER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn claim(v: Value) -> PersistentVolumeClaim {
        let mut base = json!({"metadata": {"name": "data", "namespace": "default", "uid": "u1"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                     "storageClassName": ""}});
        merge(&mut base, v);
        serde_json::from_value(base).expect("claim")
    }

    fn volume(name: &str, size: &str, v: Value) -> PersistentVolume {
        let mut base = json!({"metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": "/tmp/x"}, "storageClassName": ""},
            "status": {"phase": "Available"}});
        merge(&mut base, v);
        serde_json::from_value(base).expect("volume")
    }

    fn merge(base: &mut Value, patch: Value) {
        if let (Some(b), Value::Object(p)) = (base.as_object_mut(), patch) {
            for (k, v) in p {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
    }

    fn best<'a>(pvc: &PersistentVolumeClaim, pvs: &'a [PersistentVolume]) -> Option<&'a str> {
        find_best_match(pvc, pvs, false).and_then(|pv| pv.metadata.name.as_deref())
    }

    #[test]
    fn the_smallest_volume_with_room_for_the_request_wins() {
        let pvs = [
            volume("big", "10Gi", json!({})),
            volume("small", "512Mi", json!({})),
            volume("fits", "2Gi", json!({})),
            volume("exact", "1024Mi", json!({})),
        ];
        assert_eq!(best(&claim(json!({})), &pvs), Some("exact"));
        let bigger = claim(json!({"spec": {"resources": {"requests": {"storage": "3Gi"}}}}));
        assert_eq!(best(&bigger, &pvs), Some("big"));
        let huge = claim(json!({"spec": {"resources": {"requests": {"storage": "1Ti"}}}}));
        assert_eq!(best(&huge, &pvs), None);
    }

    #[test]
    fn class_selector_and_volume_mode_must_match() {
        let pvs = [
            volume("fast", "1Gi", json!({"spec": {"storageClassName": "fast"}})),
            volume(
                "plain",
                "5Gi",
                json!({"metadata": {"labels": {"tier": "gold"}}}),
            ),
            volume("block", "1Gi", json!({"spec": {"volumeMode": "Block"}})),
        ];
        assert_eq!(
            best(&claim(json!({})), &pvs),
            Some("plain"),
            "classless takes classless"
        );
        let fast = claim(json!({"spec": {"storageClassName": "fast"}}));
        assert_eq!(best(&fast, &pvs), Some("fast"));
        let silver = claim(json!({"spec": {"selector": {"matchLabels": {"tier": "silver"}}}}));
        assert_eq!(best(&silver, &pvs), None);
        let gold = claim(json!({"spec": {"selector": {"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["gold"]}]}}}));
        assert_eq!(best(&gold, &pvs), Some("plain"));
        let block = claim(json!({"spec": {"volumeMode": "Block"}}));
        assert_eq!(best(&block, &pvs), Some("block"));
    }

    #[test]
    fn access_modes_must_be_offered_and_the_closest_set_is_used_first() {
        let pvs = [
            volume(
                "rwx",
                "1Gi",
                json!({"spec": {"accessModes": ["ReadWriteOnce", "ReadWriteMany"]}}),
            ),
            volume("rwo-big", "5Gi", json!({})),
            volume(
                "rox",
                "1Gi",
                json!({"spec": {"accessModes": ["ReadOnlyMany"]}}),
            ),
        ];
        assert_eq!(
            best(&claim(json!({})), &pvs),
            Some("rwo-big"),
            "fewest modes first, even if larger"
        );
        let many = claim(json!({"spec": {"accessModes": ["ReadWriteMany"]}}));
        assert_eq!(best(&many, &pvs), Some("rwx"));
        let pod = claim(json!({"spec": {"accessModes": ["ReadWriteOncePod"]}}));
        assert_eq!(best(&pod, &pvs), None);
    }

    #[test]
    fn pre_bound_volumes_win_and_volumes_bound_elsewhere_or_unavailable_are_skipped() {
        let pvs = [
            volume(
                "taken",
                "1Gi",
                json!({"spec": {"claimRef": {"namespace": "default", "name": "other", "uid": "u9"}}}),
            ),
            volume("released", "1Gi", json!({"status": {"phase": "Released"}})),
            volume(
                "reserved",
                "8Gi",
                json!({"spec": {"claimRef": {"namespace": "default", "name": "data"}},
                "status": {"phase": "Available"}}),
            ),
        ];
        assert_eq!(best(&claim(json!({})), &pvs), Some("reserved"));
        // A claim waiting for its first consumer binds only a pre-bound volume here.
        assert_eq!(
            find_best_match(&claim(json!({})), &pvs[..2], true).map(|p| p.metadata.name.clone()),
            None
        );
        let wrong_uid = volume(
            "stale",
            "1Gi",
            json!({"spec": {"claimRef": {"namespace": "default", "name": "data", "uid": "old"}}}),
        );
        assert_eq!(best(&claim(json!({})), &[wrong_uid]), None);
    }

    #[test]
    fn with_a_node_the_volume_must_be_reachable_from_it() {
        let node = NodeInfo {
            name: "n2".into(),
            labels: [("kubernetes.io/hostname".to_string(), "n2".to_string())].into(),
            ..NodeInfo::default()
        };
        let on = |host: &str| {
            json!({"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}}}})
        };
        let pvs = [
            volume("n1-disk", "1Gi", on("n1")),
            volume("n2-disk", "2Gi", on("n2")),
        ];
        let none = HashSet::new();
        let pick = |excluded: &HashSet<String>| {
            find_matching(&claim(json!({})), &pvs, Some(&node), excluded, true)
                .and_then(|p| p.metadata.name.clone())
        };
        assert_eq!(pick(&none).as_deref(), Some("n2-disk"));
        assert_eq!(pick(&["n2-disk".to_string()].into()), None);
    }

    #[test]
    fn a_named_volume_is_checked_as_the_binder_words_it() {
        let pvc = claim(json!({"spec": {"storageClassName": "fast"}}));
        let small = volume("v", "100Mi", json!({"spec": {"storageClassName": "fast"}}));
        assert_eq!(
            check_satisfies(&small, &pvc).unwrap_err(),
            "requested PV is too small"
        );
        let other = volume("v", "1Gi", json!({}));
        assert_eq!(
            check_satisfies(&other, &pvc).unwrap_err(),
            "storageClassName does not match"
        );
        let rox = volume(
            "v",
            "1Gi",
            json!({"spec": {"storageClassName": "fast", "accessModes": ["ReadOnlyMany"]}}),
        );
        assert_eq!(
            check_satisfies(&rox, &pvc).unwrap_err(),
            "incompatible accessMode"
        );
        let ok = volume("v", "1Gi", json!({"spec": {"storageClassName": "fast"}}));
        assert!(check_satisfies(&ok, &pvc).is_ok());
    }

    #[test]
    fn the_beta_annotation_overrides_the_class_field_and_the_newest_default_wins() {
        let pvc = claim(
            json!({"metadata": {"annotations": {BETA_STORAGE_CLASS: "legacy"}},
            "spec": {"storageClassName": "fast"}}),
        );
        assert_eq!(claim_class(&pvc), "legacy");
        let unset: PersistentVolumeClaim =
            serde_json::from_value(json!({"metadata": {"name": "x"}, "spec": {}})).expect("claim");
        assert!(!claim_has_class(&unset));
        assert!(
            claim_has_class(&claim(json!({}))),
            "\"\" is a choice: no class"
        );
        let class = |name: &str, created: &str, default: bool| -> StorageClass {
            serde_json::from_value(
                json!({"metadata": {"name": name, "creationTimestamp": created,
                "annotations": {DEFAULT_CLASS[0]: default.to_string()}}, "provisioner": "p"}),
            )
            .expect("class")
        };
        let classes = [
            class("old", "2024-01-01T00:00:00Z", true),
            class("new", "2024-06-01T00:00:00Z", true),
            class("newest", "2024-07-01T00:00:00Z", false),
            class("also-new", "2024-06-01T00:00:00Z", true),
        ];
        assert_eq!(
            default_class(&classes).and_then(|c| c.metadata.name.as_deref()),
            Some("also-new")
        );
    }
}
