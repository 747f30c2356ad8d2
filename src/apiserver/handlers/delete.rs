//! `delete` and `deletecollection`: preconditions, finalizers and deletionTimestamp,
//! namespaces that drain before they go.

use http::Response;
use serde_json::{Value, json};

use super::read::{matching, selectors};
use super::{RETRIES, Req, current, retryable};
use crate::api::clock::in_seconds;
use crate::api::error::ApiError;
use crate::api::registry::ResourceType;
use crate::apiserver::objects::{meta_mut, store_error};
use crate::apiserver::response::{self, Body};
use crate::apiserver::{Shared, crd};
use crate::store::Write;

/// Namespaces a real cluster refuses to delete.
const PROTECTED_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// What a DeleteOptions body and the query ask for.
struct Options {
    uid: Option<String>,
    resource_version: Option<String>,
    dry_run: bool,
    /// `gracePeriodSeconds` (body or query); only pods wait for it.
    grace: Option<i64>,
}

fn options(r: &Req) -> Result<Options, ApiError> {
    let body: Value = if r.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        crate::api::codec::decode(&r.content_type, &r.body)?
    };
    let pre = body.get("preconditions");
    let dry_in_body = body
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "All"));
    if let Some(p) = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or(r.query.get("propagationPolicy"))
        && !matches!(p, "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::bad_request(format!(
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
        )));
    }
    Ok(Options {
        uid: pre
            .and_then(|p| p.get("uid"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        resource_version: pre
            .and_then(|p| p.get("resourceVersion"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        dry_run: r.query.dry_run()? || dry_in_body,
        grace: match body.get("gracePeriodSeconds").and_then(Value::as_i64) {
            Some(g) => Some(g),
            None => r
                .query
                .get("gracePeriodSeconds")
                .map(|g| {
                    g.parse::<i64>().map_err(|_| {
                        ApiError::bad_request(format!(
                            "invalid value for gracePeriodSeconds: {g:?}"
                        ))
                    })
                })
                .transpose()?,
        },
    })
}

fn check_preconditions(
    rt: &ResourceType,
    name: &str,
    obj: &Value,
    o: &Options,
) -> Result<(), ApiError> {
    let fail = |what: &str, want: &str, have: &str| {
        ApiError::conflict(
            &rt.group,
            &rt.resource,
            name,
            &format!(
                "Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}"
            ),
        )
    };
    let meta = |k: &str| {
        obj.pointer(&format!("/metadata/{k}"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if let Some(uid) = &o.uid
        && *uid != meta("uid")
    {
        return Err(fail("UID", uid, &meta("uid")));
    }
    if let Some(rv) = &o.resource_version
        && *rv != meta("resourceVersion")
    {
        return Err(fail("ResourceVersion", rv, &meta("resourceVersion")));
    }
    Ok(())
}

/// Whether deleting this object must wait for finalizers.
fn must_finalize(rt: &ResourceType, obj: &Value) -> bool {
    let non_empty = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    non_empty("/metadata/finalizers")
        || (rt.group.is_empty() && rt.resource == "namespaces" && non_empty("/spec/finalizers"))
}

/// How long a deletion waits, in seconds: a pod running on a node gets its grace
/// period (the request's, else `terminationGracePeriodSeconds`, else 30) so its
/// kubelet can stop it and then delete it with grace 0; unbound and finished pods,
/// and everything that is not a pod, go at once (0).
fn grace_period(rt: &ResourceType, obj: &Value, o: &Options) -> i64 {
    if !(rt.group.is_empty() && rt.resource == "pods") {
        return 0;
    }
    let bound = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        obj.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if !bound || finished {
        return 0;
    }
    let requested = o.grace.unwrap_or_else(|| {
        obj.pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30)
    });
    // A negative period means "as short as possible" but still graceful.
    if requested < 0 { 1 } else { requested }
}

/// Delete one object; returns it and whether it is gone (else: deletion pending).
async fn delete_one(
    s: &Shared,
    r: &Req,
    name: &str,
    o: &Options,
) -> Result<(Value, bool), ApiError> {
    let rt = &r.rt;
    if rt.group.is_empty() && rt.resource == "namespaces" && PROTECTED_NAMESPACES.contains(&name) {
        return Err(ApiError::forbidden(
            "",
            "namespaces",
            name,
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
        ));
    }
    let key = rt.key(r.namespace.as_deref(), name);
    let mut last = None;
    for _ in 0..RETRIES {
        let (rv, obj) = current(s, rt, r.namespace.as_deref(), name)?;
        check_preconditions(rt, name, &obj, o)?;
        let grace = grace_period(rt, &obj, o);
        let finalize = must_finalize(rt, &obj);
        // A pending deletion only ever gets shorter; grace 0 ends it (finalizers aside).
        let pending = obj
            .pointer("/metadata/deletionTimestamp")
            .is_some()
            .then(|| {
                obj.pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            });
        if pending.is_some_and(|period| period <= grace) {
            return Ok((obj, false));
        }
        if grace > 0 || finalize {
            let mut next = obj.clone();
            let meta = meta_mut(&mut next);
            meta.insert("deletionTimestamp".into(), json!(in_seconds(grace)));
            meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
            if rt.group.is_empty() && rt.resource == "namespaces" {
                next["status"]["phase"] = json!("Terminating");
            }
            if o.dry_run {
                return Ok((next, false));
            }
            match s
                .store
                .write(Write::Update {
                    key: key.clone(),
                    object: rt.to_storage(next),
                    expect: Some(rv),
                })
                .await
            {
                Ok(stored) => return Ok((rt.from_storage((*stored).clone()), false)),
                Err(e) => {
                    let e = store_error(rt, name, e);
                    if retryable(&e, o.resource_version.is_some()) {
                        last = Some(e);
                        continue;
                    }
                    return Err(e);
                }
            }
        }
        if o.dry_run {
            return Ok((obj, true));
        }
        match s
            .store
            .write(Write::Delete {
                key: key.clone(),
                expect: Some(rv),
            })
            .await
        {
            Ok(gone) => {
                crd::after_delete(s, rt, &gone).await;
                return Ok((rt.from_storage((*gone).clone()), true));
            }
            Err(e) => {
                let e = store_error(rt, name, e);
                if retryable(&e, o.resource_version.is_some()) {
                    last = Some(e);
                    continue;
                }
                return Err(e);
            }
        }
    }
    Err(last
        .unwrap_or_else(|| ApiError::conflict(&rt.group, &rt.resource, name, ApiError::MODIFIED)))
}

pub(super) async fn delete(s: &Shared, r: Req) -> Result<Response<Body>, ApiError> {
    let o = options(&r)?;
    let (obj, gone) = delete_one(s, &r, r.name(), &o).await?;
    // 200 when the object is gone, 202 when its deletion waits on finalizers.
    Ok(response::object(
        if gone { 200 } else { 202 },
        &r.rt,
        &obj,
        r.output,
    ))
}

pub(super) async fn delete_collection(s: &Shared, r: Req) -> Result<Response<Body>, ApiError> {
    let o = options(&r)?;
    let sel = selectors(&r)?;
    let (items, rev, _) = matching(s, &r, &sel, None, 0)?;
    let mut deleted = Vec::new();
    for (_, obj) in items {
        let name = crate::apiserver::objects::name_of(&obj).to_string();
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let one = Req {
            rt: r.rt.clone(),
            namespace: ns.or_else(|| r.namespace.clone()),
            name: Some(name.clone()),
            sub: None,
            query: r.query.clone(),
            output: r.output,
            content_type: r.content_type.clone(),
            body: r.body.clone(),
            user_agent: r.user_agent.clone(),
        };
        match delete_one(s, &one, &name, &o).await {
            Ok((obj, _)) => deleted.push(obj),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(response::list(
        &r.rt,
        deleted,
        json!({"resourceVersion": rev.to_string()}),
        r.output,
    ))
}
