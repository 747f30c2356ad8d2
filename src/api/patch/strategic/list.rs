//! Strategic merge of lists (Go's mergeSlice): merge by key, primitive unions, `$patch` elements.

use serde_json::Value;

use super::clean::strip;
use super::order::order;
use super::schema::TypeRef;
use super::{Error, Field, Object, PATCH, kind, merge_map, unknown_directive};

/// The facts about one list that merging and ordering need.
#[derive(Clone, Copy)]
pub(super) struct Shape<'a> {
    pub(super) name: &'a str,
    pub(super) merge_key: Option<&'static str>,
    pub(super) element: Option<TypeRef>,
}

impl<'a> Shape<'a> {
    pub(super) fn of(field: Field<'a>) -> Self {
        let element = field.ty().and_then(TypeRef::elem);
        Shape {
            name: field.name,
            merge_key: field.meta().patch_merge_key,
            element,
        }
    }
}

/// Both sides of a field are lists: merge them when the field's strategy (or a deletion list) says
/// so, otherwise the patch's list replaces the original.
pub(super) fn merge_field_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    field: Field,
    deletion: bool,
) -> Result<Vec<Value>, Error> {
    if field.strategy() == "merge" || deletion {
        merge_list(original, patch, Shape::of(field), deletion)
    } else {
        Ok(patch.into_iter().map(strip).collect())
    }
}

/// Go's mergeSlice.
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    shape: Shape,
    deletion: bool,
) -> Result<Vec<Value>, Error> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    if element_kind(&original, &patch)? != Some("object") {
        if deletion {
            return Ok(original
                .into_iter()
                .filter(|item| !patch.contains(item))
                .collect());
        }
        let merged = dedupe(original.iter().chain(&patch).cloned().collect());
        return order(merged, &patch, &original, shape);
    }
    let key = shape
        .merge_key
        .ok_or_else(|| Error::NoMergeKey(shape.name.to_string()))?;
    let (original, patch) = take_special_elements(original, patch, key)?;
    // The server's order is read after deletions, as Go does; it matters when an item is deleted
    // and added back in one patch.
    let server_order = original.clone();
    let merged = merge_elements(original, patch.clone(), key, shape.element)?;
    order(merged, &patch, &server_order, shape)
}

fn dedupe(items: Vec<Value>) -> Vec<Value> {
    let mut unique: Vec<Value> = Vec::with_capacity(items.len());
    for item in items {
        if !unique.contains(&item) {
            unique.push(item);
        }
    }
    unique
}

/// The one kind all elements of both lists share (None if both are empty).
pub(super) fn element_kind(
    original: &[Value],
    patch: &[Value],
) -> Result<Option<&'static str>, Error> {
    let mut shared = None;
    for item in original.iter().chain(patch) {
        match (kind(item), shared) {
            ("array", _) => return Err(Error::ListOfLists),
            (this, None) => shared = Some(this),
            (this, Some(seen)) if this != seen => return Err(Error::MixedElementTypes),
            _ => {}
        }
    }
    Ok(shared)
}

/// Applies the `$patch` elements of a list patch: `delete` drops every original element with that
/// key, `replace` makes the rest of the patch the whole list. Returns the (original, patch) to merge.
fn take_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), Error> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(PATCH) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let value = merge_key_of(&item, key)?;
                original.retain(|o| o.get(key) != Some(value));
            }
            // Keep scanning: every other `$patch` element still has to be valid.
            Some("replace") => replace = true,
            Some("merge") => return Err(Error::MergeDirectiveInList),
            _ => return Err(unknown_directive(directive, &item)),
        }
    }
    Ok(match replace {
        true => (plain.into_iter().map(strip).collect(), Vec::new()),
        false => (original, plain),
    })
}

/// Merges each patch element into the original element with the same key, or appends it.
fn merge_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    element: Option<TypeRef>,
) -> Result<Vec<Value>, Error> {
    for item in patch {
        let value = merge_key_of(&item, key)?;
        let Some(at) = original.iter().position(|o| o.get(key) == Some(value)) else {
            original.push(strip(item));
            continue;
        };
        let current = into_object(std::mem::take(&mut original[at]))?;
        original[at] = Value::Object(merge_map(current, into_object(item)?, element)?);
    }
    Ok(original)
}

fn into_object(value: Value) -> Result<Object, Error> {
    match value {
        Value::Object(object) => Ok(object),
        other => Err(Error::WrongType {
            expected: "object",
            actual: kind(&other),
        }),
    }
}

/// The merge key's value in a list element; the element must be an object that has it.
pub(super) fn merge_key_of<'v>(item: &'v Value, key: &str) -> Result<&'v Value, Error> {
    let Value::Object(object) = item else {
        return Err(Error::WrongType {
            expected: "object",
            actual: kind(item),
        });
    };
    object.get(key).ok_or_else(|| Error::MissingMergeKey {
        map: item.to_string(),
        key: key.to_string(),
    })
}

/// Cases ported from apimachinery's patch_test.go. Its `mergingList` (merge key `name`) is played
/// by a Pod's containers, `mergingIntList` (merged primitives) by finalizers, `nonMergingIntList`
/// by a Service's externalIPs, `retainKeysMergingList` by volumes; `value`/`other` keep their names.
#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::tests::patch_as;

    fn containers(list: Value) -> Value {
        json!({"spec": {"containers": list}})
    }

    fn finalizers(list: Value) -> Value {
        json!({"metadata": {"finalizers": list}})
    }

    fn pod(original: Value, patch: Value) -> Value {
        patch_as("v1/Pod", original, patch).expect("applies")
    }

    #[test]
    fn every_duplicate_of_a_deleted_key_goes() {
        let original = containers(
            json!([{"name": "1"}, {"name": "1"}, {"name": "2", "value": "a"}, {"name": "3"}, {"name": "3"}]),
        );
        let patch = containers(
            json!([{"name": "1", "$patch": "delete"}, {"name": "3", "$patch": "delete"}]),
        );
        assert_eq!(
            pod(original, patch),
            containers(json!([{"name": "2", "value": "a"}]))
        );
    }

    #[test]
    fn a_lone_replace_element_empties_a_merging_list() {
        let original = containers(json!([{"name": "1"}, {"name": "2"}]));
        assert_eq!(
            pod(original, containers(json!([{"$patch": "replace"}]))),
            containers(json!([]))
        );
        assert_eq!(
            pod(containers(json!([])), containers(json!([]))),
            containers(json!([]))
        );
    }

    #[test]
    fn a_replace_element_makes_the_rest_of_the_patch_the_whole_list() {
        let original = containers(json!([{"name": "1", "value": "a"}, {"name": "2"}]));
        let patch =
            containers(json!([{"name": "3", "value": "c"}, {"$patch": "replace"}, {"name": "1"}]));
        assert_eq!(
            pod(original, patch),
            containers(json!([{"name": "3", "value": "c"}, {"name": "1"}]))
        );
    }

    #[test]
    fn the_patch_order_wins_for_the_items_it_names() {
        let original =
            containers(json!([{"name": "1"}, {"name": "2", "value": "b"}, {"name": "3"}]));
        let patch = containers(
            json!([{"name": "3", "value": "c"}, {"name": "1", "value": "a"}, {"name": "2", "other": "x"}]),
        );
        let expected = json!([{"name": "3", "value": "c"}, {"name": "1", "value": "a"}, {"name": "2", "value": "b", "other": "x"}]);
        assert_eq!(pod(original.clone(), patch), containers(expected));
        let patch = containers(json!([{"name": "3", "value": "c"}, {"name": "1", "value": "a"}]));
        let expected = json!([{"name": "2", "value": "b"}, {"name": "3", "value": "c"}, {"name": "1", "value": "a"}]);
        assert_eq!(pod(original, patch), containers(expected));
    }

    #[test]
    fn merged_primitive_lists_are_unions_in_patch_order() {
        assert_eq!(
            pod(finalizers(json!(["1", "2"])), finalizers(json!(["2", "3"]))),
            finalizers(json!(["1", "2", "3"]))
        );
        let original = finalizers(json!(["1", "2", "3"]));
        assert_eq!(
            pod(original.clone(), finalizers(json!(["3", "1", "2"]))),
            finalizers(json!(["3", "1", "2"]))
        );
        assert_eq!(
            pod(original, finalizers(json!(["3", "1"]))),
            finalizers(json!(["2", "3", "1"]))
        );
    }

    #[test]
    fn delete_from_primitive_list_never_adds_anything() {
        let delete = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["3"]}});
        let original = finalizers(json!(["1", "2"]));
        assert_eq!(pod(original.clone(), delete.clone()), original);
        assert_eq!(
            pod(finalizers(Value::Null), delete.clone()),
            finalizers(Value::Null)
        );
        let unrelated = json!({"metadata": {"labels": {"foo": "bar"}}});
        assert_eq!(pod(unrelated.clone(), delete), unrelated);
        let delete = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["2"]}});
        assert_eq!(
            pod(finalizers(json!(["1", "2", "3"])), delete),
            finalizers(json!(["1", "3"]))
        );
    }

    #[test]
    fn delete_from_primitive_list_works_without_a_merge_strategy() {
        let original = json!({"spec": {"externalIPs": ["1", "2", "3"]}});
        let patch = json!({"spec": {"$deleteFromPrimitiveList/externalIPs": ["2"]}});
        let result = patch_as("v1/Service", original, patch).expect("applies");
        assert_eq!(result, json!({"spec": {"externalIPs": ["1", "3"]}}));
    }

    #[test]
    fn retain_keys_in_a_list_element_clears_its_unlisted_fields() {
        let original = json!({"spec": {"volumes": [{"name": "bar"}, {"name": "foo", "value": "old", "other": "x"}]}});
        let patch = json!({"spec": {
            "$setElementOrder/volumes": [{"name": "bar"}, {"name": "foo"}],
            "volumes": [{"$retainKeys": ["name", "value"], "name": "foo", "value": "new"}]
        }});
        let expected =
            json!({"spec": {"volumes": [{"name": "bar"}, {"name": "foo", "value": "new"}]}});
        assert_eq!(pod(original, patch), expected);
    }

    #[test]
    fn a_merging_list_nested_in_a_merging_list_merges_under_its_own_order() {
        let current = containers(json!([
            {"name": "1", "other": "a", "env": [{"name": "1"}, {"name": "2", "value": "2"}]},
            {"name": "2", "other": "b"}
        ]));
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "1"}, {"name": "2"}],
                "name": "1",
                "env": [{"name": "1", "value": "1"}]
            }]
        }});
        let expected = containers(json!([
            {"name": "1", "other": "a", "env": [{"name": "1", "value": "1"}, {"name": "2", "value": "2"}]},
            {"name": "2", "other": "b"}
        ]));
        assert_eq!(pod(current, patch), expected);
    }

    #[test]
    fn a_non_merging_list_nested_in_a_merging_list_is_replaced() {
        let current = containers(json!([
            {"name": "1", "other": "a", "envFrom": [{"name": "1"}, {"name": "2", "value": "2"}]},
            {"name": "2", "other": "b"}
        ]));
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}],
            "containers": [{"name": "1", "envFrom": [{"name": "1", "value": "1"}]}]
        }});
        let expected = containers(json!([
            {"name": "1", "other": "a", "envFrom": [{"name": "1", "value": "1"}]},
            {"name": "2", "other": "b"}
        ]));
        assert_eq!(pod(current, patch), expected);
    }

    #[test]
    fn mixed_element_kinds_and_lists_of_lists_are_rejected() {
        let err = patch_as("v1/Pod", finalizers(json!(["a"])), finalizers(json!([1])))
            .expect_err("mixed");
        assert_eq!(err.to_string(), "list element types are not identical");
        let err = patch_as(
            "v1/Pod",
            finalizers(json!(["a"])),
            finalizers(json!([["b"]])),
        )
        .expect_err("nested");
        assert_eq!(
            (err.to_string().as_str(), err.status()),
            ("lists of lists are not supported", 422)
        );
    }

    #[test]
    fn a_merge_directive_element_is_rejected() {
        let err = patch_as(
            "v1/Pod",
            containers(json!([{"name": "a"}])),
            containers(json!([{"$patch": "merge"}])),
        );
        assert_eq!(
            err.expect_err("merge").to_string(),
            "merging lists cannot yet be specified in the patch"
        );
    }
}
