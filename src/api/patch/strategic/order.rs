//! Final order of a merged list, and the `$setElementOrder/<field>` directive.
//!
//! Go's normalizeElementOrder: the items the patch names take the patch's order (or the
//! `$setElementOrder` list's), the items only the server has keep the server's order, and the two
//! runs are interleaved by the server's order wherever both items are known to it.

use serde_json::Value;

use super::list::{Shape, element_kind, merge_field_list, merge_key_of};
use super::schema::TypeRef;
use super::{Error, Field, Object, PATCH, SET_ELEMENT_ORDER, adopt, directive_field, kind};

/// Processes every `$setElementOrder/<field>` of `patch` (Go's mergePatchIntoOriginal): the
/// field's list is merged here, then ordered by the directive, and removed from the patch.
pub(super) fn apply_element_orders(
    original: &mut Object,
    patch: &mut Object,
    owner: Option<TypeRef>,
) -> Result<(), Error> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive in directives {
        let Some(order) = patch.shift_remove(&directive) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(Error::WrongType {
                expected: "array",
                actual: kind(&order),
            });
        };
        let name =
            directive_field(&directive, SET_ELEMENT_ORDER).ok_or(Error::BadSetElementOrder)?;
        apply_element_order(original, patch, Field { owner, name }, order)?;
    }
    Ok(())
}

fn apply_element_order(
    original: &mut Object,
    patch: &mut Object,
    field: Field,
    wanted: Vec<Value>,
) -> Result<(), Error> {
    let shape = Shape::of(field);
    let current = take_list(original, field.name)?;
    // Removed from the patch: once ordered here it must not be merged again.
    let patched = list_or_none(patch.shift_remove(field.name))?;
    check_order(
        patched.as_deref().unwrap_or_default(),
        &wanted,
        shape.merge_key,
    )?;
    let server_order = current.clone().unwrap_or_default();
    let shared_kind = element_kind(&server_order, patched.as_deref().unwrap_or_default());
    let merged = match (current, patched) {
        (None, None) => return Ok(()),
        (Some(current), None) => current,
        (None, Some(patched)) => patched.into_iter().filter_map(adopt).collect(),
        (Some(current), Some(patched)) => merge_field_list(current, patched, field, false)?,
    };
    if shared_kind?.is_none() {
        return Err(Error::NothingToOrder(field.name.to_string()));
    }
    let ordered = order(merged, &wanted, &server_order, shape)?;
    original.insert(field.name.to_string(), Value::Array(ordered));
    Ok(())
}

/// Takes the list stored under `name`, leaving a placeholder so the key keeps its position.
fn take_list(map: &mut Object, name: &str) -> Result<Option<Vec<Value>>, Error> {
    list_or_none(map.get_mut(name).map(std::mem::take))
}

fn list_or_none(value: Option<Value>) -> Result<Option<Vec<Value>>, Error> {
    match value {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(other) => Err(Error::WrongType {
            expected: "array",
            actual: kind(&other),
        }),
    }
}

/// The patch list's items (deletions and directives aside) must appear in `order`, in that order.
fn check_order(patch: &[Value], order: &[Value], merge_key: Option<&str>) -> Result<(), Error> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let named: Vec<&Value> = patch
        .iter()
        .filter(|item| !(merge_key.is_some() && is_deletion(item)))
        .collect();
    let (mut at_patch, mut at_order) = (0, 0);
    while at_patch < named.len() && at_order < order.len() {
        if named[at_patch].get(PATCH).is_some() {
            at_patch += 1;
            continue;
        }
        if same_item(named[at_patch], &order[at_order], merge_key)? {
            at_patch += 1;
        }
        at_order += 1;
    }
    match at_patch < named.len() {
        true => Err(Error::OrderMismatch {
            patch: Value::from(patch.to_vec()).to_string(),
            order: Value::from(order.to_vec()).to_string(),
        }),
        false => Ok(()),
    }
}

fn is_deletion(item: &Value) -> bool {
    item.get(PATCH).and_then(Value::as_str) == Some("delete")
}

fn same_item(left: &Value, right: &Value, merge_key: Option<&str>) -> Result<bool, Error> {
    match merge_key {
        None => Ok(left == right),
        Some(key) => Ok(merge_key_of(left, key)? == merge_key_of(right, key)?),
    }
}

/// Splits `merged` into the items `by` names and the rest, sorts each run, and interleaves them.
pub(super) fn order(
    merged: Vec<Value>,
    by: &[Value],
    server_order: &[Value],
    shape: Shape,
) -> Result<Vec<Value>, Error> {
    let (named, server_only) = partition(merged, by, shape)?;
    let named = sort_by(named, by, shape.merge_key)?;
    let server_only = sort_by(server_only, server_order, shape.merge_key)?;
    Ok(interleave(
        server_only,
        named,
        server_order,
        shape.merge_key,
    ))
}

fn partition(
    merged: Vec<Value>,
    by: &[Value],
    shape: Shape,
) -> Result<(Vec<Value>, Vec<Value>), Error> {
    let (mut named, mut rest) = (Vec::new(), Vec::new());
    for item in merged {
        let found = match shape.merge_key {
            Some(key) => contains_key(by, key, merge_key_of(&item, key)?)?,
            // Objects cannot be told apart without a key (Go panics on hashing them here).
            None if item.is_object() => return Err(Error::NoMergeKey(shape.name.to_string())),
            None => by.contains(&item),
        };
        if found {
            named.push(item)
        } else {
            rest.push(item)
        }
    }
    Ok((named, rest))
}

fn contains_key(list: &[Value], key: &str, value: &Value) -> Result<bool, Error> {
    for item in list {
        let Value::Object(object) = item else {
            return Err(Error::WrongType {
                expected: "object",
                actual: kind(item),
            });
        };
        if object.get(key) == Some(value) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Stable sort by position in `order`; with a merge key, `$patch: delete` items go last.
fn sort_by(
    items: Vec<Value>,
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<Vec<Value>, Error> {
    let (mut kept, deleted): (Vec<Value>, Vec<Value>) = match merge_key {
        Some(key) => {
            for item in items.iter().chain(order) {
                merge_key_of(item, key)?;
            }
            items.into_iter().partition(|item| !is_deletion(item))
        }
        None => (items, Vec::new()),
    };
    kept.sort_by_key(|item| position(order, item, merge_key).unwrap_or(usize::MAX));
    kept.extend(deleted);
    Ok(kept)
}

/// Go's mergeSortedSlice: take from `left` only when the server order puts it before `right`'s head.
fn interleave(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Vec<Value> {
    let mut merged = Vec::with_capacity(left.len() + right.len());
    let (mut left, mut right) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        let from_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (position(server_order, l, merge_key), position(server_order, r, merge_key)),
                (Some(l), Some(r)) if l < r
            ),
        };
        merged.extend(if from_left { left.next() } else { right.next() });
    }
    merged
}

/// Where `item` sits in `order`: by merge-key value for objects, by value otherwise.
fn position(order: &[Value], item: &Value, merge_key: Option<&str>) -> Option<usize> {
    let wanted = identity(item, merge_key);
    order
        .iter()
        .position(|candidate| identity(candidate, merge_key) == wanted)
}

fn identity<'v>(item: &'v Value, merge_key: Option<&str>) -> Option<&'v Value> {
    match merge_key {
        Some(key) => item.get(key),
        None => Some(item),
    }
}

/// Cases ported from apimachinery's patch_test.go (current + three-way patch → result), with
/// `mergingList` played by a Pod's containers and `mergingIntList` by finalizers.
#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::tests::patch_as;

    fn named(names: &[&str]) -> Value {
        names.iter().map(|n| json!({"name": n})).collect()
    }

    fn pod(original: Value, patch: Value) -> Value {
        patch_as("v1/Pod", original, patch).expect("applies")
    }

    fn containers_patch(order: &[&str], list: Option<Value>) -> Value {
        let mut spec = json!({"$setElementOrder/containers": named(order)});
        if let Some(list) = list {
            spec["containers"] = list;
        }
        json!({"spec": spec})
    }

    fn finalizers_patch(order: &[&str], list: Option<Value>) -> Value {
        let mut metadata = json!({"$setElementOrder/finalizers": order});
        if let Some(list) = list {
            metadata["finalizers"] = list;
        }
        json!({"metadata": metadata})
    }

    #[test]
    fn set_element_order_puts_server_only_items_between_their_server_neighbours() {
        let current = json!([{"name": "1", "other": "a"}, {"name": "2", "value": "2"}, {"name": "7"}, {"name": "9"},
            {"name": "8"}, {"name": "3", "value": "3"}, {"name": "4", "value": "4"}]);
        let result = pod(
            json!({"spec": {"containers": current}}),
            containers_patch(&["2", "1", "4", "3"], None),
        );
        let expected = json!([{"name": "2", "value": "2"}, {"name": "1", "other": "a"}, {"name": "7"}, {"name": "9"},
            {"name": "8"}, {"name": "4", "value": "4"}, {"name": "3", "value": "3"}]);
        assert_eq!(result["spec"]["containers"], expected);
    }

    #[test]
    fn set_element_order_orders_merged_primitives() {
        let patch = finalizers_patch(&["1", "2", "3"], Some(json!(["3"])));
        let result = pod(json!({"metadata": {"finalizers": ["1", "2", "4"]}}), patch);
        assert_eq!(
            result["metadata"]["finalizers"],
            json!(["1", "2", "3", "4"])
        );
        let patch = finalizers_patch(&["3", "1", "2"], Some(json!(["3"])));
        let result = pod(json!({"metadata": {"finalizers": ["1", "4", "2"]}}), patch);
        assert_eq!(
            result["metadata"]["finalizers"],
            json!(["3", "1", "4", "2"])
        );
        let mut patch = finalizers_patch(&["2", "1"], None);
        patch["metadata"]["$deleteFromPrimitiveList/finalizers"] = json!(["3"]);
        let result = pod(json!({"metadata": {"finalizers": ["1", "2", "3"]}}), patch);
        assert_eq!(result["metadata"]["finalizers"], json!(["2", "1"]));
    }

    #[test]
    fn set_element_order_may_name_items_that_exist_nowhere() {
        let original = json!({"spec": {"containers": named(&["1", "3"])}});
        let patch = containers_patch(
            &["3", "2", "1"],
            Some(json!([{"name": "3", "value": "3"}, {"name": "1", "value": "1"}])),
        );
        let result = pod(original, patch);
        assert_eq!(
            result["spec"]["containers"],
            json!([{"name": "3", "value": "3"}, {"name": "1", "value": "1"}])
        );
        let result = pod(
            json!({"metadata": {"finalizers": ["1", "3"]}}),
            finalizers_patch(&["3", "2", "1"], None),
        );
        assert_eq!(result["metadata"]["finalizers"], json!(["3", "1"]));
    }

    #[test]
    fn a_patch_list_out_of_step_with_set_element_order_is_rejected() {
        let original = json!({"spec": {"containers": named(&["1", "3", "2"])}});
        let patch = containers_patch(
            &["1", "2", "3"],
            Some(json!([{"name": "3", "value": "3"}, {"name": "1", "value": "1"}])),
        );
        let err = patch_as("v1/Pod", original, patch).expect_err("out of order");
        assert!(err.to_string().contains("doesn't match"), "{err}");
        let original = json!({"metadata": {"finalizers": ["1", "3", "2"]}});
        let err = patch_as(
            "v1/Pod",
            original,
            finalizers_patch(&["1", "2", "3"], Some(json!(["3", "1"]))),
        );
        assert!(
            err.expect_err("out of order")
                .to_string()
                .contains("doesn't match")
        );
    }

    #[test]
    fn duplicates_share_the_place_of_their_first_mention() {
        let current = json!([{"name": "1"}, {"name": "2", "value": "dup1"}, {"name": "3"}, {"name": "2", "value": "dup2"}, {"name": "4"}]);
        let result = pod(
            json!({"spec": {"containers": current}}),
            containers_patch(&["2", "1", "4", "3", "2"], None),
        );
        let expected = json!([{"name": "2", "value": "dup1"}, {"name": "2", "value": "dup2"}, {"name": "1"}, {"name": "4"}, {"name": "3"}]);
        assert_eq!(result["spec"]["containers"], expected);
    }

    #[test]
    fn delete_and_reorder_in_one_list_and_reorder_in_another() {
        let original = json!({"spec": {
            "containers": [{"name": "a", "value": "a"}, {"name": "b", "value": "b"}],
            "volumes": [{"name": "c", "value": "c"}, {"name": "d", "value": "d"}]
        }});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "b"}],
            "$setElementOrder/volumes": [{"name": "d"}, {"name": "c"}],
            "containers": [{"$patch": "delete", "name": "a"}]
        }});
        let expected = json!({"spec": {
            "containers": [{"name": "b", "value": "b"}],
            "volumes": [{"name": "d", "value": "d"}, {"name": "c", "value": "c"}]
        }});
        assert_eq!(pod(original, patch), expected);
    }

    #[test]
    fn a_malformed_set_element_order_key_is_rejected() {
        let err = patch_as(
            "v1/Pod",
            json!({"spec": {}}),
            json!({"spec": {"$setElementOrder": []}}),
        )
        .expect_err("no field");
        assert_eq!(
            (err.to_string().as_str(), err.status()),
            ("invalid patch format of setElementOrder list", 400)
        );
    }
}
