//! System-managed metadata and the rules that shape a stored object: uid, timestamps,
//! generation, status kept apart from spec, and what "unchanged" means.

use serde_json::{Map, Value, json};

use crate::api::error::ApiError;
use crate::api::registry::ResourceType;
use crate::store;

pub(crate) use crate::api::clock::now;

/// `metadata.name`, or "".
pub(crate) fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Mutable `metadata`, created if missing.
pub(crate) fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

/// Whether the kind counts spec changes in `metadata.generation`, as its Kubernetes
/// registry strategy does.
pub(crate) fn tracks_generation(rt: &ResourceType) -> bool {
    rt.crd.is_some()
        || matches!(
            rt.group.as_str(),
            "apps" | "batch" | "autoscaling" | "policy" | "apiextensions.k8s.io"
        )
        || matches!(
            (rt.group.as_str(), rt.resource.as_str()),
            ("", "replicationcontrollers") | ("networking.k8s.io", "ingresses" | "networkpolicies")
        )
}

/// The QoS class Kubernetes derives from a pod's requests and limits.
fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| {
            pod.pointer(&format!("/spec/{k}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .collect();
    let get =
        |c: &Value, kind: &str, res: &str| c.pointer(&format!("/resources/{kind}/{res}")).cloned();
    let any = containers.iter().any(|c| {
        ["requests", "limits"].iter().any(|k| {
            c.pointer(&format!("/resources/{k}"))
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
        })
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = get(c, "limits", r);
            limit.is_some() && get(c, "requests", r).is_none_or(|q| Some(q) == limit)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Fill system metadata and the initial status of a new object.
pub(crate) fn prepare_create(rt: &ResourceType, obj: &mut Value) {
    let tracks = tracks_generation(rt);
    let meta = meta_mut(obj);
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now()));
    for k in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(k);
    }
    if tracks {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    if is_daemon_set(rt) {
        daemon_set_template_generation(None, obj);
    }
    match (rt.group.as_str(), rt.resource.as_str()) {
        ("", "namespaces") => obj["status"] = json!({"phase": "Active"}),
        ("", "pods") => {
            let qos = qos_class(obj);
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        ("", "persistentvolumeclaims") => obj["status"] = json!({"phase": "Pending"}),
        ("", "persistentvolumes") => {
            obj["status"] = json!({"phase": "Pending", "lastPhaseTransitionTime": now()})
        }
        ("", "services") => obj["status"] = json!({"loadBalancer": {}}),
        // Nodes and CRDs arrive with the status their writer knows.
        ("", "nodes") | ("apiextensions.k8s.io", _) => {}
        _ if rt.has_status() => {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        _ => {}
    }
}

/// Everything but `metadata` and `status`: what a generation counts.
fn spec_part(obj: &Value) -> Map<String, Value> {
    obj.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Carry the system-owned fields of `old` into an update, keep status apart from spec
/// (per subresource), and bump the generation when the spec changed.
pub(crate) fn prepare_update(
    rt: &ResourceType,
    old: &Value,
    mut new: Value,
    sub: Option<&str>,
) -> Value {
    if sub == Some("status") {
        // The status subresource changes status only.
        let mut merged = old.clone();
        match new.get_mut("status").map(Value::take) {
            Some(status) => merged["status"] = status,
            None => {
                if let Some(o) = merged.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        if rt.group.is_empty() && rt.resource == "persistentvolumes" {
            stamp_phase_transition(old, &mut merged);
        }
        return merged;
    }
    if rt.has_status() && rt.resource != "namespaces" {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let changed = spec_part(old) != spec_part(&new);
    let meta = meta_mut(&mut new);
    for k in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
    ] {
        match old_meta.get(k) {
            Some(v) => meta.insert(k.into(), v.clone()),
            None => meta.remove(k),
        };
    }
    meta.remove("selfLink");
    if tracks_generation(rt) && changed {
        let g = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta.insert("generation".into(), json!(g + 1));
    }
    if is_daemon_set(rt) {
        daemon_set_template_generation(Some(old), &mut new);
    }
    if super::services::is_services(rt) {
        super::services::prepare_update(old, &mut new);
    }
    new
}

fn is_daemon_set(rt: &ResourceType) -> bool {
    rt.group == "apps" && rt.resource == "daemonsets"
}

/// The annotation apps/v1 carries a DaemonSet's template generation in.
const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// The DaemonSet strategy's template generation (kept in an annotation by apps/v1):
/// on create what the creator set, at least 1; on update the stored one, plus one
/// when `spec.template` changed. Clients cannot set it otherwise.
fn daemon_set_template_generation(old: Option<&Value>, new: &mut Value) {
    let of = |o: &Value| {
        o.pointer("/metadata/annotations")
            .and_then(|a| a.get(TEMPLATE_GENERATION))
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<i64>().ok())
    };
    let generation = match old {
        None => of(new).filter(|g| *g >= 1).unwrap_or(1),
        Some(old) => {
            let stored = of(old).unwrap_or(1);
            if old.pointer("/spec/template") == new.pointer("/spec/template") {
                stored
            } else {
                stored + 1
            }
        }
    };
    let meta = meta_mut(new);
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    annotations[TEMPLATE_GENERATION] = json!(generation.to_string());
}

/// A volume whose phase changes gets `lastPhaseTransitionTime` now, unless the
/// writer set a new one itself (the PV registry strategy).
fn stamp_phase_transition(old: &Value, new: &mut Value) {
    let phase = |v: &Value| v.pointer("/status/phase").cloned();
    let stamp = |v: &Value| v.pointer("/status/lastPhaseTransitionTime").cloned();
    if phase(old) != phase(new)
        && (stamp(new).is_none() || stamp(new) == stamp(old))
        && let Some(status) = new.get_mut("status").and_then(Value::as_object_mut)
    {
        status.insert("lastPhaseTransitionTime".into(), json!(now()));
    }
}

/// Whether an update would store exactly what is there (then it is not written and the
/// resourceVersion does not move, as in Kubernetes).
pub(crate) fn unchanged(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        v
    };
    strip(old) == strip(new)
}

/// Whether a deleted-pending object may now go: deletionTimestamp set and no finalizers
/// left (for namespaces, neither metadata nor spec finalizers).
pub(crate) fn ready_to_remove(obj: &Value) -> bool {
    let empty = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    };
    obj.pointer("/metadata/deletionTimestamp").is_some()
        && empty("/metadata/finalizers")
        && empty("/spec/finalizers")
}

/// Whether an update removes a deleted-pending object, as Kubernetes' registry does:
/// only when it takes away the last finalizer and no grace period is running (a pod
/// in its grace period stays until the kubelet deletes it, whatever status it writes).
pub(crate) fn finalized_by_update(old: &Value, new: &Value) -> bool {
    let had_finalizers = ["/metadata/finalizers", "/spec/finalizers"]
        .iter()
        .any(|p| {
            old.pointer(p)
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty())
        });
    let grace = new
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    had_finalizers && grace == 0 && ready_to_remove(new)
}

/// The resourceVersion a client sent in the object, if any.
pub(crate) fn sent_resource_version(
    obj: &Value,
    rt: &ResourceType,
    name: &str,
) -> Result<Option<u64>, ApiError> {
    match obj
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
    {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "{} \"{name}\": invalid resourceVersion {s:?}",
                crate::api::error::qualified(&rt.group, &rt.resource)
            ))
        }),
    }
}

/// Map a store failure on one object to the API error Kubernetes gives.
pub(crate) fn store_error(rt: &ResourceType, name: &str, e: store::Error) -> ApiError {
    match e {
        store::Error::NotFound => ApiError::not_found(&rt.group, &rt.resource, name),
        store::Error::AlreadyExists => ApiError::already_exists(&rt.group, &rt.resource, name),
        store::Error::Conflict { .. } => {
            ApiError::conflict(&rt.group, &rt.resource, name, ApiError::MODIFIED)
        }
        store::Error::TooOld { requested, oldest } => {
            ApiError::expired(format!("too old resource version: {requested} ({oldest})"))
        }
        other => ApiError::internal(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry::Registry;

    #[test]
    fn only_removing_the_last_finalizer_outside_a_grace_period_removes_an_object() {
        let deleted = |grace: i64, finalizers: &[&str]| {
            json!({"metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z",
                "deletionGracePeriodSeconds": grace, "finalizers": finalizers}})
        };
        // A controller drops the last finalizer of a deleted object: it goes.
        assert!(finalized_by_update(&deleted(0, &["x"]), &deleted(0, &[])));
        // A pod in its grace period writing status stays until the kubelet deletes it.
        assert!(!finalized_by_update(&deleted(30, &[]), &deleted(30, &[])));
        assert!(!finalized_by_update(
            &deleted(30, &["x"]),
            &deleted(30, &[])
        ));
        // A finalizer left keeps it.
        assert!(!finalized_by_update(
            &deleted(0, &["x", "y"]),
            &deleted(0, &["y"])
        ));
        // A namespace's spec finalizers count too.
        let ns = |f: &[&str]| json!({"metadata": {"name": "n", "deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"finalizers": f}});
        assert!(finalized_by_update(&ns(&["kubernetes"]), &ns(&[])));
    }

    #[test]
    fn a_daemon_sets_template_generation_counts_template_changes() {
        let r = Registry::builtin();
        let rt = r.lookup("apps", "v1", "daemonsets").expect("type");
        let gen_of = |o: &Value| o["metadata"]["annotations"][TEMPLATE_GENERATION].clone();
        let mut created =
            json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {"x": 1}}}});
        prepare_create(&rt, &mut created);
        assert_eq!(gen_of(&created), "1");
        let same = prepare_update(
            &rt,
            &created,
            json!({"metadata": {"name": "d", "annotations": {TEMPLATE_GENERATION: "9"}},
                   "spec": {"template": {"spec": {"x": 1}}, "minReadySeconds": 5}}),
            None,
        );
        assert_eq!(gen_of(&same), "1", "clients cannot set it");
        let changed = prepare_update(
            &rt,
            &same,
            json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {"x": 2}}}}),
            None,
        );
        assert_eq!(gen_of(&changed), "2");
        let mut preset =
            json!({"metadata": {"name": "d", "annotations": {TEMPLATE_GENERATION: "4"}}});
        prepare_create(&rt, &mut preset);
        assert_eq!(gen_of(&preset), "4");
    }

    #[test]
    fn spec_change_bumps_generation_but_label_change_does_not() {
        let r = Registry::builtin();
        let rt = r.lookup("apps", "v1", "deployments").expect("type");
        let old = json!({"metadata": {"name": "w", "generation": 1, "uid": "u"}, "spec": {"replicas": 1}, "status": {"replicas": 1}});
        let scaled = prepare_update(
            &rt,
            &old,
            json!({"metadata": {"name": "w"}, "spec": {"replicas": 3}}),
            None,
        );
        assert_eq!(scaled["metadata"]["generation"], 2);
        assert_eq!(
            scaled["status"]["replicas"], 1,
            "status is kept from the stored object"
        );
        assert_eq!(scaled["metadata"]["uid"], "u");
        let labelled = prepare_update(
            &rt,
            &old,
            json!({"metadata": {"name": "w", "labels": {"a": "b"}}, "spec": {"replicas": 1}}),
            None,
        );
        assert_eq!(labelled["metadata"]["generation"], 1);
    }

    #[test]
    fn status_subresource_changes_only_status() {
        let r = Registry::builtin();
        let rt = r.lookup("apps", "v1", "deployments").expect("type");
        let old = json!({"metadata": {"name": "w", "generation": 1}, "spec": {"replicas": 1}});
        let out = prepare_update(
            &rt,
            &old,
            json!({"metadata": {"name": "w"}, "spec": {"replicas": 9}, "status": {"replicas": 1}}),
            Some("status"),
        );
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(out["status"]["replicas"], 1);
    }

    #[test]
    fn a_volume_phase_change_stamps_its_transition_time() {
        let r = Registry::builtin();
        let rt = r.lookup("", "v1", "persistentvolumes").expect("type");
        let old = json!({"metadata": {"name": "v"},
            "status": {"phase": "Pending", "lastPhaseTransitionTime": "2020-01-01T00:00:00Z"}});
        let same = prepare_update(&rt, &old, old.clone(), Some("status"));
        assert_eq!(
            same["status"]["lastPhaseTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
        let moved = prepare_update(
            &rt,
            &old,
            json!({"metadata": {"name": "v"}, "status": {"phase": "Available",
                "lastPhaseTransitionTime": "2020-01-01T00:00:00Z"}}),
            Some("status"),
        );
        assert_eq!(moved["status"]["phase"], "Available");
        assert_ne!(
            moved["status"]["lastPhaseTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
    }

    #[test]
    fn pods_without_resources_are_best_effort() {
        assert_eq!(
            qos_class(&json!({"spec": {"containers": [{"name": "a"}]}})),
            "BestEffort"
        );
        assert_eq!(
            qos_class(
                &json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}})
            ),
            "Guaranteed"
        );
    }
}
