//! Named schema definitions, built from k8s-openapi schemars output and CRD schemas.
//!
//! They are kept in one dialect-neutral form that `dialect` later renders as v3 or v2: the form
//! schemars emits, where a `$ref` may carry sibling keywords (`description`), and where every
//! reference reads `#/components/schemas/<name>`.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use serde_json::{Map, Value, json};

use super::FieldExtensions;
use super::meta;
use super::registry::ResourceType;
use super::schema_walk::walk_mut;

/// Definitions by name; a BTreeMap so documents list them sorted, as the real server does.
pub type Definitions = BTreeMap<String, Value>;

/// Prefix of every reference in the neutral form.
pub const REF_PREFIX: &str = "#/components/schemas/";

/// Where schemars puts the definitions a root schema depends on (its default draft 2020-12).
const SCHEMARS_DEFS_PREFIX: &str = "#/$defs/";

/// A group-version-kind, as the `x-kubernetes-group-version-kind` extension spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn new(group: &str, version: &str, kind: &str) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
        }
    }

    pub fn of(rt: &ResourceType) -> Self {
        Self::new(&rt.group, &rt.version, &rt.kind)
    }

    /// Exactly these three keys: `kubectl explain` matches schemas to kinds with reflect.DeepEqual.
    pub fn to_value(&self) -> Value {
        json!({"group": self.group, "kind": self.kind, "version": self.version})
    }
}

/// A `$ref` in the neutral form.
pub fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{name}") })
}

/// A property that refers to a definition and says what the field means.
fn described_ref(name: &str, description: &str) -> Value {
    let mut property = schema_ref(name);
    if let Value::Object(map) = &mut property {
        map.insert("description".into(), description.into());
    }
    property
}

fn described_string(description: &str) -> Value {
    json!({"description": description, "type": "string"})
}

/// Adds the root of a `schema_for!` output and everything in its `$defs`, returning the root's
/// name. k8s-openapi names its schemas with the real OpenAPI names, so the `$defs` keys are the
/// definition names already; the root's name is its `title`, which `schema_for!` fills in from
/// `schema_name()` (k8s-openapi never sets a title of its own). A schema that reaches back to
/// the root refers to it as `#`. Definitions already present are kept: a name is one type.
pub fn add_schemars(schema: schemars::Schema, defs: &mut Definitions) -> Option<String> {
    let Value::Object(mut root) = schema.to_value() else {
        return None;
    };
    let name = match root.remove("title") {
        Some(Value::String(title)) => title,
        _ => return None,
    };
    root.remove("$schema");
    let nested = match root.remove("$defs") {
        Some(Value::Object(nested)) => nested,
        _ => Map::new(),
    };
    for (nested_name, mut nested_schema) in nested {
        if let Entry::Vacant(slot) = defs.entry(nested_name) {
            rewrite_schemars_refs(&mut nested_schema, &name);
            slot.insert(nested_schema);
        }
    }
    if let Entry::Vacant(slot) = defs.entry(name.clone()) {
        let mut root = Value::Object(root);
        rewrite_schemars_refs(&mut root, &name);
        slot.insert(root);
    }
    Some(name)
}

fn rewrite_schemars_refs(schema: &mut Value, root_name: &str) {
    walk_mut(schema, &mut |node| {
        let Some(Value::String(reference)) = node.get_mut("$ref") else {
            return;
        };
        let target = if reference == "#" {
            root_name
        } else if let Some(target) = reference.strip_prefix(SCHEMARS_DEFS_PREFIX) {
            target
        } else {
            return;
        };
        *reference = format!("{REF_PREFIX}{target}");
    });
}

/// Adds the definition of one resource's kind (and of what it refers to) and returns its name.
pub fn add_kind(rt: &ResourceType, defs: &mut Definitions) -> String {
    let builtin = rt.schema.and_then(|schema| add_schemars(schema(), defs));
    let name = builtin.unwrap_or_else(|| add_custom(rt, defs));
    mark_kind(defs, &name, &Gvk::of(rt));
    name
}

/// Name of a custom kind's definition, formed as the real server forms it: the group reversed,
/// then version and kind (`stable.example.com`, `v1`, `CronTab` → `com.example.stable.v1.CronTab`).
pub fn custom_definition_name(group: &str, version: &str, kind: &str) -> String {
    let mut parts: Vec<&str> = group
        .split('.')
        .filter(|part| !part.is_empty())
        .rev()
        .collect();
    parts.push(version);
    parts.push(kind);
    parts.join(".")
}

/// A custom resource's definition is its CRD schema, with the fields the API server owns put in
/// place: apiVersion and kind as strings, metadata as ObjectMeta (a CRD may only say
/// `type: object` there). A kind with no schema at all accepts anything.
fn add_custom(rt: &ResourceType, defs: &mut Definitions) -> String {
    let name = custom_definition_name(&rt.group, &rt.version, &rt.kind);
    let mut schema = match &rt.crd_schema {
        Some(Value::Object(schema)) => schema.clone(),
        _ => {
            let mut open = Map::new();
            open.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
            open
        }
    };
    schema.entry("type").or_insert_with(|| "object".into());
    let properties = schema
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if !properties.is_object() {
        *properties = Value::Object(Map::new());
    }
    if let Value::Object(properties) = properties {
        properties.insert(
            "apiVersion".into(),
            described_string(meta::API_VERSION_DESCRIPTION),
        );
        properties.insert("kind".into(), described_string(meta::KIND_DESCRIPTION));
        let metadata = described_ref(meta::OBJECT_META, meta::OBJECT_METADATA_DESCRIPTION);
        properties.insert("metadata".into(), metadata);
    }
    defs.insert(name.clone(), Value::Object(schema));
    name
}

/// Adds the `<Kind>List` definition for a kind's definition and returns its name.
pub fn add_list(kind_definition: &str, rt: &ResourceType, defs: &mut Definitions) -> String {
    let name = format!("{kind_definition}List");
    if !defs.contains_key(&name) {
        let items = json!({
            "description": format!("List of {}.", rt.resource),
            "type": "array",
            "items": schema_ref(kind_definition),
        });
        let list = json!({
            "description": format!("{}List is a list of {}.", rt.kind, rt.kind),
            "type": "object",
            "properties": {
                "apiVersion": described_string(meta::API_VERSION_DESCRIPTION),
                "items": items,
                "kind": described_string(meta::KIND_DESCRIPTION),
                "metadata": described_ref(meta::LIST_META, meta::LIST_METADATA_DESCRIPTION),
            },
            "required": ["items"],
        });
        defs.insert(name.clone(), list);
    }
    mark_kind(
        defs,
        &name,
        &Gvk::new(&rt.group, &rt.version, &format!("{}List", rt.kind)),
    );
    name
}

/// Records on a definition that it is the schema of a kind; a definition may serve several
/// (the same Rust type under two group-versions), hence the list.
pub fn mark_kind(defs: &mut Definitions, name: &str, gvk: &Gvk) {
    let Some(Value::Object(definition)) = defs.get_mut(name) else {
        return;
    };
    let entry = gvk.to_value();
    let list = definition
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = list
        && !list.contains(&entry)
    {
        list.push(entry);
    }
}

/// Merges the per-field extensions the hook knows (patch strategy, list type...) into each
/// top-level property of each definition; they sit on the property itself, next to its `$ref`,
/// which is where strategic merge patch and server-side apply look for them.
pub fn apply_field_extensions(defs: &mut Definitions, ext: FieldExtensions) {
    for (name, definition) in defs.iter_mut() {
        let Some(Value::Object(properties)) = definition.get_mut("properties") else {
            continue;
        };
        for (field, property) in properties.iter_mut() {
            if let (Some(extensions), Value::Object(property)) = (ext(name, field), property) {
                property.extend(extensions);
            }
        }
    }
}
