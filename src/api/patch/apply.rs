//! Server-side apply: each manager's field set (`managedFields`, FieldsV1), conflicts
//! between managers, and merging an applied configuration into the live object.
//!
//! A field set is a set of paths to leaves and to list elements. Lists are keyed by
//! their `x-kubernetes-list-map-keys` (`k:{"name":"web"}`), sets by value (`v:"x"`);
//! atomic lists and unknown types are leaves, as the real field manager treats them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::fieldset::{FieldSet, decode, describe, encode, fields_of, remove_at, value_at};
use super::{root_type, strategic};
use crate::api::error::ApiError;
use crate::api::registry::ResourceType;

/// One `managedFields` entry, decoded.
struct Entry {
    raw: Value,
    manager: String,
    operation: String,
    fields: FieldSet,
}

fn entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let mut fields = FieldSet::new();
            if let Some(f) = e.get("fieldsV1") {
                decode(f, &mut Vec::new(), &mut fields);
            }
            Entry {
                raw: e.clone(),
                manager: e
                    .get("manager")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into(),
                operation: e
                    .get("operation")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into(),
                fields,
            }
        })
        .collect()
}

fn entry(rt_version: &str, manager: &str, operation: &str, fields: &FieldSet) -> Value {
    json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": rt_version,
        "time": crate::api::clock::now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": encode(fields),
    })
}

/// The managedFields list after a write: the other managers' entries with their
/// (possibly shrunk) field sets, empty ones dropped, then the writer's own entry.
fn reencode(others: Vec<Entry>, own: Value) -> Vec<Value> {
    let mut list: Vec<Value> = others
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut raw = e.raw;
            raw["fieldsV1"] = encode(&e.fields);
            raw
        })
        .collect();
    list.push(own);
    list
}

fn set_entries(obj: &mut Value, list: Vec<Value>) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

/// The object to create for an apply that finds nothing: the configuration itself,
/// owned by `manager`.
pub fn managed_on_create(rt: &ResourceType, mut obj: Value, manager: &str) -> Value {
    let fields = fields_of(&obj, root_type(rt));
    set_entries(
        &mut obj,
        vec![entry(&rt.api_version(), manager, "Apply", &fields)],
    );
    obj
}

/// Apply `config` as `manager` onto `live`. Fields the manager applied before and
/// no longer applies are removed unless someone else owns them; fields another
/// manager owns with a different value are conflicts (409) unless `force`.
pub fn apply(
    rt: &ResourceType,
    live: &Value,
    config: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApiError> {
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "error decoding patch: an apply configuration must be an object",
        ));
    }
    let root = root_type(rt);
    let applied = fields_of(config, root);
    let mut others = entries(live);
    let previous: FieldSet = others
        .iter()
        .filter(|e| e.manager == manager && e.operation == "Apply")
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    others.retain(|e| !(e.manager == manager && e.operation == "Apply"));

    // A field conflicts when another manager owns it and this apply sets it to a
    // different value; equal values are shared ownership.
    let mut conflicts: Vec<(String, String, String)> = Vec::new();
    let mut contested: Vec<FieldSet> = Vec::with_capacity(others.len());
    for e in &others {
        let mine: FieldSet = e
            .fields
            .intersection(&applied)
            .filter(|p| {
                value_at(config, p) != value_at(live, p)
                    && value_at(config, p).is_some_and(|v| !v.is_object())
            })
            .cloned()
            .collect();
        let version = e
            .raw
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        conflicts.extend(
            mine.iter()
                .map(|p| (e.manager.clone(), version.to_string(), describe(p))),
        );
        contested.push(mine);
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(rt, live, &conflicts));
    }
    for (e, lost) in others.iter_mut().zip(&contested) {
        e.fields = e.fields.difference(lost).cloned().collect();
    }
    let owned_by_others: FieldSet = others
        .iter()
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let mut base = live.clone();
    for p in previous.difference(&applied) {
        if !owned_by_others.contains(p) {
            remove_at(&mut base, p);
        }
    }
    let mut merged = strategic::apply(&base, config, root).map_err(|e| super::patch_error(&e))?;
    let list = reencode(others, entry(&rt.api_version(), manager, "Apply", &applied));
    set_entries(&mut merged, list);
    Ok(merged)
}

/// Record a non-apply write by `manager`: the fields it changed become its own
/// (operation Update) and leave other managers.
pub fn track_update(rt: &ResourceType, old: Option<&Value>, new: &mut Value, manager: &str) {
    let root = root_type(rt);
    let after = fields_of(new, root);
    let before = old.map(|o| fields_of(o, root)).unwrap_or_default();
    let changed: FieldSet = after
        .iter()
        .filter(|p| !before.contains(*p) || old.and_then(|o| value_at(o, p)) != value_at(new, p))
        .cloned()
        .collect();
    // A client that rewrites managedFields itself (kubectl's client-side-apply
    // upgrade does) is taken at its word.
    let sent = new
        .pointer("/metadata/managedFields")
        .filter(|m| Some(*m) != old.and_then(|o| o.pointer("/metadata/managedFields")));
    let mut list = match sent {
        Some(_) => entries(new),
        None => old.map(entries).unwrap_or_default(),
    };
    if changed.is_empty() && old.is_some() {
        let kept: Vec<Value> = list.into_iter().map(|e| e.raw).collect();
        set_entries(new, kept);
        return;
    }
    let mut mine: FieldSet = FieldSet::new();
    for e in &mut list {
        if e.manager == manager && e.operation == "Update" {
            mine.extend(e.fields.iter().filter(|p| after.contains(*p)).cloned());
            e.fields.clear();
        } else {
            e.fields = e
                .fields
                .iter()
                .filter(|p| !changed.contains(*p) && after.contains(*p))
                .cloned()
                .collect();
        }
    }
    mine.extend(changed);
    let out = reencode(list, entry(&rt.api_version(), manager, "Update", &mine));
    set_entries(new, out);
}

fn conflict_error(
    rt: &ResourceType,
    live: &Value,
    conflicts: &[(String, String, String)],
) -> ApiError {
    let n = conflicts.len();
    let mut message = format!(
        "Apply failed with {n} conflict{}: ",
        if n == 1 { "" } else { "s" }
    );
    let mut by_manager: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for (m, v, f) in conflicts {
        by_manager.entry((m, v)).or_default().push(f);
    }
    let parts: Vec<String> = by_manager
        .iter()
        .map(|((m, v), fields)| {
            if fields.len() == 1 {
                format!("conflict with \"{m}\" using {v}: {}", fields[0])
            } else {
                format!(
                    "conflicts with \"{m}\" using {v}:\n- {}",
                    fields.join("\n- ")
                )
            }
        })
        .collect();
    message.push_str(&parts.join("\n"));
    let name = live
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, v, f)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\" using {v}"), "field": f}))
        .collect();
    ApiError {
        code: 409,
        reason: "Conflict",
        message,
        details: Some(
            json!({"name": name, "group": rt.group, "kind": rt.resource, "causes": causes}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry::Registry;

    fn cm_type() -> std::sync::Arc<ResourceType> {
        Registry::builtin()
            .lookup("", "v1", "configmaps")
            .expect("cm")
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})
    }

    #[test]
    fn field_sets_round_trip_through_fields_v1() {
        let set = fields_of(&cm(json!({"a": "1", "b": "2"})), None);
        let mut back = FieldSet::new();
        decode(&encode(&set), &mut Vec::new(), &mut back);
        assert_eq!(set, back);
        assert_eq!(encode(&set), json!({"f:data": {"f:a": {}, "f:b": {}}}));
    }

    #[test]
    fn a_second_manager_changing_an_owned_field_conflicts_unless_forced() {
        let rt = cm_type();
        let live =
            apply(&rt, &cm(json!({})), &cm(json!({"a": "1"})), "alice", false).expect("alice");
        let e = apply(&rt, &live, &cm(json!({"a": "2"})), "bob", false).expect_err("conflict");
        assert_eq!(e.code, 409);
        assert_eq!(
            e.message,
            "Apply failed with 1 conflict: conflict with \"alice\" using v1: .data.a"
        );
        let forced = apply(&rt, &live, &cm(json!({"a": "2"})), "bob", true).expect("forced");
        assert_eq!(forced["data"]["a"], "2");
        let managers: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .expect("mf")
            .iter()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert_eq!(managers, ["bob"], "alice lost her only field");
        let shared = apply(
            &rt,
            &cm(json!({})),
            &cm(json!({"a": "1", "b": "1"})),
            "alice",
            false,
        )
        .expect("alice");
        let taken =
            apply(&rt, &shared, &cm(json!({"a": "1", "b": "2"})), "bob", true).expect("forced");
        let alice: Vec<&Value> = taken["metadata"]["managedFields"]
            .as_array()
            .expect("mf")
            .iter()
            .filter(|e| e["manager"] == "alice")
            .collect();
        assert_eq!(
            alice[0]["fieldsV1"],
            json!({"f:data": {"f:a": {}}}),
            "force takes only the contested field"
        );
    }

    #[test]
    fn same_value_from_two_managers_is_shared_not_a_conflict() {
        let rt = cm_type();
        let live =
            apply(&rt, &cm(json!({})), &cm(json!({"a": "1"})), "alice", false).expect("alice");
        let both = apply(&rt, &live, &cm(json!({"a": "1"})), "bob", false).expect("shared");
        assert_eq!(
            both["metadata"]["managedFields"].as_array().map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn a_field_dropped_from_the_configuration_is_removed() {
        let rt = cm_type();
        let live = apply(
            &rt,
            &cm(json!({})),
            &cm(json!({"a": "1", "b": "2"})),
            "alice",
            false,
        )
        .expect("first");
        let next = apply(&rt, &live, &cm(json!({"a": "1"})), "alice", false).expect("second");
        assert_eq!(next["data"], json!({"a": "1"}));
    }

    #[test]
    fn updates_take_ownership_of_the_fields_they_change() {
        let rt = cm_type();
        let live =
            apply(&rt, &cm(json!({})), &cm(json!({"a": "1"})), "alice", false).expect("alice");
        let mut edited = live.clone();
        edited["data"]["a"] = json!("9");
        track_update(&rt, Some(&live), &mut edited, "kubectl-edit");
        let mf = edited["metadata"]["managedFields"].as_array().expect("mf");
        assert_eq!(mf.len(), 1);
        assert_eq!(mf[0]["manager"], "kubectl-edit");
        assert_eq!(mf[0]["operation"], "Update");
    }
}
