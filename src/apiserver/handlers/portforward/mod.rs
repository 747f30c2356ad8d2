//! `pods/portforward`, as the kubelet serves it behind the API server, in the
//! three shapes clients speak:
//! - SPDY/3.1, upgraded directly (kubectl ≤ 1.30) or tunnelled in a websocket
//!   as `SPDY/3.1+portforward.k8s.io` (kubectl ≥ 1.31): per forwarded
//!   connection an `error` and a `data` stream sharing a `requestID` ([`spdy`]);
//! - websocket channels (`v4.channel.k8s.io`, kube-rs and client libraries):
//!   one connection per `ports` entry, channel `2i` its data and `2i+1` its
//!   errors ([`channels`]).
//!
//! Either way each connection is joined to the pod's port through its node
//! agent ([`pipe`]); a failure is written as text on the error stream or
//! channel, which kubectl prints.

mod channels;
mod pipe;
mod spdy;

use std::sync::Arc;

use http::Response;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tracing::Instrument;

use super::Req;
use super::stream::{self, header, header_list};
use crate::api::error::ApiError;
use crate::apiserver::Shared;
use crate::apiserver::nodes::NodeAgent;
use crate::apiserver::response::Body;

/// The port-forward subprotocol (`X-Stream-Protocol-Version`).
const PROTOCOL: &str = "portforward.k8s.io";
/// The same, tunnelled through a websocket.
const TUNNELLED: &str = "SPDY/3.1+portforward.k8s.io";
/// The websocket channel protocol.
const CHANNELS: &str = "v4.channel.k8s.io";

/// The pod whose ports are forwarded.
#[derive(Clone)]
struct Target {
    agent: Arc<dyn NodeAgent>,
    uid: String,
}

impl Target {
    /// A connection to `port` inside the pod, or the error as the kubelet words it.
    async fn connect(&self, port: u16) -> Result<crate::net::Stream, String> {
        self.agent.port_forward(&self.uid, port).await.map_err(|e| {
            let message = format!(
                "error forwarding port {port} to pod {uid}, uid : {e}",
                uid = self.uid
            );
            tracing::debug!(%message, "port-forward failed");
            message
        })
    }
}

/// The `ports` query (repeated or comma-separated), each 1–65535.
fn ports(parts: &http::request::Parts) -> Result<Vec<u16>, ApiError> {
    form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "ports")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|p| p.trim().to_string())
                .collect::<Vec<_>>()
        })
        .map(|p| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "invalid port {p:?}: must be between 1 and 65535"
            ))),
        })
        .collect()
}

/// `GET`/`POST pods/NAME/portforward`: upgrade, then forward.
pub(super) async fn portforward(
    s: &Shared,
    parts: &http::request::Parts,
    r: Req,
) -> Result<Response<Body>, ApiError> {
    let (name, pod) = stream::pod_of(s, &r)?;
    // Only the channel protocol needs `ports` (SPDY streams name their port),
    // but a bad one is refused either way, as PodPortForwardOptions validation does.
    let ports = ports(parts)?;
    let (agent, uid) = stream::pod_agent(s, &pod, &name)?;
    let pod_key = format!("{}/{name}", r.namespace.as_deref().unwrap_or(""));
    let span = tracing::debug_span!("portforward", pod = %pod_key);
    let target = Target { agent, uid };
    let shutdown = s.shutdown.clone();
    if let Some(key) = stream::websocket_key(parts) {
        let offered = header_list(parts, "sec-websocket-protocol");
        let protocol = if offered.contains(&TUNNELLED) {
            TUNNELLED
        } else if offered.contains(&CHANNELS) {
            if ports.is_empty() || ports.len() > channels::MAX_PORTS {
                return Err(ApiError::bad_request(format!(
                    "query parameter \"ports\" must list 1 to {} ports",
                    channels::MAX_PORTS
                )));
            }
            CHANNELS
        } else {
            return Err(ApiError::bad_request(format!(
                "unable to upgrade: no supported stream protocol among {offered:?}; supported: [{TUNNELLED:?}, {CHANNELS:?}]"
            )));
        };
        let on_upgrade = stream::on_upgrade(parts)?;
        let session = async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => return tracing::debug!(error = %e, "port-forward upgrade failed"),
            };
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            if protocol == CHANNELS {
                return channels::serve(ws, ports, target, shutdown).await;
            }
            let (io, pump) = crate::apiserver::spdy::tunnel(ws);
            spdy::serve(io, target, shutdown).await;
            pump.abort();
        };
        s.tasks.spawn(session.instrument(span));
        return Ok(stream::websocket_accepted(key, protocol));
    }
    let spdy = header(parts, "upgrade")
        .is_some_and(|u| u.to_ascii_lowercase().contains("spdy/3.1"))
        && header_list(parts, "connection")
            .iter()
            .any(|c| c.eq_ignore_ascii_case("upgrade"));
    if !spdy {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    let offered = header_list(parts, "x-stream-protocol-version");
    if offered.is_empty() {
        return Err(ApiError::bad_request(
            "unable to upgrade: X-Stream-Protocol-Version is required",
        ));
    }
    if !offered.contains(&PROTOCOL) {
        return Err(ApiError::forbidden(
            "",
            "pods",
            &name,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts [{PROTOCOL:?}]"
            ),
        ));
    }
    let on_upgrade = stream::on_upgrade(parts)?;
    let session = async move {
        match on_upgrade.await {
            Ok(upgraded) => spdy::serve(TokioIo::new(upgraded), target, shutdown).await,
            Err(e) => tracing::debug!(error = %e, "port-forward upgrade failed"),
        }
    };
    s.tasks.spawn(session.instrument(span));
    Ok(stream::spdy_accepted(PROTOCOL))
}
