//! Defaulting of built-in kinds as a 1.36 API server fills them in (SetDefaults_*, registry strategies, admission), in place.
//!
//! Run it before `validate`, as the real server does. Cluster IPs, node ports
//! and other allocations are left to the allocating module.

mod pod;
mod workloads;

use pod::admission_defaults as pod_admission_defaults;

use serde_json::{Map, Value, json};

/// Fill in the defaults a real API server sets on create (and on update, where
/// Kubernetes defaults the same way), in place. `group` is "" for core.
pub fn apply_defaults(group: &str, version: &str, kind: &str, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match (group, kind) {
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                pod::default_pod_spec(spec, true);
            }
        }
        ("", "Service") => service(obj),
        ("", "Namespace") => namespace(obj),
        ("", "Secret") => set_if_empty(root(obj), "type", json!("Opaque")),
        ("", "LimitRange") => limit_range(obj),
        ("", "PersistentVolumeClaim") => {
            set_default(spec_of(obj), "volumeMode", json!("Filesystem"));
            set_if_empty(child(root(obj), "status"), "phase", json!("Pending"));
        }
        ("", "PersistentVolume") => {
            let spec = spec_of(obj);
            set_if_empty(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
            set_default(spec, "volumeMode", json!("Filesystem"));
            set_if_empty(child(root(obj), "status"), "phase", json!("Pending"));
        }
        ("", "Node") => {
            let status = child(root(obj), "status");
            if let Some(capacity) = status.get("capacity").cloned() {
                set_default(status, "allocatable", capacity);
            }
        }
        ("", "Endpoints") => {
            if let Some(Value::Array(subsets)) = obj.get_mut("subsets") {
                for port in subsets
                    .iter_mut()
                    .filter_map(|s| s.get_mut("ports"))
                    .filter_map(Value::as_array_mut)
                    .flatten()
                {
                    if let Some(p) = port.as_object_mut() {
                        set_if_empty(p, "protocol", json!("TCP"));
                    }
                }
            }
        }
        ("", "ReplicationController") => workloads::replication_controller(obj),
        ("apps", "Deployment") => workloads::deployment(obj),
        ("apps", "ReplicaSet") => set_default(spec_of(obj), "replicas", json!(1)),
        ("apps", "StatefulSet") => workloads::stateful_set(obj),
        ("apps", "DaemonSet") => workloads::daemon_set(obj),
        ("batch", "Job") => workloads::job(obj),
        ("batch", "CronJob") => workloads::cron_job(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => workloads::hpa(version, obj),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            workloads::role_binding(obj)
        }
        ("storage.k8s.io", "StorageClass") => {
            set_if_empty(root(obj), "reclaimPolicy", json!("Delete"));
            set_if_empty(root(obj), "volumeBindingMode", json!("Immediate"));
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            set_if_empty(root(obj), "preemptionPolicy", json!("PreemptLowerPriority"))
        }
        _ => {}
    }
    // Every pod template gets the PodSpec defaults (not the Pod-only ones).
    if let Some(path) = super::validation::pod_template_path(group, kind) {
        let mut cur = Some(&mut *obj);
        for key in path.iter().chain(std::iter::once(&"spec")) {
            cur = cur.and_then(|v| v.get_mut(*key));
        }
        if let Some(spec) = cur {
            pod::default_pod_spec(spec, false);
        }
    }
}

/// The ServiceAccount / DefaultTolerationSeconds admission defaults for a Pod
/// (`serviceAccountName: default`, not-ready/unreachable tolerations). Separate
/// from `apply_defaults` because they belong to admission, not the type.
pub fn apply_admission_defaults(group: &str, kind: &str, obj: &mut Value) {
    if (group, kind) == ("", "Pod")
        && let Some(spec) = obj.get_mut("spec")
    {
        pod_admission_defaults(spec);
    }
}

fn service(obj: &mut Value) {
    let spec = spec_of(obj);
    set_if_empty(spec, "type", json!("ClusterIP"));
    set_if_empty(spec, "sessionAffinity", json!("None"));
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.pointer("/clientIP/timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_if_empty(p, "protocol", json!("TCP"));
            let unset = match p.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(v) => v.as_i64() == Some(0),
            };
            if unset && let Some(port) = p.get("port").cloned() {
                p.insert("targetPort".into(), port);
            }
        }
    }
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let has_external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && has_external_ips) {
        set_if_empty(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if ty != "ExternalName" {
        // Set by the registry's IP-family logic on a single-stack cluster.
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        // The strategy keeps clusterIP and clusterIPs in step.
        let cluster_ip = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let has_list = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if !cluster_ip.is_empty() && !has_list {
            spec.insert("clusterIPs".into(), json!([cluster_ip]));
        }
    }
}

/// `SetDefaults_LimitRangeItem`: a Container item's default limit falls back to its
/// max, and its default request to the default limit, then to the min.
fn limit_range(obj: &mut Value) {
    let Some(items) = obj
        .pointer_mut("/spec/limits")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for item in items.iter_mut().filter_map(Value::as_object_mut) {
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        let list = |item: &Map<String, Value>, key: &str| {
            item.get(key)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let mut default = list(item, "default");
        for (k, v) in list(item, "max") {
            default.entry(k).or_insert(v);
        }
        let mut request = list(item, "defaultRequest");
        for (k, v) in default.iter().chain(list(item, "min").iter()) {
            request.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if !default.is_empty() {
            item.insert("default".into(), Value::Object(default));
        }
        if !request.is_empty() {
            item.insert("defaultRequest".into(), Value::Object(request));
        }
    }
}

fn namespace(obj: &mut Value) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !name.is_empty() {
        let meta = child(root(obj), "metadata");
        child(meta, "labels").insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    // The namespace strategy always sets the "kubernetes" finalizer on create.
    set_default(spec_of(obj), "finalizers", json!(["kubernetes"]));
    set_if_empty(child(root(obj), "status"), "phase", json!("Active"));
}

// ---- helpers shared with the submodules ----

/// The object's top-level map (callers checked it is an object).
fn root(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    match obj {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// A child object, created when absent or not an object.
fn child<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = m.entry(key).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

fn spec_of(obj: &mut Value) -> &mut Map<String, Value> {
    child(root(obj), "spec")
}

/// Set when absent or null (a nil Go pointer).
fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), value);
    }
}

/// Set when absent, null or "" (Go defaults empty strings too).
fn set_if_empty(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key)
        .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
    {
        m.insert(key.into(), value);
    }
}

#[cfg(test)]
mod tests;
