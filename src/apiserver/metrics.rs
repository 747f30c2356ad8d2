//! `metrics.k8s.io/v1beta1` (what metrics-server serves in a real cluster):
//! PodMetrics and NodeMetrics from the kubelets' usage samples, read-only and never
//! stored, so `kubectl top pod|node` and the HPA work.

use serde_json::{Value, json};

use super::Shared;
use super::nodes::{NodeUsage, PodUsage};
use super::request::{Query, Target};
use super::response::{self, Body};
use crate::api::error::ApiError;
use crate::api::selector::LabelSelector;

/// The group and version served.
pub const GROUP: &str = "metrics.k8s.io";
/// The only version.
pub const VERSION: &str = "v1beta1";

/// `GET /apis/metrics.k8s.io`.
pub(crate) fn group_doc() -> Value {
    let gv = json!({"groupVersion": format!("{GROUP}/{VERSION}"), "version": VERSION});
    json!({"name": GROUP, "versions": [gv.clone()], "preferredVersion": gv})
}

/// `GET /apis/metrics.k8s.io/v1beta1`.
pub(crate) fn resource_list() -> Value {
    let entry = |name: &str, kind: &str, namespaced: bool| json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": ["get", "list"]});
    json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{GROUP}/{VERSION}"),
        "resources": [entry("nodes", "NodeMetrics", false), entry("pods", "PodMetrics", true)],
    })
}

/// Kubernetes' canonical quantity forms for usage: nanocores `123n`, memory `Ki`.
fn cpu(nanocores: u64) -> String {
    format!("{nanocores}n")
}

fn memory(bytes: u64) -> String {
    format!("{}Ki", bytes.div_ceil(1024))
}

fn window(secs: f64) -> String {
    format!("{:.3}s", secs)
}

fn pod_metrics(p: &PodUsage) -> Value {
    json!({
        "kind": "PodMetrics", "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {"name": p.name, "namespace": p.namespace, "labels": p.labels, "creationTimestamp": p.timestamp},
        "timestamp": p.timestamp, "window": window(p.window_seconds),
        "containers": p.containers.iter().map(|c| json!({
            "name": c.name, "usage": {"cpu": cpu(c.nanocores), "memory": memory(c.memory_bytes)},
        })).collect::<Vec<_>>(),
    })
}

fn node_metrics(name: &str, n: &NodeUsage) -> Value {
    json!({
        "kind": "NodeMetrics", "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {"name": name, "creationTimestamp": n.timestamp},
        "timestamp": n.timestamp, "window": window(n.window_seconds),
        "usage": {"cpu": cpu(n.nanocores), "memory": memory(n.memory_bytes)},
    })
}

fn not_found(resource: &str, name: &str) -> ApiError {
    ApiError::not_found(GROUP, resource, name)
}

/// Serve a metrics request.
pub(crate) fn handle(
    s: &Shared,
    t: &Target,
    query: &Query,
) -> Result<http::Response<Body>, ApiError> {
    if t.version != VERSION || t.sub.is_some() {
        return Err(ApiError::path_not_found());
    }
    let selector = query
        .get("labelSelector")
        .map(LabelSelector::parse)
        .transpose()?;
    let list = |kind: &str, items: Vec<Value>| json!({"kind": kind, "apiVersion": format!("{GROUP}/{VERSION}"), "metadata": {}, "items": items});
    match t.resource.as_str() {
        "pods" => {
            let pods: Vec<PodUsage> = s
                .nodes
                .all()
                .iter()
                .flat_map(|(_, a)| a.pod_usage())
                .filter(|p| t.namespace.as_ref().is_none_or(|ns| *ns == p.namespace))
                .filter(|p| {
                    selector
                        .as_ref()
                        .is_none_or(|sel| sel.matches(&json!({"metadata": {"labels": p.labels}})))
                })
                .collect();
            match &t.name {
                Some(name) => pods
                    .iter()
                    .find(|p| p.name == *name)
                    .map(|p| response::json(200, &pod_metrics(p)))
                    .ok_or_else(|| not_found("pods", name)),
                None => Ok(response::json(
                    200,
                    &list("PodMetricsList", pods.iter().map(pod_metrics).collect()),
                )),
            }
        }
        "nodes" if t.namespace.is_none() => {
            let nodes: Vec<Value> = s
                .nodes
                .all()
                .iter()
                .filter(|(n, _)| t.name.as_ref().is_none_or(|want| want == n))
                .filter_map(|(n, a)| a.node_usage().map(|u| node_metrics(n, &u)))
                .collect();
            match &t.name {
                Some(name) => nodes
                    .into_iter()
                    .next()
                    .map(|n| response::json(200, &n))
                    .ok_or_else(|| not_found("nodes", name)),
                None => Ok(response::json(200, &list("NodeMetricsList", nodes))),
            }
        }
        _ => Err(ApiError::path_not_found()),
    }
}
