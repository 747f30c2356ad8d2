//! Quota evaluators: for each resource, which quota names its objects use and how much
//! one object uses (`pods`, `requests.cpu`, `services.nodeports`, `count/<resource>`).

use std::collections::BTreeSet;

use serde_json::Value;

use super::list::{self, ResourceList};
use super::pod;
use crate::api::quantity::{self, Quantity};

/// Middle of the per-StorageClass names: `gold.storageclass.storage.k8s.io/requests.storage`.
pub const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// The compute names a pod can use, besides prefixed ones (hugepages, extended).
const POD_RESOURCES: [&str; 11] = [
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
];

/// The kind of evaluator Kubernetes registers for a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evaluator {
    Pods,
    Services,
    Claims,
    /// Object counting with a legacy short name (`configmaps`, `secrets`, …).
    Aliased(&'static str),
    /// Object counting by `count/<resource>.<group>` only.
    Generic,
}

fn evaluator(group: &str, resource: &str) -> Evaluator {
    match (group, resource) {
        ("", "pods") => Evaluator::Pods,
        ("", "services") => Evaluator::Services,
        ("", "persistentvolumeclaims") => Evaluator::Claims,
        ("", "configmaps") => Evaluator::Aliased("configmaps"),
        ("", "secrets") => Evaluator::Aliased("secrets"),
        ("", "replicationcontrollers") => Evaluator::Aliased("replicationcontrollers"),
        ("", "resourcequotas") => Evaluator::Aliased("resourcequotas"),
        _ => Evaluator::Generic,
    }
}

/// `count/<resource>.<group>`, or `count/<resource>` for the core group.
pub fn object_count_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        format!("count/{resource}")
    } else {
        format!("count/{resource}.{group}")
    }
}

/// The (group, resource) a `count/…` name counts.
fn counted_by(name: &str) -> Option<(String, String)> {
    let gr = name.strip_prefix("count/")?;
    let (resource, group) = gr.split_once('.').unwrap_or((gr, ""));
    (!resource.is_empty()).then(|| (group.to_string(), resource.to_string()))
}

/// A quota's hard limits: `spec.hard`.
pub fn hard(quota: &Value) -> ResourceList {
    list::parse(quota.pointer("/spec/hard"))
}

/// Extended resources are quota'd only as `requests.<name>`.
fn is_extended_request(name: &str) -> bool {
    name.strip_prefix("requests.").is_some_and(|r| {
        let native = !r.contains('/') || r.contains("kubernetes.io/");
        !native
    })
}

/// `MatchingResources`: which of `names` objects of this resource use.
pub fn matching_resources(group: &str, resource: &str, names: &[String]) -> Vec<String> {
    let count = object_count_name(group, resource);
    names
        .iter()
        .filter(|n| {
            let n = n.as_str();
            match evaluator(group, resource) {
                Evaluator::Pods => {
                    POD_RESOURCES.contains(&n)
                        || n.starts_with("hugepages-")
                        || n.starts_with("requests.hugepages-")
                        || is_extended_request(n)
                }
                Evaluator::Services => matches!(
                    n,
                    "count/services" | "services" | "services.loadbalancers" | "services.nodeports"
                ),
                Evaluator::Claims => {
                    matches!(
                        n,
                        "count/persistentvolumeclaims"
                            | "persistentvolumeclaims"
                            | "requests.storage"
                    ) || (n.contains(STORAGE_CLASS_SUFFIX)
                        && (n.ends_with("/requests.storage")
                            || n.ends_with("/persistentvolumeclaims")))
                }
                Evaluator::Aliased(alias) => n == count || n == alias,
                Evaluator::Generic => n == count,
            }
        })
        .cloned()
        .collect()
}

/// The scope selector requirements of a quota: `spec.scopes` (each as `Exists`) and
/// `spec.scopeSelector.matchExpressions`.
pub fn scope_selectors(quota: &Value) -> Vec<Value> {
    let scopes = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| serde_json::json!({"scopeName": s, "operator": "Exists"}));
    let expressions = quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .cloned();
    scopes.chain(expressions).collect()
}

/// Whether an object falls in every scope of the quota (only pods have scopes; a
/// scoped quota matches no other kind).
pub fn in_scopes(quota: &Value, group: &str, resource: &str, obj: &Value) -> bool {
    let selectors = scope_selectors(quota);
    selectors.is_empty()
        || (evaluator(group, resource) == Evaluator::Pods
            && selectors.iter().all(|s| pod::matches_scope(obj, s)))
}

/// `Matches`: the quota limits something this object uses, and the object is in scope.
pub fn matches(quota: &Value, group: &str, resource: &str, obj: &Value) -> bool {
    let names: Vec<String> = hard(quota).into_keys().collect();
    !matching_resources(group, resource, &names).is_empty()
        && in_scopes(quota, group, resource, obj)
}

/// Whether quota is charged again when an object of this resource is updated (a
/// Service changing type, a claim growing); everything else is charged on create only.
pub fn charged_on_update(group: &str, resource: &str) -> bool {
    matches!(
        evaluator(group, resource),
        Evaluator::Services | Evaluator::Claims
    )
}

/// `Constraints`: requirements on the object itself before it is counted (pods must
/// state cpu and memory a quota limits). `Err` is the reason, for `failed quota: …`.
pub fn constraints(
    group: &str,
    resource: &str,
    required: &[String],
    obj: &Value,
) -> Result<(), String> {
    match evaluator(group, resource) {
        Evaluator::Pods => pod::constraints(required, obj),
        _ => Ok(()),
    }
}

fn one() -> Quantity {
    Quantity::from_units(1)
}

fn service_usage(svc: &Value) -> ResourceList {
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let count = |n: usize| Quantity::from_units(i64::try_from(n).unwrap_or(i64::MAX));
    let mut out = ResourceList::from([
        ("count/services".to_string(), one()),
        ("services".to_string(), one()),
        ("services.loadbalancers".to_string(), Quantity::zero()),
        ("services.nodeports".to_string(), Quantity::zero()),
    ]);
    match svc.pointer("/spec/type").and_then(Value::as_str) {
        Some("NodePort") => {
            out.insert("services.nodeports".into(), count(ports.len()));
        }
        Some("LoadBalancer") => {
            let allocate = svc
                .pointer("/spec/allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let node_ports = if allocate {
                ports.len()
            } else {
                ports
                    .iter()
                    .filter(|p| {
                        p.get("nodePort")
                            .and_then(Value::as_u64)
                            .is_some_and(|n| n != 0)
                    })
                    .count()
            };
            out.insert("services.nodeports".into(), count(node_ports));
            out.insert("services.loadbalancers".into(), one());
        }
        _ => {}
    }
    out
}

/// The StorageClass a claim names (the field, else the beta annotation).
fn claim_class(pvc: &Value) -> Option<&str> {
    pvc.pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        .or_else(|| pvc.pointer("/spec/storageClassName"))
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
}

/// Storage is charged in whole bytes: the request, or the allocated size if larger.
fn claim_storage(pvc: &Value) -> Option<Quantity> {
    let whole = |q: Quantity| {
        if q.is_integer() {
            q
        } else {
            Quantity::from_units(q.value())
        }
    };
    let requested = pvc
        .pointer("/spec/resources/requests/storage")
        .and_then(quantity::from_json)
        .map(whole)?;
    let allocated = pvc
        .pointer("/status/allocatedResources/storage")
        .and_then(quantity::from_json)
        .map(whole);
    Some(match allocated {
        Some(a) if a > requested => a,
        _ => requested,
    })
}

fn claim_usage(pvc: &Value) -> ResourceList {
    let mut out = ResourceList::from([
        ("persistentvolumeclaims".to_string(), one()),
        ("count/persistentvolumeclaims".to_string(), one()),
    ]);
    let class = claim_class(pvc);
    if let Some(class) = class {
        out.insert(
            format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"),
            one(),
        );
    }
    if let Some(storage) = claim_storage(pvc) {
        out.insert("requests.storage".into(), storage);
        if let Some(class) = class {
            out.insert(
                format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"),
                storage,
            );
        }
    }
    out
}

/// `Usage`: what one object uses. `now` decides whether a deleted pod still counts.
pub fn usage(group: &str, resource: &str, obj: &Value, now: jiff::Timestamp) -> ResourceList {
    match evaluator(group, resource) {
        Evaluator::Pods => pod::usage(obj, now),
        Evaluator::Services => service_usage(obj),
        Evaluator::Claims => claim_usage(obj),
        Evaluator::Aliased(alias) => ResourceList::from([
            (object_count_name(group, resource), one()),
            (alias.to_string(), one()),
        ]),
        Evaluator::Generic => ResourceList::from([(object_count_name(group, resource), one())]),
    }
}

/// The resources whose objects must be listed to measure these quota names, as
/// (group, resource) pairs.
pub fn counted_resources(names: &[String]) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (group, resource) in [
        ("", "pods"),
        ("", "services"),
        ("", "persistentvolumeclaims"),
        ("", "configmaps"),
        ("", "secrets"),
        ("", "replicationcontrollers"),
        ("", "resourcequotas"),
    ] {
        if !matching_resources(group, resource, names).is_empty() {
            out.insert((group.to_string(), resource.to_string()));
        }
    }
    out.extend(names.iter().filter_map(|n| counted_by(n)));
    out
}

/// The usage of a quota's names over the objects of one resource (`CalculateUsageStats`):
/// every matching name starts at zero, and objects outside the quota's scopes are skipped.
pub fn total<'a>(
    quota: &Value,
    group: &str,
    resource: &str,
    objects: impl IntoIterator<Item = &'a Value>,
    now: jiff::Timestamp,
) -> ResourceList {
    let names: Vec<String> = hard(quota).into_keys().collect();
    let matching = matching_resources(group, resource, &names);
    let mut used: ResourceList = matching
        .iter()
        .map(|n| (n.clone(), Quantity::zero()))
        .collect();
    for obj in objects {
        if in_scopes(quota, group, resource, obj) {
            used = list::add(&used, &usage(group, resource, obj, now));
        }
    }
    list::mask(&used, matching.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(ns: &[&str]) -> Vec<String> {
        ns.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn count_names_follow_the_group_resource() {
        assert_eq!(object_count_name("", "pods"), "count/pods");
        assert_eq!(
            object_count_name("apps", "deployments"),
            "count/deployments.apps"
        );
        assert_eq!(
            counted_by("count/widgets.example.com"),
            Some(("example.com".into(), "widgets".into()))
        );
        assert_eq!(counted_by("count/pods"), Some(("".into(), "pods".into())));
    }

    #[test]
    fn matching_resources_picks_each_evaluators_names() {
        let hard = names(&[
            "pods",
            "requests.cpu",
            "services.nodeports",
            "configmaps",
            "count/deployments.apps",
            "requests.storage",
            "gold.storageclass.storage.k8s.io/requests.storage",
            "requests.example.com/gpu",
        ]);
        assert_eq!(
            matching_resources("", "pods", &hard),
            names(&["pods", "requests.cpu", "requests.example.com/gpu"])
        );
        assert_eq!(
            matching_resources("", "services", &hard),
            names(&["services.nodeports"])
        );
        assert_eq!(
            matching_resources("", "configmaps", &hard),
            names(&["configmaps"])
        );
        assert_eq!(
            matching_resources("apps", "deployments", &hard),
            names(&["count/deployments.apps"])
        );
        assert_eq!(
            matching_resources("", "persistentvolumeclaims", &hard),
            names(&[
                "requests.storage",
                "gold.storageclass.storage.k8s.io/requests.storage"
            ])
        );
        let counted = counted_resources(&hard);
        assert!(counted.contains(&("apps".into(), "deployments".into())));
        assert!(counted.contains(&("".into(), "pods".into())));
        assert!(!counted.contains(&("".into(), "secrets".into())));
    }

    #[test]
    fn node_port_and_load_balancer_services_use_a_node_port_per_port() {
        let svc = |ty: &str| json!({"spec": {"type": ty, "ports": [{"port": 80}, {"port": 443}]}});
        let used = usage("", "services", &svc("NodePort"), jiff::Timestamp::now());
        assert_eq!(
            list::pretty(&used),
            "count/services=1,services=1,services.loadbalancers=0,services.nodeports=2"
        );
        let used = usage("", "services", &svc("LoadBalancer"), jiff::Timestamp::now());
        assert_eq!(used["services.loadbalancers"], Quantity::from_units(1));
        let used = usage("", "services", &svc("ClusterIP"), jiff::Timestamp::now());
        assert!(used["services.nodeports"].is_zero());
    }

    #[test]
    fn claims_charge_storage_to_their_class_too() {
        let pvc = json!({"spec": {"storageClassName": "gold",
            "resources": {"requests": {"storage": "1.5Gi"}}}});
        let used = usage("", "persistentvolumeclaims", &pvc, jiff::Timestamp::now());
        assert_eq!(
            list::pretty(&used),
            "count/persistentvolumeclaims=1,gold.storageclass.storage.k8s.io/persistentvolumeclaims=1,gold.storageclass.storage.k8s.io/requests.storage=1536Mi,persistentvolumeclaims=1,requests.storage=1536Mi"
        );
    }

    #[test]
    fn totals_start_at_zero_and_skip_objects_out_of_scope() {
        let quota = json!({"spec": {"hard": {"pods": "5", "requests.cpu": "2"}, "scopes": ["NotBestEffort"]}});
        let pods = [
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "500m"}}}]}}),
            json!({"spec": {"containers": [{"name": "c"}]}}),
        ];
        let used = total(&quota, "", "pods", &pods, jiff::Timestamp::now());
        assert_eq!(list::pretty(&used), "pods=1,requests.cpu=500m");
        let none: [Value; 0] = [];
        let used = total(&quota, "", "pods", &none, jiff::Timestamp::now());
        assert_eq!(list::pretty(&used), "pods=0,requests.cpu=0");
        assert!(matches(&quota, "", "pods", &pods[0]));
        assert!(!matches(&quota, "", "pods", &pods[1]));
        assert!(!matches(&quota, "", "services", &json!({})));
    }
}
