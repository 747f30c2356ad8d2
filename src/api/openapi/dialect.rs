//! Spelling of OpenAPI 3.0 (per group-version) versus Swagger 2.0 (everything at once).
//!
//! Reference prefixes differ, and so does the rendering of the neutral definitions.

use serde_json::{Map, Value, json};

use super::definitions::{Definitions, REF_PREFIX};
use super::meta;
use super::schema_walk::walk_mut;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAPI 3.0, served at /openapi/v3/<group-version>.
    V3,
    /// Swagger 2.0, served at /openapi/v2.
    V2,
}

impl Dialect {
    fn ref_prefix(self) -> &'static str {
        match self {
            Dialect::V3 => REF_PREFIX,
            Dialect::V2 => "#/definitions/",
        }
    }

    /// A bare reference to a definition, as operations use them.
    pub fn schema_ref(self, name: &str) -> Value {
        json!({ "$ref": format!("{}{name}", self.ref_prefix()) })
    }

    /// Renders neutral definitions in this dialect.
    pub fn render_definitions(self, defs: Definitions) -> Map<String, Value> {
        defs.into_iter()
            .map(|(name, mut schema)| {
                if let Some(special) = self.special_shape(&name, &schema) {
                    schema = special;
                }
                walk_mut(&mut schema, &mut |node| self.render_node(node));
                (name, schema)
            })
            .collect()
    }

    fn render_node(self, node: &mut Value) {
        let Value::Object(map) = node else {
            return;
        };
        match self {
            // OpenAPI 3.0 ignores the siblings of a `$ref`, so the real server wraps the ref in
            // `allOf` and keeps description (and patch extensions) beside it. `kubectl explain`
            // prints that description for the field and follows the `allOf` for its type;
            // strategic merge patch reads the extensions there and resolves `allOf[0]`.
            Dialect::V3 => {
                if map.len() > 1
                    && let Some(reference) = map.remove("$ref")
                {
                    map.insert("allOf".into(), json!([{ "$ref": reference }]));
                }
            }
            // Swagger 2.0 has no oneOf/anyOf/not/nullable (CRD schemas may use them); gnostic
            // and kube-openapi's v2 readers expect them gone. Siblings of `$ref` are how the
            // real v2 document carries field descriptions, so they stay.
            Dialect::V2 => {
                for keyword in ["oneOf", "anyOf", "not", "nullable"] {
                    map.remove(keyword);
                }
                if let Some(Value::String(reference)) = map.get_mut("$ref")
                    && let Some(name) = reference.strip_prefix(REF_PREFIX)
                {
                    *reference = format!("{}{name}", self.ref_prefix());
                }
            }
        }
    }

    /// Types whose JSON is not what their Go struct looks like. k8s-openapi marks both IntOrString
    /// and Quantity only with `x-kubernetes-int-or-string`; the real server publishes them as
    /// below, and `kubectl explain` then shows `<IntOrString>` / `<Quantity>` in v3 (it prints a
    /// referenced schema's name when that schema has no `type`).
    fn special_shape(self, name: &str, neutral: &Value) -> Option<Value> {
        let description = neutral.get("description").cloned().unwrap_or(Value::Null);
        let mut shape = match (name, self) {
            (meta::INT_OR_STRING, Dialect::V3) => json!({
                "format": "int-or-string",
                "oneOf": [{"type": "integer"}, {"type": "string"}],
                "x-kubernetes-int-or-string": true,
            }),
            (meta::INT_OR_STRING, Dialect::V2) => json!({
                "type": "string",
                "format": "int-or-string",
                "x-kubernetes-int-or-string": true,
            }),
            (meta::QUANTITY, Dialect::V3) => json!({
                "oneOf": [{"type": "string"}, {"type": "number"}],
            }),
            (meta::QUANTITY, Dialect::V2) => json!({"type": "string"}),
            _ => return None,
        };
        if let (Value::Object(map), Value::String(_)) = (&mut shape, &description) {
            map.insert("description".into(), description);
        }
        Some(shape)
    }
}
