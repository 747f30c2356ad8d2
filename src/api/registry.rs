//! The kind registry: every resource the API serves, with its group, version, kind,
//! scope, verbs, short names, categories and subresources.
//!
//! Built-in kinds come from one table below; custom resources are added and removed
//! at run time as CustomResourceDefinitions are created and deleted.

use std::sync::{Arc, RwLock};

use serde_json::Value;

/// Decode-and-encode through the kind's typed struct: rejects malformed objects and
/// drops fields the type does not know.
pub type Codec = fn(Value) -> Result<Value, serde_json::Error>;

/// One resource of one group-version.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group, `""` for core.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Plural resource name, e.g. `deployments`.
    pub resource: String,
    /// Singular name, e.g. `deployment`.
    pub singular: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Verbs served.
    pub verbs: Vec<&'static str>,
    /// Short names (`deploy`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Subresources served (`status`, `scale`).
    pub subresources: Vec<&'static str>,
    /// JSON schema of the typed struct (built-ins only).
    pub schema: Option<fn() -> schemars::Schema>,
    /// Typed round trip (built-ins only).
    pub codec: Option<Codec>,
    /// For custom resources: the version's `openAPIV3Schema`.
    pub crd_schema: Option<Value>,
    /// For custom resources: `additionalPrinterColumns`.
    pub printer_columns: Vec<Value>,
    /// For custom resources: the CRD's name (`widgets.example.com`).
    pub crd: Option<String>,
    /// Storage key segment (`apps/deployments`); versions of one resource that share
    /// storage share it.
    pub storage: String,
    /// The apiVersion objects are stored in, when it is not this type's own (then
    /// reads and writes convert, see `api::conversion`).
    pub storage_version: Option<String>,
}

impl ResourceType {
    /// `apps/v1`, or `v1` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// An object as stored, from this type's version.
    pub fn to_storage(&self, obj: Value) -> Value {
        match &self.storage_version {
            Some(to) => super::conversion::convert(&self.kind, obj, &self.api_version(), to),
            None => obj,
        }
    }

    /// An object in this type's version, from storage. Custom resources are stored once
    /// for all their versions and answer in the version asked.
    pub fn from_storage(&self, mut obj: Value) -> Value {
        match &self.storage_version {
            Some(from) => {
                // Like the real API server, defaults of the version read apply after
                // conversion (an autoscaling/v1 HPA without a CPU target reads back as
                // v2 with the default 80% CPU metric).
                let mut out =
                    super::conversion::convert(&self.kind, obj, from, &self.api_version());
                super::defaults::apply_defaults(&self.group, &self.version, &self.kind, &mut out);
                out
            }
            None => {
                if self.crd.is_some() && obj.is_object() {
                    obj["apiVersion"] = Value::String(self.api_version());
                }
                obj
            }
        }
    }

    /// Whether the `status` subresource exists (then the main resource ignores status
    /// changes, as Kubernetes does).
    pub fn has_status(&self) -> bool {
        self.subresources.contains(&"status")
    }

    /// Whether the `scale` subresource exists.
    pub fn has_scale(&self) -> bool {
        self.subresources.contains(&"scale")
    }

    /// The store key prefix of this resource, optionally within a namespace.
    pub fn key_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/registry/{}/{ns}/", self.storage),
            _ => format!("/registry/{}/", self.storage),
        }
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{name}", self.key_prefix(namespace))
    }
}

/// Every verb of an ordinary resource.
pub const ALL_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn codec_of<T>(v: Value) -> Result<Value, serde_json::Error>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: T = serde_json::from_value(v)?;
    serde_json::to_value(typed)
}

fn schema_of<T: schemars::JsonSchema>() -> schemars::Schema {
    schemars::SchemaGenerator::default().into_root_schema_for::<T>()
}

struct Spec {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [&'static str],
}

fn builtin<T>(s: Spec) -> ResourceType
where
    T: serde::de::DeserializeOwned + serde::Serialize + schemars::JsonSchema,
{
    let group_dir = if s.group.is_empty() { "core" } else { s.group };
    ResourceType {
        group: s.group.into(),
        version: s.version.into(),
        resource: s.resource.into(),
        singular: s.kind.to_lowercase(),
        kind: s.kind.into(),
        namespaced: s.namespaced,
        verbs: ALL_VERBS.to_vec(),
        short_names: s.short.iter().map(|x| x.to_string()).collect(),
        categories: s.categories.iter().map(|x| x.to_string()).collect(),
        subresources: s.subresources.to_vec(),
        schema: Some(schema_of::<T>),
        codec: Some(codec_of::<T>),
        crd_schema: None,
        printer_columns: Vec::new(),
        crd: None,
        storage: format!("{group_dir}/{}", s.resource),
        storage_version: None,
    }
}

macro_rules! kinds {
    ($( $ty:ty => $g:literal $v:literal $res:literal $kind:literal $ns:literal [$($short:literal),*] [$($cat:literal),*] [$($sub:literal),*] ;)*) => {
        vec![$( builtin::<$ty>(Spec {
            group: $g, version: $v, resource: $res, kind: $kind, namespaced: $ns,
            short: &[$($short),*], categories: &[$($cat),*], subresources: &[$($sub),*],
        }) ),*]
    };
}

fn builtins() -> Vec<ResourceType> {
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v1 as as1, autoscaling::v2 as as2, batch::v1 as batch,
        coordination::v1 as coord, core::v1 as core, discovery::v1 as disc, events::v1 as ev,
        networking::v1 as net, policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as sched,
        storage::v1 as storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    let mut types = kinds! {
        core::ConfigMap => "" "v1" "configmaps" "ConfigMap" true ["cm"] [] [];
        core::Endpoints => "" "v1" "endpoints" "Endpoints" true ["ep"] [] [];
        core::Event => "" "v1" "events" "Event" true ["ev"] [] [];
        core::LimitRange => "" "v1" "limitranges" "LimitRange" true ["limits"] [] [];
        core::Namespace => "" "v1" "namespaces" "Namespace" false ["ns"] [] ["status", "finalize"];
        core::Node => "" "v1" "nodes" "Node" false ["no"] [] ["status"];
        core::PersistentVolumeClaim => "" "v1" "persistentvolumeclaims" "PersistentVolumeClaim" true ["pvc"] [] ["status"];
        core::PersistentVolume => "" "v1" "persistentvolumes" "PersistentVolume" false ["pv"] [] ["status"];
        core::Pod => "" "v1" "pods" "Pod" true ["po"] ["all"] ["status", "binding", "log", "exec", "portforward", "proxy"];
        core::PodTemplate => "" "v1" "podtemplates" "PodTemplate" true [] [] [];
        core::ReplicationController => "" "v1" "replicationcontrollers" "ReplicationController" true ["rc"] ["all"] ["status", "scale"];
        core::ResourceQuota => "" "v1" "resourcequotas" "ResourceQuota" true ["quota"] [] ["status"];
        core::Secret => "" "v1" "secrets" "Secret" true [] [] [];
        core::ServiceAccount => "" "v1" "serviceaccounts" "ServiceAccount" true ["sa"] [] [];
        core::Service => "" "v1" "services" "Service" true ["svc"] ["all"] ["status", "proxy"];
        apps::ControllerRevision => "apps" "v1" "controllerrevisions" "ControllerRevision" true [] [] [];
        apps::DaemonSet => "apps" "v1" "daemonsets" "DaemonSet" true ["ds"] ["all"] ["status"];
        apps::Deployment => "apps" "v1" "deployments" "Deployment" true ["deploy"] ["all"] ["status", "scale"];
        apps::ReplicaSet => "apps" "v1" "replicasets" "ReplicaSet" true ["rs"] ["all"] ["status", "scale"];
        apps::StatefulSet => "apps" "v1" "statefulsets" "StatefulSet" true ["sts"] ["all"] ["status", "scale"];
        as2::HorizontalPodAutoscaler => "autoscaling" "v2" "horizontalpodautoscalers" "HorizontalPodAutoscaler" true ["hpa"] ["all"] ["status"];
        as1::HorizontalPodAutoscaler => "autoscaling" "v1" "horizontalpodautoscalers" "HorizontalPodAutoscaler" true ["hpa"] ["all"] ["status"];
        batch::CronJob => "batch" "v1" "cronjobs" "CronJob" true ["cj"] ["all"] ["status"];
        batch::Job => "batch" "v1" "jobs" "Job" true [] ["all"] ["status"];
        coord::Lease => "coordination.k8s.io" "v1" "leases" "Lease" true [] [] [];
        disc::EndpointSlice => "discovery.k8s.io" "v1" "endpointslices" "EndpointSlice" true [] [] [];
        ev::Event => "events.k8s.io" "v1" "events" "Event" true ["ev"] [] [];
        net::IngressClass => "networking.k8s.io" "v1" "ingressclasses" "IngressClass" false [] [] [];
        net::Ingress => "networking.k8s.io" "v1" "ingresses" "Ingress" true ["ing"] [] ["status"];
        net::NetworkPolicy => "networking.k8s.io" "v1" "networkpolicies" "NetworkPolicy" true ["netpol"] [] [];
        policy::PodDisruptionBudget => "policy" "v1" "poddisruptionbudgets" "PodDisruptionBudget" true ["pdb"] [] ["status"];
        rbac::ClusterRoleBinding => "rbac.authorization.k8s.io" "v1" "clusterrolebindings" "ClusterRoleBinding" false [] [] [];
        rbac::ClusterRole => "rbac.authorization.k8s.io" "v1" "clusterroles" "ClusterRole" false [] [] [];
        rbac::RoleBinding => "rbac.authorization.k8s.io" "v1" "rolebindings" "RoleBinding" true [] [] [];
        rbac::Role => "rbac.authorization.k8s.io" "v1" "roles" "Role" true [] [] [];
        sched::PriorityClass => "scheduling.k8s.io" "v1" "priorityclasses" "PriorityClass" false ["pc"] [] [];
        storage::StorageClass => "storage.k8s.io" "v1" "storageclasses" "StorageClass" false ["sc"] [] [];
        apiext::CustomResourceDefinition => "apiextensions.k8s.io" "v1" "customresourcedefinitions" "CustomResourceDefinition" false ["crd", "crds"] ["api-extensions"] ["status"];
    };
    // Versions that share storage with another, as in Kubernetes: HPAs are stored as
    // autoscaling/v2, events.k8s.io Events as core Events.
    for t in &mut types {
        match (t.group.as_str(), t.version.as_str(), t.resource.as_str()) {
            ("autoscaling", "v1", _) => t.storage_version = Some("autoscaling/v2".into()),
            ("events.k8s.io", _, "events") => {
                t.storage = "core/events".into();
                t.storage_version = Some("v1".into());
            }
            _ => {}
        }
    }
    types
}

/// The set of served resource types, shared by every request.
#[derive(Debug)]
pub struct Registry {
    types: RwLock<Arc<Vec<Arc<ResourceType>>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// A registry holding the built-in kinds.
    pub fn builtin() -> Self {
        let types = builtins().into_iter().map(Arc::new).collect();
        Registry {
            types: RwLock::new(Arc::new(types)),
        }
    }

    /// A snapshot of every served type.
    pub fn all(&self) -> Arc<Vec<Arc<ResourceType>>> {
        match self.types.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The type served at `group/version/resource`.
    pub fn lookup(&self, group: &str, version: &str, resource: &str) -> Option<Arc<ResourceType>> {
        self.all()
            .iter()
            .find(|t| t.group == group && t.version == version && t.resource == resource)
            .cloned()
    }

    /// The type of `kind` in `group/version`.
    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.all()
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
            .cloned()
    }

    /// Whether any type is served in `group/version`.
    pub fn serves_group_version(&self, group: &str, version: &str) -> bool {
        self.all()
            .iter()
            .any(|t| t.group == group && t.version == version)
    }

    /// Replace the types a CRD contributes (an empty list removes them).
    pub fn set_custom(&self, crd: &str, types: Vec<ResourceType>) {
        let mut guard = match self.types.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut next: Vec<Arc<ResourceType>> = guard
            .iter()
            .filter(|t| t.crd.as_deref() != Some(crd))
            .cloned()
            .collect();
        next.extend(types.into_iter().map(Arc::new));
        *guard = Arc::new(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_are_served_in_apps_v1_with_scale() {
        let r = Registry::builtin();
        let t = r.lookup("apps", "v1", "deployments").expect("deployments");
        assert_eq!(t.kind, "Deployment");
        assert!(t.has_scale() && t.has_status());
        assert_eq!(
            t.key(Some("default"), "web"),
            "/registry/apps/deployments/default/web"
        );
    }

    #[test]
    fn codec_drops_unknown_fields_and_keeps_known_ones() {
        let r = Registry::builtin();
        let t = r.lookup("", "v1", "configmaps").expect("configmaps");
        let out = (t.codec.expect("codec"))(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"},
            "data": {"k": "v"}, "bogus": 1
        }))
        .expect("decodes");
        assert_eq!(out["data"]["k"], "v");
        assert!(out.get("bogus").is_none());
    }
}
