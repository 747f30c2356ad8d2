//! Core-group kinds other than Service and storage: ConfigMap, Secret, Namespace, Pod, PodTemplate, ReplicationController, Node.

use super::errors::{FieldError, Path, go_json};
use super::meta::{
    immutable, kube_finalizer_name, nonnegative, selector_matches, selector_mismatch,
};
use super::names;
use super::pod::{SpecOf, validate_pod_spec, validate_template};
use super::{arr, at, int, obj, s, set};
use serde_json::{Map, Value, json};

/// `core.MaxSecretSize`, the cap on ConfigMap and Secret payloads.
const MAX_SECRET_SIZE: usize = 1024 * 1024;
const IMMUTABLE_WHEN_SET: &str = "field is immutable when `immutable` is set";

pub use super::service::{service, service_update};

/// Length of base64 data once decoded (Secret `data`, ConfigMap `binaryData`).
fn decoded_len(b64: &str) -> usize {
    let trimmed = b64.trim_end_matches('=');
    trimmed.len() * 3 / 4
}

fn decode_base64(b64: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in b64.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

pub fn config_map(cm: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    let binary = obj(cm, "binaryData");
    if let Some(data) = obj(cm, "data") {
        for (k, v) in data {
            let p = Path::new("data").key(k);
            errs.extend(
                names::config_map_key(k)
                    .into_iter()
                    .map(|m| FieldError::invalid(&p, k.as_str(), m)),
            );
            if binary.is_some_and(|b| b.contains_key(k)) {
                errs.push(FieldError::invalid(
                    &p,
                    k.as_str(),
                    "duplicate of key present in binaryData",
                ));
            }
            total += v.as_str().map_or(0, str::len);
        }
    }
    for (k, v) in binary.into_iter().flatten() {
        let p = Path::new("binaryData").key(k);
        errs.extend(
            names::config_map_key(k)
                .into_iter()
                .map(|m| FieldError::invalid(&p, k.as_str(), m)),
        );
        total += v.as_str().map_or(0, decoded_len);
    }
    if total > MAX_SECRET_SIZE {
        // NewPath("") prints as "[]": the error is about the whole object.
        errs.push(FieldError::too_long("[]", MAX_SECRET_SIZE));
    }
    errs
}

fn immutable_payload(new: &Value, old: &Value, keys: &[&str]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return errs;
    }
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(FieldError::forbidden("immutable", IMMUTABLE_WHEN_SET));
    }
    for key in keys {
        let none = Value::Null;
        let empty_is_none = |v: Option<&Value>| {
            v.filter(|x| x.as_object().is_none_or(|m| !m.is_empty()))
                .unwrap_or(&none)
                .clone()
        };
        if empty_is_none(new.get(*key)) != empty_is_none(old.get(*key)) {
            errs.push(FieldError::forbidden(*key, IMMUTABLE_WHEN_SET));
        }
    }
    errs
}

pub fn config_map_update(new: &Value, old: &Value) -> Vec<FieldError> {
    immutable_payload(new, old, &["data", "binaryData"])
}

pub fn secret(secret: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let data_path = Path::new("data");
    let data = obj(secret, "data");
    let string_data = obj(secret, "stringData");
    // stringData is merged over data before validation, so both count.
    let mut total = 0usize;
    let mut keys: Vec<&String> = Vec::new();
    for (k, v) in data.into_iter().flatten() {
        keys.push(k);
        if !string_data.is_some_and(|sd| sd.contains_key(k)) {
            total += v.as_str().map_or(0, decoded_len);
        }
    }
    for (k, v) in string_data.into_iter().flatten() {
        if !keys.contains(&k) {
            keys.push(k);
        }
        total += v.as_str().map_or(0, str::len);
    }
    for k in &keys {
        errs.extend(
            names::config_map_key(k)
                .into_iter()
                .map(|m| FieldError::invalid(data_path.key(k), k.as_str(), m)),
        );
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&data_path, MAX_SECRET_SIZE));
    }
    let has = |k: &str| keys.iter().any(|x| x.as_str() == k);
    let raw = |k: &str| -> Option<Vec<u8>> {
        if let Some(v) = string_data.and_then(|sd| sd.get(k)).and_then(Value::as_str) {
            return Some(v.as_bytes().to_vec());
        }
        data.and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .and_then(decode_base64)
    };
    match s(secret, "type") {
        "kubernetes.io/service-account-token" => {
            let ann = at(
                secret,
                &[
                    "metadata",
                    "annotations",
                    "kubernetes.io/service-account.name",
                ],
            )
            .and_then(Value::as_str);
            if ann.is_none_or(str::is_empty) {
                errs.push(FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let key = if t == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            if !has(key) {
                errs.push(FieldError::required(data_path.key(key), ""));
            } else if raw(key)
                .and_then(|b| serde_json::from_slice::<Map<String, Value>>(&b).ok())
                .is_none()
            {
                errs.push(FieldError::invalid(
                    data_path.key(key),
                    "<secret contents redacted>",
                    "invalid character in JSON value",
                ));
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(FieldError::required(data_path.key("username"), ""));
            errs.push(FieldError::required(data_path.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if raw("ssh-privatekey").is_none_or(|b| b.is_empty()) => {
            errs.push(FieldError::required(data_path.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !has(key) {
                    errs.push(FieldError::required(data_path.key(key), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

pub fn secret_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = immutable(
        new.get("type").unwrap_or(&json!("")),
        old.get("type").unwrap_or(&json!("")),
        &Path::new("type"),
    );
    errs.extend(immutable_payload(new, old, &["data"]));
    errs
}

pub fn namespace(ns: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let path = Path::new("spec").child("finalizers");
    for f in arr(ns.get("spec").unwrap_or(&Value::Null), "finalizers")
        .iter()
        .filter_map(Value::as_str)
    {
        errs.extend(
            names::qualified_name(f)
                .into_iter()
                .map(|m| FieldError::invalid(&path, f, m)),
        );
        errs.extend(kube_finalizer_name(f, &path));
    }
    errs
}

pub fn pod(p: &Value) -> Vec<FieldError> {
    validate_pod_spec(
        p.get("spec").unwrap_or(&Value::Null),
        &Path::new("spec"),
        SpecOf::Pod,
    )
}

pub fn pod_create(p: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = p.get("spec").unwrap_or(&Value::Null);
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        ));
    }
    if !s(spec, "nodeName").is_empty() && !arr(spec, "schedulingGates").is_empty() {
        errs.push(FieldError::forbidden(
            "spec.nodeName",
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

const UPDATABLE_POD_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A short stand-in for Go's `cmp.Diff` after a forbidden spec change: one
/// `-`/`+` pair per changed top-level field.
pub fn spec_diff(old: &Value, new: &Value) -> String {
    let mut keys: Vec<&String> = old
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .collect();
    for k in new.as_object().into_iter().flatten().map(|(k, _)| k) {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mut out = String::new();
    for k in keys {
        let (o, n) = (old.get(k.as_str()), new.get(k.as_str()));
        if o != n {
            let show = |v: Option<&Value>| v.map_or("null".to_string(), go_json);
            out.push_str(&format!("-\t{k}: {}\n+\t{k}: {}\n", show(o), show(n)));
        }
    }
    out
}

/// `ValidatePodUpdate`: only images, activeDeadlineSeconds, added tolerations and removed scheduling gates may change.
pub fn pod_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (ns, os) = (
        new.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    );
    for list in ["containers", "initContainers"] {
        if arr(ns, list).len() != arr(os, list).len() {
            errs.push(FieldError::forbidden(
                format!("spec.{list}"),
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
    }
    if let Some(ads) = int(ns, "activeDeadlineSeconds") {
        if !(0..=i64::from(i32::MAX)).contains(&ads) {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                ads,
                names::inclusive_range_error(0, i64::from(i32::MAX)),
            ));
            return errs;
        }
        if int(os, "activeDeadlineSeconds").is_some_and(|o| o < ads) {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                ads,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
    } else if set(os, "activeDeadlineSeconds") {
        errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            Value::Null,
            "must not update from a positive integer to nil value",
        ));
    }
    let new_tol = arr(ns, "tolerations");
    let same_but_seconds = |a: &Value, b: &Value| {
        let strip = |v: &Value| {
            v.as_object().map(|m| {
                m.iter()
                    .filter(|(k, _)| *k != "tolerationSeconds")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Map<_, _>>()
            })
        };
        strip(a) == strip(b)
    };
    if !arr(os, "tolerations")
        .iter()
        .all(|o| new_tol.iter().any(|n| same_but_seconds(o, n)))
    {
        errs.push(FieldError::forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    }
    // Compare the rest of the spec with the updatable fields taken from the old one.
    let mut munged = ns.clone();
    if let Some(m) = munged.as_object_mut() {
        for list in ["containers", "initContainers"] {
            if let Some(Value::Array(cs)) = m.get_mut(list) {
                for (c, o) in cs.iter_mut().zip(arr(os, list)) {
                    if let (Some(c), Some(img)) = (c.as_object_mut(), o.get("image")) {
                        c.insert("image".into(), img.clone());
                    }
                }
            }
        }
        for key in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
            match os.get(key) {
                Some(v) => m.insert(key.into(), v.clone()),
                None => m.remove(key),
            };
        }
    }
    if munged != *os {
        errs.push(FieldError::forbidden(
            "spec",
            format!(
                "pod updates may not change fields other than {UPDATABLE_POD_FIELDS}\n{}",
                spec_diff(os, &munged)
            ),
        ));
    }
    errs
}

pub fn pod_template(pt: &Value) -> Vec<FieldError> {
    validate_template(
        pt.get("template").unwrap_or(&Value::Null),
        &Path::new("template"),
    )
}

pub fn replication_controller(rc: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = rc.get("spec").unwrap_or(&Value::Null);
    let sp = Path::new("spec");
    errs.extend(nonnegative(spec, "minReadySeconds", &sp));
    let selector = spec
        .get("selector")
        .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()));
    if selector.is_none() {
        errs.push(FieldError::required(sp.child("selector"), ""));
    }
    errs.extend(nonnegative(spec, "replicas", &sp));
    let tp = sp.child("template");
    let Some(template) = spec.get("template").filter(|v| !v.is_null()) else {
        errs.push(FieldError::required(&tp, ""));
        return errs;
    };
    let labels = at(template, &["metadata", "labels"]);
    if let Some(sel) = selector {
        let as_match = json!({"matchLabels": sel});
        if !selector_matches(&as_match, labels) {
            errs.push(selector_mismatch(
                labels,
                &tp.child("metadata").child("labels"),
            ));
        }
    }
    errs.extend(validate_template(template, &tp));
    errs.extend(super::apps::long_running(
        template,
        &tp,
        "ReplicationController",
    ));
    errs
}

pub fn node(n: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = n.get("spec").unwrap_or(&Value::Null);
    // The Go code puts taints under metadata's path; kept for identical fields.
    let tp = Path::new("metadata").child("taints");
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (i, t) in arr(spec, "taints").iter().enumerate() {
        let p = tp.index(i);
        let (key, value, effect) = (s(t, "key"), s(t, "value"), s(t, "effect"));
        errs.extend(
            names::qualified_name(key)
                .into_iter()
                .map(|m| FieldError::invalid(p.child("key"), key, m)),
        );
        let msgs = names::label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(p.child("value"), value, msgs.join(";")));
        }
        match effect {
            "" => errs.push(FieldError::required(p.child("effect"), "")),
            "NoSchedule" | "PreferNoSchedule" | "NoExecute" => {}
            other => errs.push(FieldError::not_supported(
                p.child("effect"),
                other,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            )),
        }
        if seen.contains(&(key, effect)) {
            let v = json!({"Key": key, "Value": value, "Effect": effect, "TimeAdded": t.get("timeAdded").cloned().unwrap_or(Value::Null)});
            let mut e = FieldError::duplicate(&p, v);
            e.detail = "taints must be unique by key and effect pair".into();
            errs.push(e);
            continue;
        }
        seen.push((key, effect));
    }
    errs
}

pub fn node_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (ns, os) = (
        new.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    );
    let (old_cidrs, new_cidrs) = (arr(os, "podCIDRs"), arr(ns, "podCIDRs"));
    if !old_cidrs.is_empty() && old_cidrs != new_cidrs {
        errs.push(FieldError::forbidden(
            "spec.podCIDRs",
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    }
    let old_pid = s(os, "providerID");
    if !old_pid.is_empty() && old_pid != s(ns, "providerID") {
        errs.push(FieldError::forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    if s(os, "externalID") != s(ns, "externalID") {
        errs.push(FieldError::forbidden(
            "spec.externalID",
            "may not be updated",
        ));
    }
    errs
}
