//! Admission: namespace lifecycle (no content in missing or terminating namespaces),
//! Service ClusterIP / NodePort allocation, the default StorageClass and storage
//! protection finalizers ([`storage`]), LimitRange defaults and limits
//! ([`limits`]) and ResourceQuota ([`quota`]).
//!
//! As in Kubernetes, the mutating steps ([`mutate_create`]) run before validation and
//! the validating ones ([`admit_create`], [`admit_update`]) after it.

mod limits;
mod quota;
mod storage;

use std::collections::HashSet;
use std::net::Ipv4Addr;

use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::{MutexGuard, OwnedMutexGuard};

use super::Shared;
use crate::api::error::{ApiError, Cause, qualified};
use crate::api::registry::ResourceType;

pub(crate) use quota::Locks as QuotaLocks;

/// NodePort range, as the real API server's default.
const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

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

/// 403 for an admission plugin's reason: `pods "x" is forbidden: <reason>`.
fn forbidden(rt: &ResourceType, obj: &Value, reason: &str) -> ApiError {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    ApiError::forbidden_because(&rt.group, &rt.resource, name, reason)
}

/// The mutating admission of a create, run before validation: the default
/// StorageClass and storage protection finalizers, then LimitRange defaults.
pub(crate) fn mutate_create(
    s: &Shared,
    rt: &ResourceType,
    obj: &mut Value,
) -> Result<(), ApiError> {
    storage::mutate_create(s, rt, obj)?;
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
    if rt.group.is_empty() && rt.resource == "services" {
        let guard = s.allocations.lock().await;
        allocate_service(s, obj)?;
        allocations = Some(guard);
    }
    limits::validate(s, rt, obj, None)?;
    Ok(Admitted {
        _allocations: allocations,
        _quota: quota::admit(s, rt, obj, None).await?,
    })
}

/// Admit an update of the main resource (not a subresource) from `old` to `obj`:
/// LimitRange limits of claims, and quota for Services and claims that grow. The
/// returned locks must be held until the object is stored.
pub(crate) async fn admit_update<'a>(
    s: &'a Shared,
    rt: &ResourceType,
    old: &Value,
    obj: &Value,
) -> Result<Admitted<'a>, ApiError> {
    limits::validate(s, rt, obj, Some(old))?;
    Ok(Admitted {
        _allocations: None,
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

fn service_invalid(name: &str, field: &str, message: String) -> ApiError {
    let full = format!("Service \"{name}\" is invalid: {field}: {message}");
    ApiError::invalid(
        "",
        "Service",
        name,
        full,
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message,
            field: field.into(),
        }],
    )
}

/// Addresses and ports already taken by stored Services.
fn taken(s: &Shared) -> Result<(HashSet<Ipv4Addr>, HashSet<u64>), ApiError> {
    let listing = s
        .store
        .list("/registry/core/services/", None, 0)
        .map_err(ApiError::internal)?;
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    for item in listing.items {
        if let Some(ip) = item
            .object
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
        {
            ips.insert(ip);
        }
        for p in item
            .object
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = p.get("nodePort").and_then(Value::as_u64) {
                ports.insert(n);
            }
        }
    }
    Ok((ips, ports))
}

fn allocate_service(s: &Shared, obj: &mut Value) -> Result<(), ApiError> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let ty = obj
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if ty == "ExternalName" {
        return Ok(());
    }
    let (used_ips, used_ports) = taken(s)?;
    let (base, bits) = s.settings.service_cidr;
    let size = 1u32 << (32 - u32::from(bits));
    let base = u32::from(base);
    let in_range = |ip: Ipv4Addr| (u32::from(ip) & !(size - 1)) == base;
    let requested = obj
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ip = match requested.as_str() {
        "None" => None,
        "" => {
            // Skip the network address, .1 (kubernetes) and .10 (kube-dns), which the
            // cluster reserves for itself.
            let mut rng = rand::rng();
            let found = (0..4096)
                .map(|_| Ipv4Addr::from(base + rng.random_range(11..size - 1)))
                .find(|ip| !used_ips.contains(ip));
            let ip = found
                .or_else(|| {
                    (11..size - 1)
                        .map(|o| Ipv4Addr::from(base + o))
                        .find(|ip| !used_ips.contains(ip))
                })
                .ok_or_else(|| {
                    ApiError::internal("failed to allocate a serviceIP: range is full")
                })?;
            Some(ip.to_string())
        }
        other => {
            let ip: Ipv4Addr = other.parse().map_err(|_| {
                service_invalid(
                    &name,
                    "spec.clusterIPs[0]",
                    format!("Invalid value: \"{other}\": must be a valid IP address"),
                )
            })?;
            if !in_range(ip) {
                return Err(service_invalid(
                    &name,
                    "spec.clusterIPs",
                    format!(
                        "Invalid value: []string{{\"{other}\"}}: failed to allocate IP {other}: the provided IP ({other}) is not in the valid range. The range of valid IPs is {}/{bits}",
                        Ipv4Addr::from(base)
                    ),
                ));
            }
            if used_ips.contains(&ip) {
                return Err(service_invalid(
                    &name,
                    "spec.clusterIPs",
                    format!(
                        "Invalid value: []string{{\"{other}\"}}: failed to allocate IP {other}: provided IP is already allocated"
                    ),
                ));
            }
            Some(other.to_string())
        }
    };
    match ip {
        Some(ip) => {
            obj["spec"]["clusterIP"] = json!(ip);
            obj["spec"]["clusterIPs"] = json!([ip]);
        }
        None => obj["spec"]["clusterIPs"] = json!(["None"]),
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        let mut used = used_ports;
        let mut rng = rand::rng();
        let ports = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut);
        for (i, p) in ports.into_iter().flatten().enumerate() {
            match p.get("nodePort").and_then(Value::as_u64) {
                Some(n) if used.contains(&n) => {
                    return Err(service_invalid(
                        &name,
                        &format!("spec.ports[{i}].nodePort"),
                        format!("Invalid value: {n}: provided port is already allocated"),
                    ));
                }
                Some(n) => {
                    used.insert(n);
                }
                None => {
                    let free = (0..4096)
                        .map(|_| u64::from(rng.random_range(NODE_PORTS)))
                        .find(|n| !used.contains(n))
                        .or_else(|| NODE_PORTS.map(u64::from).find(|n| !used.contains(n)))
                        .ok_or_else(|| {
                            ApiError::internal("failed to allocate a nodePort: range is full")
                        })?;
                    used.insert(free);
                    p["nodePort"] = json!(free);
                }
            }
        }
    }
    Ok(())
}
