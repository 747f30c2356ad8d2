//! Rows for cluster-level and policy kinds: RBAC, autoscalers, leases, disruption budgets, CRDs, and the default "Created At" table.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::format::{NONE, Obj, UNKNOWN, UNSET, int_or_string, rfc3339};
use super::{Column, docs, quantity};

/// The API server's default table convertor (roles, cluster roles, limit ranges), whose second
/// column is an RFC 3339 date rather than an age.
pub(super) fn created_at_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Created At", "date", docs::OBJECT_META_CREATION_TIMESTAMP),
    ]
}

pub(super) fn created_at_cells(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    vec![
        o.name().into(),
        rfc3339(o.time(&["metadata", "creationTimestamp"])).into(),
    ]
}

pub(super) fn role_binding_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Role", "string", docs::ROLE_BINDING_ROLE_REF),
        Column::age(),
        Column::wide("Users", "string", "Users in the roleBinding"),
        Column::wide("Groups", "string", "Groups in the roleBinding"),
        Column::wide(
            "ServiceAccounts",
            "string",
            "ServiceAccounts in the roleBinding",
        ),
    ]
}

pub(super) fn cluster_role_binding_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Role", "string", docs::CLUSTER_ROLE_BINDING_ROLE_REF),
        Column::age(),
        Column::wide("Users", "string", "Users in the clusterRoleBinding"),
        Column::wide("Groups", "string", "Groups in the clusterRoleBinding"),
        Column::wide(
            "ServiceAccounts",
            "string",
            "ServiceAccounts in the clusterRoleBinding",
        ),
    ]
}

/// Role and cluster role bindings print alike; subjects of other kinds appear in no column.
pub(super) fn binding_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    let (mut users, mut groups, mut accounts) = (Vec::new(), Vec::new(), Vec::new());
    for subject in o.items(&["subjects"]) {
        let name = subject.str(&["name"]);
        match subject.str(&["kind"]) {
            "User" => users.push(name.to_string()),
            "Group" => groups.push(name.to_string()),
            "ServiceAccount" => accounts.push(format!("{}/{name}", subject.str(&["namespace"]))),
            _ => {}
        }
    }
    let role = format!(
        "{}/{}",
        o.str(&["roleRef", "kind"]),
        o.str(&["roleRef", "name"])
    );
    vec![
        o.name().into(),
        role.into(),
        o.age(now),
        users.join(", ").into(),
        groups.join(", ").into(),
        accounts.join(", ").into(),
    ]
}

pub(super) fn hpa_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Reference",
            "string",
            docs::HORIZONTAL_POD_AUTOSCALER_SPEC_SCALE_TARGET_REF,
        ),
        Column::new(
            "Targets",
            "string",
            docs::HORIZONTAL_POD_AUTOSCALER_SPEC_METRICS,
        ),
        Column::new(
            "MinPods",
            "string",
            docs::HORIZONTAL_POD_AUTOSCALER_SPEC_MIN_REPLICAS,
        ),
        Column::new(
            "MaxPods",
            "string",
            docs::HORIZONTAL_POD_AUTOSCALER_SPEC_MAX_REPLICAS,
        ),
        Column::new(
            "Replicas",
            "string",
            docs::HORIZONTAL_POD_AUTOSCALER_STATUS_CURRENT_REPLICAS,
        ),
        Column::age(),
    ]
}

pub(super) fn hpa_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    let (specs, statuses) = hpa_metrics(o);
    let reference = format!(
        "{}/{}",
        o.str(&["spec", "scaleTargetRef", "kind"]),
        o.str(&["spec", "scaleTargetRef", "name"])
    );
    let min_pods = o
        .opt_int(&["spec", "minReplicas"])
        .map_or_else(|| UNSET.to_string(), |n| n.to_string());
    vec![
        o.name().into(),
        reference.into(),
        format_hpa_metrics(&specs, &statuses).into(),
        min_pods.into(),
        o.int(&["spec", "maxReplicas"]).into(),
        o.int(&["status", "currentReplicas"]).into(),
        o.age(now),
    ]
}

/// The metric specs and statuses of an autoscaling/v2 object; an object stored in the
/// autoscaling/v1 shape has its CPU target converted the way the API server converts it.
fn hpa_metrics(o: Obj) -> (Vec<Value>, Vec<Value>) {
    let list = |path: &[&str]| o.items(path).map(|m| m.0.clone()).collect::<Vec<Value>>();
    let (mut specs, mut statuses) = (
        list(&["spec", "metrics"]),
        list(&["status", "currentMetrics"]),
    );
    if specs.is_empty()
        && let Some(target) = o.opt_int(&["spec", "targetCPUUtilizationPercentage"])
    {
        specs.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}));
    }
    if statuses.is_empty()
        && let Some(current) = o.opt_int(&["status", "currentCPUUtilizationPercentage"])
    {
        statuses.push(json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}));
    }
    (specs, statuses)
}

/// formatHPAMetrics: "current/target" per metric, matched to the status at the same index; at most
/// two, then a count of the rest.
fn format_hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    const MAX: usize = 2;
    if specs.is_empty() {
        return NONE.to_string();
    }
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| format_metric(Obj(spec), statuses.get(i).map(Obj)))
        .collect();
    if list.len() > MAX {
        format!("{} + {} more...", list[..MAX].join(", "), list.len() - MAX)
    } else {
        list.join(", ")
    }
}

fn format_metric(spec: Obj, status: Option<Obj>) -> String {
    // The status's source of the same type, when the status at this index has one.
    let source = |key: &str| status.and_then(|s| s.at(&[key])).map(Obj);
    match spec.str(&["type"]) {
        kind @ ("Resource" | "ContainerResource") => {
            let key = if kind == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let (target, current) = (spec.child(&[key, "target"]), source(key));
            let name = spec.str(&[key, "name"]);
            if let Some(average) = target.at(&["averageValue"]) {
                let current = current.map_or_else(unknown, |c| {
                    quantity::of_pointer(c.at(&["current", "averageValue"]))
                });
                format!("{name}: {current}/{}", quantity::of_pointer(Some(average)))
            } else {
                let percent = |o: Obj| o.opt_int(&["averageUtilization"]).map(|p| format!("{p}%"));
                let current = current
                    .and_then(|c| percent(c.child(&["current"])))
                    .unwrap_or_else(unknown);
                let target = percent(target).unwrap_or_else(|| "<auto>".to_string());
                format!("{name}: {current}/{target}")
            }
        }
        "Pods" => {
            let current = source("pods").map_or_else(unknown, |c| {
                quantity::of_pointer(c.at(&["current", "averageValue"]))
            });
            format!(
                "{current}/{}",
                quantity::of_pointer(spec.at(&["pods", "target", "averageValue"]))
            )
        }
        kind @ ("Object" | "External") => {
            let key = if kind == "Object" {
                "object"
            } else {
                "external"
            };
            let target = spec.child(&[key, "target"]);
            if let Some(average) = target.at(&["averageValue"]) {
                let current = source(key)
                    .and_then(|c| c.at(&["current", "averageValue"]))
                    .map_or_else(unknown, |v| quantity::of_pointer(Some(v)));
                format!("{current}/{} (avg)", quantity::of_pointer(Some(average)))
            } else {
                let current = source(key).map_or_else(unknown, |c| {
                    quantity::of_pointer(c.at(&["current", "value"]))
                });
                format!("{current}/{}", quantity::of_pointer(target.at(&["value"])))
            }
        }
        _ => "<unknown type>".to_string(),
    }
}

fn unknown() -> String {
    UNKNOWN.to_string()
}

pub(super) fn lease_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Holder", "string", docs::LEASE_SPEC_HOLDER_IDENTITY),
        Column::age(),
    ]
}

pub(super) fn lease_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    vec![
        o.name().into(),
        o.str(&["spec", "holderIdentity"]).into(),
        o.age(now),
    ]
}

pub(super) fn pdb_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Min Available",
            "string",
            "The minimum number of pods that must be available.",
        ),
        Column::new(
            "Max Unavailable",
            "string",
            "The maximum number of pods that may be unavailable.",
        ),
        Column::new(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time.",
        ),
        Column::age(),
    ]
}

pub(super) fn pdb_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    let bound = |field: &str| {
        o.at(&["spec", field])
            .map_or_else(|| "N/A".to_string(), int_or_string)
    };
    vec![
        o.name().into(),
        bound("minAvailable").into(),
        bound("maxUnavailable").into(),
        o.int(&["status", "disruptionsAllowed"]).into(),
        o.age(now),
    ]
}

/// The CRD table convertor apiextensions gained in kubernetes/kubernetes#131599.
pub(super) fn crd_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Scope", "string", "Cluster/Namespaced"),
        Column::new("Versions", "string", "Served versions"),
        Column::new("Created At", "date", docs::OBJECT_META_CREATION_TIMESTAMP),
        Column::wide("Group", "string", "API group"),
        Column::wide("Kind", "string", "CustomResource kind"),
        Column::wide("ShortNames", "string", "Short names"),
        Column::wide("Established", "boolean", "Established status"),
    ]
}

/// VERSIONS lists the served versions, the storage one marked, sorted as plain strings.
pub(super) fn crd_cells(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    let mut versions: Vec<String> = o
        .items(&["spec", "versions"])
        .filter(|v| v.bool(&["served"]))
        .map(|v| {
            let name = v.str(&["name"]);
            if v.bool(&["storage"]) {
                format!("{name}(storage)")
            } else {
                name.to_string()
            }
        })
        .collect();
    versions.sort();
    vec![
        o.name().into(),
        o.str(&["spec", "scope"]).into(),
        versions.join(",").into(),
        rfc3339(o.time(&["metadata", "creationTimestamp"])).into(),
        o.str(&["spec", "group"]).into(),
        o.str(&["spec", "names", "kind"]).into(),
        o.strings(&["spec", "names", "shortNames"]).join(",").into(),
        o.items(&["status", "conditions"])
            .any(|c| c.str(&["type"]) == "Established" && c.str(&["status"]) == "True")
            .into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().expect("valid timestamp")
    }

    #[test]
    fn role_binding_lists_subjects_by_kind_in_wide_columns() {
        let obj = json!({"metadata": {"name": "admins", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "ops"},
                         {"kind": "ServiceAccount", "namespace": "ci", "name": "deployer"}, {"kind": "User", "name": "bob"}]});
        assert_eq!(
            binding_cells(&obj, now()),
            [
                json!("admins"),
                json!("ClusterRole/admin"),
                json!("60m"),
                json!("alice, bob"),
                json!("ops"),
                json!("ci/deployer")
            ]
        );
    }

    #[test]
    fn hpa_shows_cpu_utilization_against_its_target() {
        let obj = json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 10,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]},
            "status": {"currentReplicas": 2, "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 20, "averageValue": "100m"}}}]}});
        assert_eq!(
            hpa_cells(&obj, now()),
            [
                json!("web"),
                json!("Deployment/web"),
                json!("cpu: 20%/50%"),
                json!("1"),
                json!(10),
                json!(2),
                json!("60m")
            ]
        );
    }

    #[test]
    fn hpa_without_current_metrics_shows_unknown_and_counts_extra_metrics() {
        let obj = json!({"spec": {"maxReplicas": 5, "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]}});
        let row = hpa_cells(&obj, now());
        assert_eq!(
            row[2],
            json!("cpu: <unknown>/50%, memory: <unknown>/1Gi + 1 more...")
        );
        assert_eq!(row[3], json!("<unset>"));
    }

    #[test]
    fn hpa_object_external_and_pods_metrics() {
        let specs = [
            json!({"type": "Object", "object": {"target": {"type": "Value", "value": "2k"}}}),
            json!({"type": "External", "external": {"target": {"type": "AverageValue", "averageValue": "30"}}}),
            json!({"type": "Pods", "pods": {"target": {"averageValue": "1"}}}),
            json!({"type": "Weird"}),
        ];
        let statuses = [
            json!({"type": "Object", "object": {"current": {"value": "1500"}}}),
            json!({"type": "External", "external": {"current": {"value": "3"}}}),
            json!({"type": "Pods", "pods": {"current": {"averageValue": "500m"}}}),
        ];
        let one = |i: usize| format_metric(Obj(&specs[i]), statuses.get(i).map(Obj));
        assert_eq!(
            [one(0), one(1), one(2), one(3)],
            ["1500/2k", "<unknown>/30 (avg)", "500m/1", "<unknown type>"]
        );
    }

    #[test]
    fn hpa_stored_as_autoscaling_v1_converts_its_cpu_target() {
        let obj = json!({"spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 80}, "status": {"currentCPUUtilizationPercentage": 41}});
        assert_eq!(hpa_cells(&obj, now())[2], json!("cpu: 41%/80%"));
        assert_eq!(hpa_cells(&json!({}), now())[2], json!("<none>"));
    }

    #[test]
    fn lease_shows_its_holder() {
        let obj = json!({"metadata": {"name": "kube-scheduler"}, "spec": {"holderIdentity": "cp-1_0f3c"}});
        assert_eq!(
            lease_cells(&obj, now())[..2],
            [json!("kube-scheduler"), json!("cp-1_0f3c")]
        );
    }

    #[test]
    fn pod_disruption_budget_shows_bounds_or_not_applicable() {
        let obj = json!({"metadata": {"name": "web"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            pdb_cells(&obj, now())[..4],
            [json!("web"), json!("50%"), json!("N/A"), json!(1)]
        );
        let by_count = json!({"spec": {"maxUnavailable": 1}});
        assert_eq!(
            pdb_cells(&by_count, now())[1..4],
            [json!("N/A"), json!("1"), json!(0)]
        );
    }

    #[test]
    fn crd_shows_scope_served_versions_and_wide_details() {
        let obj = json!({"metadata": {"name": "widgets.example.com", "creationTimestamp": "2024-03-02T10:20:30Z"},
            "spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": "Widget", "shortNames": ["wd", "wdg"]},
                     "versions": [{"name": "v1beta1", "served": true, "storage": false}, {"name": "v1", "served": true, "storage": true},
                                  {"name": "v1alpha1", "served": false, "storage": false}]},
            "status": {"conditions": [{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]}});
        assert_eq!(
            crd_cells(&obj, now()),
            [
                json!("widgets.example.com"),
                json!("Namespaced"),
                json!("v1(storage),v1beta1"),
                json!("2024-03-02T10:20:30Z"),
                json!("example.com"),
                json!("Widget"),
                json!("wd,wdg"),
                json!(true)
            ]
        );
    }
}
