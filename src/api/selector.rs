//! Label selectors (equality- and set-based) and field selectors, parsed from query
//! strings or `LabelSelector` objects, and matched against objects.

use std::collections::BTreeSet;

use serde_json::Value;

use super::error::ApiError;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

fn valid_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c))
    });
    name_ok && prefix_ok
}

fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// Split on commas that are not inside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn bad_selector(s: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!("unable to parse requirement: {why} (in {s:?})"))
}

fn parse_set(term: &str, rest: &str) -> Result<BTreeSet<String>, ApiError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| bad_selector(term, "found '', expected: '('"))?;
    let mut set = BTreeSet::new();
    for v in inner.split(',') {
        let v = v.trim();
        if !valid_value(v) {
            return Err(bad_selector(term, &format!("invalid label value: {v:?}")));
        }
        set.insert(v.to_string());
    }
    Ok(set)
}

impl LabelSelector {
    /// Parse the query-string form: `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    pub fn parse(s: &str) -> Result<LabelSelector, ApiError> {
        let mut requirements = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector::default());
        }
        for term in split_terms(s) {
            let t = term.trim();
            let req = if let Some(key) = t.strip_prefix('!') {
                Requirement::DoesNotExist(key.trim().to_string())
            } else if let Some((k, v)) = t.split_once("!=") {
                Requirement::NotIn(k.trim().into(), [v.trim().to_string()].into())
            } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
                Requirement::In(k.trim().into(), [v.trim().to_string()].into())
            } else if let Some((k, rest)) = t.split_once(" notin ") {
                Requirement::NotIn(k.trim().into(), parse_set(t, rest)?)
            } else if let Some((k, rest)) = t.split_once(" in ") {
                Requirement::In(k.trim().into(), parse_set(t, rest)?)
            } else {
                Requirement::Exists(t.to_string())
            };
            let (key, values) = match &req {
                Requirement::In(k, v) | Requirement::NotIn(k, v) => (k, Some(v)),
                Requirement::Exists(k) | Requirement::DoesNotExist(k) => (k, None),
            };
            if !valid_key(key) {
                return Err(bad_selector(t, &format!("invalid label key {key:?}")));
            }
            if let Some(bad) = values.and_then(|vs| vs.iter().find(|v| !valid_value(v))) {
                return Err(bad_selector(t, &format!("invalid label value: {bad:?}")));
            }
            requirements.push(req);
        }
        Ok(LabelSelector { requirements })
    }

    /// Build from a `metav1.LabelSelector` object (`matchLabels` + `matchExpressions`).
    /// `None` or `{}` selects everything.
    pub fn from_object(sel: Option<&Value>) -> Result<LabelSelector, ApiError> {
        let mut requirements = Vec::new();
        let Some(sel) = sel else {
            return Ok(LabelSelector::default());
        };
        if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in m {
                requirements.push(Requirement::In(
                    k.clone(),
                    [v.as_str().unwrap_or_default().to_string()].into(),
                ));
            }
        }
        for e in sel
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = e
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let values: BTreeSet<String> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| {
                    vs.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            requirements.push(match e.get("operator").and_then(Value::as_str) {
                Some("In") => Requirement::In(key, values),
                Some("NotIn") => Requirement::NotIn(key, values),
                Some("Exists") => Requirement::Exists(key),
                Some("DoesNotExist") => Requirement::DoesNotExist(key),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "{other:?} is not a valid label selector operator"
                    )));
                }
            });
        }
        Ok(LabelSelector { requirements })
    }

    /// True when the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object's `metadata.labels` satisfy the selector.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.requirements.iter().all(|r| match r {
            Requirement::In(k, vs) => get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        })
    }
}

/// A parsed field selector: `metadata.name=x,status.phase!=Running`.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

/// The fields each resource may be selected by, beyond `metadata.name` and
/// `metadata.namespace` (as the real API server's field label conversions allow).
fn supported_fields(group: &str, resource: &str) -> &'static [&'static str] {
    match (group, resource) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "replicationcontrollers") => &["status.replicas"],
        ("apps", "replicasets") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        ("", "persistentvolumes") => &["name"],
        _ => &[],
    }
}

fn field_value(obj: &Value, field: &str) -> String {
    let pointer = format!("/{}", field.replace('.', "/"));
    match obj.pointer(&pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            // Unset booleans select as "false", as the Go conversion functions do.
            if field == "spec.unschedulable" || field == "spec.hostNetwork" {
                "false".into()
            } else {
                String::new()
            }
        }
    }
}

impl FieldSelector {
    /// Parse and check every field is supported for the resource; unsupported fields
    /// answer 400 `field label not supported: X`, as Kubernetes does.
    pub fn parse(s: &str, group: &str, resource: &str) -> Result<FieldSelector, ApiError> {
        let mut terms = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, eq, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                )));
            };
            let field = field.trim();
            if field != "metadata.name"
                && field != "metadata.namespace"
                && !supported_fields(group, resource).contains(&field)
            {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            terms.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector { terms })
    }

    /// Whether the object satisfies every term.
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(f, eq, v)| {
            let f = if f == "name" { "metadata.name" } else { f };
            (field_value(obj, f) == *v) == *eq
        })
    }

    /// The name pinned by `metadata.name=X`, if any (lets a watch or list read one key).
    pub fn pinned_name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|(f, eq, _)| f == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }

    /// True when there are no terms.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// Label and field selector together.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    /// From `labelSelector`.
    pub labels: LabelSelector,
    /// From `fieldSelector`.
    pub fields: FieldSelector,
}

impl Selectors {
    /// Whether the object passes both.
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "default", "labels": labels}, "status": {"phase": "Running"}})
    }

    #[test]
    fn equality_and_set_based_terms_combine() {
        let s = LabelSelector::parse("app=web,tier!=db,env in (prod, staging),!legacy,track")
            .expect("parse");
        assert!(s.matches(&obj(json!({"app": "web", "env": "prod", "track": "x"}))));
        assert!(!s.matches(&obj(json!({"app": "web", "env": "dev", "track": "x"}))));
        assert!(!s.matches(&obj(
            json!({"app": "web", "env": "prod", "track": "x", "legacy": "1"})
        )));
        assert!(!s.matches(&obj(json!({"app": "web", "env": "prod"}))));
    }

    #[test]
    fn notin_matches_objects_without_the_label() {
        let s = LabelSelector::parse("env notin (prod)").expect("parse");
        assert!(s.matches(&obj(json!({}))));
        assert!(!s.matches(&obj(json!({"env": "prod"}))));
    }

    #[test]
    fn invalid_label_value_is_a_bad_request() {
        let e = LabelSelector::parse("app=we b").expect_err("bad");
        assert_eq!(e.code, 400);
    }

    #[test]
    fn match_expressions_select_like_match_labels() {
        let s = LabelSelector::from_object(Some(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]
        })))
        .expect("selector");
        assert!(s.matches(&obj(json!({"app": "web", "env": "prod"}))));
        assert!(!s.matches(&obj(json!({"app": "web"}))));
    }

    #[test]
    fn field_selector_on_pod_phase_and_unsupported_field() {
        let f = FieldSelector::parse("status.phase=Running,metadata.name!=q", "", "pods")
            .expect("parse");
        assert!(f.matches(&obj(json!({}))));
        let e = FieldSelector::parse("spec.foo=bar", "", "pods").expect_err("unsupported");
        assert_eq!(e.message, "field label not supported: spec.foo");
    }
}
