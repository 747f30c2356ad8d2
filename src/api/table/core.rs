//! Rows for the simpler core kinds: namespaces, config maps, secrets, service accounts, pod templates, replication controllers, resource quotas.

use jiff::Timestamp;
use serde_json::Value;

use super::format::{Obj, container_cells, format_labels};
use super::workloads::{CONTAINERS, IMAGES};
use super::{Column, docs, quantity};

pub(super) fn namespace_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Status", "string", "The status of the namespace"),
        Column::age(),
    ]
}

pub(super) fn namespace_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    vec![
        o.name().into(),
        o.str(&["status", "phase"]).into(),
        o.age(now),
    ]
}

pub(super) fn config_map_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Data", "string", docs::CONFIG_MAP_DATA),
        Column::age(),
    ]
}

/// DATA counts both text and binary entries.
pub(super) fn config_map_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    let entries = o.len(&["data"]) + o.len(&["binaryData"]);
    vec![o.name().into(), entries.into(), o.age(now)]
}

pub(super) fn secret_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Type", "string", docs::SECRET_TYPE),
        Column::new("Data", "string", docs::SECRET_DATA),
        Column::age(),
    ]
}

pub(super) fn secret_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    vec![
        o.name().into(),
        o.str(&["type"]).into(),
        o.len(&["data"]).into(),
        o.age(now),
    ]
}

pub(super) fn service_account_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Secrets", "string", docs::SERVICE_ACCOUNT_SECRETS),
        Column::age(),
    ]
}

pub(super) fn service_account_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    vec![o.name().into(), o.len(&["secrets"]).into(), o.age(now)]
}

pub(super) fn pod_template_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Containers", "string", CONTAINERS),
        Column::new("Images", "string", IMAGES),
        Column::new("Pod Labels", "string", "The labels for the pod template."),
    ]
}

/// A pod template has no AGE column: Kubernetes never gave it one.
pub(super) fn pod_template_cells(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    let (names, images) = container_cells(o.child(&["template", "spec"]));
    vec![
        o.name().into(),
        names,
        images,
        format_labels(o.map(&["template", "metadata", "labels"])).into(),
    ]
}

pub(super) fn replication_controller_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Desired",
            "integer",
            docs::REPLICATION_CONTROLLER_SPEC_REPLICAS,
        ),
        Column::new(
            "Current",
            "integer",
            docs::REPLICATION_CONTROLLER_STATUS_REPLICAS,
        ),
        Column::new(
            "Ready",
            "integer",
            docs::REPLICATION_CONTROLLER_STATUS_READY_REPLICAS,
        ),
        Column::age(),
        Column::wide("Containers", "string", CONTAINERS),
        Column::wide("Images", "string", IMAGES),
        Column::wide(
            "Selector",
            "string",
            docs::REPLICATION_CONTROLLER_SPEC_SELECTOR,
        ),
    ]
}

/// A replication controller's selector is a plain label map, printed as a label set.
pub(super) fn replication_controller_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    let (names, images) = container_cells(o.child(&["spec", "template", "spec"]));
    vec![
        o.name().into(),
        o.int(&["spec", "replicas"]).into(),
        o.int(&["status", "replicas"]).into(),
        o.int(&["status", "readyReplicas"]).into(),
        o.age(now),
        names,
        images,
        format_labels(o.map(&["spec", "selector"])).into(),
    ]
}

pub(super) fn resource_quota_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Request",
            "string",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        Column::new(
            "Limit",
            "string",
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
        ),
        Column::age(),
    ]
}

/// "resource: used/hard" per hard limit in name order; names starting "limits." go to LIMIT.
pub(super) fn resource_quota_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    let mut names: Vec<&String> = o
        .map(&["status", "hard"])
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .collect();
    names.sort();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for name in names {
        let used = quantity::of_value(o.at(&["status", "used", name.as_str()]));
        let hard = quantity::of_value(o.at(&["status", "hard", name.as_str()]));
        let entry = format!("{name}: {used}/{hard}");
        match name.split_once('.') {
            Some(("limits", _)) => limits.push(entry),
            _ => requests.push(entry),
        }
    }
    vec![
        o.name().into(),
        requests.join(", ").into(),
        limits.join(", ").into(),
        o.age(now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().expect("valid timestamp")
    }

    fn meta(name: &str) -> Value {
        json!({"name": name, "creationTimestamp": "2024-04-30T12:00:00Z"})
    }

    #[test]
    fn namespace_shows_its_phase() {
        let obj = json!({"metadata": meta("dev"), "status": {"phase": "Terminating"}});
        assert_eq!(
            namespace_cells(&obj, now()),
            [json!("dev"), json!("Terminating"), json!("24h")]
        );
    }

    #[test]
    fn config_map_counts_text_and_binary_data() {
        let obj = json!({"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(
            config_map_cells(&obj, now()),
            [json!("cfg"), json!(3), json!("24h")]
        );
    }

    #[test]
    fn secret_shows_type_and_data_count() {
        let obj = json!({"metadata": meta("tls"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(
            secret_cells(&obj, now()),
            [
                json!("tls"),
                json!("kubernetes.io/tls"),
                json!(2),
                json!("24h")
            ]
        );
    }

    #[test]
    fn service_account_counts_its_secrets() {
        let obj = json!({"metadata": meta("default")});
        assert_eq!(
            service_account_cells(&obj, now()),
            [json!("default"), json!(0), json!("24h")]
        );
    }

    #[test]
    fn pod_template_shows_containers_images_and_pod_labels() {
        let obj = json!({"metadata": meta("tpl"), "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}});
        assert_eq!(
            pod_template_cells(&obj, now()),
            [json!("tpl"), json!("web"), json!("nginx"), json!("app=web")]
        );
    }

    #[test]
    fn replication_controller_shows_counts_and_its_wide_selector() {
        let obj = json!({"metadata": meta("rc"), "spec": {"replicas": 3, "selector": {"app": "web"},
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
            "status": {"replicas": 3, "readyReplicas": 2}});
        assert_eq!(
            replication_controller_cells(&obj, now()),
            [
                json!("rc"),
                json!(3),
                json!(3),
                json!(2),
                json!("24h"),
                json!("web"),
                json!("nginx"),
                json!("app=web")
            ]
        );
    }

    #[test]
    fn resource_quota_splits_requests_from_limits() {
        let obj = json!({"metadata": meta("quota"), "status": {
            "hard": {"requests.cpu": "2", "limits.memory": "2Gi", "pods": "10", "requests.memory": "1024Mi"},
            "used": {"requests.cpu": "500m", "limits.memory": "512Mi", "pods": "3"}}});
        assert_eq!(
            resource_quota_cells(&obj, now()),
            [
                json!("quota"),
                json!("pods: 3/10, requests.cpu: 500m/2, requests.memory: 0/1Gi"),
                json!("limits.memory: 512Mi/2Gi"),
                json!("24h")
            ]
        );
    }
}
