//! Defaults of a PodSpec (in a Pod or any pod template): spec fields, containers, probes, env, volumes.

use super::{child, set_default, set_if_empty};
use serde_json::{Map, Value, json};

/// `SetDefaults_PodSpec` and everything nested in it. `is_pod` adds what only
/// a Pod object gets (`SetDefaults_Pod`): enableServiceLinks, requests copied
/// from limits, host-network ports, and the priority admission's values.
pub fn default_pod_spec(spec: &mut Value, is_pod: bool) {
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    set_if_empty(spec, "dnsPolicy", json!("ClusterFirst"));
    set_if_empty(spec, "restartPolicy", json!("Always"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_if_empty(spec, "schedulerName", json!("default-scheduler"));
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(Value::Array(containers)) = spec.get_mut(list) else {
            continue;
        };
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            default_container(c);
            if is_pod && list != "ephemeralContainers" {
                requests_from_limits(c);
                if host_network {
                    host_network_ports(c);
                }
            }
        }
    }
    if let Some(Value::Array(volumes)) = spec.get_mut("volumes") {
        for v in volumes.iter_mut().filter_map(Value::as_object_mut) {
            default_volume(v);
        }
    }
    if is_pod {
        set_default(spec, "enableServiceLinks", json!(true));
        // Set by the Priority admission plugin when no PriorityClass applies.
        if spec
            .get("priorityClassName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            set_default(spec, "priority", json!(0));
        }
        set_if_empty(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    }
}

/// `SetDefaults_Container` plus the nested defaults the generated code applies.
fn default_container(c: &mut Map<String, Value>) {
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let policy = if image_tag(&image) == "latest" {
        "Always"
    } else {
        "IfNotPresent"
    };
    set_if_empty(c, "imagePullPolicy", json!(policy));
    set_if_empty(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_if_empty(c, "terminationMessagePolicy", json!("File"));
    // ResourceRequirements is a struct, so Go always serializes `resources: {}`.
    set_default(c, "resources", json!({}));
    if let Some(Value::Array(ports)) = c.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_if_empty(p, "protocol", json!("TCP"));
        }
    }
    if let Some(Value::Array(env)) = c.get_mut("env") {
        for e in env.iter_mut() {
            if let Some(fr) = e
                .pointer_mut("/valueFrom/fieldRef")
                .and_then(Value::as_object_mut)
            {
                set_if_empty(fr, "apiVersion", json!("v1"));
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            default_probe(p);
        }
    }
    if let Some(lc) = c.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lc
                .get_mut(hook)
                .and_then(|h| h.get_mut("httpGet"))
                .and_then(Value::as_object_mut)
            {
                default_http_get(h);
            }
        }
    }
}

/// The tag `parsers.ParseImageName` reports: the explicit one, "latest" when
/// there is none, and none at all for a digest-only reference.
fn image_tag(image: &str) -> &str {
    let last = image.rsplit('/').next().unwrap_or(image);
    let (name, digest) = match last.split_once('@') {
        Some((n, _)) => (n, true),
        None => (last, false),
    };
    match name.split_once(':') {
        Some((_, tag)) => tag,
        None if digest => "",
        None => "latest",
    }
}

fn default_probe(p: &mut Map<String, Value>) {
    for (key, v) in [
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ] {
        if p.get(key).and_then(Value::as_i64).unwrap_or(0) == 0 {
            p.insert(key.into(), json!(v));
        }
    }
    if let Some(h) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
        default_http_get(h);
    }
}

fn default_http_get(h: &mut Map<String, Value>) {
    set_if_empty(h, "path", json!("/"));
    set_if_empty(h, "scheme", json!("HTTP"));
}

/// A Pod's requests default to its limits, per resource.
fn requests_from_limits(c: &mut Map<String, Value>) {
    let Some(limits) = c
        .get("resources")
        .and_then(|r| r.get("limits"))
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    let Some(resources) = c.get_mut("resources").and_then(Value::as_object_mut) else {
        return;
    };
    let requests = child(resources, "requests");
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
}

fn host_network_ports(c: &mut Map<String, Value>) {
    if let Some(Value::Array(ports)) = c.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            if p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0
                && let Some(cp) = p.get("containerPort").cloned()
            {
                p.insert("hostPort".into(), cp);
            }
        }
    }
}

/// `SetDefaults_Volume` and the per-source defaults (file modes 0644 = 420).
fn default_volume(v: &mut Map<String, Value>) {
    if !v.iter().any(|(k, val)| k != "name" && !val.is_null()) {
        v.insert("emptyDir".into(), json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(source).and_then(Value::as_object_mut) {
            set_default(s, "defaultMode", json!(420));
        }
    }
    if let Some(hp) = v.get_mut("hostPath").and_then(Value::as_object_mut) {
        set_default(hp, "type", json!(""));
    }
    if let Some(Value::Array(items)) = v.get_mut("downwardAPI").and_then(|d| d.get_mut("items")) {
        for item in items.iter_mut() {
            if let Some(fr) = item.get_mut("fieldRef").and_then(Value::as_object_mut) {
                set_if_empty(fr, "apiVersion", json!("v1"));
            }
        }
    }
    if let Some(Value::Array(sources)) = v.get_mut("projected").and_then(|p| p.get_mut("sources")) {
        for src in sources.iter_mut() {
            if let Some(t) = src
                .get_mut("serviceAccountToken")
                .and_then(Value::as_object_mut)
            {
                set_default(t, "expirationSeconds", json!(3600));
            }
            if let Some(Value::Array(items)) =
                src.get_mut("downwardAPI").and_then(|d| d.get_mut("items"))
            {
                for item in items.iter_mut() {
                    if let Some(fr) = item.get_mut("fieldRef").and_then(Value::as_object_mut) {
                        set_if_empty(fr, "apiVersion", json!("v1"));
                    }
                }
            }
        }
    }
    if let Some(spec) = v
        .get_mut("ephemeral")
        .and_then(|e| e.pointer_mut("/volumeClaimTemplate/spec"))
        .and_then(Value::as_object_mut)
    {
        set_default(spec, "volumeMode", json!("Filesystem"));
    }
}

/// Defaults the ServiceAccount and DefaultTolerationSeconds admission plugins
/// add to every Pod: the `default` service account and 300s tolerations for
/// not-ready and unreachable nodes.
pub fn admission_defaults(spec: &mut Value) {
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    let sa = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string();
    set_if_empty(spec, "serviceAccountName", json!(sa));
    // The deprecated alias mirrors serviceAccountName.
    set_if_empty(spec, "serviceAccount", json!(sa));
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    let Some(list) = tolerations.as_array_mut() else {
        return;
    };
    for taint in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let tolerated = list.iter().any(|t| {
            let key = t.get("key").and_then(Value::as_str).unwrap_or("");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            let exists = t.get("operator").and_then(Value::as_str) == Some("Exists");
            (key == taint || (key.is_empty() && exists))
                && (effect.is_empty() || effect == "NoExecute")
        });
        if !tolerated {
            list.push(json!({"effect": "NoExecute", "key": taint, "operator": "Exists", "tolerationSeconds": 300}));
        }
    }
}
