//! ResourceQuota admission: a new object (or a Service or claim that grows) may not
//! take its namespace past any quota there, worded as Kubernetes' quota admission
//! plugin words it (`exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`).
//!
//! Unlike Kubernetes, which charges against each quota's `status.used` (written by the
//! controller, so a brand-new quota is not enforced until then), usage is measured
//! from the store itself. A per-namespace lock, held by the caller until the object is
//! stored, makes check-then-store atomic: two concurrent creates cannot both take the
//! last unit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::OwnedMutexGuard;

use super::{Shared, forbidden, namespace_of};
use crate::api::error::ApiError;
use crate::api::quota::{self, ResourceList};
use crate::api::registry::ResourceType;

/// One lock per namespace, taken while quota is checked and the object stored.
#[derive(Default)]
pub(crate) struct Locks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl Locks {
    async fn lock(&self, namespace: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Forget locks nobody holds or waits for, so the map tracks live namespaces.
            map.retain(|_, l| Arc::strong_count(l) > 1);
            map.entry(namespace.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// The quotas of a namespace, in name order.
fn quotas(s: &Shared, ns: &str) -> Result<Vec<Value>, ApiError> {
    Ok(s.store
        .list(&format!("/registry/core/resourcequotas/{ns}/"), None, 0)
        .map_err(ApiError::internal)?
        .items
        .into_iter()
        .map(|i| i.object)
        .collect())
}

fn hard_names(q: &Value) -> Vec<String> {
    quota::hard(q).into_keys().collect()
}

fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `quota.SubtractWithNonNegativeResult`: what an update adds, per name of `new`.
fn growth(new: &ResourceList, old: &ResourceList) -> ResourceList {
    new.iter()
        .map(|(k, q)| {
            let d = match old.get(k) {
                Some(o) => q.sub(o),
                None => *q,
            };
            let d = if d.is_negative() {
                crate::api::quantity::Quantity::zero()
            } else {
                d
            };
            (k.clone(), d)
        })
        .collect()
}

/// Check `obj` (created, or updated from `old`) against every quota of its namespace.
/// On success, returns the namespace's quota lock when a quota counts the object: the
/// caller holds it until the object is stored.
pub(crate) async fn admit(
    s: &Shared,
    rt: &ResourceType,
    obj: &Value,
    old: Option<&Value>,
) -> Result<Option<OwnedMutexGuard<()>>, ApiError> {
    let (group, resource) = (rt.group.as_str(), rt.resource.as_str());
    if !rt.namespaced || (old.is_some() && !quota::charged_on_update(group, resource)) {
        return Ok(None);
    }
    let ns = namespace_of(obj);
    let concerned = |qs: &[Value]| {
        qs.iter()
            .any(|q| !quota::matching_resources(group, resource, &hard_names(q)).is_empty())
    };
    // Most namespaces have no quota on this resource: answer without the lock.
    if !concerned(&quotas(s, ns)?) {
        return Ok(None);
    }
    let guard = s.quota_locks.lock(ns).await;
    let quotas = quotas(s, ns)?;
    let now = jiff::Timestamp::now();

    let mut matched = Vec::new();
    for q in &quotas {
        if !quota::matches(q, group, resource, obj) {
            continue;
        }
        let restricted = quota::matching_resources(group, resource, &hard_names(q));
        if let Err(why) = quota::constraints(group, resource, &restricted, obj) {
            return Err(forbidden(
                rt,
                obj,
                &format!("failed quota: {}: {why}", name_of(q)),
            ));
        }
        matched.push(q);
    }
    if matched.is_empty() {
        return Ok(None);
    }
    let input = quota::usage(group, resource, obj, now);
    let negative = quota::negative(&input);
    if !negative.is_empty() {
        return Err(forbidden(
            rt,
            obj,
            &format!(
                "quota usage is negative for resource(s): {}",
                negative.join(",")
            ),
        ));
    }
    let previous = old.map(|o| (o, quota::usage(group, resource, o, now)));

    // What is stored now: everything this resource uses in the namespace (on update,
    // the old version of the object among it).
    let stored: Vec<Value> = s
        .store
        .list(&rt.key_prefix(Some(ns)), None, 0)
        .map_err(ApiError::internal)?
        .items
        .into_iter()
        .map(|i| i.object)
        .collect();
    let mut counted = false;
    for q in matched {
        let delta = match &previous {
            Some((o, before)) if quota::matches(q, group, resource, o) => growth(&input, before),
            _ => input.clone(),
        };
        let delta = quota::remove_zeros(&delta);
        if delta.is_empty() {
            continue;
        }
        counted = true;
        let hard = quota::hard(q);
        let requested = quota::mask(&delta, hard.keys().map(String::as_str));
        let used = quota::total(q, group, resource, &stored, now);
        let after = quota::mask(
            &quota::add(&used, &requested),
            requested.keys().map(String::as_str),
        );
        let exceeded = quota::exceeded(&after, &hard);
        if !exceeded.is_empty() {
            let only = |l: &ResourceList| {
                quota::pretty(&quota::mask(l, exceeded.iter().map(String::as_str)))
            };
            return Err(forbidden(
                rt,
                obj,
                &format!(
                    "exceeded quota: {}, requested: {}, used: {}, limited: {}",
                    name_of(q),
                    only(&requested),
                    only(&used),
                    only(&hard)
                ),
            ));
        }
    }
    Ok(counted.then_some(guard))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::quantity::Quantity;

    #[test]
    fn growth_counts_only_increases() {
        let new = ResourceList::from([
            ("services.nodeports".to_string(), Quantity::from_units(2)),
            ("services".to_string(), Quantity::from_units(1)),
        ]);
        let old = ResourceList::from([
            ("services.nodeports".to_string(), Quantity::from_units(3)),
            ("services".to_string(), Quantity::from_units(1)),
        ]);
        assert!(quota::remove_zeros(&growth(&new, &old)).is_empty());
        assert_eq!(
            quota::pretty(&growth(&old, &ResourceList::new())),
            "services=1,services.nodeports=3"
        );
    }
}
