//! Admission: namespace lifecycle (no content in missing or terminating namespaces),
//! Service ClusterIP / NodePort allocation ([`super::services`]), the default StorageClass and storage
//! protection finalizers ([`storage`]), the default IngressClass ([`ingress`]),
//! LimitRange defaults and limits ([`limits`]) and ResourceQuota ([`quota`]).
//!
//! As in Kubernetes, the mutating steps ([`mutate_create`]) run before validation and
//! the validating ones ([`admit_create`], [`admit_update`]) after it.

mod ingress;
mod limits;
mod quota;
mod storage;

use serde_json::Value;
use tokio::sync::{MutexGuard, OwnedMutexGuard};

use super::{Shared, services};
use crate::api::error::{ApiError, qualified};
use crate::api::registry::ResourceType;

pub(crate) use quota::Locks as QuotaLocks;

/// Locks an admitted write holds until its object is stored: the Service allocation
/// lock (addresses and ports are handed out once) and the namespace's quota lock
/// (usage is checked and charged atomically). Dropping it releases both.
pub(crate) struct Admitted<'a> {
    _allocations: Option<MutexGuard<'a, ()>>,
    _quota: Option<OwnedMutexGuard<()>>,
}

/// The namespace an object is in (`""` for cluster-scoped ones).
fn namespace_of(obj: &Value) -> &str {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Every stored object under `prefix` that decodes as a `K` (admission plugins
/// read the classes they default from).
fn list_typed<K: serde::de::DeserializeOwned>(
    s: &Shared,
    prefix: &str,
) -> Result<Vec<K>, ApiError> {
    Ok(s.store
        .list(prefix, None, 0)
        .map_err(ApiError::internal)?
        .items
        .into_iter()
        .filter_map(|i| serde_json::from_value(i.object).ok())
        .collect())
}

/// Set `spec.<field>` of `obj` to the string `value`.
fn set_spec(obj: &mut Value, field: &str, value: &str) {
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert(field.into(), Value::String(value.into()));
    }
}

/// 403 for an admission plugin's reason: `pods "x" is forbidden: <reason>`.
fn forbidden(rt: &ResourceType, obj: &Value, reason: &str) -> ApiError {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    ApiError::forbidden_because(&rt.group, &rt.resource, name, reason)
}

/// The mutating admission of a create, run before validation: the default
/// StorageClass and storage protection finalizers, the default IngressClass, then
/// LimitRange defaults.
pub(crate) fn mutate_create(
    s: &Shared,
    rt: &ResourceType,
    obj: &mut Value,
) -> Result<(), ApiError> {
    storage::mutate_create(s, rt, obj)?;
    ingress::mutate_create(s, rt, obj)?;
    limits::mutate_create(s, rt, obj)
}

/// Admit a new object. The returned locks must be held until the object is stored.
pub(crate) async fn admit_create<'a>(
    s: &'a Shared,
    rt: &ResourceType,
    obj: &mut Value,
) -> Result<Admitted<'a>, ApiError> {
    if rt.namespaced {
        namespace_lifecycle(s, rt, obj)?;
    }
    let mut allocations = None;
    if services::is_services(rt) {
        let guard = s.allocations.lock().await;
        services::allocate_create(s, rt, obj)?;
        allocations = Some(guard);
    }
    limits::validate(s, rt, obj, None)?;
    Ok(Admitted {
        _allocations: allocations,
        _quota: quota::admit(s, rt, obj, None).await?,
    })
}

/// Admit an update of the main resource (not a subresource) from `old` to `obj`:
/// node ports and addresses a Service newly needs, LimitRange limits of claims, and
/// quota for Services and claims that grow. The returned locks must be held until
/// the object is stored.
pub(crate) async fn admit_update<'a>(
    s: &'a Shared,
    rt: &ResourceType,
    old: &Value,
    obj: &mut Value,
) -> Result<Admitted<'a>, ApiError> {
    let mut allocations = None;
    if services::is_services(rt) {
        let guard = s.allocations.lock().await;
        services::allocate_update(s, rt, old, obj)?;
        allocations = Some(guard);
    }
    limits::validate(s, rt, obj, Some(old))?;
    Ok(Admitted {
        _allocations: allocations,
        _quota: quota::admit(s, rt, obj, Some(old)).await?,
    })
}

fn namespace_lifecycle(s: &Shared, rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (_, namespace) = s
        .store
        .get(&format!("/registry/core/namespaces/{ns}"))
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("", "namespaces", ns))?;
    if namespace.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(ApiError::forbidden(
            &rt.group,
            &rt.resource,
            name,
            format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                qualified(&rt.group, &rt.resource)
            ),
        ));
    }
    Ok(())
}
