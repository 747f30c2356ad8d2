//! `DefaultIngressClass` admission on create: an Ingress that names no class (by
//! `spec.ingressClassName` or the legacy `kubernetes.io/ingress.class`
//! annotation) gets the default IngressClass, the newest when several are marked.

use k8s_openapi::api::networking::v1::IngressClass;
use serde_json::Value;

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
    let classes: Vec<IngressClass> =
        super::list_typed(s, "/registry/networking.k8s.io/ingressclasses/")?;
    if let Some(name) = default_class(&classes).and_then(|c| c.metadata.name.as_deref()) {
        super::set_spec(obj, "ingressClassName", name);
    }
    Ok(())
}
