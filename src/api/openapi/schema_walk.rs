//! Visits every subschema of a JSON schema by keyword.
//!
//! Walking by keyword, not by any nested object, matters: JSONSchemaProps has properties named
//! `$ref` and `$schema`, and defaults or examples hold arbitrary JSON that must never be rewritten.

use serde_json::Value;

/// Calls `f` on `schema`, then on each of its subschemas, depth first. `f` runs before the
/// children are visited, so it may restructure the node (e.g. wrap a `$ref` in `allOf`) and the
/// walk then continues into the restructured children. Boolean schemas are passed to `f` too.
pub fn walk_mut(schema: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    f(schema);
    let Value::Object(map) = schema else {
        return;
    };
    for (keyword, value) in map.iter_mut() {
        match keyword.as_str() {
            // Maps from a name to a schema.
            "properties" | "patternProperties" | "definitions" | "$defs" => {
                if let Value::Object(named) = value {
                    for child in named.values_mut() {
                        walk_mut(child, f);
                    }
                }
            }
            // A single schema (or `true`/`false`).
            "additionalProperties" | "additionalItems" | "not" => walk_mut(value, f),
            // Draft 4 allows `items` to be a schema or a list of schemas.
            "items" => match value {
                Value::Array(list) => list.iter_mut().for_each(|child| walk_mut(child, f)),
                single => walk_mut(single, f),
            },
            "allOf" | "anyOf" | "oneOf" => {
                if let Value::Array(list) = value {
                    list.iter_mut().for_each(|child| walk_mut(child, f));
                }
            }
            _ => {}
        }
    }
}
