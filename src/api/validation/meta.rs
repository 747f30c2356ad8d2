//! ObjectMeta on create and update, labels, annotations, label selectors and the immutable-field rule.

use super::errors::{FieldError, Path, go_quote, sorted_map};
use super::names::{self, NameRule};
use super::{arr, int, obj, s};
use serde_json::Value;

pub const FIELD_IMMUTABLE: &str = "field is immutable";
pub const IS_NEGATIVE: &str = "must be greater than or equal to 0";
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;
/// Finalizer names that need no domain prefix (`helper.IsStandardFinalizerName`).
const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];

/// `ValidateObjectMeta` plus core's extra finalizer-name rule, for a create.
/// The caller has already set the namespace from the request (and cleared it
/// for cluster-scoped kinds), as the generic registry does before validating.
pub fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    rule: NameRule,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = s(meta, "name");
    let generate_name = s(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in names::check_name(rule, generate_name, true) {
            errs.push(FieldError::invalid(
                path.child("generateName"),
                generate_name,
                msg,
            ));
        }
    }
    if name.is_empty() {
        // The server generates the name from generateName before validating.
        if generate_name.is_empty() {
            errs.push(FieldError::required(
                path.child("name"),
                "name or generateName is required",
            ));
        }
    } else {
        for msg in names::check_name(rule, name, false) {
            errs.push(FieldError::invalid(path.child("name"), name, msg));
        }
    }
    let namespace = s(meta, "namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(path.child("namespace"), ""));
        } else {
            for msg in names::check_name(NameRule::Label, namespace, false) {
                errs.push(FieldError::invalid(path.child("namespace"), namespace, msg));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            path.child("namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(g) = int(meta, "generation").filter(|g| *g < 0) {
        errs.push(FieldError::invalid(
            path.child("generation"),
            g,
            IS_NEGATIVE,
        ));
    }
    errs.extend(validate_labels(meta.get("labels"), &path.child("labels")));
    errs.extend(validate_annotations(
        meta.get("annotations"),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        arr(meta, "ownerReferences"),
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_finalizers(
        arr(meta, "finalizers"),
        &path.child("finalizers"),
    ));
    errs
}

/// `ValidateObjectMetaUpdate`: identity fields cannot change. The checks of
/// the new object as a whole are run separately by the caller.
pub fn validate_object_meta_update(new: &Value, old: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.get("deletionTimestamp").is_some_and(|v| !v.is_null()) {
        let old_f: Vec<&str> = arr(old, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut extra: Vec<&str> = arr(new, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .filter(|f| !old_f.contains(f))
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            let list: Vec<String> = extra.iter().map(|f| go_quote(f)).collect();
            errs.push(FieldError::forbidden(
                path.child("finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    list.join(", ")
                ),
            ));
        }
    }
    // name and namespace always come with the request; uid and timestamps are
    // copied from the stored object when the client leaves them out.
    for key in ["name", "namespace"] {
        errs.extend(immutable(
            new.get(key).unwrap_or(&Value::from("")),
            old.get(key).unwrap_or(&Value::from("")),
            &path.child(key),
        ));
    }
    for key in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        if let Some(nv) = new.get(key).filter(|v| !v.is_null() && *v != "") {
            errs.extend(immutable(
                nv,
                old.get(key).unwrap_or(&Value::Null),
                &path.child(key),
            ));
        }
    }
    errs
}

/// `ValidateImmutableField`: the new value is echoed back.
pub fn immutable(new: &Value, old: &Value, path: &Path) -> Vec<FieldError> {
    if new == old {
        Vec::new()
    } else {
        vec![FieldError::invalid(path, new.clone(), FIELD_IMMUTABLE)]
    }
}

/// `ValidateNonnegativeField`.
pub fn nonnegative(v: &Value, key: &str, path: &Path) -> Vec<FieldError> {
    match int(v, key) {
        Some(n) if n < 0 => vec![FieldError::invalid(path.child(key), n, IS_NEGATIVE)],
        _ => Vec::new(),
    }
}

/// `ValidateLabels`: keys must be qualified names, values label values.
pub fn validate_labels(labels: Option<&Value>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(Value::Object(map)) = labels else {
        return errs;
    };
    for (k, v) in map {
        for msg in names::qualified_name(k) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        let value = v.as_str().unwrap_or_default();
        for msg in names::label_value(value) {
            errs.push(FieldError::invalid(path, value, msg));
        }
    }
    errs
}

/// `ValidateAnnotations`: keys are checked lower-cased; the total size is capped.
pub fn validate_annotations(annotations: Option<&Value>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(Value::Object(map)) = annotations else {
        return errs;
    };
    let mut total = 0usize;
    for (k, v) in map {
        for msg in names::qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

fn validate_owner_references(refs: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller = String::new();
    for r in refs {
        let api_version = s(r, "apiVersion");
        // schema.ParseGroupVersion: "v1", "group/v1"; anything else has no version.
        let (group, version) = match api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] => ("", *v),
            [g, v] => (*g, *v),
            _ => ("", ""),
        };
        if version.is_empty() {
            errs.push(FieldError::invalid(
                path.child("apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        let kind = s(r, "kind");
        if kind.is_empty() {
            errs.push(FieldError::invalid(
                path.child("kind"),
                kind,
                "must not be empty",
            ));
        }
        if s(r, "name").is_empty() {
            errs.push(FieldError::invalid(
                path.child("name"),
                "",
                "must not be empty",
            ));
        }
        if s(r, "uid").is_empty() {
            errs.push(FieldError::invalid(
                path.child("uid"),
                "",
                "must not be empty",
            ));
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                r.clone(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{}/{}", kind, s(r, "name"));
            if first_controller.is_empty() {
                first_controller = current;
            } else {
                errs.push(FieldError::invalid(
                    path,
                    Value::Array(refs.to_vec()),
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first_controller} and {current}"),
                ));
            }
        }
    }
    errs
}

/// `ValidateFinalizers` and core's `validateKubeFinalizerName` (indexed path).
fn validate_finalizers(finalizers: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let names: Vec<&str> = finalizers.iter().filter_map(Value::as_str).collect();
    for f in &names {
        for msg in names::qualified_name(f) {
            errs.push(FieldError::invalid(path, *f, msg));
        }
    }
    if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            Value::Array(finalizers.to_vec()),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    for (i, f) in names.iter().enumerate() {
        errs.extend(kube_finalizer_name(f, &path.index(i)));
    }
    errs
}

/// A finalizer without a '/' must be one of the standard names.
pub fn kube_finalizer_name(f: &str, path: &Path) -> Vec<FieldError> {
    if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f) {
        vec![FieldError::invalid(
            path,
            f,
            "name is neither a standard finalizer name nor is it fully qualified",
        )]
    } else {
        Vec::new()
    }
}

/// `ValidateLabelSelector` (metav1.LabelSelector), strict about label values.
pub fn validate_label_selector(sel: Option<&Value>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(sel) = sel.filter(|v| v.is_object()) else {
        return errs;
    };
    errs.extend(validate_labels(
        sel.get("matchLabels"),
        &path.child("matchLabels"),
    ));
    for (i, expr) in arr(sel, "matchExpressions").iter().enumerate() {
        let p = path.child("matchExpressions").index(i);
        let values = arr(expr, "values");
        match s(expr, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => errs.push(FieldError::invalid(
                p.child("operator"),
                op,
                "not a valid selector operator",
            )),
        }
        let key = s(expr, "key");
        for msg in names::qualified_name(key) {
            errs.push(FieldError::invalid(p.child("key"), key, msg));
        }
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or_default();
            for msg in names::label_value(v) {
                errs.push(FieldError::invalid(p.child("values").index(j), v, msg));
            }
        }
    }
    errs
}

/// What `metav1.LabelSelectorAsSelector` yields.
pub enum Selector<'a> {
    /// A nil selector selects nothing.
    Nothing,
    /// An empty selector selects everything.
    Everything,
    Match(&'a Value),
    /// The selector has an unknown operator.
    Invalid,
}

pub fn as_selector(sel: Option<&Value>) -> Selector<'_> {
    let Some(sel) = sel.filter(|v| v.is_object()) else {
        return Selector::Nothing;
    };
    let labels = obj(sel, "matchLabels").map_or(0, |m| m.len());
    let exprs = arr(sel, "matchExpressions");
    if exprs
        .iter()
        .any(|e| !matches!(s(e, "operator"), "In" | "NotIn" | "Exists" | "DoesNotExist"))
    {
        return Selector::Invalid;
    }
    if labels + exprs.len() == 0 {
        Selector::Everything
    } else {
        Selector::Match(sel)
    }
}

/// Whether a selector's requirements all hold on a label set.
pub fn selector_matches(sel: &Value, labels: Option<&Value>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let match_labels =
        obj(sel, "matchLabels").is_none_or(|m| m.iter().all(|(k, v)| get(k) == v.as_str()));
    let exprs = arr(sel, "matchExpressions").iter().all(|e| {
        let have = get(s(e, "key"));
        let in_values = |v: &str| arr(e, "values").iter().any(|x| x.as_str() == Some(v));
        match s(e, "operator") {
            "In" => have.is_some_and(in_values),
            "NotIn" => !have.is_some_and(in_values),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    });
    match_labels && exprs
}

/// The `"`selector` does not match template `labels`"` error, value as Go prints the map.
pub fn selector_mismatch(template_labels: Option<&Value>, path: &Path) -> FieldError {
    FieldError::invalid(
        path,
        sorted_map(template_labels),
        "`selector` does not match template `labels`",
    )
}
