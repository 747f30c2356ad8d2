//! apps/v1 workloads: Deployment, ReplicaSet, StatefulSet, DaemonSet (selectors, templates, strategies, immutability).

use super::errors::{FieldError, Path, sorted_map};
use super::meta::{
    IS_NEGATIVE, Selector, as_selector, immutable, nonnegative, selector_matches,
    selector_mismatch, validate_label_selector,
};
use super::names;
use super::pod::validate_template;
use super::storage::pvc_spec;
use super::{arr, at, int, obj, s, set};
use serde_json::{Map, Value, json};

/// A metav1.LabelSelector as Go marshals it (map keys sorted, empty parts omitted).
pub fn selector_value(sel: Option<&Value>) -> Value {
    let Some(sel) = sel.filter(|v| v.is_object()) else {
        return Value::Null;
    };
    let mut out = Map::new();
    if obj(sel, "matchLabels").is_some_and(|m| !m.is_empty()) {
        out.insert("matchLabels".into(), sorted_map(sel.get("matchLabels")));
    }
    if !arr(sel, "matchExpressions").is_empty() {
        out.insert(
            "matchExpressions".into(),
            Value::Array(arr(sel, "matchExpressions").to_vec()),
        );
    }
    Value::Object(out)
}

/// `ValidatePositiveIntOrPercent`.
fn int_or_percent(v: Option<&Value>, path: &Path) -> Vec<FieldError> {
    match v {
        Some(Value::String(p)) => match names::percent(p) {
            Ok(_) => Vec::new(),
            Err(msg) => vec![FieldError::invalid(path, p.as_str(), msg)],
        },
        Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n < 0) => {
            vec![FieldError::invalid(path, n.clone(), IS_NEGATIVE)]
        }
        _ => Vec::new(),
    }
}

/// `getIntOrPercentValue`.
fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(p)) => names::percent(p).unwrap_or_else(|_| p.parse().unwrap_or(0)),
        Some(v) => v.as_i64().unwrap_or(0),
        None => 0,
    }
}

/// `IsNotMoreThan100Percent`.
fn at_most_100_percent(v: Option<&Value>, path: &Path) -> Vec<FieldError> {
    match v {
        Some(Value::String(p)) if names::percent(p).is_ok_and(|n| n > 100) => {
            vec![FieldError::invalid(
                path,
                p.as_str(),
                "must not be greater than 100%",
            )]
        }
        _ => Vec::new(),
    }
}

/// Selector presence, syntax and non-emptiness, as Deployment/ReplicaSet/StatefulSet check it.
fn required_selector(spec: &Value, sp: &Path, what: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let sel = spec.get("selector").filter(|v| !v.is_null());
    match sel {
        None => errs.push(FieldError::required(sp.child("selector"), "")),
        Some(sel) => {
            errs.extend(validate_label_selector(Some(sel), &sp.child("selector")));
            if matches!(as_selector(Some(sel)), Selector::Everything) {
                errs.push(FieldError::invalid(
                    sp.child("selector"),
                    selector_value(Some(sel)),
                    format!("empty selector is invalid for {what}"),
                ));
            }
        }
    }
    errs
}

/// The template must carry the selected labels; a nil selector matches nothing.
fn template_matches(spec: &Value, tp: &Path) -> Vec<FieldError> {
    let labels = at(spec, &["template", "metadata", "labels"]);
    let matches = match as_selector(spec.get("selector")) {
        Selector::Everything => true,
        Selector::Nothing => false,
        Selector::Match(sel) => selector_matches(sel, labels),
        Selector::Invalid => {
            return vec![FieldError::invalid(
                "spec.selector",
                selector_value(spec.get("selector")),
                "invalid label selector",
            )];
        }
    };
    if matches {
        Vec::new()
    } else {
        vec![selector_mismatch(
            labels,
            &tp.child("metadata").child("labels"),
        )]
    }
}

/// Restart policy and deadline rules shared by the long-running controllers.
pub(super) fn long_running(template: &Value, tp: &Path, kind: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let restart = at(template, &["spec", "restartPolicy"])
        .and_then(Value::as_str)
        .unwrap_or("");
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            tp.child("spec").child("restartPolicy"),
            restart,
            &["Always"],
        ));
    }
    if at(template, &["spec", "activeDeadlineSeconds"]).is_some_and(|v| !v.is_null()) {
        errs.push(FieldError::forbidden(
            tp.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    errs
}

/// `ValidateReplicaSetSpec` core, shared with Deployment.
fn replica_set_like(spec: &Value, sp: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    // The Go code says "deployment" for ReplicaSets too.
    errs.extend(required_selector(spec, sp, "deployment"));
    let tp = sp.child("template");
    let template = spec.get("template").unwrap_or(&Value::Null);
    errs.extend(template_matches(spec, &tp));
    errs.extend(validate_template(template, &tp));
    errs.extend(long_running(template, &tp, "ReplicaSet"));
    errs
}

pub fn deployment(d: &Value) -> Vec<FieldError> {
    let spec = d.get("spec").unwrap_or(&Value::Null);
    let sp = Path::new("spec");
    let mut errs = nonnegative(spec, "replicas", &sp);
    errs.extend(replica_set_like(spec, &sp));
    let strategy = spec.get("strategy").unwrap_or(&Value::Null);
    let stp = sp.child("strategy");
    match s(strategy, "type") {
        "Recreate" => {
            if set(strategy, "rollingUpdate") {
                errs.push(FieldError::forbidden(
                    stp.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match strategy.get("rollingUpdate").filter(|v| !v.is_null()) {
            None => errs.push(FieldError::required(
                stp.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let rp = stp.child("rollingUpdate");
                errs.extend(int_or_percent(
                    ru.get("maxUnavailable"),
                    &rp.child("maxUnavailable"),
                ));
                errs.extend(int_or_percent(ru.get("maxSurge"), &rp.child("maxSurge")));
                if int_or_percent_value(ru.get("maxUnavailable")) == 0
                    && int_or_percent_value(ru.get("maxSurge")) == 0
                {
                    let v = ru.get("maxUnavailable").cloned().unwrap_or(json!(0));
                    errs.push(FieldError::invalid(
                        rp.child("maxUnavailable"),
                        v,
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                errs.extend(at_most_100_percent(
                    ru.get("maxUnavailable"),
                    &rp.child("maxUnavailable"),
                ));
            }
        },
        other => {
            // The internal DeploymentStrategy has no JSON tags: Go field names.
            let ru = strategy.get("rollingUpdate").filter(|v| !v.is_null()).map_or(Value::Null, |ru| {
                json!({"MaxUnavailable": ru.get("maxUnavailable").cloned().unwrap_or(json!(0)), "MaxSurge": ru.get("maxSurge").cloned().unwrap_or(json!(0))})
            });
            errs.push(FieldError::not_supported(
                &stp,
                json!({"Type": other, "RollingUpdate": ru}),
                &["Recreate", "RollingUpdate"],
            ));
        }
    }
    errs.extend(nonnegative(spec, "minReadySeconds", &sp));
    errs.extend(nonnegative(spec, "revisionHistoryLimit", &sp));
    if let Some(pds) = int(spec, "progressDeadlineSeconds") {
        errs.extend(nonnegative(spec, "progressDeadlineSeconds", &sp));
        if pds <= int(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(
                sp.child("progressDeadlineSeconds"),
                pds,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

/// apps/v1 selectors are immutable.
fn selector_immutable(new: &Value, old: &Value) -> Vec<FieldError> {
    let sel = |v: &Value| selector_value(at(v, &["spec", "selector"]));
    immutable(&sel(new), &sel(old), &Path::new("spec").child("selector"))
}

pub fn deployment_update(new: &Value, old: &Value) -> Vec<FieldError> {
    selector_immutable(new, old)
}

pub fn replica_set(rs: &Value) -> Vec<FieldError> {
    let spec = rs.get("spec").unwrap_or(&Value::Null);
    let sp = Path::new("spec");
    let mut errs = nonnegative(spec, "replicas", &sp);
    errs.extend(nonnegative(spec, "minReadySeconds", &sp));
    errs.extend(replica_set_like(spec, &sp));
    errs
}

pub fn replica_set_update(new: &Value, old: &Value) -> Vec<FieldError> {
    selector_immutable(new, old)
}

pub fn stateful_set(sts: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = sts.get("spec").unwrap_or(&Value::Null);
    let sp = Path::new("spec");
    match s(spec, "podManagementPolicy") {
        "" => errs.push(FieldError::required(sp.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            sp.child("podManagementPolicy"),
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = spec.get("updateStrategy").unwrap_or(&Value::Null);
    let up = sp.child("updateStrategy");
    let ru = strategy.get("rollingUpdate").filter(|v| !v.is_null());
    match s(strategy, "type") {
        "" => errs.push(FieldError::required(&up, "")),
        "OnDelete" => {
            if let Some(ru) = ru {
                errs.push(FieldError::invalid(
                    up.child("rollingUpdate"),
                    ru.clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = ru {
                let rp = up.child("rollingUpdate");
                errs.extend(nonnegative(ru, "partition", &rp));
                if let Some(mu) = ru.get("maxUnavailable").filter(|v| !v.is_null()) {
                    errs.extend(int_or_percent(Some(mu), &rp.child("maxUnavailable")));
                    if int_or_percent_value(Some(mu)) == 0 {
                        errs.push(FieldError::invalid(
                            rp.child("maxUnavailable"),
                            mu.clone(),
                            "cannot be 0",
                        ));
                    }
                    errs.extend(at_most_100_percent(Some(mu), &rp.child("maxUnavailable")));
                }
            }
        }
        other => errs.push(FieldError::invalid(
            &up,
            json!({"Type": other, "RollingUpdate": ru.cloned()}),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(policy) = spec
        .get("persistentVolumeClaimRetentionPolicy")
        .filter(|v| !v.is_null())
    {
        for key in ["whenDeleted", "whenScaled"] {
            let v = s(policy, key);
            if v != "Retain" && v != "Delete" {
                errs.push(FieldError::not_supported(
                    sp.child("persistentVolumeClaimRetentionPolicy").child(key),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    for (i, claim) in arr(spec, "volumeClaimTemplates").iter().enumerate() {
        errs.extend(pvc_spec(
            claim.get("spec").unwrap_or(&Value::Null),
            &sp.child("volumeClaimTemplates").index(i).child("spec"),
        ));
    }
    errs.extend(nonnegative(spec, "replicas", &sp));
    errs.extend(nonnegative(spec, "minReadySeconds", &sp));
    if let Some(start) = at(spec, &["ordinals", "start"])
        .and_then(Value::as_i64)
        .filter(|n| *n < 0)
    {
        errs.push(FieldError::invalid(
            sp.child("ordinals.start"),
            start,
            IS_NEGATIVE,
        ));
    }
    let service_name = s(spec, "serviceName");
    if !service_name.is_empty() {
        errs.extend(
            names::dns1123_label(service_name)
                .into_iter()
                .map(|m| FieldError::invalid(sp.child("serviceName"), service_name, m)),
        );
    }
    errs.extend(required_selector(spec, &sp, "statefulset"));
    let tp = sp.child("template");
    errs.extend(template_matches(spec, &tp));
    // The controller fills hostname/subdomain and adds the claim volumes, so
    // the template is checked as the pods will be.
    let mut template = spec.get("template").cloned().unwrap_or(Value::Null);
    if let Some(pod_spec) = template.get_mut("spec").and_then(Value::as_object_mut) {
        pod_spec.remove("hostname");
        pod_spec.remove("subdomain");
        let mut volumes: Vec<Value> = arr(spec, "volumeClaimTemplates")
            .iter()
            .map(|c| {
                let name = at(c, &["metadata", "name"])
                    .and_then(Value::as_str)
                    .unwrap_or("");
                json!({"name": name, "persistentVolumeClaim": {"claimName": name}})
            })
            .collect();
        let claim_names: Vec<Value> = volumes.iter().map(|v| v["name"].clone()).collect();
        let own = pod_spec
            .get("volumes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        volumes.extend(
            own.into_iter()
                .filter(|v| !claim_names.contains(&v["name"])),
        );
        if !volumes.is_empty() {
            pod_spec.insert("volumes".into(), Value::Array(volumes));
        }
    }
    errs.extend(validate_template(&template, &tp));
    errs.extend(long_running(&template, &tp, "StatefulSet"));
    errs
}

pub fn stateful_set_update(new: &Value, old: &Value) -> Vec<FieldError> {
    const MUTABLE: [&str; 7] = [
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "revisionHistoryLimit",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
    ];
    let rest = |v: &Value| {
        let mut m = v
            .get("spec")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        m.retain(|k, _| !MUTABLE.contains(&k.as_str()));
        m
    };
    if rest(new) != rest(old) {
        return vec![FieldError::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        )];
    }
    Vec::new()
}

pub fn daemon_set(ds: &Value) -> Vec<FieldError> {
    let spec = ds.get("spec").unwrap_or(&Value::Null);
    let sp = Path::new("spec");
    let mut errs = validate_label_selector(spec.get("selector"), &sp.child("selector"));
    let tp = sp.child("template");
    if !matches!(as_selector(spec.get("selector")), Selector::Invalid) {
        errs.extend(template_matches(spec, &tp));
    }
    if matches!(as_selector(spec.get("selector")), Selector::Everything) {
        errs.push(FieldError::invalid(
            sp.child("selector"),
            selector_value(spec.get("selector")),
            "empty selector is invalid for daemonset",
        ));
    }
    let template = spec.get("template").unwrap_or(&Value::Null);
    errs.extend(validate_template(template, &tp));
    errs.extend(long_running(template, &tp, "DaemonSet"));
    errs.extend(nonnegative(spec, "minReadySeconds", &sp));
    errs.extend(nonnegative(spec, "templateGeneration", &sp));
    let strategy = spec.get("updateStrategy").unwrap_or(&Value::Null);
    let up = sp.child("updateStrategy");
    match s(strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match strategy.get("rollingUpdate").filter(|v| !v.is_null()) {
            None => errs.push(FieldError::required(up.child("rollingUpdate"), "")),
            Some(ru) => {
                let rp = up.child("rollingUpdate");
                let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
                errs.extend(int_or_percent(mu, &rp.child("maxUnavailable")));
                errs.extend(int_or_percent(ms, &rp.child("maxSurge")));
                errs.extend(at_most_100_percent(mu, &rp.child("maxUnavailable")));
                errs.extend(at_most_100_percent(ms, &rp.child("maxSurge")));
                match (int_or_percent_value(mu) != 0, int_or_percent_value(ms) != 0) {
                    (true, true) => errs.push(FieldError::invalid(
                        rp.child("maxSurge"),
                        ms.cloned().unwrap_or(json!(0)),
                        "may not be set when maxUnavailable is non-zero",
                    )),
                    (false, false) => errs.push(FieldError::required(
                        rp.child("maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    )),
                    _ => {}
                }
            }
        },
        other => {
            let v = json!({"Type": other, "RollingUpdate": strategy.get("rollingUpdate").cloned().unwrap_or(Value::Null)});
            errs.push(FieldError::not_supported(
                &up,
                v,
                &["RollingUpdate", "OnDelete"],
            ));
        }
    }
    errs.extend(nonnegative(spec, "revisionHistoryLimit", &sp));
    errs
}

pub fn daemon_set_update(new: &Value, old: &Value) -> Vec<FieldError> {
    selector_immutable(new, old)
}
