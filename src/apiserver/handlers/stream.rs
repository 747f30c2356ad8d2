//! What the streaming pod subresources (`exec`, `portforward`) share: finding
//! the node agent that serves the pod, and the `101 Switching Protocols` answers
//! for websocket and SPDY upgrades.

use std::sync::Arc;

use http::{HeaderValue, Response, StatusCode};
use serde_json::Value;

use super::{Req, current};
use crate::api::error::ApiError;
use crate::apiserver::Shared;
use crate::apiserver::nodes::NodeAgent;
use crate::apiserver::response::Body;

/// The pod a streaming request names: its name and object (404 if absent).
pub(super) fn pod_of(s: &Shared, r: &Req) -> Result<(String, Value), ApiError> {
    let name = r.name().to_string();
    let (_, pod) = current(s, &r.rt, r.namespace.as_deref(), &name)?;
    Ok((name, pod))
}

/// The agent of the node pod `name` runs on, and the pod's uid.
pub(super) fn pod_agent(
    s: &Shared,
    pod: &Value,
    name: &str,
) -> Result<(Arc<dyn NodeAgent>, String), ApiError> {
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let agent = s.nodes.get(node).ok_or_else(|| {
        ApiError::bad_request(format!("no kubelet runs node {node:?} in this cluster"))
    })?;
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok((agent, uid))
}

/// A request header as text.
pub(super) fn header<'a>(parts: &'a http::request::Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Every comma-separated value of every `name` header, trimmed.
pub(super) fn header_list<'a>(parts: &'a http::request::Parts, name: &str) -> Vec<&'a str> {
    parts
        .headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// Whether the request asks to upgrade to a websocket, with its key.
pub(super) fn websocket_key(parts: &http::request::Parts) -> Option<&str> {
    let websocket = header(parts, "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    header(parts, "sec-websocket-key").filter(|_| websocket)
}

/// The connection to take over once the 101 answer is sent.
pub(super) fn on_upgrade(
    parts: &http::request::Parts,
) -> Result<hyper::upgrade::OnUpgrade, ApiError> {
    parts
        .extensions
        .get::<hyper::upgrade::OnUpgrade>()
        .cloned()
        .ok_or_else(|| {
            ApiError::bad_request("Upgrade request required (this connection cannot be upgraded)")
        })
}

fn switching(upgrade: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::default());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    h.insert(http::header::UPGRADE, HeaderValue::from_static(upgrade));
    resp
}

/// `101` accepting a websocket with `key`, speaking `protocol`.
pub(super) fn websocket_accepted(key: &str, protocol: &'static str) -> Response<Body> {
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut resp = switching("websocket");
    let h = resp.headers_mut();
    h.insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(protocol),
    );
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

/// `101` accepting a SPDY/3.1 upgrade speaking `protocol`.
pub(super) fn spdy_accepted(protocol: &'static str) -> Response<Body> {
    let mut resp = switching("SPDY/3.1");
    resp.headers_mut().insert(
        "x-stream-protocol-version",
        HeaderValue::from_static(protocol),
    );
    resp
}
