//! `delete` and `deletecollection`: preconditions, finalizers and deletionTimestamp,
//! namespaces that drain before they go, and the garbage collector's finalizers that
//! a propagation policy asks for (`api::finalizers`).

use http::Response;
use serde_json::{Value, json};

use super::read::{matching, selectors};
use super::{RETRIES, Req, current, retryable};
use crate::api::clock::in_seconds;
use crate::api::error::{ApiError, Cause};
use crate::api::finalizers::{Propagation, default_policy, deletion_finalizers};
use crate::api::registry::ResourceType;
use crate::api::validation::{FieldError, invalid_message};
use crate::apiserver::objects::{meta_mut, store_error, unchanged};
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
    /// `propagationPolicy` (body or query).
    propagation: Option<Propagation>,
    /// The deprecated `orphanDependents` (body or query).
    orphan_dependents: Option<bool>,
}

/// `ValidateDeleteOptions`: a 422 naming DeleteOptions, as Kubernetes words it.
fn invalid_options(errors: &[FieldError]) -> ApiError {
    let causes = errors
        .iter()
        .map(|e| Cause {
            reason: e.reason().to_string(),
            message: e.body(),
            field: e.field.clone(),
        })
        .collect();
    ApiError::invalid(
        "meta.k8s.io",
        "DeleteOptions",
        "",
        invalid_message("meta.k8s.io", "DeleteOptions", "", errors),
        causes,
    )
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
    let orphan_dependents = match body.get("orphanDependents").and_then(Value::as_bool) {
        Some(o) => Some(o),
        // The query converter reads "0" and "false" (any case) as false, anything else
        // as true.
        None => r
            .query
            .get("orphanDependents")
            .map(|v| !(v == "0" || v.eq_ignore_ascii_case("false"))),
    };
    let policy = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or(r.query.get("propagationPolicy"));
    let mut errors = Vec::new();
    if let Some(p) = policy
        && orphan_dependents.is_some()
    {
        errors.push(FieldError::invalid(
            "propagationPolicy",
            p,
            "orphanDependents and deletionPropagation cannot be both set",
        ));
    }
    let propagation = policy.and_then(Propagation::parse);
    if let Some(p) = policy
        && propagation.is_none()
    {
        errors.push(FieldError::not_supported(
            "propagationPolicy",
            p,
            &["Foreground", "Background", "Orphan", "nil"],
        ));
    }
    if !errors.is_empty() {
        return Err(invalid_options(&errors));
    }
    Ok(Options {
        propagation,
        orphan_dependents,
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

/// The object's `metadata.finalizers`.
fn finalizers_of(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Delete one object; returns it and whether it is gone (else: deletion pending).
///
/// As Kubernetes' registry store does: a graceful deletion under way only gets
/// shorter and keeps its finalizers; otherwise the propagation policy sets the
/// garbage collector's finalizers, and an object left with finalizers (or a grace
/// period) is marked deleting instead of removed — a deletion already marked keeps
/// its deletionTimestamp, and one whose finalizers the policy clears goes at once.
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
        let pending = obj
            .pointer("/metadata/deletionTimestamp")
            .is_some()
            .then(|| {
                obj.pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            });
        // An object already marked with no grace left waits on finalizers only.
        let grace = if pending == Some(0) {
            0
        } else {
            grace_period(rt, &obj, o)
        };
        if pending.is_some_and(|period| period > 0 && period <= grace) {
            return Ok((obj, false));
        }
        let mut next = obj.clone();
        if s.settings.garbage_collection
            && let Some(f) = deletion_finalizers(
                default_policy(rt),
                &finalizers_of(&obj),
                o.orphan_dependents,
                o.propagation,
            )
        {
            meta_mut(&mut next).insert("finalizers".into(), json!(f));
        }
        if grace > 0 || must_finalize(rt, &next) {
            let meta = meta_mut(&mut next);
            if pending.is_none()
                && let Some(g) = meta.get("generation").and_then(Value::as_i64)
                && g > 0
            {
                meta.insert("generation".into(), json!(g + 1));
            }
            // A deletion marked for finalizers keeps its first timestamp.
            if grace > 0 || pending != Some(0) {
                meta.insert("deletionTimestamp".into(), json!(in_seconds(grace)));
            }
            meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
            if rt.group.is_empty() && rt.resource == "namespaces" {
                next["status"]["phase"] = json!("Terminating");
            }
            if o.dry_run {
                return Ok((next, false));
            }
            if unchanged(&obj, &next) {
                return Ok((obj, false));
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
    // Kubernetes answers 202 only to a pending deletion that asked for
    // `orphanDependents: false`; every other deletion, done or pending, is a 200.
    let code = if !gone && o.orphan_dependents == Some(false) {
        202
    } else {
        200
    };
    Ok(response::object(code, &r.rt, &obj, r.output))
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
