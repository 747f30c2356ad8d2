//! Downward API values as the kubelet writes them into files: pod metadata
//! (`fieldRef`) and container resources (`resourceFieldRef`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, ResourceFieldSelector};

use crate::api::quantity::Quantity;
use crate::api::validation::go_quote;

/// `fieldpath.FormatMap`: one `key="value"` line per entry, sorted by key, no
/// trailing newline.
pub(super) fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `fieldpath.ExtractFieldPathAsString` for the paths a downwardAPI volume allows.
pub(super) fn field(pod: &Pod, path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(str::to_owned)
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        _ => {
            if let Some(key) = subscript("metadata.labels['") {
                meta.labels
                    .as_ref()
                    .and_then(|m| m.get(&key))
                    .cloned()
                    .unwrap_or_default()
            } else if let Some(key) = subscript("metadata.annotations['") {
                meta.annotations
                    .as_ref()
                    .and_then(|m| m.get(&key))
                    .cloned()
                    .unwrap_or_default()
            } else {
                return Err(format!("unsupported fieldPath: {path}"));
            }
        }
    })
}

/// `ceil(a / b)` for positive `b`.
fn ceil_div(a: i128, b: i128) -> i128 {
    a.div_euclid(b) + i128::from(a.rem_euclid(b) != 0)
}

/// `ExtractResourceValueByContainerNameAndNodeAllocatable`: a container's limit or
/// request in units of `divisor` (default 1), rounded up. An unset limit is the
/// node's allocatable, as the kubelet merges it; an unset request is the limit
/// (the API server's defaulting), else 0.
pub(in crate::kubelet) fn resource(
    pod: &Pod,
    sel: &ResourceFieldSelector,
    allocatable: &BTreeMap<String, String>,
) -> Result<String, String> {
    let container_name = sel.container_name.as_deref().unwrap_or_default();
    let container = pod
        .spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .find(|c| c.name == container_name)
        .ok_or_else(|| format!("container {container_name} not found"))?;
    let (kind, name) = sel
        .resource
        .split_once('.')
        .filter(|(k, n)| {
            matches!(*k, "limits" | "requests")
                && (matches!(*n, "cpu" | "memory" | "ephemeral-storage")
                    || n.starts_with("hugepages-"))
        })
        .ok_or_else(|| format!("unsupported container resource : {}", sel.resource))?;
    let resources = container.resources.as_ref();
    let get = |which: &str| {
        resources
            .and_then(|r| match which {
                "limits" => r.limits.as_ref(),
                _ => r.requests.as_ref(),
            })
            .and_then(|m| m.get(name))
            .and_then(|q| Quantity::parse(&q.0))
    };
    let limit = || get("limits").or_else(|| allocatable.get(name).and_then(|q| Quantity::parse(q)));
    let value = match kind {
        "limits" => limit(),
        _ => get("requests").or_else(|| get("limits")),
    };
    let zero = Quantity::parse("0").ok_or("parsing 0")?;
    let value = value.unwrap_or(zero);
    let divisor = sel
        .divisor
        .as_ref()
        .and_then(|d| Quantity::parse(&d.0))
        .filter(|d| !d.is_zero())
        .or_else(|| Quantity::parse("1"))
        .ok_or("parsing 1")?;
    let n = if name == "cpu" {
        ceil_div(value.ceil_millis(), divisor.ceil_millis().max(1))
    } else {
        ceil_div(value.ceil_units(), divisor.ceil_units().max(1))
    };
    Ok(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u-1",
                "labels": {"zone": "us-est-coast", "cluster": "test-cluster1", "rack": "rack-22"},
                "annotations": {"build": "two", "builder": "john-doe", "quote": "a \"b\"\n"}},
            "spec": {"containers": [{"name": "c", "resources": {
                "limits": {"cpu": "250m", "memory": "64Mi"},
                "requests": {"memory": "32Mi"}}}]}
        }))
        .expect("pod")
    }

    #[test]
    fn labels_are_sorted_key_quoted_value_lines_like_the_kubelet() {
        let p = pod();
        assert_eq!(
            field(&p, "metadata.labels").expect("labels"),
            "cluster=\"test-cluster1\"\nrack=\"rack-22\"\nzone=\"us-est-coast\""
        );
        assert_eq!(
            field(&p, "metadata.annotations").expect("annotations"),
            "build=\"two\"\nbuilder=\"john-doe\"\nquote=\"a \\\"b\\\"\\n\""
        );
        assert_eq!(
            field(&p, "metadata.labels['rack']").expect("one"),
            "rack-22"
        );
        assert_eq!(field(&p, "metadata.uid").expect("uid"), "u-1");
        assert!(field(&p, "spec.nodeName").is_err());
    }

    #[test]
    fn resources_divide_and_round_up_and_unset_limits_are_the_node_allocatable() {
        let p = pod();
        let sel = |resource: &str, divisor: Option<&str>| ResourceFieldSelector {
            container_name: Some("c".into()),
            resource: resource.into(),
            divisor: divisor
                .map(|d| k8s_openapi::apimachinery::pkg::api::resource::Quantity(d.into())),
        };
        let node: BTreeMap<String, String> =
            [("ephemeral-storage".to_string(), "1Gi".to_string())].into();
        assert_eq!(
            resource(&p, &sel("limits.cpu", None), &node).expect("cpu"),
            "1"
        );
        assert_eq!(
            resource(&p, &sel("limits.cpu", Some("1m")), &node).expect("m"),
            "250"
        );
        assert_eq!(
            resource(&p, &sel("limits.memory", Some("1Mi")), &node).expect("mem"),
            "64"
        );
        assert_eq!(
            resource(&p, &sel("requests.memory", Some("1Mi")), &node).expect("req"),
            "32"
        );
        assert_eq!(
            resource(&p, &sel("requests.cpu", Some("1m")), &node).expect("req cpu"),
            "250"
        );
        assert_eq!(
            resource(&p, &sel("limits.ephemeral-storage", Some("1Mi")), &node).expect("node"),
            "1024"
        );
        assert!(resource(&p, &sel("limits.gpu", None), &node).is_err());
    }
}
