//! Storage kinds: PersistentVolume and PersistentVolumeClaim (also the claim-template spec StatefulSets embed).

use super::core::spec_diff;
use super::errors::{FieldError, Path, sorted_map};
use super::meta::{self, FIELD_IMMUTABLE, immutable};
use super::names;
use super::{arr, at, obj, s};
use crate::api::quantity;
use serde_json::{Map, Value};

const ACCESS_MODES: [&str; 4] = [
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
/// Spec keys of a PersistentVolume that are not its volume source.
const PV_GENERAL_KEYS: [&str; 8] = [
    "capacity",
    "accessModes",
    "claimRef",
    "persistentVolumeReclaimPolicy",
    "storageClassName",
    "mountOptions",
    "volumeMode",
    "nodeAffinity",
];

fn access_modes(spec: &Value, sp: &Path, required_detail: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let modes: Vec<&str> = arr(spec, "accessModes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if modes.is_empty() {
        errs.push(FieldError::required(
            sp.child("accessModes"),
            required_detail,
        ));
    }
    for m in &modes {
        if !ACCESS_MODES.contains(m) {
            errs.push(FieldError::not_supported(
                sp.child("accessModes"),
                *m,
                &ACCESS_MODES,
            ));
        }
    }
    if modes.contains(&"ReadWriteOncePod")
        && modes
            .iter()
            .any(|m| *m != "ReadWriteOncePod" && ACCESS_MODES.contains(m))
    {
        errs.push(FieldError::forbidden(
            sp.child("accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errs
}

fn class_and_mode(spec: &Value, sp: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let class = s(spec, "storageClassName");
    if !class.is_empty() {
        errs.extend(
            names::dns1123_subdomain(class)
                .into_iter()
                .map(|m| FieldError::invalid(sp.child("storageClassName"), class, m)),
        );
    }
    if let Some(mode) = spec.get("volumeMode").and_then(Value::as_str)
        && mode != "Block"
        && mode != "Filesystem"
    {
        errs.push(FieldError::not_supported(
            sp.child("volumeMode"),
            mode,
            &["Block", "Filesystem"],
        ));
    }
    errs
}

pub fn persistent_volume(pv: &Value) -> Vec<FieldError> {
    let spec = pv.get("spec").unwrap_or(&Value::Null);
    let sp = Path::new("spec");
    let mut errs = access_modes(spec, &sp, "");
    let capacity = obj(spec, "capacity");
    if capacity.is_none_or(Map::is_empty) {
        errs.push(FieldError::required(sp.child("capacity"), ""));
    }
    if capacity.is_none_or(|c| !c.contains_key("storage") || c.len() > 1) {
        errs.push(FieldError::not_supported(
            sp.child("capacity"),
            sorted_map(spec.get("capacity")),
            &["storage"],
        ));
    }
    for (r, q) in capacity.into_iter().flatten() {
        let p = sp.child("capacity").key(r);
        match quantity::from_json(q) {
            Some(q) if q.is_negative() || q.is_zero() => errs.push(FieldError::invalid(
                &p,
                q.canonical(),
                "must be greater than zero",
            )),
            Some(_) => {}
            None => errs.push(FieldError::invalid(
                &p,
                quantity::raw(q),
                quantity::QUANTITY_FORMAT_ERROR,
            )),
        }
    }
    let policy = s(spec, "persistentVolumeReclaimPolicy");
    if !policy.is_empty() && !matches!(policy, "Delete" | "Recycle" | "Retain") {
        errs.push(FieldError::not_supported(
            sp.child("persistentVolumeReclaimPolicy"),
            policy,
            &["Delete", "Recycle", "Retain"],
        ));
    }
    let sources = spec.as_object().map_or(0, |m| {
        m.iter()
            .filter(|(k, v)| !PV_GENERAL_KEYS.contains(&k.as_str()) && !v.is_null())
            .count()
    });
    if sources == 0 {
        errs.push(FieldError::required(&sp, "must specify a volume type"));
    }
    errs.extend(class_and_mode(spec, &sp));
    errs
}

fn pv_source(spec: &Value) -> Value {
    let mut m = spec.as_object().cloned().unwrap_or_default();
    m.retain(|k, _| !PV_GENERAL_KEYS.contains(&k.as_str()));
    Value::Object(m)
}

pub fn pv_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (ns, os) = (
        new.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    );
    let (nsrc, osrc) = (pv_source(ns), pv_source(os));
    if nsrc != osrc {
        errs.push(FieldError::forbidden(
            "spec.persistentvolumesource",
            format!(
                "spec.persistentvolumesource is immutable after creation\n{}",
                spec_diff(&osrc, &nsrc)
            ),
        ));
    }
    // The Go code uses the bare path "volumeMode" here.
    errs.extend(immutable(
        ns.get("volumeMode").unwrap_or(&Value::Null),
        os.get("volumeMode").unwrap_or(&Value::Null),
        &Path::new("volumeMode"),
    ));
    errs
}

pub fn pvc(claim: &Value) -> Vec<FieldError> {
    pvc_spec(
        claim.get("spec").unwrap_or(&Value::Null),
        &Path::new("spec"),
    )
}

/// `ValidatePersistentVolumeClaimSpec` (also used for StatefulSet claim templates).
pub fn pvc_spec(spec: &Value, sp: &Path) -> Vec<FieldError> {
    let sp = sp.clone();
    let mut errs = access_modes(spec, &sp, "at least 1 access mode is required");
    errs.extend(meta::validate_label_selector(
        spec.get("selector"),
        &sp.child("selector"),
    ));
    let storage_path = sp.child("resources").key("storage");
    match at(spec, &["resources", "requests", "storage"]) {
        None => errs.push(FieldError::required(&storage_path, "")),
        Some(v) => match quantity::from_json(v) {
            Some(q) if q.is_negative() || q.is_zero() => errs.push(FieldError::invalid(
                &storage_path,
                q.canonical(),
                "must be greater than zero",
            )),
            Some(_) => {}
            None => errs.push(FieldError::invalid(
                &storage_path,
                quantity::raw(v),
                quantity::QUANTITY_FORMAT_ERROR,
            )),
        },
    }
    errs.extend(class_and_mode(spec, &sp));
    errs
}

pub fn pvc_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (ns, os) = (
        new.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    );
    let bound = at(new, &["status", "phase"]).and_then(Value::as_str) == Some("Bound");
    let mut munged_old = os.clone();
    let mut munged_new = ns.clone();
    if s(os, "volumeName").is_empty()
        && let (Some(m), Some(v)) = (munged_old.as_object_mut(), ns.get("volumeName"))
    {
        // volumeName may be set once, by the binder.
        m.insert("volumeName".into(), v.clone());
    }
    // A claim created without a class may be given one once (the retroactive
    // default StorageClass assignment), unless the beta annotation names one.
    let beta_class = old
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key("volume.beta.kubernetes.io/storage-class"));
    if !beta_class && os.get("storageClassName").is_none_or(Value::is_null) {
        for spec in [&mut munged_new, &mut munged_old] {
            if let Some(m) = spec.as_object_mut() {
                m.remove("storageClassName");
            }
        }
    }
    if bound
        && let Some(req) = munged_new.pointer_mut("/resources/requests")
        && let Some(req) = req.as_object_mut()
    {
        match at(os, &["resources", "requests", "storage"]) {
            Some(v) => req.insert("storage".into(), v.clone()),
            None => req.remove("storage"),
        };
    }
    if munged_new != munged_old {
        errs.push(FieldError::forbidden(
            "spec",
            format!(
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                spec_diff(&munged_old, &munged_new)
            ),
        ));
    }
    let size =
        |v: &Value| at(v, &["resources", "requests", "storage"]).and_then(quantity::from_json);
    let capacity = at(old, &["status", "capacity", "storage"]).and_then(quantity::from_json);
    if let (Some(n), Some(o)) = (size(ns), size(os))
        && n.cmp(&o).is_lt()
        && capacity.is_some_and(|c| n.cmp(&c).is_le())
    {
        errs.push(FieldError::forbidden(
            "spec.resources.requests.storage",
            "field can not be less than status.capacity",
        ));
    }
    let (nm, om) = (
        ns.get("volumeMode").unwrap_or(&Value::Null),
        os.get("volumeMode").unwrap_or(&Value::Null),
    );
    if nm != om {
        errs.push(FieldError::invalid(
            "volumeMode",
            nm.clone(),
            FIELD_IMMUTABLE,
        ));
    }
    errs
}
