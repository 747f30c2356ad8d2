//! Type navigation and list/map merge metadata for every field of the built-in kinds.
//!
//! The type tree comes from the JSON schemas k8s-openapi generates (feature `schemars`): one
//! `SchemaGenerator` is fed every served kind, which leaves one definitions map keyed by the
//! OpenAPI definition name (`io.k8s.api.apps.v1.Deployment`), with references written as
//! `{"$ref": "#/$defs/<name>"}`. Those schemas carry no `x-kubernetes-*` extensions, so the merge
//! metadata lives in our own table (`table.rs`), keyed by (definition, field).

mod table;

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use k8s_openapi::Resource;
use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value};

/// How a field merges: the strategic-merge-patch tags and the server-side-apply list type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListMeta {
    /// SMP: `x-kubernetes-patch-merge-key`.
    pub patch_merge_key: Option<&'static str>,
    /// SMP: `x-kubernetes-patch-strategy`: "merge", "replace", "retainKeys", "merge,retainKeys".
    /// Two map-valued fields carry one too (DeploymentSpec.strategy, PodDisruptionBudgetSpec.selector).
    pub patch_strategy: Option<&'static str>,
    /// SSA: `x-kubernetes-list-type`: "atomic" | "set" | "map".
    pub list_type: Option<&'static str>,
    /// SSA: `x-kubernetes-list-map-keys`.
    pub list_map_keys: &'static [&'static str],
}

/// A position in a kind's type tree.
#[derive(Clone, Copy, Debug)]
pub struct TypeRef(Node);

/// The schema at this position and the definition that owns it: the definition itself for a named
/// type, the enclosing definition for an inline list, map or scalar.
#[derive(Clone, Copy)]
struct Node {
    definition: &'static str,
    schema: &'static Value,
}

impl fmt::Debug for Node {
    // The schema itself is kilobytes of descriptions; its name and shape are what a reader needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = self
            .schema
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("any");
        write!(f, "{} ({shape})", self.definition)
    }
}

impl TypeRef {
    /// Root type for a built-in kind, e.g. ("apps","v1","Deployment"); None for unknown kinds
    /// (custom resources: then everything is treated as plain JSON: maps merge, lists are replaced).
    pub fn for_kind(group: &str, version: &str, kind: &str) -> Option<TypeRef> {
        let registry = registry();
        let served = registry
            .kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.kind == kind)?;
        registry.named(&served.definition)
    }

    /// The type of field `name` of this object type; None if unknown.
    pub fn field(self, name: &str) -> Option<TypeRef> {
        let property = self.0.schema.get("properties")?.get(name)?;
        registry().resolve(self.0.definition, property)
    }

    /// The element type if this is a list, the value type if it is a map (additionalProperties).
    pub fn elem(self) -> Option<TypeRef> {
        let schema = self.0.schema;
        let inner = match schema.get("type").and_then(Value::as_str)? {
            "array" => schema.get("items")?,
            "object" => schema
                .get("additionalProperties")
                .filter(|v| v.is_object())?,
            _ => return None,
        };
        registry().resolve(self.0.definition, inner)
    }

    /// How the list stored in field `name` of this type merges.
    pub fn list_meta(self, name: &str) -> ListMeta {
        // Only a struct has fields; a map's keys are data and must never hit the table by accident.
        if self.0.schema.get("properties").is_none() {
            return ListMeta::default();
        }
        META.get(&(self.0.definition, name))
            .map(|m| (*m).clone())
            .unwrap_or_default()
    }

    /// The OpenAPI definition name, e.g. "io.k8s.api.apps.v1.Deployment". For an inline list, map
    /// or scalar it is the definition whose field holds it.
    pub fn definition(self) -> &'static str {
        self.0.definition
    }
}

/// Every (definition, field) with non-default metadata, for the OpenAPI document to emit as extensions.
pub fn all_list_meta() -> impl Iterator<Item = (&'static str, &'static str, ListMeta)> {
    table::ROWS
        .iter()
        .map(|(definition, field, meta)| (*definition, *field, meta.clone()))
}

/// The OpenAPI extensions (`x-kubernetes-patch-merge-key`, `-patch-strategy`,
/// `-list-type`, `-list-map-keys`) of one field, for the OpenAPI documents.
pub fn field_extensions(
    definition: &str,
    field: &str,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let meta = META.get(&(definition, field))?;
    let mut m = serde_json::Map::new();
    if let Some(k) = meta.patch_merge_key {
        m.insert("x-kubernetes-patch-merge-key".into(), k.into());
    }
    if let Some(s) = meta.patch_strategy {
        m.insert("x-kubernetes-patch-strategy".into(), s.into());
    }
    if let Some(t) = meta.list_type {
        m.insert("x-kubernetes-list-type".into(), t.into());
    }
    if !meta.list_map_keys.is_empty() {
        m.insert(
            "x-kubernetes-list-map-keys".into(),
            meta.list_map_keys
                .iter()
                .map(|k| serde_json::Value::from(*k))
                .collect(),
        );
    }
    (!m.is_empty()).then_some(m)
}

static META: LazyLock<HashMap<(&'static str, &'static str), &'static ListMeta>> =
    LazyLock::new(|| table::ROWS.iter().map(|(d, f, m)| ((*d, *f), m)).collect());

static REGISTRY: LazyLock<Registry> = LazyLock::new(build);

fn registry() -> &'static Registry {
    &REGISTRY
}

struct Registry {
    definitions: Map<String, Value>,
    kinds: Vec<ServedKind>,
}

struct ServedKind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    definition: String,
}

impl Registry {
    fn named(&'static self, name: &str) -> Option<TypeRef> {
        let (definition, schema) = self.definitions.get_key_value(name)?;
        Some(TypeRef(Node { definition, schema }))
    }

    /// Follows `$ref` to the named definition; an inline schema stays owned by `owner`.
    fn resolve(&'static self, owner: &'static str, schema: &'static Value) -> Option<TypeRef> {
        // A property literally called "$ref" (JSONSchemaProps) sits under "properties", never here,
        // but only a string is a reference anyway.
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => self.named(reference.rsplit('/').next()?),
            None => Some(TypeRef(Node {
                definition: owner,
                schema,
            })),
        }
    }
}

fn build() -> Registry {
    let mut generator = SchemaGenerator::default();
    let mut kinds = Vec::new();
    macro_rules! serve {
        ($($ty:ty),* $(,)?) => { $( kinds.push(register::<$ty>(&mut generator)); )* };
    }
    serve!(
        api::core::v1::Pod,
        api::core::v1::PodTemplate,
        api::core::v1::Service,
        api::core::v1::Endpoints,
        api::core::v1::ConfigMap,
        api::core::v1::Secret,
        api::core::v1::ServiceAccount,
        api::core::v1::Namespace,
        api::core::v1::Node,
        api::core::v1::PersistentVolume,
        api::core::v1::PersistentVolumeClaim,
        api::core::v1::ResourceQuota,
        api::core::v1::LimitRange,
        api::core::v1::ReplicationController,
        api::core::v1::Event,
        api::core::v1::Binding,
        api::events::v1::Event,
        api::apps::v1::Deployment,
        api::apps::v1::ReplicaSet,
        api::apps::v1::StatefulSet,
        api::apps::v1::DaemonSet,
        api::apps::v1::ControllerRevision,
        api::batch::v1::Job,
        api::batch::v1::CronJob,
        api::networking::v1::Ingress,
        api::networking::v1::IngressClass,
        api::networking::v1::NetworkPolicy,
        api::discovery::v1::EndpointSlice,
        api::storage::v1::StorageClass,
        api::storage::v1::CSIDriver,
        api::storage::v1::CSINode,
        api::storage::v1::VolumeAttachment,
        api::rbac::v1::Role,
        api::rbac::v1::ClusterRole,
        api::rbac::v1::RoleBinding,
        api::rbac::v1::ClusterRoleBinding,
        api::autoscaling::v1::HorizontalPodAutoscaler,
        api::autoscaling::v2::HorizontalPodAutoscaler,
        api::coordination::v1::Lease,
        api::policy::v1::PodDisruptionBudget,
        api::scheduling::v1::PriorityClass,
        api::node::v1::RuntimeClass,
        api::admissionregistration::v1::ValidatingWebhookConfiguration,
        api::admissionregistration::v1::MutatingWebhookConfiguration,
        api::certificates::v1::CertificateSigningRequest,
        apiextensions::CustomResourceDefinition,
    );
    Registry {
        definitions: generator.take_definitions(true),
        kinds,
    }
}

/// Adds `T` and everything it references to the generator's definitions.
fn register<T: Resource + JsonSchema>(generator: &mut SchemaGenerator) -> ServedKind {
    generator.subschema_for::<T>();
    let definition = T::schema_name().into_owned();
    ServedKind {
        group: T::GROUP,
        version: T::VERSION,
        kind: T::KIND,
        definition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_spec() -> TypeRef {
        let pod = TypeRef::for_kind("", "v1", "Pod").expect("Pod is served");
        pod.field("spec").expect("Pod.spec")
    }

    fn meta(definition: &str, field: &str) -> ListMeta {
        let row = all_list_meta().find(|(d, f, _)| *d == definition && *f == field);
        row.map(|(_, _, m)| m).unwrap_or_default()
    }

    #[test]
    fn a_deployment_navigates_down_to_its_containers() {
        let deployment = TypeRef::for_kind("apps", "v1", "Deployment").expect("served");
        assert_eq!(deployment.definition(), "io.k8s.api.apps.v1.Deployment");
        let template = deployment
            .field("spec")
            .and_then(|s| s.field("template"))
            .expect("template");
        let spec = template.field("spec").expect("template.spec");
        assert_eq!(spec.definition(), "io.k8s.api.core.v1.PodSpec");
        let container = spec
            .field("containers")
            .and_then(TypeRef::elem)
            .expect("container");
        assert_eq!(container.definition(), "io.k8s.api.core.v1.Container");
        assert_eq!(spec.list_meta("containers").patch_merge_key, Some("name"));
    }

    #[test]
    fn a_map_field_yields_its_value_type() {
        let resources = pod_spec()
            .field("containers")
            .and_then(TypeRef::elem)
            .and_then(|c| c.field("resources"));
        let limits = resources.and_then(|r| r.field("limits")).expect("limits");
        let quantity = limits.elem().expect("value type");
        assert_eq!(
            quantity.definition(),
            "io.k8s.apimachinery.pkg.api.resource.Quantity"
        );
        // Map keys are data: a label called "finalizers" is no list.
        let labels = TypeRef::for_kind("", "v1", "Pod")
            .and_then(|p| p.field("metadata"))
            .and_then(|m| m.field("labels"));
        assert_eq!(
            labels.expect("labels").list_meta("finalizers"),
            ListMeta::default()
        );
    }

    #[test]
    fn unknown_kinds_and_fields_are_none() {
        assert!(TypeRef::for_kind("example.com", "v1", "Widget").is_none());
        assert!(TypeRef::for_kind("apps", "v1beta1", "Deployment").is_none());
        assert!(pod_spec().field("noSuchField").is_none());
        assert!(pod_spec().elem().is_none());
    }

    #[test]
    fn custom_resource_definitions_navigate_through_recursive_schemas() {
        let crd = TypeRef::for_kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
            .expect("served");
        let version = crd
            .field("spec")
            .and_then(|s| s.field("versions"))
            .and_then(TypeRef::elem)
            .expect("version");
        let props = version
            .field("schema")
            .and_then(|s| s.field("openAPIV3Schema"))
            .expect("props");
        let nested = props
            .field("properties")
            .and_then(TypeRef::elem)
            .expect("nested props");
        assert_eq!(nested.definition(), props.definition());
        assert_eq!(nested.list_meta("required").list_type, Some("atomic"));
    }

    #[test]
    fn the_table_spot_checks_match_swagger() {
        let core = "io.k8s.api.core.v1.";
        let container = meta(&format!("{core}Container"), "ports");
        assert_eq!(container.patch_merge_key, Some("containerPort"));
        assert_eq!(container.list_map_keys, &["containerPort", "protocol"]);
        assert_eq!(
            meta(&format!("{core}Container"), "env").patch_merge_key,
            Some("name")
        );
        assert_eq!(
            meta(&format!("{core}Container"), "volumeMounts").patch_merge_key,
            Some("mountPath")
        );
        let volumes = meta(&format!("{core}PodSpec"), "volumes");
        assert_eq!(
            (volumes.patch_merge_key, volumes.patch_strategy),
            (Some("name"), Some("merge,retainKeys"))
        );
        assert_eq!(
            meta(&format!("{core}ServiceSpec"), "ports").patch_merge_key,
            Some("port")
        );
        let tolerations = meta(&format!("{core}PodSpec"), "tolerations");
        assert_eq!(
            (tolerations.patch_merge_key, tolerations.list_type),
            (None, Some("atomic"))
        );
        let finalizers = meta(
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "finalizers",
        );
        assert_eq!(
            (finalizers.patch_strategy, finalizers.list_type),
            (Some("merge"), Some("set"))
        );
        let owners = meta(
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "ownerReferences",
        );
        assert_eq!(owners.patch_merge_key, Some("uid"));
        assert_eq!(
            meta("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "selector").patch_strategy,
            Some("replace")
        );
    }

    #[test]
    fn every_table_row_names_a_field_of_a_generated_definition() {
        let missing: Vec<String> = all_list_meta()
            .filter(|(definition, field, _)| {
                registry()
                    .named(definition)
                    .and_then(|t| t.field(field))
                    .is_none()
            })
            .map(|(definition, field, _)| format!("{definition}.{field}"))
            .collect();
        assert!(
            missing.is_empty(),
            "rows without a schema field: {missing:?}"
        );
    }
}
