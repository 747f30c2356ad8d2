//! The Service fields allocation reads and writes, over the JSON object: type,
//! cluster IPs, node ports, the health-check node port, and the type predicates
//! the registry decides by (`needsClusterIP`, `needsNodePort`, `needsHCNodePort`).

use serde_json::{Map, Value};

/// `spec.type` (`ClusterIP` when unset, as defaulting makes it).
pub(super) fn service_type(svc: &Value) -> &str {
    svc.pointer("/spec/type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or("ClusterIP")
}

/// Every type but ExternalName has cluster IPs (or `None`).
pub(super) fn needs_cluster_ip(svc: &Value) -> bool {
    service_type(svc) != "ExternalName"
}

/// NodePort and LoadBalancer Services have node ports.
pub(super) fn needs_node_port(svc: &Value) -> bool {
    matches!(service_type(svc), "NodePort" | "LoadBalancer")
}

/// Whether new ports are allocated for ports that ask for none: always for
/// NodePort, for LoadBalancer unless `allocateLoadBalancerNodePorts` is false.
pub(super) fn allocates_node_ports(svc: &Value) -> bool {
    match service_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => svc
            .pointer("/spec/allocateLoadBalancerNodePorts")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        _ => false,
    }
}

/// A LoadBalancer with `externalTrafficPolicy: Local` has a health-check node port.
pub(super) fn needs_health_check(svc: &Value) -> bool {
    service_type(svc) == "LoadBalancer"
        && svc
            .pointer("/spec/externalTrafficPolicy")
            .and_then(Value::as_str)
            == Some("Local")
}

/// `spec.clusterIP` (`""` when unset).
pub(super) fn cluster_ip(svc: &Value) -> &str {
    svc.pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `spec.clusterIPs` (empty when unset).
pub(super) fn cluster_ips(svc: &Value) -> Vec<String> {
    strings(svc, "clusterIPs")
}

/// `spec.ipFamilies` (empty when unset).
pub(super) fn ip_families(svc: &Value) -> Vec<String> {
    strings(svc, "ipFamilies")
}

fn strings(svc: &Value, field: &str) -> Vec<String> {
    svc.get("spec")
        .and_then(|s| s.get(field))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `spec.ports` (empty when unset).
pub(super) fn ports(svc: &Value) -> &[Value] {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `spec.ports`, to change in place.
pub(super) fn ports_mut(svc: &mut Value) -> &mut [Value] {
    svc.pointer_mut("/spec/ports")
        .and_then(Value::as_array_mut)
        .map_or(&mut [], Vec::as_mut_slice)
}

/// A port's `nodePort` (0 when unset).
pub(super) fn node_port(port: &Value) -> i64 {
    port.get("nodePort").and_then(Value::as_i64).unwrap_or(0)
}

/// A port's `port` number (0 when unset).
pub(super) fn port_number(port: &Value) -> i64 {
    port.get("port").and_then(Value::as_i64).unwrap_or(0)
}

/// The node ports a Service holds (non-zero `nodePort`s, in order).
pub(super) fn node_ports(svc: &Value) -> Vec<i64> {
    ports(svc)
        .iter()
        .map(node_port)
        .filter(|n| *n != 0)
        .collect()
}

/// `spec.healthCheckNodePort` (0 when unset).
pub(super) fn health_check_node_port(svc: &Value) -> i64 {
    svc.pointer("/spec/healthCheckNodePort")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The object's name, for error messages.
pub(super) fn name(svc: &Value) -> &str {
    svc.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `spec`, created when missing, to change in place (`None` when the Service is
/// not a JSON object at all, which the request decoding already refuses).
pub(super) fn spec_mut(svc: &mut Value) -> Option<&mut Map<String, Value>> {
    let spec = svc
        .as_object_mut()?
        .entry("spec")
        .or_insert_with(|| Value::Object(Map::new()));
    if !spec.is_object() {
        *spec = Value::Object(Map::new());
    }
    spec.as_object_mut()
}
