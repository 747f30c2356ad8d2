//! Resource handlers: one file per verb family, sharing the request context and the
//! read-modify-write pipeline defined here.

mod delete;
mod exec;
mod patch;
pub mod pod;
mod portforward;
mod proxy;
mod read;
mod scale;
mod stream;
mod watch;
mod write;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response};
use serde_json::Value;

use super::Shared;
use super::objects::{self, store_error};
use super::request::{Output, Query, Target, negotiate};
use super::response::Body;
use crate::api::codec::{self, FieldValidation};
use crate::api::error::{ApiError, Cause};
use crate::api::registry::ResourceType;
use crate::api::{defaults, validation};
use crate::store::{self, Write};

/// How many times a write without a client resourceVersion is retried after losing a
/// race with another writer (Kubernetes' GuaranteedUpdate does the same).
const RETRIES: usize = 16;

/// One resource request, parsed.
pub(crate) struct Req {
    pub rt: Arc<ResourceType>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
    pub query: Query,
    pub output: Output,
    pub content_type: String,
    pub body: Bytes,
    pub user_agent: String,
}

impl Req {
    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    fn key(&self) -> String {
        self.rt.key(self.namespace.as_deref(), self.name())
    }

    fn field_validation(&self) -> Result<FieldValidation, ApiError> {
        FieldValidation::parse(self.query.get("fieldValidation"))
    }

    /// The manager recorded for this write: `fieldManager`, else the user agent's
    /// program name, as Kubernetes defaults it.
    fn field_manager(&self) -> String {
        match self.query.get("fieldManager") {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => self
                .user_agent
                .split('/')
                .next()
                .unwrap_or("unknown")
                .to_string(),
        }
    }

    /// The body as an object of this request's kind: JSON or YAML, `apiVersion` and
    /// `kind` filled or checked, `metadata.namespace` filled or checked.
    fn body_object(&self) -> Result<Value, ApiError> {
        let mut obj = codec::decode(&self.content_type, &self.body)?;
        check_object_shape(&self.rt, &mut obj, self.namespace.as_deref())?;
        Ok(obj)
    }
}

/// Check `apiVersion`/`kind` against the endpoint and align `metadata.namespace` with
/// the path, as the real API server does before anything else.
pub(crate) fn check_object_shape(
    rt: &ResourceType,
    obj: &mut Value,
    namespace: Option<&str>,
) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON or YAML object",
        ));
    }
    let want = rt.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = Value::String(want.clone()),
        Some(v) if v == want => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({want})"
            )));
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = Value::String(rt.kind.clone()),
        Some(k) if k == rt.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                rt.kind
            )));
        }
    }
    let meta = objects::meta_mut(obj);
    if rt.namespaced {
        match (meta.get("namespace").and_then(Value::as_str), namespace) {
            (None | Some(""), Some(ns)) => {
                meta.insert("namespace".into(), Value::String(ns.into()));
            }
            (Some(a), Some(b)) if a != b => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {}
        }
    } else {
        meta.remove("namespace");
    }
    Ok(())
}

/// Route a resource request to its handler.
pub(crate) async fn resource(
    s: &Shared,
    parts: &http::request::Parts,
    t: Target,
    query: Query,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let rt = s
        .registry
        .lookup(&t.group, &t.version, &t.resource)
        .ok_or_else(ApiError::path_not_found)?;
    if (t.namespace.is_some() && !rt.namespaced)
        || (rt.namespaced && t.name.is_some() && t.namespace.is_none())
    {
        return Err(ApiError::path_not_found());
    }
    if let Some(sub) = &t.sub
        && !rt.subresources.contains(&sub.as_str())
    {
        return Err(ApiError::path_not_found());
    }
    let header = |h: http::header::HeaderName| {
        parts
            .headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let output = negotiate(header(http::header::ACCEPT).as_deref(), &query)?;
    let req = Req {
        rt,
        namespace: t.namespace,
        name: t.name,
        sub: t.sub,
        query,
        output,
        content_type: header(http::header::CONTENT_TYPE).unwrap_or_default(),
        body,
        user_agent: header(http::header::USER_AGENT).unwrap_or_default(),
    };
    if req.sub.as_deref() == Some("proxy") && req.rt.group.is_empty() {
        let body = req.body.clone();
        match req.rt.resource.as_str() {
            "pods" => return proxy::pod(s, parts, req, body).await,
            "services" => return proxy::service(s, parts, req, body).await,
            _ => {}
        }
    }
    let sub = req.sub.as_deref();
    match (&parts.method, req.name.is_some(), sub) {
        (&Method::GET, false, None) if req.query.flag("watch") => watch::watch(s, req).await,
        (&Method::GET, false, None) => read::list(s, req).await,
        (&Method::GET, true, None | Some("status")) => read::get(s, req).await,
        (&Method::GET, true, Some("scale")) => scale::get(s, req).await,
        (&Method::GET, true, Some("log")) => pod::log(s, req).await,
        (&Method::GET | &Method::POST, true, Some("exec")) => exec::exec(s, parts, req).await,
        (&Method::GET | &Method::POST, true, Some("portforward")) => {
            portforward::portforward(s, parts, req).await
        }
        (&Method::POST, true, Some("binding")) => pod::bind(s, req).await,
        (&Method::POST, false, None) if req.rt.namespaced && req.namespace.is_none() => {
            Err(ApiError::method_not_allowed())
        }
        (&Method::POST, false, None) => write::create(s, req).await,
        (&Method::PUT, true, None | Some("status") | Some("finalize")) => {
            write::update(s, req).await
        }
        (&Method::PUT, true, Some("scale")) => scale::update(s, req).await,
        (&Method::PATCH, true, None | Some("status")) => patch::patch(s, req).await,
        (&Method::PATCH, true, Some("scale")) => scale::patch(s, req).await,
        (&Method::DELETE, true, None) => delete::delete(s, req).await,
        (&Method::DELETE, false, None) => delete::delete_collection(s, req).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// Read one object or answer 404.
pub(crate) fn current(
    s: &Shared,
    rt: &ResourceType,
    namespace: Option<&str>,
    name: &str,
) -> Result<(u64, Value), ApiError> {
    s.store
        .get(&rt.key(namespace, name))
        .map_err(|e| store_error(rt, name, e))?
        .map(|(rv, obj)| (rv, rt.from_storage(obj)))
        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.resource, name))
}

/// Run validation; field errors become one 422 Invalid.
pub(crate) fn validate(
    rt: &ResourceType,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let errors = validation::validate(&rt.group, &rt.kind, obj, old);
    if errors.is_empty() {
        return Ok(());
    }
    Err(invalid(&rt.group, &rt.kind, objects::name_of(obj), &errors))
}

/// One 422 Invalid for `errors` found in the `kind` object `name`.
pub(crate) fn invalid(
    group: &str,
    kind: &str,
    name: &str,
    errors: &[validation::FieldError],
) -> ApiError {
    let message = validation::invalid_message(group, kind, name, errors);
    let causes = errors
        .iter()
        .map(|e| Cause {
            reason: e.reason().to_string(),
            message: e.body(),
            field: e.field.clone(),
        })
        .collect();
    ApiError::invalid(group, kind, name, message, causes)
}

/// Defaults, typed normalization (with the field-validation mode), and validation of
/// a full object a client sent; returns the object and any warnings.
pub(crate) fn admit_body(
    rt: &ResourceType,
    mut obj: Value,
    mode: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError> {
    if rt.group.is_empty() && rt.kind == "Secret" {
        crate::api::conversion::fold_secret_string_data(&mut obj);
    }
    defaults::apply_defaults(&rt.group, &rt.version, &rt.kind, &mut obj);
    codec::normalize(rt, obj, mode)
}

/// Store the result of an update computed from `current` (read at `current_rv`):
/// no write when nothing changed, removal when the last finalizer of a deleted object
/// went, nothing stored under dry run.
pub(crate) async fn commit_update(
    s: &Shared,
    rt: &ResourceType,
    key: &str,
    current_rv: u64,
    current: &Value,
    new: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let name = objects::name_of(current).to_string();
    if objects::finalized_by_update(current, &new) {
        if dry_run {
            return Ok(new);
        }
        let gone = s
            .store
            .write(Write::Delete {
                key: key.into(),
                expect: Some(current_rv),
            })
            .await
            .map_err(|e| store_error(rt, &name, e))?;
        super::crd::after_delete(s, rt, &gone).await;
        return Ok(rt.from_storage((*gone).clone()));
    }
    if objects::unchanged(current, &new) || dry_run {
        return Ok(if dry_run { new } else { current.clone() });
    }
    let stored = s
        .store
        .write(Write::Update {
            key: key.into(),
            object: rt.to_storage(new),
            expect: Some(current_rv),
        })
        .await
        .map_err(|e| store_error(rt, &name, e))?;
    super::crd::after_write(s, rt, &stored);
    Ok(rt.from_storage((*stored).clone()))
}

/// Whether an error is a lost race worth retrying (the client did not pin a version).
pub(crate) fn retryable(e: &ApiError, pinned: bool) -> bool {
    e.is_conflict() && !pinned
}

/// The error when a store write fails for a reason no caller can act on.
pub(crate) fn internal(e: store::Error) -> ApiError {
    ApiError::internal(e)
}
