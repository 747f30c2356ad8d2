//! Defaults of controller kinds: Deployment, StatefulSet, DaemonSet, ReplicationController, Job, CronJob, HPA, role bindings.

use super::{child, root, set_default, set_if_empty, spec_of};
use serde_json::{Value, json};

pub fn deployment(obj: &mut Value) {
    let spec = spec_of(obj);
    set_default(spec, "replicas", json!(1));
    let strategy = child(spec, "strategy");
    set_if_empty(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let ru = child(strategy, "rollingUpdate");
        set_default(ru, "maxUnavailable", json!("25%"));
        set_default(ru, "maxSurge", json!("25%"));
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
}

pub fn stateful_set(obj: &mut Value) {
    let spec = spec_of(obj);
    set_if_empty(spec, "podManagementPolicy", json!("OrderedReady"));
    let strategy = child(spec, "updateStrategy");
    if strategy
        .get("type")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        strategy.insert("type".into(), json!("RollingUpdate"));
        set_default(strategy, "rollingUpdate", json!({}));
    }
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
        && let Some(ru) = strategy
            .get_mut("rollingUpdate")
            .and_then(Value::as_object_mut)
    {
        set_default(ru, "partition", json!(0));
    }
    let retention = child(spec, "persistentVolumeClaimRetentionPolicy");
    set_if_empty(retention, "whenDeleted", json!("Retain"));
    set_if_empty(retention, "whenScaled", json!("Retain"));
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    // Claim templates are PersistentVolumeClaims and get their defaults.
    if let Some(Value::Array(claims)) = spec.get_mut("volumeClaimTemplates") {
        for claim in claims.iter_mut() {
            set_default(spec_of(claim), "volumeMode", json!("Filesystem"));
            set_if_empty(child(root(claim), "status"), "phase", json!("Pending"));
        }
    }
}

pub fn daemon_set(obj: &mut Value) {
    let spec = spec_of(obj);
    let strategy = child(spec, "updateStrategy");
    set_if_empty(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let ru = child(strategy, "rollingUpdate");
        set_default(ru, "maxUnavailable", json!(1));
        set_default(ru, "maxSurge", json!(0));
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
}

/// `SetDefaults_ReplicationController`: selector and labels come from the template.
pub fn replication_controller(obj: &mut Value) {
    let labels = obj
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = labels {
        let spec = spec_of(obj);
        if spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty())
        {
            spec.insert("selector".into(), labels.clone());
        }
        let meta = child(root(obj), "metadata");
        if meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty())
        {
            meta.insert("labels".into(), labels);
        }
    }
    set_default(spec_of(obj), "replicas", json!(1));
}

/// `SetDefaults_Job`, then the selector the Job strategy generates (needs `metadata.uid`).
pub fn job(obj: &mut Value) {
    let template_labels = obj
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.is_object())
        .cloned();
    let spec = spec_of(obj);
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        spec.insert("completions".into(), json!(1));
    }
    set_default(spec, "parallelism", json!(1));
    set_default(spec, "backoffLimit", json!(6));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "manualSelector", json!(false));
    let replacement = if spec.get("podFailurePolicy").is_some_and(|p| !p.is_null()) {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    set_default(spec, "podReplacementPolicy", json!(replacement));
    default_pod_failure_policy(spec.get_mut("podFailurePolicy"));
    if let Some(labels) = template_labels {
        let meta = child(root(obj), "metadata");
        if meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty())
        {
            meta.insert("labels".into(), labels);
        }
    }
    super::super::validation::generate_job_selector(obj);
}

/// Pod-condition patterns in a failure policy default to status True.
fn default_pod_failure_policy(policy: Option<&mut Value>) {
    let Some(Value::Array(rules)) = policy.and_then(|p| p.get_mut("rules")) else {
        return;
    };
    for rule in rules.iter_mut() {
        if let Some(Value::Array(patterns)) = rule.get_mut("onPodConditions") {
            for p in patterns.iter_mut().filter_map(Value::as_object_mut) {
                set_if_empty(p, "status", json!("True"));
            }
        }
    }
}

pub fn cron_job(obj: &mut Value) {
    let spec = spec_of(obj);
    set_if_empty(spec, "concurrencyPolicy", json!("Allow"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "successfulJobsHistoryLimit", json!(3));
    set_default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(job_spec) = spec.get_mut("jobTemplate").and_then(|t| t.get_mut("spec")) {
        default_pod_failure_policy(job_spec.get_mut("podFailurePolicy"));
    }
}

/// autoscaling/v2 (`SetDefaults_HorizontalPodAutoscaler`); v1 only defaults minReplicas.
pub fn hpa(version: &str, obj: &mut Value) {
    let spec = spec_of(obj);
    set_default(spec, "minReplicas", json!(1));
    if version == "v1" {
        return;
    }
    if spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(|m| m.is_empty())
    {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    // Behavior is only completed when the user gave one.
    if let Some(behavior) = spec.get_mut("behavior").and_then(Value::as_object_mut) {
        let up = child(behavior, "scaleUp");
        set_default(up, "stabilizationWindowSeconds", json!(0));
        set_if_empty(up, "selectPolicy", json!("Max"));
        set_default(
            up,
            "policies",
            json!([{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
        let down = child(behavior, "scaleDown");
        set_default(down, "stabilizationWindowSeconds", json!(300));
        set_if_empty(down, "selectPolicy", json!("Max"));
        set_default(
            down,
            "policies",
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
    }
}

/// roleRef and User/Group subjects default to the RBAC API group.
pub fn role_binding(obj: &mut Value) {
    let m = root(obj);
    set_if_empty(
        child(m, "roleRef"),
        "apiGroup",
        json!("rbac.authorization.k8s.io"),
    );
    if let Some(Value::Array(subjects)) = m.get_mut("subjects") {
        for s in subjects.iter_mut().filter_map(Value::as_object_mut) {
            if matches!(
                s.get("kind").and_then(Value::as_str),
                Some("User" | "Group")
            ) {
                set_if_empty(s, "apiGroup", json!("rbac.authorization.k8s.io"));
            }
        }
    }
}
