//! CustomResourceDefinitions: serving their resources once created, their status
//! conditions, and removing their objects when they go.

use serde_json::{Value, json};

use super::Shared;
use crate::api::error::ApiError;
use crate::api::registry::{ALL_VERBS, ResourceType};
use crate::store::Write;

fn is_crd(rt: &ResourceType) -> bool {
    rt.group == "apiextensions.k8s.io" && rt.resource == "customresourcedefinitions"
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The resource types a CRD serves (one per served version).
pub(crate) fn types_of(crd: &Value) -> Vec<ResourceType> {
    let spec = crd.get("spec").cloned().unwrap_or_default();
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let names = spec.get("names").cloned().unwrap_or_default();
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| kind.to_lowercase());
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    spec.get("versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
        .map(|v| {
            let mut subresources = Vec::new();
            if v.pointer("/subresources/status").is_some() {
                subresources.push("status");
            }
            if v.pointer("/subresources/scale").is_some() {
                subresources.push("scale");
            }
            ResourceType {
                group: group.clone(),
                version: v
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                resource: plural.clone(),
                singular: singular.clone(),
                kind: kind.clone(),
                namespaced,
                verbs: ALL_VERBS.to_vec(),
                short_names: strings(names.get("shortNames")),
                categories: strings(names.get("categories")),
                subresources,
                schema: None,
                codec: None,
                crd_schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                printer_columns: v
                    .get("additionalPrinterColumns")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                crd: Some(name.clone()),
                storage: format!("{group}/{plural}"),
                storage_version: None,
            }
        })
        .collect()
}

/// Load every stored CRD into the registry (at startup).
pub(crate) fn register_existing(s: &Shared) -> Result<(), ApiError> {
    let listing = s
        .store
        .list(
            "/registry/apiextensions.k8s.io/customresourcedefinitions/",
            None,
            0,
        )
        .map_err(ApiError::internal)?;
    for item in listing.items {
        let name = item
            .object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        s.registry.set_custom(&name, types_of(&item.object));
    }
    Ok(())
}

/// Before a CRD is stored: names accepted and established, as the real
/// apiextensions controllers report within moments.
pub(crate) fn prepare(rt: &ResourceType, obj: &mut Value) {
    if !is_crd(rt) {
        return;
    }
    let now = crate::api::clock::now();
    let condition = |t: &str, reason: &str, message: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    let stored: Vec<Value> = obj
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage").and_then(Value::as_bool).unwrap_or(false))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    obj["status"] = json!({
        "acceptedNames": obj.pointer("/spec/names").cloned().unwrap_or_default(),
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    });
}

/// After a CRD was stored: (re)register what it serves.
pub(crate) fn after_write(s: &Shared, rt: &ResourceType, obj: &Value) {
    if is_crd(rt) {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        s.registry.set_custom(name, types_of(obj));
        s.openapi.invalidate();
    }
}

/// After a CRD was deleted: stop serving it and delete its objects, as the real
/// API server's customresourcecleanup finalizer does.
pub(crate) async fn after_delete(s: &Shared, rt: &ResourceType, obj: &Value) {
    if !is_crd(rt) {
        return;
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(t) = types_of(obj).into_iter().next() else {
        s.registry.set_custom(name, Vec::new());
        return;
    };
    s.registry.set_custom(name, Vec::new());
    s.openapi.invalidate();
    let prefix = t.key_prefix(None);
    if let Ok(listing) = s.store.list(&prefix, None, 0) {
        for item in listing.items {
            if let Err(e) = s
                .store
                .write(Write::Delete {
                    key: item.key.clone(),
                    expect: None,
                })
                .await
            {
                tracing::warn!(key = %item.key, error = %e, "removing a custom resource of a deleted CRD");
            }
        }
    }
}
