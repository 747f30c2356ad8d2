//! Applies a strategic merge patch (`application/strategic-merge-patch+json`) as Kubernetes does.
//!
//! This follows apimachinery's `strategicpatch.StrategicMergeMapPatch` as the apiserver calls it
//! (merge the parallel `$deleteFromPrimitiveList` / `$setElementOrder` lists, drop unmatched
//! nulls): maps merge key by key, `null` deletes, lists merge by their patch merge key or are
//! replaced, and the `$patch`, `$retainKeys`, `$deleteFromPrimitiveList/…` and
//! `$setElementOrder/…` directives apply. Maps are merged here, lists in `list`, list order in
//! `order`; `clean` decides what of the patch's own content lands in the result.

mod clean;
mod error;
mod list;
mod order;

use serde_json::{Map, Value};

use crate::api::schema;

use clean::{adopt, strip_object};
pub use error::Error;

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

type Object = Map<String, Value>;

/// Applies `patch` to `original`. `root` is the kind's type (`TypeRef::for_kind`); with `None`
/// (custom resources) the patch is applied as a JSON merge patch (RFC 7386).
pub fn apply(
    original: &Value,
    patch: &Value,
    root: Option<schema::TypeRef>,
) -> Result<Value, Error> {
    let Value::Object(target) = original else {
        return Err(Error::NotAnObject("original"));
    };
    let Value::Object(patch) = patch else {
        return Err(Error::NotAnObject("patch"));
    };
    match root {
        Some(root) => merge_map(target.clone(), patch.clone(), Some(root)).map(Value::Object),
        None => Ok(merge_patch(original.clone(), Value::Object(patch.clone()))),
    }
}

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
fn merge_patch(target: Value, patch: Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch;
    };
    let mut target = match target {
        Value::Object(map) => map,
        _ => Object::new(),
    };
    for (key, value) in patch {
        if value.is_null() {
            target.shift_remove(&key);
            continue;
        }
        let current = target.get_mut(&key).map(std::mem::take).unwrap_or_default();
        target.insert(key, merge_patch(current, value));
    }
    Value::Object(target)
}

/// A field of a map whose type is `owner` (None when unknown: plain JSON rules then).
#[derive(Clone, Copy)]
struct Field<'a> {
    owner: Option<schema::TypeRef>,
    name: &'a str,
}

impl Field<'_> {
    fn meta(self) -> schema::ListMeta {
        self.owner
            .map(|t| t.list_meta(self.name))
            .unwrap_or_default()
    }

    /// The field's type: a struct's field, or a map's value type.
    fn ty(self) -> Option<schema::TypeRef> {
        let owner = self.owner?;
        owner.field(self.name).or_else(|| owner.elem())
    }

    /// The strategy that decides between merging and replacing; retainKeys only matters to the
    /// client that builds the patch (the `$retainKeys` directive itself works on any map).
    fn strategy(self) -> &'static str {
        let strategies = self.meta().patch_strategy.unwrap_or_default();
        strategies
            .split(',')
            .find(|s| *s != "retainKeys")
            .unwrap_or_default()
    }
}

/// Go's mergeMap: the map-level `$patch`, then `$retainKeys`, then the `$setElementOrder` lists,
/// then every other key.
fn merge_map(
    mut original: Object,
    mut patch: Object,
    ty: Option<schema::TypeRef>,
) -> Result<Object, Error> {
    if let Some(directive) = patch.shift_remove(PATCH) {
        return map_directive(directive, patch);
    }
    retain_keys(&mut original, &mut patch)?;
    order::apply_element_orders(&mut original, &mut patch, ty)?;
    for (key, value) in patch {
        merge_entry(&mut original, &key, value, ty)?;
    }
    Ok(original)
}

/// `$patch` inside a map being merged: replace it with the rest of the patch, or empty it.
fn map_directive(directive: Value, patch: Object) -> Result<Object, Error> {
    match directive.as_str() {
        Some("replace") => Ok(strip_object(patch)),
        Some("delete") => Ok(Object::new()),
        _ => Err(unknown_directive(&directive, &Value::Object(patch))),
    }
}

fn unknown_directive(directive: &Value, map: &Value) -> Error {
    Error::UnknownDirective {
        directive: directive.to_string(),
        map: map.to_string(),
    }
}

/// `$retainKeys`: every key the patch sets must be listed, and the original keeps only listed keys.
fn retain_keys(original: &mut Object, patch: &mut Object) -> Result<(), Error> {
    let Some(retained) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retained) = retained else {
        return Err(Error::BadRetainKeys);
    };
    let listed = |key: &str| retained.iter().any(|k| k.as_str() == Some(key));
    let unlisted = patch.iter().any(|(key, value)| {
        !value.is_null()
            && !key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            && !key.starts_with(SET_ELEMENT_ORDER)
            && !listed(key)
    });
    if unlisted {
        return Err(Error::BadRetainKeys);
    }
    original.retain(|key, _| listed(key));
    Ok(())
}

/// The field a `<prefix>/<field>` directive key names.
fn directive_field<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    key.split_once('/')
        .filter(|(head, _)| *head == prefix)
        .map(|(_, field)| field)
}

fn merge_entry(
    original: &mut Object,
    key: &str,
    value: Value,
    ty: Option<schema::TypeRef>,
) -> Result<(), Error> {
    let deletion = key.starts_with(DELETE_FROM_PRIMITIVE_LIST);
    let name = match deletion {
        true => directive_field(key, DELETE_FROM_PRIMITIVE_LIST).ok_or(Error::BadPrimitiveList)?,
        false => key,
    };
    let current = original.get_mut(name).map(std::mem::take);
    match merge_value(current, value, Field { owner: ty, name }, deletion)? {
        // Insert keeps an existing key where it was, so the object's key order survives.
        Some(merged) => original.insert(name.to_string(), merged),
        None => original.shift_remove(name),
    };
    Ok(())
}

/// The new value of one field (None: absent). `deletion` marks a `$deleteFromPrimitiveList` list.
fn merge_value(
    current: Option<Value>,
    patch: Value,
    field: Field,
    deletion: bool,
) -> Result<Option<Value>, Error> {
    Ok(match (current, patch) {
        (_, Value::Null) => None,
        (Some(Value::Object(current)), Value::Object(patch)) => {
            Some(Value::Object(merge_field_map(current, patch, field)?))
        }
        (Some(Value::Array(current)), Value::Array(patch)) => Some(Value::Array(
            list::merge_field_list(current, patch, field, deletion)?,
        )),
        // A deletion list removes from a list; it adds nothing and replaces nothing of another kind.
        (current, patch)
            if deletion && current.as_ref().is_none_or(|c| kind(c) != kind(&patch)) =>
        {
            current
        }
        (_, patch) => adopt(patch),
    })
}

fn merge_field_map(current: Object, patch: Object, field: Field) -> Result<Object, Error> {
    match field.strategy() {
        "replace" => Ok(strip_object(patch)),
        _ => merge_map(current, patch, field.ty()),
    }
}

/// The JSON kind of a value, as Go's reflect type would tell them apart.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Applies `patch` to `original` the way the apiserver would for a built-in `kind` of core/v1,
    /// apps/v1, ... (`group/version/Kind`).
    pub(super) fn patch_as(kind: &str, original: Value, patch: Value) -> Result<Value, Error> {
        let (group_version, kind) = kind.rsplit_once('/').unwrap_or(("", kind));
        let (group, version) = group_version
            .rsplit_once('/')
            .unwrap_or(("", group_version));
        let root = schema::TypeRef::for_kind(group, version, kind);
        assert!(
            root.is_some(),
            "{group}/{version}/{kind} is not a served kind"
        );
        apply(&original, &patch, root)
    }

    fn deployment(containers: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": containers}}}
        })
    }

    fn containers(result: &Value) -> &Value {
        &result["spec"]["template"]["spec"]["containers"]
    }

    #[test]
    fn kubectl_apply_changing_replicas_image_and_env_merges_into_the_live_deployment() {
        let live = deployment(json!([{
            "name": "nginx", "image": "nginx:1.25",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "terminationMessagePath": "/dev/termination-log"
        }]));
        // What kubectl apply sends after replicas 1→3, image bump, A changed, B dropped, C added.
        let patch = json!({"spec": {"replicas": 3, "template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                "env": [{"name": "A", "value": "10"}, {"name": "C", "value": "3"}, {"$patch": "delete", "name": "B"}],
                "image": "nginx:1.27", "name": "nginx"
            }]
        }}}});
        let result = patch_as("apps/v1/Deployment", live, patch).expect("applies");
        assert_eq!(result["spec"]["replicas"], 3);
        assert_eq!(
            containers(&result),
            &json!([{
                "name": "nginx", "image": "nginx:1.27",
                "env": [{"name": "A", "value": "10"}, {"name": "C", "value": "3"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "terminationMessagePath": "/dev/termination-log"
            }])
        );
    }

    #[test]
    fn kubectl_label_adds_overwrites_and_removes_labels() {
        let live = json!({"metadata": {"name": "p", "labels": {"app": "web", "tier": "old", "gone": "x"}}});
        let patch = json!({"metadata": {"labels": {"tier": "front", "env": "prod", "gone": null}}});
        let result = patch_as("v1/Pod", live, patch).expect("applies");
        assert_eq!(
            result["metadata"]["labels"],
            json!({"app": "web", "tier": "front", "env": "prod"})
        );
    }

    #[test]
    fn kubectl_set_image_touches_only_the_named_container() {
        let live = deployment(
            json!([{"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "envoy:1"}]),
        );
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"image": "envoy:2", "name": "sidecar"}]}}}});
        let result = patch_as("apps/v1/Deployment", live, patch).expect("applies");
        assert_eq!(
            containers(&result),
            &json!([{"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "envoy:2"}])
        );
    }

    #[test]
    fn a_delete_directive_element_removes_an_env_var() {
        let live = json!({"spec": {"containers": [{"name": "c", "env": [{"name": "KEEP", "value": "1"}, {"name": "DROP", "value": "2"}]}]}});
        let patch = json!({"spec": {"containers": [{"name": "c", "env": [{"name": "DROP", "$patch": "delete"}]}]}});
        let result = patch_as("v1/Pod", live, patch).expect("applies");
        assert_eq!(
            result["spec"]["containers"][0]["env"],
            json!([{"name": "KEEP", "value": "1"}])
        );
    }

    #[test]
    fn retain_keys_switches_a_volume_from_empty_dir_to_config_map() {
        let live = deployment(json!([{"name": "app", "image": "app:1"}]));
        let mut live = live;
        live["spec"]["template"]["spec"]["volumes"] = json!([{"name": "data", "emptyDir": {}}, {"name": "certs", "secret": {"secretName": "tls"}}]);
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/volumes": [{"name": "data"}, {"name": "certs"}],
            "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cfg"}, "emptyDir": null, "name": "data"}]
        }}}});
        let result = patch_as("apps/v1/Deployment", live, patch).expect("applies");
        assert_eq!(
            result["spec"]["template"]["spec"]["volumes"],
            json!([{"name": "data", "configMap": {"name": "cfg"}}, {"name": "certs", "secret": {"secretName": "tls"}}])
        );
    }

    #[test]
    fn retain_keys_switches_a_deployment_to_recreate() {
        let mut live = deployment(json!([{"name": "app"}]));
        live["spec"]["strategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let result = patch_as("apps/v1/Deployment", live, patch).expect("applies");
        assert_eq!(result["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn retain_keys_rejects_a_patch_that_sets_an_unlisted_key() {
        let live = json!({"spec": {"strategy": {"type": "Recreate"}}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}});
        let err = patch_as("apps/v1/Deployment", live, patch).expect_err("unlisted key");
        assert_eq!(
            (err.to_string().as_str(), err.status()),
            ("invalid patch format of retainKeys", 400)
        );
    }

    #[test]
    fn finalizers_merge_as_a_set_and_delete_from_primitive_list_removes_one() {
        let live = json!({"metadata": {"name": "ns", "finalizers": ["a", "b"]}});
        let patch = json!({"metadata": {"finalizers": ["b", "x"], "$deleteFromPrimitiveList/finalizers": ["a"]}});
        let result = patch_as("v1/Namespace", live.clone(), patch).expect("applies");
        assert_eq!(result["metadata"]["finalizers"], json!(["b", "x"]));
        // Without $setElementOrder, items unknown to the server go first (Go's mergeSortedSlice).
        let patch = json!({"metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]}});
        let result = patch_as("v1/Namespace", live.clone(), patch).expect("applies");
        assert_eq!(result["metadata"]["finalizers"], json!(["c", "b"]));
        // kubectl apply of finalizers [b, c] over a last-applied [a, b] also sends the order.
        let patch = json!({"metadata": {
            "$setElementOrder/finalizers": ["b", "c"], "finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]
        }});
        let result = patch_as("v1/Namespace", live, patch).expect("applies");
        assert_eq!(result["metadata"]["finalizers"], json!(["b", "c"]));
    }

    #[test]
    fn container_ports_merge_by_container_port() {
        let live = json!({"spec": {"containers": [{"name": "c", "ports": [
            {"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}
        ]}]}});
        let patch = json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 443, "name": "https"}, {"containerPort": 9090}]}]}});
        let result = patch_as("v1/Pod", live, patch).expect("applies");
        let expected = json!([
            {"containerPort": 80, "protocol": "TCP"},
            {"containerPort": 443, "protocol": "TCP", "name": "https"},
            {"containerPort": 9090}
        ]);
        assert_eq!(result["spec"]["containers"][0]["ports"], expected);
    }

    #[test]
    fn service_ports_merge_by_port() {
        let live = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
        let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}});
        let result = patch_as("v1/Service", live, patch).expect("applies");
        assert_eq!(
            result["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090}])
        );
    }

    #[test]
    fn null_deletes_a_key_and_nulls_inside_new_content_are_dropped() {
        let live = json!({"spec": {"replicas": 2, "paused": true}});
        let patch = json!({"spec": {"paused": null, "minReadySeconds": null, "selector": {"matchLabels": {"a": "b", "c": null}}}});
        let result = patch_as("apps/v1/Deployment", live, patch).expect("applies");
        assert_eq!(
            result,
            json!({"spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}}}})
        );
    }

    #[test]
    fn a_list_element_without_its_merge_key_is_an_error() {
        let live = json!({"spec": {"containers": [{"name": "c", "image": "a"}]}});
        let patch = json!({"spec": {"containers": [{"image": "b"}]}});
        let err = patch_as("v1/Pod", live, patch).expect_err("no name");
        assert!(
            err.to_string()
                .contains("does not contain declared merge key: name"),
            "{err}"
        );
        assert_eq!(err.status(), 422);
    }

    #[test]
    fn lists_without_a_merge_strategy_are_replaced_whole() {
        let live = json!({"spec": {"tolerations": [{"key": "a", "operator": "Exists"}], "containers": [{"name": "c", "args": ["x", "y"]}]}});
        let patch = json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}], "containers": [{"name": "c", "args": ["z"]}]}});
        let result = patch_as("v1/Pod", live, patch).expect("applies");
        assert_eq!(
            result["spec"]["tolerations"],
            json!([{"key": "b", "operator": "Exists"}])
        );
        assert_eq!(result["spec"]["containers"][0]["args"], json!(["z"]));
    }

    #[test]
    fn map_directives_replace_or_empty_the_map_and_merge_is_rejected() {
        let live = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}}});
        let patch = json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}, "annotations": {"$patch": "delete"}}});
        let result = patch_as("v1/ConfigMap", live.clone(), patch).expect("applies");
        assert_eq!(
            result["metadata"],
            json!({"labels": {"c": "3"}, "annotations": {}})
        );
        let err = patch_as(
            "v1/ConfigMap",
            live,
            json!({"metadata": {"labels": {"$patch": "merge"}}}),
        )
        .expect_err("bad");
        assert!(
            err.to_string().starts_with("unknown patch type: \"merge\""),
            "{err}"
        );
    }

    #[test]
    fn a_replace_strategy_field_is_replaced_not_merged() {
        let live =
            json!({"spec": {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": 1}});
        let patch = json!({"spec": {"selector": {"matchLabels": {"tier": "db"}}}});
        let result = patch_as("policy/v1/PodDisruptionBudget", live, patch).expect("applies");
        assert_eq!(
            result["spec"]["selector"],
            json!({"matchLabels": {"tier": "db"}})
        );
    }

    #[test]
    fn custom_resources_take_a_json_merge_patch() {
        let live = json!({"spec": {"items": [{"name": "a"}], "size": 1, "keep": true}});
        let patch =
            json!({"spec": {"items": [{"name": "b"}], "size": null, "extra": {"x": null, "y": 1}}});
        let result = apply(&live, &patch, None).expect("applies");
        assert_eq!(
            result,
            json!({"spec": {"items": [{"name": "b"}], "keep": true, "extra": {"y": 1}}})
        );
    }

    #[test]
    fn a_patch_that_is_not_a_json_object_is_rejected() {
        for patch in [json!([1]), json!("x"), Value::Null] {
            let err = apply(&json!({}), &patch, None).expect_err("not an object");
            assert_eq!(err.status(), 400);
        }
        let err = patch_as(
            "v1/Pod",
            json!({}),
            json!({"$deleteFromPrimitiveList": ["a"]}),
        )
        .expect_err("no field");
        assert_eq!(err.to_string(), "invalid patch format of primitive list");
    }
}
