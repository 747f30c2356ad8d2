//! Validation of built-in kinds with Kubernetes 1.36's exact field errors: the public entry points and the per-kind table.
//!
//! `validate` expects an object the way the real registry validates it: after
//! `apply_defaults`, with `metadata.namespace` set from the request for
//! namespaced kinds (and absent for cluster-scoped ones), and on update with
//! `metadata.resourceVersion` already filled in.

mod apps;
mod batch;
mod container;
mod core;
mod cron;
mod errors;
mod meta;
mod names;
mod other;
mod pod;
mod resources;
mod service;
mod storage;

pub use batch::generate_job_selector;
pub use errors::{
    ErrorKind, FieldError, Path, go_json, go_quote, go_value, invalid_message, invalid_status,
};
pub use names::NameRule;

use serde_json::{Map, Value};

type SpecFn = fn(&Value) -> Vec<FieldError>;
type UpdateFn = fn(&Value, &Value) -> Vec<FieldError>;

/// What one kind is checked against.
struct KindRules {
    name: NameRule,
    namespaced: bool,
    /// Checks of the object on its own (create, and again on update).
    spec: SpecFn,
    /// Checks that only apply on create.
    create: SpecFn,
    /// Checks comparing new and old on update (immutable fields, ...).
    update: UpdateFn,
}

fn nothing(_: &Value) -> Vec<FieldError> {
    Vec::new()
}

fn nothing_changed(_: &Value, _: &Value) -> Vec<FieldError> {
    Vec::new()
}

const fn rules(name: NameRule, namespaced: bool, spec: SpecFn) -> KindRules {
    KindRules {
        name,
        namespaced,
        spec,
        create: nothing,
        update: nothing_changed,
    }
}

/// The per-kind table; kinds not listed only get their metadata checked.
fn kind_rules(group: &str, kind: &str) -> Option<KindRules> {
    use NameRule::{Dns1035, Label, PathSegment, Subdomain};
    let r = match (group, kind) {
        ("", "ConfigMap") => KindRules {
            update: core::config_map_update,
            ..rules(Subdomain, true, core::config_map)
        },
        ("", "Secret") => KindRules {
            update: core::secret_update,
            ..rules(Subdomain, true, core::secret)
        },
        ("", "Namespace") => rules(Label, false, core::namespace),
        ("", "Service") => KindRules {
            update: core::service_update,
            ..rules(Dns1035, true, core::service)
        },
        ("", "Pod") => KindRules {
            create: core::pod_create,
            update: core::pod_update,
            ..rules(Subdomain, true, core::pod)
        },
        ("", "PodTemplate") => rules(Subdomain, true, core::pod_template),
        ("", "ReplicationController") => rules(Subdomain, true, core::replication_controller),
        ("", "Node") => KindRules {
            update: core::node_update,
            ..rules(Subdomain, false, core::node)
        },
        ("", "PersistentVolume") => KindRules {
            update: storage::pv_update,
            ..rules(Subdomain, false, storage::persistent_volume)
        },
        ("", "PersistentVolumeClaim") => KindRules {
            update: storage::pvc_update,
            ..rules(Subdomain, true, storage::pvc)
        },
        ("", "ServiceAccount" | "Endpoints" | "LimitRange" | "ResourceQuota" | "Event") => {
            rules(Subdomain, true, nothing)
        }
        ("apps", "Deployment") => KindRules {
            update: apps::deployment_update,
            ..rules(Subdomain, true, apps::deployment)
        },
        ("apps", "ReplicaSet") => KindRules {
            update: apps::replica_set_update,
            ..rules(Subdomain, true, apps::replica_set)
        },
        ("apps", "StatefulSet") => KindRules {
            update: apps::stateful_set_update,
            ..rules(Label, true, apps::stateful_set)
        },
        ("apps", "DaemonSet") => KindRules {
            update: apps::daemon_set_update,
            ..rules(Subdomain, true, apps::daemon_set)
        },
        ("apps", "ControllerRevision") => rules(Subdomain, true, nothing),
        ("batch", "Job") => KindRules {
            update: batch::job_update,
            ..rules(Subdomain, true, batch::job)
        },
        ("batch", "CronJob") => KindRules {
            create: batch::cron_job_create,
            ..rules(Subdomain, true, batch::cron_job)
        },
        ("networking.k8s.io", "Ingress") => rules(Subdomain, true, other::ingress),
        ("networking.k8s.io", "IngressClass") => rules(Subdomain, false, nothing),
        ("networking.k8s.io", "NetworkPolicy") => rules(Subdomain, true, nothing),
        ("autoscaling", "HorizontalPodAutoscaler") => rules(Subdomain, true, other::hpa),
        ("rbac.authorization.k8s.io", "Role") => rules(PathSegment, true, other::role),
        ("rbac.authorization.k8s.io", "ClusterRole") => {
            rules(PathSegment, false, other::cluster_role)
        }
        ("rbac.authorization.k8s.io", "RoleBinding") => KindRules {
            update: other::role_binding_update,
            ..rules(PathSegment, true, other::role_binding)
        },
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => KindRules {
            update: other::role_binding_update,
            ..rules(PathSegment, false, other::cluster_role_binding)
        },
        ("policy", "PodDisruptionBudget") => rules(Subdomain, true, nothing),
        ("storage.k8s.io", "StorageClass" | "CSIDriver" | "VolumeAttachment") => {
            rules(Subdomain, false, nothing)
        }
        ("scheduling.k8s.io", "PriorityClass") => rules(Subdomain, false, nothing),
        ("coordination.k8s.io", "Lease") => rules(Subdomain, true, nothing),
        ("discovery.k8s.io", "EndpointSlice") => rules(Subdomain, true, nothing),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => rules(Subdomain, false, nothing),
        _ => return None,
    };
    Some(r)
}

/// Whether a built-in kind is namespaced; `None` for kinds this module does not know.
pub fn is_namespaced(group: &str, kind: &str) -> Option<bool> {
    kind_rules(group, kind).map(|r| r.namespaced)
}

/// Validate an object on create (`old = None`) or update (`old = Some`).
/// `group` is "" for the core group; `kind` e.g. "Deployment".
pub fn validate(group: &str, kind: &str, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let meta_path = Path::new("metadata");
    let empty = Value::Object(Map::new());
    let meta = obj.get("metadata").unwrap_or(&empty);
    let Some(r) = kind_rules(group, kind) else {
        // Unknown kinds (custom resources): the name rule and metadata syntax only.
        let namespaced = !s(meta, "namespace").is_empty();
        let mut errs = Vec::new();
        if let Some(old) = old {
            errs.extend(meta::validate_object_meta_update(
                meta,
                old.get("metadata").unwrap_or(&empty),
                &meta_path,
            ));
        }
        errs.extend(meta::validate_object_meta(
            meta,
            namespaced,
            NameRule::Subdomain,
            &meta_path,
        ));
        return errs;
    };
    let mut errs = Vec::new();
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(
            meta,
            old.get("metadata").unwrap_or(&empty),
            &meta_path,
        ));
        errs.extend((r.update)(obj, old));
    }
    errs.extend(meta::validate_object_meta(
        meta,
        r.namespaced,
        r.name,
        &meta_path,
    ));
    errs.extend((r.spec)(obj));
    if old.is_none() {
        errs.extend((r.create)(obj));
    }
    errs
}

/// The name rule alone (for generateName and names taken from a URL path):
/// the messages `metadata.name` would get.
pub fn validate_name(group: &str, kind: &str, name: &str) -> Vec<String> {
    let rule = kind_rules(group, kind).map_or(NameRule::Subdomain, |r| r.name);
    names::check_name(rule, name, false)
}

/// Where a kind keeps its pod template, as JSON keys from the object root
/// (`Pod` itself has a spec, not a template, and is not listed).
pub fn pod_template_path(group: &str, kind: &str) -> Option<&'static [&'static str]> {
    match (group, kind) {
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job")
        | ("", "ReplicationController") => Some(&["spec", "template"]),
        ("", "PodTemplate") => Some(&["template"]),
        ("batch", "CronJob") => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

// ---- small JSON accessors shared by the submodules ----

/// The value at a key path, if every step exists.
fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(*k))
}

/// A string field, "" when absent or not a string (Go's zero value).
fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// An integer field; floats with no fraction count too.
fn int(v: &Value, key: &str) -> Option<i64> {
    let x = v.get(key)?;
    x.as_i64()
        .or_else(|| x.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

/// An array field, empty when absent.
fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// An object field.
fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

/// Whether a field is present and not null (a non-nil Go pointer).
fn set(v: &Value, key: &str) -> bool {
    v.get(key).is_some_and(|x| !x.is_null())
}

#[cfg(test)]
mod tests;
