//! `DefaultIngressClass` admission on create: an Ingress that names no class (by
//! `spec.ingressClassName` or the legacy `kubernetes.io/ingress.class`
//! annotation) gets the default IngressClass, the newest when several are marked.

use k8s_openapi::api::networking::v1::IngressClass;
use serde_json::{Value, json};

use super::Shared;
use crate::api::error::ApiError;
use crate::api::registry::ResourceType;
use crate::net::ingress::controller::{LEGACY_CLASS_ANNOTATION, default_class};

/// The mutating half, before validation.
pub(crate) fn mutate_create(
    s: &Shared,
    rt: &ResourceType,
    obj: &mut Value,
) -> Result<(), ApiError> {
    if rt.group != "networking.k8s.io" || rt.resource != "ingresses" {
        return Ok(());
    }
    let named = obj
        .pointer("/spec/ingressClassName")
        .is_some_and(|c| !c.is_null())
        || obj
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .is_some_and(|a| a.contains_key(LEGACY_CLASS_ANNOTATION));
    if named {
        return Ok(());
    }
    let classes: Vec<IngressClass> = s
        .store
        .list("/registry/networking.k8s.io/ingressclasses/", None, 0)
        .map_err(ApiError::internal)?
        .items
        .into_iter()
        .filter_map(|i| serde_json::from_value(i.object).ok())
        .collect();
    let Some(name) = default_class(&classes).and_then(|c| c.metadata.name.clone()) else {
        return Ok(());
    };
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("ingressClassName".into(), json!(name));
    }
    Ok(())
}
