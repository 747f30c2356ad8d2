//! What of the patch's own content lands in the result: no nulls, no directive keys.
//!
//! Go hands the merged map to a typed decoder, which drops what it cannot place: leftover
//! directive keys and `null` fields in content copied in from the patch. We clean that content the
//! same way, so no directive key ever reaches the result.

use serde_json::Value;

use super::{DELETE_FROM_PRIMITIVE_LIST, Object, PATCH, RETAIN_KEYS, SET_ELEMENT_ORDER};

/// Patch content that lands where nothing merges it (Go's discardNullValuesFromPatch +
/// removeDirectives): null fields go, and so does any map carrying `$patch`.
pub(super) fn adopt(value: Value) -> Option<Value> {
    clean(value, true)
}

/// Patch content copied as-is (a replaced list, an appended element, a `$patch: replace` map):
/// what the typed decode keeps of it, i.e. without null fields and directive keys.
pub(super) fn strip(value: Value) -> Value {
    clean(value, false).unwrap_or_default()
}

pub(super) fn strip_object(object: Object) -> Object {
    match strip(Value::Object(object)) {
        Value::Object(object) => object,
        _ => Object::new(),
    }
}

fn clean(value: Value, drop_directive_maps: bool) -> Option<Value> {
    match value {
        Value::Object(map) if drop_directive_maps && map.contains_key(PATCH) => None,
        Value::Object(map) => Some(Value::Object(
            map.into_iter()
                .filter(|(key, value)| !value.is_null() && !is_directive_key(key))
                .filter_map(|(key, value)| Some((key, clean(value, drop_directive_maps)?)))
                .collect(),
        )),
        Value::Array(items) => Some(Value::Array(
            items
                .into_iter()
                .filter_map(|v| clean(v, drop_directive_maps))
                .collect(),
        )),
        scalar => Some(scalar),
    }
}

fn is_directive_key(key: &str) -> bool {
    key == PATCH
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::patch_as;

    #[test]
    fn directive_keys_never_reach_the_result() {
        let live = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}});
        let patch = json!({
            "metadata": {"labels": {"$patch": "replace", "x": "1"}},
            "spec": {"containers": [{"name": "b", "$setElementOrder/env": [{"name": "E"}], "env": [{"name": "E", "value": "1"}]}]},
            "status": {"$retainKeys": ["phase"], "phase": "Running", "conditions": [{"$patch": "delete", "type": "x"}]}
        });
        let result = patch_as("v1/Pod", live, patch).expect("applies");
        // A new map carrying `$patch` is dropped whole, as Go's removeDirectives does; without
        // `$setElementOrder` the items the patch names come first.
        let expected = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "b", "env": [{"name": "E", "value": "1"}]}, {"name": "a"}]},
            "status": {"phase": "Running", "conditions": []}
        });
        assert_eq!(result, expected);
    }
}
