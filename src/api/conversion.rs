//! Conversion between versions that share storage: HorizontalPodAutoscaler
//! `autoscaling/v1` ⇄ `autoscaling/v2` (stored as v2) and Event `events.k8s.io/v1` ⇄
//! core `v1` (stored as core), as the real API server converts them.

use serde_json::{Map, Value, json};

/// Convert `obj` of `kind` from apiVersion `from` to apiVersion `to`.
pub fn convert(kind: &str, obj: Value, from: &str, to: &str) -> Value {
    if from == to {
        return obj;
    }
    let mut out = match (kind, from, to) {
        ("HorizontalPodAutoscaler", "autoscaling/v1", "autoscaling/v2") => hpa_v1_to_v2(obj),
        ("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling/v1") => hpa_v2_to_v1(obj),
        ("Event", "events.k8s.io/v1", "v1") => event_to_core(obj),
        ("Event", "v1", "events.k8s.io/v1") => event_from_core(obj),
        _ => obj,
    };
    if out.is_object() {
        out["apiVersion"] = json!(to);
    }
    out
}

/// Fold a Secret's write-only `stringData` into base64 `data`, as the API server does
/// on every write (stringData wins over data for the same key).
pub fn fold_secret_string_data(secret: &mut Value) {
    use base64::Engine;
    let Some(obj) = secret.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = obj.remove("stringData") else {
        return;
    };
    let data = obj.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    for (k, v) in strings {
        let text = v.as_str().unwrap_or_default();
        data[k.as_str()] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

/// Move `from` (a top-level or nested key path) to `to`, when present.
fn carry(src: &Value, dst: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(v) = src.pointer(from)
        && !v.is_null()
    {
        dst.insert(to.to_string(), v.clone());
    }
}

const CPU_METRIC_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";

/// The spec fields both HPA versions share.
fn hpa_spec_common(spec: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    for k in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        carry(spec, &mut m, &format!("/{k}"), k);
    }
    m
}

/// The status fields both HPA versions share.
fn hpa_status_common(status: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    for k in [
        "observedGeneration",
        "lastScaleTime",
        "currentReplicas",
        "desiredReplicas",
    ] {
        carry(status, &mut m, &format!("/{k}"), k);
    }
    m
}

/// A v2 metric list holding one CPU utilization, at `field` ("target" or "current").
fn cpu_metric(field: &str, value: &Value) -> Value {
    let mut inner = json!({"averageUtilization": value});
    if field == "target" {
        inner["type"] = json!("Utilization");
    }
    json!([{"type": "Resource", "resource": {"name": "cpu", field: inner}}])
}

fn non_null<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn hpa_v1_to_v2(mut obj: Value) -> Value {
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut v2 = hpa_spec_common(&spec);
    if let Some(cpu) = non_null(&spec, "targetCPUUtilizationPercentage") {
        v2.insert("metrics".into(), cpu_metric("target", cpu));
    }
    obj["spec"] = Value::Object(v2);
    if let Some(status) = obj.get("status").cloned() {
        let mut s = hpa_status_common(&status);
        if let Some(cpu) = non_null(&status, "currentCPUUtilizationPercentage") {
            s.insert("currentMetrics".into(), cpu_metric("current", cpu));
        }
        obj["status"] = Value::Object(s);
    }
    if let Some(a) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(CPU_METRIC_ANNOTATION);
    }
    obj
}

/// The CPU utilization target of a v2 metric list, if it has one.
fn cpu_utilization(metrics: Option<&Value>, field: &str) -> Option<Value> {
    metrics?.as_array()?.iter().find_map(|m| {
        let r = m.get("resource")?;
        (m.get("type")? == "Resource" && r.get("name")? == "cpu")
            .then(|| r.pointer(field).cloned())
            .flatten()
    })
}

fn hpa_v2_to_v1(mut obj: Value) -> Value {
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut v1 = hpa_spec_common(&spec);
    if let Some(cpu) = cpu_utilization(spec.get("metrics"), "/target/averageUtilization") {
        v1.insert("targetCPUUtilizationPercentage".into(), cpu);
    }
    obj["spec"] = Value::Object(v1);
    if let Some(status) = obj.get("status").cloned() {
        let mut s = hpa_status_common(&status);
        if let Some(cpu) =
            cpu_utilization(status.get("currentMetrics"), "/current/averageUtilization")
        {
            s.insert("currentCPUUtilizationPercentage".into(), cpu);
        }
        s.entry("desiredReplicas").or_insert(json!(0));
        obj["status"] = Value::Object(s);
    }
    obj
}

/// Field pairs between events.k8s.io/v1 (left) and core v1 (right).
const EVENT_FIELDS: [(&str, &str); 9] = [
    ("/note", "message"),
    ("/regarding", "involvedObject"),
    ("/related", "related"),
    ("/deprecatedCount", "count"),
    ("/deprecatedFirstTimestamp", "firstTimestamp"),
    ("/deprecatedLastTimestamp", "lastTimestamp"),
    ("/deprecatedSource", "source"),
    ("/reportingController", "reportingComponent"),
    ("/reportingInstance", "reportingInstance"),
];

const EVENT_SHARED: [&str; 7] = [
    "metadata",
    "eventTime",
    "series",
    "action",
    "reason",
    "type",
    "kind",
];

fn event_to_core(obj: Value) -> Value {
    let mut out = Map::new();
    for k in EVENT_SHARED {
        carry(&obj, &mut out, &format!("/{k}"), k);
    }
    for (new, core) in EVENT_FIELDS {
        carry(&obj, &mut out, new, core);
    }
    Value::Object(out)
}

fn event_from_core(obj: Value) -> Value {
    let mut out = Map::new();
    for k in EVENT_SHARED {
        carry(&obj, &mut out, &format!("/{k}"), k);
    }
    for (new, core) in EVENT_FIELDS {
        carry(
            &obj,
            &mut out,
            &format!("/{core}"),
            new.trim_start_matches('/'),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_string_data_is_folded_into_base64_data() {
        let mut s = json!({"data": {"a": "eA=="}, "stringData": {"password": "s3cret", "a": "y"}});
        fold_secret_string_data(&mut s);
        assert_eq!(s, json!({"data": {"a": "eQ==", "password": "czNjcmV0"}}));
    }

    #[test]
    fn hpa_v1_cpu_target_becomes_a_v2_resource_metric_and_back() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}, "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50}});
        let v2 = convert(
            "HorizontalPodAutoscaler",
            v1.clone(),
            "autoscaling/v1",
            "autoscaling/v2",
        );
        assert_eq!(v2["apiVersion"], "autoscaling/v2");
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            50
        );
        let back = convert(
            "HorizontalPodAutoscaler",
            v2,
            "autoscaling/v2",
            "autoscaling/v1",
        );
        assert_eq!(back["spec"], v1["spec"]);
    }

    #[test]
    fn events_k8s_io_note_and_regarding_are_core_message_and_involved_object() {
        let new = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "note": "pulled", "regarding": {"kind": "Pod", "name": "p"}, "reason": "Pulled", "type": "Normal", "reportingController": "kubelet"});
        let core = convert("Event", new.clone(), "events.k8s.io/v1", "v1");
        assert_eq!(
            (
                core["message"].as_str(),
                core["involvedObject"]["name"].as_str(),
                core["reportingComponent"].as_str()
            ),
            (Some("pulled"), Some("p"), Some("kubelet"))
        );
        assert_eq!(convert("Event", core, "v1", "events.k8s.io/v1"), new);
    }
}
