//! LimitRanger admission: LimitRange defaults for the resources of a new pod's
//! containers (the mutating half, before validation), then `min`, `max` and
//! `maxLimitRequestRatio` of Container, Pod and PersistentVolumeClaim items (the
//! validating half), worded as Kubernetes' `plugin/pkg/admission/limitranger`.

use serde_json::{Map, Value};

use super::{Shared, forbidden, namespace_of};
use crate::api::error::ApiError;
use crate::api::quantity::Quantity;
use crate::api::quota::{self, ResourceList};
use crate::api::registry::ResourceType;

/// The annotation naming what the plugin filled in.
pub(crate) const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// Go's `resource.MaxMilliValue`: above it, comparisons are made in whole units.
const MAX_MILLI_VALUE: i64 = i64::MAX / 1000;

fn is_pod(rt: &ResourceType) -> bool {
    rt.group.is_empty() && rt.resource == "pods"
}

fn is_claim(rt: &ResourceType) -> bool {
    rt.group.is_empty() && rt.resource == "persistentvolumeclaims"
}

/// The LimitRanges of the object's namespace, in name order.
fn limit_ranges(s: &Shared, obj: &Value) -> Result<Vec<Value>, ApiError> {
    let ns = namespace_of(obj);
    Ok(s.store
        .list(&format!("/registry/core/limitranges/{ns}/"), None, 0)
        .map_err(ApiError::internal)?
        .items
        .into_iter()
        .map(|i| i.object)
        .collect())
}

/// The mutating half, on pod create: fill in each LimitRange's container defaults.
pub(crate) fn mutate_create(
    s: &Shared,
    rt: &ResourceType,
    obj: &mut Value,
) -> Result<(), ApiError> {
    if !is_pod(rt) {
        return Ok(());
    }
    for range in limit_ranges(s, obj)? {
        default_pod(&range, obj);
    }
    Ok(())
}

/// The validating half, on pod create and on claim create or update.
pub(crate) fn validate(
    s: &Shared,
    rt: &ResourceType,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let applies = (is_pod(rt) && old.is_none()) || is_claim(rt);
    // Objects already being deleted are left alone.
    let deleting = old.is_some_and(|o| o.pointer("/metadata/deletionTimestamp").is_some());
    if !applies || deleting {
        return Ok(());
    }
    for range in limit_ranges(s, obj)? {
        let errs = if is_pod(rt) {
            check_pod(&range, obj)
        } else {
            check_claim(&range, obj)
        };
        if let Some(reason) = aggregate(&errs) {
            return Err(forbidden(rt, obj, &reason));
        }
    }
    Ok(())
}

/// `utilerrors.NewAggregate(...).Error()`: one message as it is, several deduplicated
/// in `[a, b]`.
fn aggregate(errs: &[String]) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for e in errs {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [] => None,
        [one] => Some((*one).to_string()),
        many => Some(format!("[{}]", many.join(", "))),
    }
}

fn items<'a>(range: &'a Value, ty: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |i| i.get("type").and_then(Value::as_str) == Some(ty))
}

/// `defaultContainerResourceRequirements` + `mergePodResourceRequirements`.
fn default_pod(range: &Value, pod: &mut Value) {
    let (mut limits, mut requests) = (Map::new(), Map::new());
    for item in items(range, "Container") {
        for (field, into) in [("default", &mut limits), ("defaultRequest", &mut requests)] {
            if let Some(m) = item.get(field).and_then(Value::as_object) {
                into.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    }
    let mut notes = Vec::new();
    for (field, label) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let Some(cs) = pod
            .pointer_mut(&format!("/spec/{field}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let set_requests = fill(c, "requests", &requests);
            let set_limits = fill(c, "limits", &limits);
            if !set_requests.is_empty() {
                notes.push(format!(
                    "{} request for {label} {name}",
                    set_requests.join(", ")
                ));
            }
            if !set_limits.is_empty() {
                notes.push(format!(
                    "{} limit for {label} {name}",
                    set_limits.join(", ")
                ));
            }
        }
    }
    if notes.is_empty() {
        return;
    }
    let Some(meta) = pod.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    annotations[ANNOTATION] =
        Value::String(format!("LimitRanger plugin set: {}", notes.join("; ")));
}

/// Set each default the container lacks under `resources.<field>`; the names set, sorted.
fn fill(c: &mut Map<String, Value>, field: &str, defaults: &Map<String, Value>) -> Vec<String> {
    if defaults.is_empty() {
        return Vec::new();
    }
    let resources = c
        .entry("resources")
        .or_insert_with(|| Value::Object(Map::new()));
    if !resources.is_object() {
        *resources = Value::Object(Map::new());
    }
    let Some(resources) = resources.as_object_mut() else {
        return Vec::new();
    };
    let list = resources
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !list.is_object() {
        *list = Value::Object(Map::new());
    }
    let Some(list) = list.as_object_mut() else {
        return Vec::new();
    };
    let mut set: Vec<String> = Vec::new();
    for (k, v) in defaults {
        if !list.contains_key(k) {
            list.insert(k.clone(), v.clone());
            set.push(k.clone());
        }
    }
    set.sort();
    set
}

/// `requestLimitEnforcedValues`: milli-units unless a value is too large for them.
fn common_precision(
    request: Option<&Quantity>,
    limit: Option<&Quantity>,
    enforced: &Quantity,
) -> (i64, i64, i64) {
    let zero = Quantity::zero();
    let (r, l) = (request.unwrap_or(&zero), limit.unwrap_or(&zero));
    if [r, l, enforced]
        .iter()
        .all(|q| q.value() <= MAX_MILLI_VALUE)
    {
        (r.milli_value(), l.milli_value(), enforced.milli_value())
    } else {
        (r.value(), l.value(), enforced.value())
    }
}

fn min_constraint(
    ty: &str,
    name: &str,
    enforced: &Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let (req, lim) = (requests.get(name), limits.get(name));
    let (r, l, e) = common_precision(req, lim, enforced);
    let min = enforced.canonical();
    match (req, lim) {
        (None, _) => Some(format!(
            "minimum {name} usage per {ty} is {min}.  No request is specified"
        )),
        (Some(req), _) if r < e => Some(format!(
            "minimum {name} usage per {ty} is {min}, but request is {}",
            req.canonical()
        )),
        (_, Some(lim)) if l < e => Some(format!(
            "minimum {name} usage per {ty} is {min}, but limit is {}",
            lim.canonical()
        )),
        _ => None,
    }
}

fn max_constraint(
    ty: &str,
    name: &str,
    enforced: &Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let (req, lim) = (requests.get(name), limits.get(name));
    let (r, l, e) = common_precision(req, lim, enforced);
    let max = enforced.canonical();
    match (req, lim) {
        (_, None) => Some(format!(
            "maximum {name} usage per {ty} is {max}.  No limit is specified"
        )),
        (_, Some(lim)) if l > e => Some(format!(
            "maximum {name} usage per {ty} is {max}, but limit is {}",
            lim.canonical()
        )),
        (Some(req), _) if r > e => Some(format!(
            "maximum {name} usage per {ty} is {max}, but request is {}",
            req.canonical()
        )),
        _ => None,
    }
}

/// `maxRequestConstraint`, for claims, whose limits are not user input.
fn max_request_constraint(
    ty: &str,
    name: &str,
    enforced: &Quantity,
    requests: &ResourceList,
) -> Option<String> {
    let req = requests.get(name);
    let (r, _, e) = common_precision(req, None, enforced);
    let max = enforced.canonical();
    match req {
        None => Some(format!(
            "maximum {name} usage per {ty} is {max}.  No request is specified"
        )),
        Some(req) if r > e => Some(format!(
            "maximum {name} usage per {ty} is {max}, but request is {}",
            req.canonical()
        )),
        _ => None,
    }
}

fn ratio_constraint(
    ty: &str,
    name: &str,
    enforced: &Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let (req, lim) = (requests.get(name), limits.get(name));
    let (r, l, _) = common_precision(req, lim, enforced);
    let max = enforced.canonical();
    if req.is_none() || r == 0 {
        return Some(format!(
            "{name} max limit to request ratio per {ty} is {max}, but no request is specified or request is 0"
        ));
    }
    if lim.is_none() || l == 0 {
        return Some(format!(
            "{name} max limit to request ratio per {ty} is {max}, but no limit is specified or limit is 0"
        ));
    }
    // Go compares the ratio as float64, in thousandths, and shows it with %f.
    let shown = l as f64 / r as f64;
    let (observed, allowed) = if enforced.value() <= MAX_MILLI_VALUE {
        (shown * 1000.0, enforced.milli_value() as f64)
    } else {
        (shown, enforced.value() as f64)
    };
    (observed > allowed).then(|| {
        format!(
            "{name} max limit to request ratio per {ty} is {max}, but provided ratio is {shown:.6}"
        )
    })
}

/// Every min / max / ratio rule of one item against one set of requests and limits.
fn check(
    item: &Value,
    ty: &str,
    requests: &ResourceList,
    limits: &ResourceList,
    errs: &mut Vec<String>,
) {
    for (name, q) in quota::parse(item.get("min")) {
        errs.extend(min_constraint(ty, &name, &q, requests, limits));
    }
    for (name, q) in quota::parse(item.get("max")) {
        errs.extend(max_constraint(ty, &name, &q, requests, limits));
    }
    for (name, q) in quota::parse(item.get("maxLimitRequestRatio")) {
        errs.extend(ratio_constraint(ty, &name, &q, requests, limits));
    }
}

/// `PodValidateLimitFunc`: Container items per container and init container, Pod items
/// against the pod's totals.
fn check_pod(range: &Value, pod: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    for item in range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match item.get("type").and_then(Value::as_str) {
            Some("Container") => {
                for field in ["containers", "initContainers"] {
                    for c in spec
                        .get(field)
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let requests = quota::parse(c.pointer("/resources/requests"));
                        let limits = quota::parse(c.pointer("/resources/limits"));
                        check(item, "Container", &requests, &limits, &mut errs);
                    }
                }
            }
            Some("Pod") => {
                let (requests, limits) = quota::container_totals(spec);
                check(item, "Pod", &requests, &limits, &mut errs);
            }
            _ => {}
        }
    }
    errs
}

/// `PersistentVolumeClaimValidateLimitFunc`: min and max of the requested storage.
fn check_claim(range: &Value, pvc: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let requests = quota::parse(pvc.pointer("/spec/resources/requests"));
    for item in items(range, "PersistentVolumeClaim") {
        for (name, q) in quota::parse(item.get("min")) {
            errs.extend(min_constraint(
                "PersistentVolumeClaim",
                &name,
                &q,
                &requests,
                &ResourceList::new(),
            ));
        }
        for (name, q) in quota::parse(item.get("max")) {
            errs.extend(max_request_constraint(
                "PersistentVolumeClaim",
                &name,
                &q,
                &requests,
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn range(limits: Value) -> Value {
        json!({"metadata": {"name": "lr"}, "spec": {"limits": limits}})
    }

    fn pod(containers: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    #[test]
    fn defaults_fill_only_what_a_container_lacks_and_annotate_it() {
        let lr = range(json!([{"type": "Container",
            "default": {"cpu": "500m", "memory": "128Mi"},
            "defaultRequest": {"cpu": "100m", "memory": "64Mi"}}]));
        let mut p = pod(json!([
            {"name": "a", "resources": {}},
            {"name": "b", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}},
        ]));
        default_pod(&lr, &mut p);
        assert_eq!(
            p["spec"]["containers"][0]["resources"],
            json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}})
        );
        assert_eq!(
            p["spec"]["containers"][1]["resources"],
            json!({"requests": {"cpu": "1", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}})
        );
        assert_eq!(
            p["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container a; cpu, memory limit for container a; memory request for container b; memory limit for container b"
        );
    }

    #[test]
    fn a_pod_without_defaults_to_apply_gets_no_annotation() {
        let mut p = pod(json!([{"name": "a"}]));
        default_pod(&range(json!([{"type": "Container", "max": {}}])), &mut p);
        assert!(p["metadata"].get("annotations").is_none());
    }

    #[test]
    fn container_max_min_and_ratio_use_the_real_wording() {
        let lr = range(json!([{"type": "Container",
            "max": {"cpu": "500m"}, "min": {"memory": "64Mi"}, "maxLimitRequestRatio": {"cpu": "2"}}]));
        let p = pod(json!([{"name": "c", "resources": {
            "limits": {"cpu": "1"}, "requests": {"cpu": "250m", "memory": "32Mi"}}}]));
        assert_eq!(
            aggregate(&check_pod(&lr, &p)).expect("errors"),
            "[minimum memory usage per Container is 64Mi, but request is 32Mi, maximum cpu usage per Container is 500m, but limit is 1, cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000]"
        );
        let bare = pod(json!([{"name": "c"}]));
        assert_eq!(
            check_pod(
                &range(json!([{"type": "Container", "max": {"cpu": "1"}}])),
                &bare
            ),
            ["maximum cpu usage per Container is 1.  No limit is specified"]
        );
    }

    #[test]
    fn pod_items_check_the_sum_of_containers() {
        let lr = range(json!([{"type": "Pod", "max": {"memory": "100Mi"}}]));
        let p = pod(json!([
            {"name": "a", "resources": {"limits": {"memory": "60Mi"}, "requests": {"memory": "60Mi"}}},
            {"name": "b", "resources": {"limits": {"memory": "60Mi"}, "requests": {"memory": "60Mi"}}},
        ]));
        assert_eq!(
            check_pod(&lr, &p),
            ["maximum memory usage per Pod is 100Mi, but limit is 120Mi"]
        );
    }

    #[test]
    fn claims_are_held_to_min_and_max_storage_requests() {
        let lr = range(
            json!([{"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "2Gi"}}]),
        );
        let claim = |size: &str| json!({"spec": {"resources": {"requests": {"storage": size}}}});
        assert_eq!(
            check_claim(&lr, &claim("5Gi")),
            ["maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 5Gi"]
        );
        assert_eq!(
            check_claim(&lr, &claim("500Mi")),
            ["minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"]
        );
        assert!(check_claim(&lr, &claim("1Gi")).is_empty());
    }

    #[test]
    fn aggregate_deduplicates_like_go() {
        assert_eq!(aggregate(&[]), None);
        assert_eq!(aggregate(&["a".into(), "a".into()]).as_deref(), Some("a"));
        assert_eq!(
            aggregate(&["a".into(), "b".into(), "a".into()]).as_deref(),
            Some("[a, b]")
        );
    }
}
