//! What a pod counts against quota: its total requests and limits (the sidecar-aware
//! formula of Kubernetes' `resourcehelper.PodRequests`), whether it still counts at
//! all, the quota scopes it falls in, and the "must specify" rule for cpu and memory.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::list::{self, ResourceList};
use crate::api::quantity::Quantity;
use crate::api::selector::LabelSelector;

/// Resources a pod-level `spec.resources` may set (the PodLevelResources feature).
const POD_LEVEL: [&str; 2] = ["cpu", "memory"];

/// The quota names a container must set when a quota limits them: a historical
/// mistake Kubernetes keeps for compatibility and never extends.
const VALIDATION_SET: [&str; 6] = [
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

fn containers<'a>(spec: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    spec.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// `addResourceList`: adds `b` into `a`.
fn add_into(a: &mut ResourceList, b: &ResourceList) {
    *a = list::add(a, b);
}

/// `maxResourceList`: raises each entry of `a` to `b`'s where `b`'s is larger.
fn max_into(a: &mut ResourceList, b: &ResourceList) {
    for (k, q) in b {
        match a.get(k) {
            Some(cur) if cur >= q => {}
            _ => {
                a.insert(k.clone(), *q);
            }
        }
    }
}

/// The pod's total `requests` or `limits` (`field`): regular and restartable init
/// (sidecar) containers add up, and each ordinary init container, plus the sidecars
/// started before it, raises the total to its own need.
fn aggregate(spec: &Value, field: &str) -> ResourceList {
    let of = |c: &Value| list::parse(c.pointer(&format!("/resources/{field}")));
    let mut total = ResourceList::new();
    for c in containers(spec, "containers") {
        add_into(&mut total, &of(c));
    }
    let mut sidecars = ResourceList::new();
    let mut init = ResourceList::new();
    for c in containers(spec, "initContainers") {
        let own = of(c);
        let need = if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            add_into(&mut total, &own);
            add_into(&mut sidecars, &own);
            sidecars.clone()
        } else {
            list::add(&own, &sidecars)
        };
        max_into(&mut init, &need);
    }
    max_into(&mut total, &init);
    // Pod-level resources, where set, replace the containers' sum.
    for (k, q) in list::parse(spec.pointer(&format!("/resources/{field}"))) {
        if POD_LEVEL.contains(&k.as_str()) {
            total.insert(k, q);
        }
    }
    total
}

/// The pod's total requests, as quota and the scheduler see them (overhead included).
pub fn requests(spec: &Value) -> ResourceList {
    let mut total = aggregate(spec, "requests");
    add_into(&mut total, &list::parse(spec.get("overhead")));
    total
}

/// The pod's total limits (overhead added to the limits that are set).
pub fn limits(spec: &Value) -> ResourceList {
    let mut total = aggregate(spec, "limits");
    for (k, q) in list::parse(spec.get("overhead")) {
        if let Some(v) = total.get_mut(&k) {
            *v = v.add(&q);
        }
    }
    total
}

/// The pod's total (requests, limits) without overhead, as the LimitRanger checks a
/// `type: Pod` limit.
pub fn container_totals(spec: &Value) -> (ResourceList, ResourceList) {
    (aggregate(spec, "requests"), aggregate(spec, "limits"))
}

/// Extended resources: a domain-qualified name outside `kubernetes.io`.
fn is_extended(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    !native && !name.starts_with("requests.")
}

/// `podComputeUsageHelper`: the quota names a set of requests and limits uses.
pub fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".into(), Quantity::from_units(1));
    for r in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(r) {
            out.insert(r.into(), *q);
            out.insert(format!("requests.{r}"), *q);
        }
        if let Some(q) = limits.get(r) {
            out.insert(format!("limits.{r}"), *q);
        }
    }
    for (r, q) in requests {
        if r.starts_with("hugepages-") {
            out.insert(r.clone(), *q);
            out.insert(format!("requests.{r}"), *q);
        }
        if is_extended(r) {
            out.insert(format!("requests.{r}"), *q);
        }
    }
    out
}

/// `QuotaV1Pod`: terminal pods, and pods whose deletion grace period has run out, no
/// longer use compute quota.
pub fn counts(pod: &Value, now: jiff::Timestamp) -> bool {
    if matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    ) {
        return false;
    }
    let deleted = pod
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let grace = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    if let (Some(at), Some(grace)) = (deleted, grace)
        && let Ok(until) = at.checked_add(jiff::SignedDuration::from_secs(grace))
    {
        return now <= until;
    }
    true
}

/// `PodUsageFunc`: `count/pods` always; compute resources while the pod counts.
pub fn usage(pod: &Value, now: jiff::Timestamp) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("count/pods".into(), Quantity::from_units(1));
    if !counts(pod, now) {
        return out;
    }
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    list::add(&out, &compute_usage(&requests(spec), &limits(spec)))
}

/// The pod's QoS class is BestEffort: no cpu or memory request or limit anywhere.
fn is_best_effort(spec: &Value) -> bool {
    let sets_compute = |res: Option<&Value>| {
        ["requests", "limits"].iter().any(|f| {
            let l = list::parse(res.and_then(|r| r.get(*f)));
            POD_LEVEL
                .iter()
                .any(|r| l.get(*r).is_some_and(|q| !q.is_zero()))
        })
    };
    !sets_compute(spec.get("resources"))
        && containers(spec, "containers")
            .chain(containers(spec, "initContainers"))
            .all(|c| !sets_compute(c.get("resources")))
}

fn cross_namespace_affinity(spec: &Value) -> bool {
    let cross = |t: &Value| {
        t.get("namespaces")
            .and_then(Value::as_array)
            .is_some_and(|n| !n.is_empty())
            || t.get("namespaceSelector").is_some_and(|s| !s.is_null())
    };
    ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
        let Some(a) = spec.pointer(&format!("/affinity/{kind}")) else {
            return false;
        };
        let required = a
            .get("requiredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(cross);
        let preferred = a
            .get("preferredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|w| w.get("podAffinityTerm"))
            .any(cross);
        required || preferred
    })
}

/// `podMatchesScopeFunc`: whether a pod falls in one scope selector requirement
/// (`{scopeName, operator, values}`).
pub fn matches_scope(pod: &Value, requirement: &Value) -> bool {
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let scope = requirement
        .get("scopeName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let terminating = spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|s| s >= 0);
    match scope {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => is_best_effort(spec),
        "NotBestEffort" => !is_best_effort(spec),
        "CrossNamespacePodAffinity" => cross_namespace_affinity(spec),
        "PriorityClass" => {
            let class = spec
                .get("priorityClassName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let operator = requirement.get("operator").and_then(Value::as_str);
            if operator == Some("Exists") {
                return !class.is_empty();
            }
            let selector = json!({"matchExpressions": [{
                "key": "PriorityClass",
                "operator": operator,
                "values": requirement.get("values").cloned().unwrap_or(json!([])),
            }]});
            let labels = if class.is_empty() {
                json!({})
            } else {
                json!({"PriorityClass": class})
            };
            LabelSelector::from_object(Some(&selector))
                .is_ok_and(|s| s.matches(&json!({"metadata": {"labels": labels}})))
        }
        _ => false,
    }
}

/// The pod evaluator's `Constraints`: when a quota limits cpu or memory, every
/// container must state it. `Err` carries `must specify limits.cpu for: a,b; …`.
pub fn constraints(required: &[String], pod: &Value) -> Result<(), String> {
    let required: BTreeSet<&str> = required
        .iter()
        .map(String::as_str)
        .filter(|r| VALIDATION_SET.contains(r))
        .collect();
    if required.is_empty() {
        return Ok(());
    }
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for c in containers(spec, "containers").chain(containers(spec, "initContainers")) {
        let used = compute_usage(
            &list::parse(c.pointer("/resources/requests")),
            &list::parse(c.pointer("/resources/limits")),
        );
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        for r in required.iter().filter(|r| !used.contains_key(**r)) {
            missing.entry(r).or_default().insert(name.to_string());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            format!(
                "{r} for: {}",
                names.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Err(format!("must specify {}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": spec})
    }

    fn container(name: &str, requests: Value, limits: Value) -> Value {
        json!({"name": name, "resources": {"requests": requests, "limits": limits}})
    }

    #[test]
    fn containers_add_up_and_init_containers_raise_to_their_peak() {
        let spec = json!({
            "containers": [
                container("a", json!({"cpu": "100m", "memory": "64Mi"}), json!({})),
                container("b", json!({"cpu": "200m"}), json!({})),
            ],
            "initContainers": [container("i", json!({"cpu": "1", "memory": "32Mi"}), json!({}))],
        });
        assert_eq!(
            list::to_json(&requests(&spec)),
            json!({"cpu": "1", "memory": "64Mi"})
        );
    }

    #[test]
    fn sidecars_run_beside_later_init_containers_and_the_app() {
        let mut sidecar = container("s", json!({"cpu": "300m"}), json!({}));
        sidecar["restartPolicy"] = json!("Always");
        let spec = json!({
            "containers": [container("a", json!({"cpu": "100m"}), json!({}))],
            "initContainers": [sidecar, container("i", json!({"cpu": "500m"}), json!({}))],
        });
        // max(app 100m + sidecar 300m, init 500m + sidecar 300m)
        assert_eq!(list::to_json(&requests(&spec)), json!({"cpu": "800m"}));
    }

    #[test]
    fn usage_counts_compute_names_only_while_the_pod_counts() {
        let now = jiff::Timestamp::now();
        let mut p = pod(json!({"containers": [container(
            "c", json!({"cpu": "250m", "memory": "64Mi"}), json!({"cpu": "500m"}))]}));
        assert_eq!(
            list::to_json(&usage(&p, now)),
            json!({"count/pods": "1", "cpu": "250m", "limits.cpu": "500m", "memory": "64Mi",
                   "pods": "1", "requests.cpu": "250m", "requests.memory": "64Mi"})
        );
        p["status"] = json!({"phase": "Succeeded"});
        assert_eq!(list::to_json(&usage(&p, now)), json!({"count/pods": "1"}));
    }

    #[test]
    fn a_pod_past_its_deletion_grace_period_stops_counting() {
        let p = json!({"metadata": {"deletionTimestamp": "2024-05-01T12:00:00Z",
                                    "deletionGracePeriodSeconds": 30}});
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("timestamp");
        assert!(counts(&p, at("2024-05-01T12:00:30Z")));
        assert!(!counts(&p, at("2024-05-01T12:00:31Z")));
    }

    #[test]
    fn constraints_name_each_missing_resource_with_its_containers() {
        let p = pod(json!({"containers": [
            container("a", json!({}), json!({})),
            container("b", json!({"cpu": "1"}), json!({"cpu": "1"})),
        ]}));
        let required = ["limits.cpu", "limits.memory", "pods"].map(String::from);
        assert_eq!(
            constraints(&required, &p),
            Err("must specify limits.cpu for: a; limits.memory for: a,b".into())
        );
        assert_eq!(constraints(&["pods".into()], &p), Ok(()));
    }

    #[test]
    fn scopes_follow_qos_deadline_and_priority_class() {
        let best_effort = pod(json!({"containers": [{"name": "c"}], "activeDeadlineSeconds": 5}));
        let scope = |name: &str| json!({"scopeName": name, "operator": "Exists"});
        assert!(matches_scope(&best_effort, &scope("BestEffort")));
        assert!(!matches_scope(&best_effort, &scope("NotBestEffort")));
        assert!(matches_scope(&best_effort, &scope("Terminating")));
        let high = pod(json!({"priorityClassName": "high"}));
        let r#in = json!({"scopeName": "PriorityClass", "operator": "In", "values": ["high"]});
        assert!(matches_scope(&high, &r#in));
        assert!(!matches_scope(&best_effort, &r#in));
        assert!(matches_scope(&high, &scope("PriorityClass")));
    }
}
