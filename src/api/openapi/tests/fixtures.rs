//! Test fixtures: a small registry, and helpers that read documents as kubectl does.

use std::any::TypeId;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use serde_json::{Value, json};

use super::super::registry::{ALL_VERBS, ResourceType};
use super::super::{no_field_extensions, v3_document};

pub(super) const DEPLOYMENT_PATH: &str = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}";

fn schema_of<T: schemars::JsonSchema>() -> schemars::Schema {
    schemars::schema_for!(T)
}

/// A served resource with every verb and nothing else set: the one place a `ResourceType` is
/// spelled out, so the real registry's further fields need adding here only.
fn resource_type(
    group: &str,
    version: &str,
    resource: &str,
    kind: &str,
    namespaced: bool,
) -> ResourceType {
    ResourceType {
        group: group.to_owned(),
        version: version.to_owned(),
        resource: resource.to_owned(),
        singular: kind.to_lowercase(),
        kind: kind.to_owned(),
        namespaced,
        verbs: ALL_VERBS.to_vec(),
        short_names: Vec::new(),
        categories: Vec::new(),
        subresources: Vec::new(),
        schema: None,
        codec: None,
        crd_schema: None,
        printer_columns: Vec::new(),
        crd: None,
        storage: format!("{group}/{resource}"),
        storage_version: None,
    }
}

/// A registry entry for a k8s-openapi type, filled from its `Resource` constants.
pub(super) fn builtin<T>(subresources: &[&'static str]) -> Arc<ResourceType>
where
    T: k8s_openapi::Resource + schemars::JsonSchema + 'static,
{
    let namespaced =
        TypeId::of::<T::Scope>() == TypeId::of::<k8s_openapi::NamespaceResourceScope>();
    let mut rt = resource_type(
        T::GROUP,
        T::VERSION,
        T::URL_PATH_SEGMENT,
        T::KIND,
        namespaced,
    );
    rt.subresources = subresources.to_vec();
    rt.schema = Some(schema_of::<T> as fn() -> schemars::Schema);
    Arc::new(rt)
}

/// A namespaced custom resource whose schema uses what Swagger 2.0 cannot say.
fn crontab() -> Arc<ResourceType> {
    let mut rt = resource_type("stable.example.com", "v1", "crontabs", "CronTab", true);
    rt.short_names = vec!["ct".into()];
    rt.categories = vec!["all".into()];
    rt.subresources = vec!["status"];
    rt.crd_schema = Some(json!({
        "type": "object",
        "properties": {
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "description": "What the cron tab runs.",
                "properties": {
                    "cronSpec": {"type": "string"},
                    "replicas": {"type": "integer", "nullable": true},
                    "port": {
                        "x-kubernetes-int-or-string": true,
                        "anyOf": [{"type": "integer"}, {"type": "string"}],
                    },
                },
            },
        },
    }));
    Arc::new(rt)
}

pub(super) fn registry() -> Vec<Arc<ResourceType>> {
    vec![
        builtin::<Deployment>(&["status", "scale"]),
        builtin::<ConfigMap>(&[]),
        builtin::<Pod>(&["status"]),
        builtin::<Namespace>(&["status"]),
        crontab(),
    ]
}

pub(super) fn apps_v1() -> Value {
    v3_document(&registry(), "apps", "v1", no_field_extensions).expect("apps/v1 is served")
}

/// Resolves a local reference the way kubectl's `resolveRef` does: split the fragment on `/`.
pub(super) fn resolve<'a>(document: &'a Value, reference: &str) -> Option<&'a Value> {
    let fragment = reference.strip_prefix('#')?;
    fragment
        .split('/')
        .filter(|part| !part.is_empty())
        .try_fold(document, |node, part| node.get(part))
}

/// Every `$ref` anywhere in the document (a string under a `$ref` key; JSONSchemaProps has a
/// property named `$ref` whose value is a schema object, which is not a reference).
pub(super) fn refs(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => out.push(reference.clone()),
                    _ => refs(value, out),
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

/// References that do not point at a definition of the document. A bare `#` would "resolve" to
/// the whole document, so only the two definition prefixes count as references at all.
pub(super) fn unresolved(document: &Value) -> Vec<String> {
    let mut all = Vec::new();
    refs(document, &mut all);
    assert!(
        !all.is_empty(),
        "a document without references tests nothing"
    );
    let names_a_definition = |reference: &str| {
        ["#/components/schemas/", "#/definitions/"]
            .iter()
            .any(|prefix| {
                reference
                    .strip_prefix(prefix)
                    .is_some_and(|name| !name.is_empty())
            })
    };
    all.into_iter()
        .filter(|reference| {
            !names_a_definition(reference) || resolve(document, reference).is_none()
        })
        .collect()
}

pub(super) fn param_names(operation: &Value) -> Vec<&str> {
    operation["parameters"]
        .as_array()
        .map(|params| {
            params
                .iter()
                .filter_map(|param| param["name"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}
