//! The OpenAPI documents the API server serves: v3 index, v3 per group-version, and v2.
//!
//! kubectl reads them for `explain`, for deciding whether server-side field validation and
//! dry-run are available (the PATCH operation carrying the kind's `x-kubernetes-group-version-kind`
//! must declare `fieldValidation` / `dryRun` as its own query parameters), and for computing
//! strategic merge patches in client-side apply. Documents are built from the kind registry:
//! built-in kinds from the schemars schemas of their k8s-openapi types, custom kinds from their
//! CRD's openAPIV3Schema.

mod definitions;
mod dialect;
mod meta;
mod operations;
mod params;
mod routes;
mod schema_walk;
#[cfg(test)]
mod tests;
pub mod v2proto;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hasher};
use std::sync::Arc;

use serde_json::{Map, Value, json};

// In the real tree this line becomes `use super::registry;` (crate::api::registry).
use super::registry;

use self::definitions::Definitions;
use self::dialect::Dialect;
use self::operations::PathItem;
use self::registry::ResourceType;
use self::routes::Subject;

/// A hook for per-field extensions (`x-kubernetes-patch-merge-key`, `-patch-strategy`,
/// `-list-type`, `-list-map-keys`): given a definition name and one of its top-level property
/// names, the extensions to merge into that property's schema.
pub type FieldExtensions = fn(definition: &str, field: &str) -> Option<Map<String, Value>>;

/// A [`FieldExtensions`] that adds nothing.
pub fn no_field_extensions(_definition: &str, _field: &str) -> Option<Map<String, Value>> {
    None
}

/// `api/v1` or `apis/<group>/<version>`: the key of a group-version in the v3 index, and the
/// path under `/openapi/v3/` its document is served at.
pub fn group_version_key(group: &str, version: &str) -> String {
    routes::group_version_prefix(group, version)
        .trim_start_matches('/')
        .to_owned()
}

/// GET /openapi/v3: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}}}`.
///
/// The hash is [`document_hash`] of the document the URL serves, so clients that cache by URL
/// (kubectl keeps v3 documents on disk) refetch exactly when a document changed. That needs
/// every group-version document; a cache should prefer [`v3_documents`], which returns them too.
pub fn v3_index(types: &[Arc<ResourceType>], ext: FieldExtensions) -> Value {
    v3_documents(types, ext).0
}

/// The v3 index and every group-version document it names, keyed like the index
/// ([`group_version_key`]): building the index builds them all anyway.
pub fn v3_documents(
    types: &[Arc<ResourceType>],
    ext: FieldExtensions,
) -> (Value, BTreeMap<String, Value>) {
    let group_versions: BTreeSet<(&str, &str)> = types
        .iter()
        .map(|rt| (rt.group.as_str(), rt.version.as_str()))
        .collect();
    let mut paths = Map::new();
    let mut documents = BTreeMap::new();
    for (group, version) in group_versions {
        let Some(document) = v3_document(types, group, version, ext) else {
            continue;
        };
        let key = group_version_key(group, version);
        let url = format!("/openapi/v3/{key}?hash={}", document_hash(&document));
        paths.insert(key.clone(), json!({ "serverRelativeURL": url }));
        documents.insert(key, document);
    }
    (json!({ "paths": paths }), documents)
}

/// GET /openapi/v3/api/v1 or /openapi/v3/apis/<group>/<version>: the OpenAPI 3.0 document of one
/// group-version, or `None` if the registry serves nothing there.
pub fn v3_document(
    types: &[Arc<ResourceType>],
    group: &str,
    version: &str,
    ext: FieldExtensions,
) -> Option<Value> {
    let members: Vec<&ResourceType> = types
        .iter()
        .map(AsRef::as_ref)
        .filter(|rt| rt.group == group && rt.version == version)
        .collect();
    if members.is_empty() {
        return None;
    }
    let (paths, defs) = collect(&members, Dialect::V3, ext);
    Some(json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": { "BearerToken": bearer_token() },
        },
        "security": [{ "BearerToken": [] }],
    }))
}

/// GET /openapi/v2: one Swagger 2.0 document for every group-version.
pub fn v2_document(types: &[Arc<ResourceType>], ext: FieldExtensions) -> Value {
    let members: Vec<&ResourceType> = types.iter().map(AsRef::as_ref).collect();
    let (paths, defs) = collect(&members, Dialect::V2, ext);
    json!({
        "swagger": "2.0",
        "info": info(),
        "paths": paths,
        "definitions": defs,
        "securityDefinitions": { "BearerToken": bearer_token() },
        "security": [{ "BearerToken": [] }],
    })
}

/// A content hash of a document, as uppercase hex: for the index's `?hash=` and for ETags.
/// Two SipHash lanes (std's `DefaultHasher`, fixed keys) over the JSON text: no cryptographic
/// strength is needed, only that a changed document gets a changed hash. std's hasher also runs
/// optimized in a debug build, which a hand-written byte loop would not.
pub fn document_hash(document: &Value) -> String {
    struct Lanes([DefaultHasher; 2]);
    impl std::io::Write for Lanes {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.iter_mut().for_each(|lane| lane.write(bytes));
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut second = DefaultHasher::new();
    second.write_u8(0x5a);
    let mut lanes = Lanes([DefaultHasher::new(), second]);
    // Writing into an infallible sink cannot fail; a failure would only weaken the hash.
    let _ = serde_json::to_writer(&mut lanes, document);
    let [first, second] = lanes.0;
    format!("{:016X}{:016X}", first.finish(), second.finish())
}

/// Paths and definitions of the given resources, rendered in `dialect`.
fn collect(
    members: &[&ResourceType],
    dialect: Dialect,
    ext: FieldExtensions,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut defs = Definitions::new();
    let with_scale = members.iter().any(|rt| rt.subresources.contains(&"scale"));
    meta::add_meta_definitions(&mut defs, with_scale);
    let mut paths: BTreeMap<String, PathItem> = BTreeMap::new();
    for rt in members {
        let kind_definition = definitions::add_kind(rt, &mut defs);
        let list_definition = definitions::add_list(&kind_definition, rt, &mut defs);
        let subject = Subject {
            rt,
            kind_definition: &kind_definition,
            list_definition: &list_definition,
        };
        for (path, item) in routes::resource_paths(&subject) {
            // Two registry entries never share a path; should they, keep every operation.
            let existing = paths.entry(path).or_default();
            existing.operations.extend(item.operations);
            if existing.params.is_empty() {
                existing.params = item.params;
            }
        }
    }
    definitions::apply_field_extensions(&mut defs, ext);
    let paths = paths
        .into_iter()
        .map(|(path, item)| (path, item.render(dialect)))
        .collect();
    (paths, dialect.render_definitions(defs))
}

fn info() -> Value {
    json!({ "title": "Kubernetes", "version": "unversioned" })
}

fn bearer_token() -> Value {
    json!({
        "description": "Bearer Token authentication",
        "in": "header",
        "name": "authorization",
        "type": "apiKey",
    })
}
