//! Storage admission on create: `DefaultStorageClass` gives a claim that names no
//! class the default StorageClass (the newest, when several are marked), and
//! `StorageObjectInUseProtection` adds the `kubernetes.io/pvc-protection` and
//! `kubernetes.io/pv-protection` finalizers that the protection controllers
//! remove once the object is no longer used.

use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::{Value, json};

use super::Shared;
use crate::api::error::ApiError;
use crate::api::registry::ResourceType;
use crate::controllers::volumes::matching::{
    BETA_STORAGE_CLASS, PV_PROTECTION, PVC_PROTECTION, default_class,
};

/// The mutating half, before validation: default class and finalizers.
pub(crate) fn mutate_create(
    s: &Shared,
    rt: &ResourceType,
    obj: &mut Value,
) -> Result<(), ApiError> {
    if !rt.group.is_empty() {
        return Ok(());
    }
    match rt.resource.as_str() {
        "persistentvolumeclaims" => {
            default_storage_class(s, obj)?;
            add_finalizer(obj, PVC_PROTECTION);
        }
        "persistentvolumes" => add_finalizer(obj, PV_PROTECTION),
        _ => {}
    }
    Ok(())
}

/// `PersistentVolumeClaimHasClass`: the beta annotation or the field, even `""`.
fn has_class(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(BETA_STORAGE_CLASS))
        || obj
            .pointer("/spec/storageClassName")
            .is_some_and(|c| !c.is_null())
}

fn default_storage_class(s: &Shared, obj: &mut Value) -> Result<(), ApiError> {
    if has_class(obj) {
        return Ok(());
    }
    let classes: Vec<StorageClass> =
        super::list_typed(s, "/registry/storage.k8s.io/storageclasses/")?;
    if let Some(name) = default_class(&classes).and_then(|c| c.metadata.name.as_deref()) {
        super::set_spec(obj, "storageClassName", name);
    }
    Ok(())
}

fn add_finalizer(obj: &mut Value, finalizer: &str) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let list = meta
        .entry("finalizers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if list.is_null() {
        *list = Value::Array(Vec::new());
    }
    if let Some(items) = list.as_array_mut()
        && !items.iter().any(|f| f.as_str() == Some(finalizer))
    {
        items.push(json!(finalizer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protection_finalizer_is_added_once_beside_others() {
        let mut obj = json!({"metadata": {"name": "x", "finalizers": ["example.com/keep"]}});
        add_finalizer(&mut obj, PVC_PROTECTION);
        add_finalizer(&mut obj, PVC_PROTECTION);
        assert_eq!(
            obj["metadata"]["finalizers"],
            json!(["example.com/keep", PVC_PROTECTION])
        );
        let mut bare = json!({"metadata": {"name": "y"}});
        add_finalizer(&mut bare, PV_PROTECTION);
        assert_eq!(bare["metadata"]["finalizers"], json!([PV_PROTECTION]));
    }

    #[test]
    fn an_empty_class_or_the_beta_annotation_counts_as_a_choice() {
        assert!(!has_class(&json!({"spec": {}})));
        assert!(!has_class(&json!({"spec": {"storageClassName": null}})));
        assert!(has_class(&json!({"spec": {"storageClassName": ""}})));
        assert!(has_class(
            &json!({"metadata": {"annotations": {BETA_STORAGE_CLASS: ""}}, "spec": {}})
        ));
    }
}
