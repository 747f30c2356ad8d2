//! The `scale` subresource: an `autoscaling/v1 Scale` view of a workload's replicas.

use http::Response;
use serde_json::{Value, json};

use super::{RETRIES, Req, commit_update, current, retryable};
use crate::api::error::ApiError;
use crate::api::registry::ResourceType;
use crate::apiserver::Shared;
use crate::apiserver::objects::name_of;
use crate::apiserver::response::{self, Body};

/// The label selector of a workload as the string form Scale.status.selector carries.
fn selector_string(obj: &Value) -> String {
    let sel = obj.pointer("/spec/selector");
    // ReplicationControllers carry a plain map; the rest a LabelSelector.
    let labels = match sel {
        Some(Value::Object(m))
            if !m.contains_key("matchLabels") && !m.contains_key("matchExpressions") =>
        {
            Some(sel)
        }
        _ => sel.and_then(|s| s.get("matchLabels")).map(Some),
    };
    let mut parts: Vec<String> = labels
        .flatten()
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    for e in sel
        .and_then(|s| s.get("matchExpressions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        parts.push(match e.get("operator").and_then(Value::as_str) {
            Some("In") => format!("{key} in ({})", values.join(",")),
            Some("NotIn") => format!("{key} notin ({})", values.join(",")),
            Some("Exists") => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    parts.join(",")
}

fn to_scale(obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": { "replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1)) },
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector_string(obj),
        },
    })
}

fn scale_type(rt: &ResourceType) -> ResourceType {
    let mut t = rt.clone();
    t.group = "autoscaling".into();
    t.version = "v1".into();
    t.kind = "Scale".into();
    t.codec = None;
    t
}

pub(super) async fn get(s: &Shared, r: Req) -> Result<Response<Body>, ApiError> {
    let (_, obj) = current(s, &r.rt, r.namespace.as_deref(), r.name())?;
    Ok(response::json(200, &to_scale(&obj)))
}

async fn write_scale(
    s: &Shared,
    r: &Req,
    change: impl Fn(&Value) -> Result<Value, ApiError>,
) -> Result<Response<Body>, ApiError> {
    let name = r.name().to_string();
    let dry_run = r.query.dry_run()?;
    let mut last = None;
    for _ in 0..RETRIES {
        let (rv, cur) = current(s, &r.rt, r.namespace.as_deref(), &name)?;
        let scale = change(&to_scale(&cur))?;
        let pinned = scale
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty());
        if pinned.is_some_and(|p| p != rv.to_string()) {
            return Err(ApiError::conflict(
                &r.rt.group,
                &r.rt.resource,
                &name,
                ApiError::MODIFIED,
            ));
        }
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid(
                "autoscaling",
                "Scale",
                &name,
                format!(
                    "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
                ),
                Vec::new(),
            ));
        }
        let mut next = cur.clone();
        next["spec"]["replicas"] = json!(replicas);
        let next = crate::apiserver::objects::prepare_update(&r.rt, &cur, next, None);
        match commit_update(s, &r.rt, &r.key(), rv, &cur, next, dry_run).await {
            Ok(stored) => return Ok(response::json(200, &to_scale(&stored))),
            Err(e) if retryable(&e, pinned.is_some()) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        ApiError::conflict(&r.rt.group, &r.rt.resource, &name, ApiError::MODIFIED)
    }))
}

pub(super) async fn update(s: &Shared, r: Req) -> Result<Response<Body>, ApiError> {
    let sent = crate::api::codec::decode(&r.content_type, &r.body)?;
    if !name_of(&sent).is_empty() && name_of(&sent) != r.name() {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the request ({})",
            name_of(&sent),
            r.name()
        )));
    }
    write_scale(s, &r, |_| Ok(sent.clone())).await
}

pub(super) async fn patch(s: &Shared, r: Req) -> Result<Response<Body>, ApiError> {
    let kind = super::patch::patch_kind(&r.content_type, &scale_type(&r.rt))?;
    let doc = match kind {
        crate::api::patch::PatchKind::Apply => crate::api::codec::decode_yaml(&r.body)?,
        _ => crate::api::codec::decode_json(&r.body)?,
    };
    let st = scale_type(&r.rt);
    let manager = r.field_manager();
    write_scale(s, &r, |scale| {
        crate::api::patch::apply_patch(kind, &st, scale, &doc, &manager, true)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_view_carries_replicas_and_selector_string() {
        let d = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let s = to_scale(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"], json!({"replicas": 2, "selector": "app=web"}));
        let rc =
            json!({"metadata": {"name": "r"}, "spec": {"replicas": 1, "selector": {"app": "x"}}});
        assert_eq!(to_scale(&rc)["status"]["selector"], "app=x");
    }
}
