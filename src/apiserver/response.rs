//! Writing a response: objects, lists and errors in the negotiated representation.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use serde_json::{Value, json};

use super::request::Output;
use super::table;
use crate::api::error::ApiError;
use crate::api::registry::ResourceType;

/// The response body type: whole documents or streams (watch, logs).
pub type Body = BoxBody<Bytes, Infallible>;

/// A body holding all of `bytes`.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn with_type(code: u16, content_type: &'static str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r
}

/// A JSON document.
pub(crate) fn json(code: u16, value: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    with_type(code, "application/json", full(bytes))
}

/// Raw bytes of a given content type.
pub(crate) fn bytes(code: u16, content_type: &'static str, body: Bytes) -> Response<Body> {
    with_type(code, content_type, full(body))
}

/// Plain text (health checks).
pub(crate) fn text(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    with_type(code, "text/plain; charset=utf-8", full(body))
}

/// An error as a `Status`.
pub(crate) fn error(e: &ApiError) -> Response<Body> {
    json(e.code, &e.to_status())
}

fn encode(code: u16, value: &Value, output: Output) -> Response<Body> {
    match output {
        Output::Yaml => match serde_yaml::to_string(value) {
            Ok(s) => with_type(code, "application/yaml", full(s)),
            Err(e) => error(&ApiError::internal(e)),
        },
        _ => json(code, value),
    }
}

/// Add `Warning` headers (unknown fields under fieldValidation=Warn, deprecations).
pub(crate) fn warn(mut r: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let quoted = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{quoted}\"")) {
            r.headers_mut().append("Warning", v);
        }
    }
    r
}

/// An object's metadata as `PartialObjectMetadata`.
pub(crate) fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// One object in the negotiated representation.
pub(crate) fn object(code: u16, rt: &ResourceType, obj: &Value, output: Output) -> Response<Body> {
    match output {
        Output::Table(include) => {
            let meta = json!({ "resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null) });
            json(
                code,
                &table::table(rt, std::slice::from_ref(obj), meta, include, true),
            )
        }
        Output::Metadata => json(code, &partial_metadata(obj)),
        _ => encode(code, obj, output),
    }
}

/// A list in the negotiated representation; `meta` is the ListMeta.
pub(crate) fn list(
    rt: &ResourceType,
    items: Vec<Value>,
    meta: Value,
    output: Output,
) -> Response<Body> {
    match output {
        Output::Table(include) => json(200, &table::table(rt, &items, meta, include, true)),
        Output::Metadata => json(
            200,
            &json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": items.iter().map(partial_metadata).collect::<Vec<_>>(),
            }),
        ),
        _ => encode(
            200,
            &json!({
                "kind": format!("{}List", rt.kind),
                "apiVersion": rt.api_version(),
                "metadata": meta,
                "items": items,
            }),
            output,
        ),
    }
}
