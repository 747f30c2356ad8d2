//! Rows for the apps group: deployments, replica sets, stateful sets, daemon sets and controller revisions.

use jiff::Timestamp;
use serde_json::Value;

use super::format::{NONE, Obj, container_cells, format_labels};
use super::selector::{format_label_selector, selector_string};
use super::{Column, docs};

pub(super) const CONTAINERS: &str = "Names of each container in the template.";
pub(super) const IMAGES: &str = "Images referenced by each container in the template.";
const READY: &str = "Number of the pod with ready state";

pub(super) fn deployment_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Ready", "string", READY),
        Column::new(
            "Up-to-date",
            "string",
            docs::DEPLOYMENT_STATUS_UPDATED_REPLICAS,
        ),
        Column::new(
            "Available",
            "string",
            docs::DEPLOYMENT_STATUS_AVAILABLE_REPLICAS,
        ),
        Column::age(),
        Column::wide("Containers", "string", CONTAINERS),
        Column::wide("Images", "string", IMAGES),
        Column::wide("Selector", "string", docs::DEPLOYMENT_SPEC_SELECTOR),
    ]
}

/// READY is ready/desired. The wide selector is the raw selector string: a deployment shows ""
/// rather than "<none>" for an empty one, and "<invalid>" for one Go cannot parse.
pub(super) fn deployment_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    let (names, images) = container_cells(o.child(&["spec", "template", "spec"]));
    let selector =
        selector_string(o.at(&["spec", "selector"])).unwrap_or_else(|_| "<invalid>".to_string());
    vec![
        o.name().into(),
        ready_of_desired(o).into(),
        o.int(&["status", "updatedReplicas"]).into(),
        o.int(&["status", "availableReplicas"]).into(),
        o.age(now),
        names,
        images,
        selector.into(),
    ]
}

fn ready_of_desired(o: Obj) -> String {
    format!(
        "{}/{}",
        o.int(&["status", "readyReplicas"]),
        o.int(&["spec", "replicas"])
    )
}

pub(super) fn replica_set_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Desired", "integer", docs::REPLICA_SET_SPEC_REPLICAS),
        Column::new("Current", "integer", docs::REPLICA_SET_STATUS_REPLICAS),
        Column::new("Ready", "integer", docs::REPLICA_SET_STATUS_READY_REPLICAS),
        Column::age(),
        Column::wide("Containers", "string", CONTAINERS),
        Column::wide("Images", "string", IMAGES),
        Column::wide("Selector", "string", docs::REPLICA_SET_SPEC_SELECTOR),
    ]
}

pub(super) fn replica_set_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
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
        format_label_selector(o.at(&["spec", "selector"])).into(),
    ]
}

pub(super) fn stateful_set_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Ready", "string", READY),
        Column::age(),
        Column::wide("Containers", "string", CONTAINERS),
        Column::wide("Images", "string", IMAGES),
    ]
}

pub(super) fn stateful_set_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    let (names, images) = container_cells(o.child(&["spec", "template", "spec"]));
    vec![
        o.name().into(),
        ready_of_desired(o).into(),
        o.age(now),
        names,
        images,
    ]
}

pub(super) fn daemon_set_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Desired",
            "integer",
            docs::DAEMON_SET_STATUS_DESIRED_NUMBER_SCHEDULED,
        ),
        Column::new(
            "Current",
            "integer",
            docs::DAEMON_SET_STATUS_CURRENT_NUMBER_SCHEDULED,
        ),
        Column::new("Ready", "integer", docs::DAEMON_SET_STATUS_NUMBER_READY),
        Column::new(
            "Up-to-date",
            "integer",
            docs::DAEMON_SET_STATUS_UPDATED_NUMBER_SCHEDULED,
        ),
        Column::new(
            "Available",
            "integer",
            docs::DAEMON_SET_STATUS_NUMBER_AVAILABLE,
        ),
        Column::new("Node Selector", "string", docs::POD_SPEC_NODE_SELECTOR),
        Column::age(),
        Column::wide("Containers", "string", CONTAINERS),
        Column::wide("Images", "string", IMAGES),
        Column::wide("Selector", "string", docs::DAEMON_SET_SPEC_SELECTOR),
    ]
}

pub(super) fn daemon_set_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    let (names, images) = container_cells(o.child(&["spec", "template", "spec"]));
    let status = |field: &str| Value::from(o.int(&["status", field]));
    vec![
        o.name().into(),
        status("desiredNumberScheduled"),
        status("currentNumberScheduled"),
        status("numberReady"),
        status("updatedNumberScheduled"),
        status("numberAvailable"),
        format_labels(o.map(&["spec", "template", "spec", "nodeSelector"])).into(),
        o.age(now),
        names,
        images,
        format_label_selector(o.at(&["spec", "selector"])).into(),
    ]
}

pub(super) fn controller_revision_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Controller", "string", "Controller of the object"),
        Column::new("Revision", "string", docs::CONTROLLER_REVISION_REVISION),
        Column::age(),
    ]
}

/// CONTROLLER is "kind.group/name" of the controlling owner, lower-cased, e.g. "daemonset.apps/fluentd".
pub(super) fn controller_revision_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let o = Obj(obj);
    let controller = o
        .items(&["metadata", "ownerReferences"])
        .find(|r| r.bool(&["controller"]))
        .map_or_else(|| NONE.to_string(), controller_name);
    vec![
        o.name().into(),
        controller.into(),
        o.int(&["revision"]).into(),
        o.age(now),
    ]
}

/// formatResourceName over the owner's GroupKind: "kind/name" for the core group, else
/// "kind.group/name"; an owner without a kind prints just its name.
fn controller_name(owner: Obj) -> String {
    let api_version = owner.str(&["apiVersion"]);
    // schema.ParseGroupVersion: "v1" is the core group, "apps/v1" is group "apps".
    let group = api_version.split_once('/').map_or("", |(group, _)| group);
    let kind = owner.str(&["kind"]);
    let name = owner.str(&["name"]);
    match (kind, group) {
        ("", "") => name.to_string(),
        (kind, "") => format!("{}/{name}", kind.to_lowercase()),
        (kind, group) => format!("{}/{name}", format!("{kind}.{group}").to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().expect("valid timestamp")
    }

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "web", "image": "nginx:1.25"}, {"name": "sidecar", "image": "envoy:v1"}]}})
    }

    #[test]
    fn deployment_with_two_of_three_ready_shows_two_slash_three_and_wide_cells() {
        let obj = json!({"metadata": {"name": "web", "creationTimestamp": "2024-04-29T09:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        assert_eq!(
            deployment_cells(&obj, now()),
            [
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("2d3h"),
                json!("web,sidecar"),
                json!("nginx:1.25,envoy:v1"),
                json!("app=web")
            ]
        );
    }

    #[test]
    fn deployment_with_an_empty_or_broken_selector() {
        let empty = json!({"spec": {"selector": {}}});
        assert_eq!(deployment_cells(&empty, now())[7], json!(""));
        let broken =
            json!({"spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}});
        assert_eq!(deployment_cells(&broken, now())[7], json!("<invalid>"));
        assert_eq!(deployment_cells(&broken, now())[1], json!("0/0"));
    }

    #[test]
    fn replica_set_shows_desired_current_ready_and_set_based_selector() {
        let obj = json!({"metadata": {"name": "web-5d4f"}, "spec": {"replicas": 2, "template": template(),
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "edge"]}]}},
            "status": {"replicas": 2, "readyReplicas": 1}});
        let row = replica_set_cells(&obj, now());
        assert_eq!(&row[1..4], [json!(2), json!(2), json!(1)]);
        assert_eq!(row[7], json!("app=web,tier in (edge,front)"));
    }

    #[test]
    fn stateful_set_shows_ready_of_desired() {
        let obj = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3, "template": template()}, "status": {"readyReplicas": 3}});
        assert_eq!(
            stateful_set_cells(&obj, now())[..2],
            [json!("db"), json!("3/3")]
        );
    }

    #[test]
    fn daemon_set_shows_scheduling_counts_and_node_selector() {
        let obj = json!({"metadata": {"name": "fluentd"}, "spec": {"selector": {"matchLabels": {"app": "fluentd"}},
            "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "f", "image": "fluentd"}]}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}});
        let row = daemon_set_cells(&obj, now());
        assert_eq!(
            &row[1..7],
            [
                json!(3),
                json!(3),
                json!(2),
                json!(3),
                json!(2),
                json!("kubernetes.io/os=linux")
            ]
        );
        assert_eq!(row[10], json!("app=fluentd"));
        assert_eq!(daemon_set_cells(&json!({}), now())[6], json!("<none>"));
    }

    #[test]
    fn controller_revision_names_its_controller_with_group() {
        let obj = json!({"metadata": {"name": "fluentd-7b9", "ownerReferences": [
            {"apiVersion": "v1", "kind": "Pod", "name": "other"},
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd", "controller": true}]}, "revision": 4});
        assert_eq!(
            controller_revision_cells(&obj, now())[1..3],
            [json!("daemonset.apps/fluentd"), json!(4)]
        );
        assert_eq!(
            controller_revision_cells(&json!({}), now())[1],
            json!("<none>")
        );
    }
}
