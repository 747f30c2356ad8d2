//! Rows for storage: persistent volumes, persistent volume claims and storage classes.

use jiff::Timestamp;
use serde_json::Value;

use super::format::{Obj, or_unset};
use super::{Column, docs, quantity};

/// The legacy annotation that, when present at all, overrides spec.storageClassName.
const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

pub(super) fn persistent_volume_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Capacity", "string", docs::PERSISTENT_VOLUME_SPEC_CAPACITY),
        Column::new(
            "Access Modes",
            "string",
            docs::PERSISTENT_VOLUME_SPEC_ACCESS_MODES,
        ),
        Column::new(
            "Reclaim Policy",
            "string",
            docs::PERSISTENT_VOLUME_SPEC_PERSISTENT_VOLUME_RECLAIM_POLICY,
        ),
        Column::new("Status", "string", docs::PERSISTENT_VOLUME_STATUS_PHASE),
        Column::new("Claim", "string", docs::PERSISTENT_VOLUME_SPEC_CLAIM_REF),
        Column::new("StorageClass", "string", "StorageClass of the pv"),
        Column::new(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pv",
        ),
        Column::new("Reason", "string", docs::PERSISTENT_VOLUME_STATUS_REASON),
        Column::age(),
        Column::wide(
            "VolumeMode",
            "string",
            docs::PERSISTENT_VOLUME_SPEC_VOLUME_MODE,
        ),
    ]
}

pub(super) fn persistent_volume_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let pv = Obj(obj);
    let claim = match pv.at(&["spec", "claimRef"]).map(Obj) {
        Some(c) => format!("{}/{}", c.str(&["namespace"]), c.str(&["name"])),
        None => String::new(),
    };
    vec![
        pv.name().into(),
        quantity::of_value(pv.at(&["spec", "capacity", "storage"])).into(),
        access_modes(pv.strings(&["spec", "accessModes"])).into(),
        pv.str(&["spec", "persistentVolumeReclaimPolicy"]).into(),
        phase(pv).into(),
        claim.into(),
        storage_class(pv).into(),
        or_unset(pv.opt_str(&["spec", "volumeAttributesClassName"])).into(),
        pv.str(&["status", "reason"]).into(),
        pv.age(now),
        or_unset(pv.opt_str(&["spec", "volumeMode"])).into(),
    ]
}

pub(super) fn claim_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Status",
            "string",
            docs::PERSISTENT_VOLUME_CLAIM_STATUS_PHASE,
        ),
        Column::new(
            "Volume",
            "string",
            docs::PERSISTENT_VOLUME_CLAIM_SPEC_VOLUME_NAME,
        ),
        Column::new(
            "Capacity",
            "string",
            docs::PERSISTENT_VOLUME_CLAIM_STATUS_CAPACITY,
        ),
        Column::new(
            "Access Modes",
            "string",
            docs::PERSISTENT_VOLUME_CLAIM_STATUS_ACCESS_MODES,
        ),
        Column::new("StorageClass", "string", "StorageClass of the pvc"),
        Column::new(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pvc",
        ),
        Column::age(),
        Column::wide(
            "VolumeMode",
            "string",
            docs::PERSISTENT_VOLUME_CLAIM_SPEC_VOLUME_MODE,
        ),
    ]
}

/// Capacity and access modes are what the bound volume provides, so they stay empty until bound.
pub(super) fn claim_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let pvc = Obj(obj);
    let volume = pvc.str(&["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity::of_value(pvc.at(&["status", "capacity", "storage"])),
            access_modes(pvc.strings(&["status", "accessModes"])),
        )
    };
    vec![
        pvc.name().into(),
        phase(pvc).into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        storage_class(pvc).into(),
        or_unset(pvc.opt_str(&["spec", "volumeAttributesClassName"])).into(),
        pvc.age(now),
        or_unset(pvc.opt_str(&["spec", "volumeMode"])).into(),
    ]
}

/// The status phase, or "Terminating" once deletion has begun.
fn phase<'a>(o: Obj<'a>) -> &'a str {
    if o.has(&["metadata", "deletionTimestamp"]) {
        "Terminating"
    } else {
        o.str(&["status", "phase"])
    }
}

/// GetPersistentVolume(Claim)Class: the beta annotation if present (even empty), else the spec field.
fn storage_class<'a>(o: Obj<'a>) -> &'a str {
    o.annotation(BETA_STORAGE_CLASS)
        .unwrap_or_else(|| o.str(&["spec", "storageClassName"]))
}

/// GetAccessModesAsString: abbreviations in a fixed order, whatever order the object lists them in.
fn access_modes(modes: Vec<&str>) -> String {
    let known = [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ];
    let short: Vec<&str> = known
        .iter()
        .filter(|(mode, _)| modes.contains(mode))
        .map(|(_, abbr)| *abbr)
        .collect();
    short.join(",")
}

pub(super) fn storage_class_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Provisioner", "string", docs::STORAGE_CLASS_PROVISIONER),
        Column::new(
            "ReclaimPolicy",
            "string",
            docs::STORAGE_CLASS_RECLAIM_POLICY,
        ),
        Column::new(
            "VolumeBindingMode",
            "string",
            docs::STORAGE_CLASS_VOLUME_BINDING_MODE,
        ),
        Column::new(
            "AllowVolumeExpansion",
            "string",
            docs::STORAGE_CLASS_ALLOW_VOLUME_EXPANSION,
        ),
        Column::age(),
    ]
}

/// The default class (by the GA or the beta annotation) gets " (default)" after its name.
pub(super) fn storage_class_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let sc = Obj(obj);
    let is_default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|key| sc.annotation(key) == Some("true"));
    let mut name = sc.name().to_string();
    if is_default {
        name.push_str(" (default)");
    }
    vec![
        name.into(),
        sc.str(&["provisioner"]).into(),
        sc.opt_str(&["reclaimPolicy"]).unwrap_or("Delete").into(),
        sc.opt_str(&["volumeBindingMode"])
            .unwrap_or("Immediate")
            .into(),
        sc.bool(&["allowVolumeExpansion"]).into(),
        sc.age(now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().expect("valid timestamp")
    }

    #[test]
    fn bound_persistent_volume_shows_capacity_modes_and_claim() {
        let obj = json!({"metadata": {"name": "pv-1", "creationTimestamp": "2024-05-01T10:00:00Z"},
            "spec": {"capacity": {"storage": "10240Mi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "fast", "volumeMode": "Filesystem",
                     "claimRef": {"namespace": "db", "name": "data-0"}},
            "status": {"phase": "Bound"}});
        assert_eq!(
            persistent_volume_cells(&obj, now()),
            [
                json!("pv-1"),
                json!("10Gi"),
                json!("RWO,RWX"),
                json!("Retain"),
                json!("Bound"),
                json!("db/data-0"),
                json!("fast"),
                json!("<unset>"),
                json!(""),
                json!("120m"),
                json!("Filesystem")
            ]
        );
    }

    #[test]
    fn deleted_volume_is_terminating_and_beta_annotation_names_the_class() {
        let obj = json!({"metadata": {"name": "pv", "deletionTimestamp": "2024-05-01T11:00:00Z",
                                      "annotations": {"volume.beta.kubernetes.io/storage-class": "legacy"}},
                         "spec": {"storageClassName": "fast"}, "status": {"phase": "Released"}});
        let row = persistent_volume_cells(&obj, now());
        assert_eq!(
            (&row[1], &row[4], &row[6]),
            (&json!("0"), &json!("Terminating"), &json!("legacy"))
        );
    }

    #[test]
    fn pending_claim_has_no_capacity_or_modes_yet() {
        let obj = json!({"metadata": {"name": "data"}, "spec": {"storageClassName": "fast", "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Pending"}});
        let row = claim_cells(&obj, now());
        assert_eq!(
            &row[1..7],
            [
                json!("Pending"),
                json!(""),
                json!(""),
                json!(""),
                json!("fast"),
                json!("<unset>")
            ]
        );
    }

    #[test]
    fn bound_claim_shows_the_volume_capacity() {
        let obj = json!({"metadata": {"name": "data"}, "spec": {"volumeName": "pv-1", "volumeMode": "Block"},
            "status": {"phase": "Bound", "capacity": {"storage": "1.5Gi"}, "accessModes": ["ReadWriteOncePod"]}});
        let row = claim_cells(&obj, now());
        assert_eq!(
            &row[1..5],
            [
                json!("Bound"),
                json!("pv-1"),
                json!("1536Mi"),
                json!("RWOP")
            ]
        );
        assert_eq!(row[8], json!("Block"));
    }

    #[test]
    fn default_storage_class_gets_a_default_suffix_and_defaults_for_unset_fields() {
        let obj = json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path"});
        let row = storage_class_cells(&obj, now());
        assert_eq!(
            &row[..5],
            [
                json!("standard (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("Immediate"),
                json!(false)
            ]
        );
    }
}
