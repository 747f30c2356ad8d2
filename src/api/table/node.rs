//! The node row: Ready/NotReady and SchedulingDisabled, roles from labels, kubelet version, and the wide addresses and system info.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::Value;

use super::format::{NONE, Obj, UNKNOWN, or, or_none};
use super::{Column, docs};

const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";
const LEGACY_ROLE_LABEL: &str = "kubernetes.io/role";

pub(super) fn columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Status", "string", "The status of the node"),
        Column::new("Roles", "string", "The roles of the node"),
        Column::age(),
        Column::new("Version", "string", docs::NODE_SYSTEM_INFO_KUBELET_VERSION),
        Column::wide("Internal-IP", "string", docs::NODE_STATUS_ADDRESSES),
        Column::wide("External-IP", "string", docs::NODE_STATUS_ADDRESSES),
        Column::wide("OS-Image", "string", docs::NODE_SYSTEM_INFO_OS_IMAGE),
        Column::wide(
            "Kernel-Version",
            "string",
            docs::NODE_SYSTEM_INFO_KERNEL_VERSION,
        ),
        Column::wide(
            "Container-Runtime",
            "string",
            docs::NODE_SYSTEM_INFO_CONTAINER_RUNTIME_VERSION,
        ),
    ]
}

pub(super) fn cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let node = Obj(obj);
    let info = node.child(&["status", "nodeInfo"]);
    let mut kernel = or(info.str(&["kernelVersion"]), UNKNOWN);
    // Since kubernetes/kubernetes#132402 the architecture rides along in the kernel column.
    let arch = info.str(&["architecture"]);
    if !arch.is_empty() {
        kernel = format!("{kernel} ({arch})");
    }
    vec![
        node.name().into(),
        status(node).into(),
        or_none(&roles(node).join(",")).into(),
        node.age(now),
        info.str(&["kubeletVersion"]).into(),
        address(node, "InternalIP").into(),
        address(node, "ExternalIP").into(),
        or(info.str(&["osImage"]), UNKNOWN).into(),
        kernel.into(),
        or(info.str(&["containerRuntimeVersion"]), UNKNOWN).into(),
    ]
}

/// "Ready", "NotReady" or "Unknown" from the Ready condition (the last one listed wins, as in Go's
/// map), plus ",SchedulingDisabled" for a cordoned node.
fn status(node: Obj) -> String {
    let ready = node
        .items(&["status", "conditions"])
        .filter(|c| c.str(&["type"]) == "Ready")
        .last();
    let mut status = match ready {
        Some(c) if c.str(&["status"]) == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if node.bool(&["spec", "unschedulable"]) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

/// findNodeRoles: `node-role.kubernetes.io/<role>` label keys and `kubernetes.io/role` values, sorted.
fn roles(node: Obj) -> Vec<String> {
    let mut roles = BTreeSet::new();
    for (key, value) in node.map(&["metadata", "labels"]).into_iter().flatten() {
        if let Some(role) = key
            .strip_prefix(ROLE_LABEL_PREFIX)
            .filter(|r| !r.is_empty())
        {
            roles.insert(role.to_string());
        } else if key == LEGACY_ROLE_LABEL
            && let Some(role) = value.as_str().filter(|v| !v.is_empty())
        {
            roles.insert(role.to_string());
        }
    }
    roles.into_iter().collect()
}

/// The first address of a type, "<none>" when the node reports none.
fn address(node: Obj, type_: &str) -> String {
    node.items(&["status", "addresses"])
        .find(|a| a.str(&["type"]) == type_)
        .map_or_else(|| NONE.to_string(), |a| a.str(&["address"]).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().expect("valid timestamp")
    }

    #[test]
    fn ready_control_plane_node_shows_roles_version_and_wide_columns() {
        let obj = json!({
            "metadata": {"name": "cp-1", "creationTimestamp": "2024-04-20T12:00:00Z",
                         "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master", "kubernetes.io/os": "linux"}},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "cp-1"}, {"type": "InternalIP", "address": "172.18.0.2"}],
                "nodeInfo": {"kubeletVersion": "v1.31.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                             "kernelVersion": "6.8.0-51-generic", "architecture": "amd64",
                             "containerRuntimeVersion": "containerd://1.7.18"}
            }
        });
        assert_eq!(
            cells(&obj, now()),
            [
                json!("cp-1"),
                json!("Ready"),
                json!("control-plane,master"),
                json!("11d"),
                json!("v1.31.0"),
                json!("172.18.0.2"),
                json!("<none>"),
                json!("Debian GNU/Linux 12 (bookworm)"),
                json!("6.8.0-51-generic (amd64)"),
                json!("containerd://1.7.18")
            ]
        );
    }

    #[test]
    fn cordoned_node_without_ready_condition_is_unknown_and_scheduling_disabled() {
        let obj = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
        let row = cells(&obj, now());
        assert_eq!(
            &row[1..3],
            [json!("Unknown,SchedulingDisabled"), json!("<none>")]
        );
        assert_eq!(
            &row[7..],
            [json!("<unknown>"), json!("<unknown>"), json!("<unknown>")]
        );
    }

    #[test]
    fn node_whose_ready_condition_is_not_true_is_not_ready() {
        let obj = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(cells(&obj, now())[1], json!("NotReady"));
    }
}
