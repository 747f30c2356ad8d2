//! `pods/portforward`, as the kubelet serves it behind the API server: a
//! SPDY/3.1 connection (upgraded directly, or tunnelled in a websocket as
//! `SPDY/3.1+portforward.k8s.io` by kubectl ≥ 1.31) on which the client opens,
//! per forwarded connection, an `error` and a `data` stream sharing a
//! `requestID`. Each complete pair is joined to the pod's port through its
//! node agent; a failure is written as text on the error stream, which kubectl
//! prints.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Response;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Req;
use super::stream::{self, header, header_list};
use crate::api::error::ApiError;
use crate::apiserver::Shared;
use crate::apiserver::nodes::NodeAgent;
use crate::apiserver::response::Body;
use crate::apiserver::spdy::{self, Reset, Session, Stream};

/// The port-forward subprotocol (`X-Stream-Protocol-Version`).
const PROTOCOL: &str = "portforward.k8s.io";
/// The same, tunnelled through a websocket.
const TUNNELLED: &str = "SPDY/3.1+portforward.k8s.io";
/// How long the second stream of a pair may lag the first (the kubelet's
/// default `streamCreationTimeout`).
const PAIR_TIMEOUT: Duration = Duration::from_secs(30);
/// Read size from the pod.
const CHUNK: usize = 32 * 1024;

/// What the forwarding needs of the pod.
#[derive(Clone)]
struct Target {
    agent: Arc<dyn NodeAgent>,
    uid: String,
}

/// `GET`/`POST pods/NAME/portforward`: upgrade, then forward streams.
pub(super) async fn portforward(
    s: &Shared,
    parts: &http::request::Parts,
    r: Req,
) -> Result<Response<Body>, ApiError> {
    let (name, pod) = super::stream::pod_of(s, &r)?;
    // `ports` is only informative for SPDY (each stream names its port), but a
    // bad one is refused as the API server's PodPortForwardOptions validation does.
    for p in form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "ports")
        .flat_map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
    {
        if !p.trim().parse::<u16>().is_ok_and(|n| n > 0) {
            return Err(ApiError::bad_request(format!(
                "invalid port {p:?}: must be between 1 and 65535"
            )));
        }
    }
    let (agent, uid) = stream::pod_agent(s, &pod, &name)?;
    let pod_key = format!("{}/{name}", r.namespace.as_deref().unwrap_or(""));
    let span = tracing::debug_span!("portforward", pod = %pod_key);
    let target = Target { agent, uid };
    let shutdown = s.shutdown.clone();
    if let Some(key) = stream::websocket_key(parts) {
        let offered = header_list(parts, "sec-websocket-protocol");
        if !offered.contains(&TUNNELLED) {
            return Err(ApiError::bad_request(format!(
                "unable to upgrade: no tunneling spdy protocols provided (offered {offered:?}, supported [{TUNNELLED:?}])"
            )));
        }
        let on_upgrade = stream::on_upgrade(parts)?;
        s.tasks.spawn(
            async move {
                match on_upgrade.await {
                    Ok(upgraded) => {
                        let ws = WebSocketStream::from_raw_socket(
                            TokioIo::new(upgraded),
                            Role::Server,
                            None,
                        )
                        .await;
                        let (io, pump) = spdy::tunnel(ws);
                        serve(io, target, shutdown).await;
                        pump.abort();
                    }
                    Err(e) => tracing::debug!(error = %e, "port-forward upgrade failed"),
                }
            }
            .instrument(span),
        );
        return Ok(stream::websocket_accepted(key, TUNNELLED));
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
    s.tasks.spawn(
        async move {
            match on_upgrade.await {
                Ok(upgraded) => serve(TokioIo::new(upgraded), target, shutdown).await,
                Err(e) => tracing::debug!(error = %e, "port-forward upgrade failed"),
            }
        }
        .instrument(span),
    );
    Ok(stream::spdy_accepted(PROTOCOL))
}

/// The error and data streams of one forwarded connection, as they arrive.
#[derive(Default)]
struct Pair {
    error: Option<Stream>,
    data: Option<Stream>,
    since: Option<Instant>,
}

/// Why a stream is not usable for port forwarding (the kubelet's checks).
fn check(stream: &Stream) -> Result<(), String> {
    let port = stream
        .header("port")
        .ok_or_else(|| "\"port\" header is required".to_string())?;
    match port.parse::<u16>() {
        Ok(0) => return Err(format!("port {port:?} must be > 0")),
        Ok(_) => {}
        Err(e) => return Err(format!("unable to parse {port:?} as a port: {e}")),
    }
    match stream.header("streamtype") {
        None => Err("\"streamType\" header is required".into()),
        Some("error" | "data") => Ok(()),
        Some(other) => Err(format!("invalid stream type {other:?}")),
    }
}

/// The pair a stream belongs to: its `requestID`, or — for clients too old
/// to send one — a pseudo id from the stream id, as the kubelet derives it.
fn request_id(stream: &Stream) -> String {
    match stream.header("requestid") {
        Some(id) if !id.is_empty() => id.to_string(),
        _ if stream.header("streamtype") == Some("data") => stream.id.saturating_sub(2).to_string(),
        _ => stream.id.to_string(),
    }
}

/// Write `message` on an error stream and close it.
async fn report(error: &Stream, message: &str) {
    tracing::debug!(%message, "port-forward error");
    let _ = error.writer.write(message.as_bytes()).await;
    let _ = error.writer.finish().await;
}

/// Serve one port-forward connection until the client leaves or the cluster stops.
async fn serve<T>(io: T, target: Target, shutdown: CancellationToken)
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut session = Session::new(io);
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut forwards = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            stream = session.accept() => {
                let Some(stream) = stream else { break };
                if let Err(why) = check(&stream) {
                    tracing::debug!(stream = stream.id, %why, "port-forward stream refused");
                    stream.writer.reset(Reset::Cancel).await;
                    continue;
                }
                if stream.writer.reply().await.is_err() {
                    break;
                }
                let id = request_id(&stream);
                let pair = pairs.entry(id.clone()).or_default();
                pair.since.get_or_insert_with(Instant::now);
                let slot = match stream.header("streamtype") {
                    Some("error") => &mut pair.error,
                    _ => &mut pair.data,
                };
                if slot.is_some() {
                    let kind = stream.header("streamtype").unwrap_or("data").to_string();
                    let message = format!(
                        "error processing stream for request {id}: {kind} stream already assigned"
                    );
                    if let Some(e) = &pair.error {
                        report(e, &message).await;
                    }
                    stream.writer.reset(Reset::ProtocolError).await;
                    continue;
                }
                *slot = Some(stream);
                if pair.error.is_some() && pair.data.is_some()
                    && let Some(Pair { error: Some(error), data: Some(data), .. }) = pairs.remove(&id)
                {
                    forwards.spawn(forward(error, data, target.clone()));
                }
            }
            _ = tick.tick() => {
                let expired: Vec<String> = pairs
                    .iter()
                    .filter(|(_, p)| p.since.is_some_and(|t| t.elapsed() > PAIR_TIMEOUT))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in expired {
                    if let Some(Pair { error: Some(e), .. }) = pairs.remove(&id) {
                        report(&e, &format!("(request={id}) timed out waiting for streams")).await;
                    }
                }
            }
            Some(_) = forwards.join_next(), if !forwards.is_empty() => {}
            () = shutdown.cancelled() => break,
        }
    }
    // The client left (every stream was reset with the connection) or the
    // cluster is stopping: what still runs has nobody to talk to.
    forwards.abort_all();
}

/// Join a data stream to the pod's port; failures go to the error stream,
/// which is closed last (kubectl waits for its end before it lets go).
async fn forward(error: Stream, data: Stream, target: Target) {
    let port = data
        .header("port")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(0);
    match target.agent.port_forward(&target.uid, port).await {
        Ok(conn) => pipe(data, conn).await,
        Err(e) => {
            let message = format!(
                "error forwarding port {port} to pod {uid}, uid : {e}",
                uid = target.uid
            );
            let _ = data.writer.finish().await;
            report(&error, &message).await;
            return;
        }
    }
    let _ = error.writer.finish().await;
}

/// Copy both ways until the pod closes its side (then FIN to the client) or
/// the client resets the stream; the client's FIN half-closes the pod side.
async fn pipe(data: Stream, conn: crate::net::Stream) {
    let (mut from_pod, mut to_pod) = tokio::io::split(conn);
    let Stream {
        mut reader, writer, ..
    } = data;
    let up = async {
        while let Some(b) = reader.read().await {
            if to_pod.write_all(&b).await.is_err() {
                return;
            }
        }
        let _ = to_pod.shutdown().await;
        // Keep the reader (and so the stream) alive until the other side ends.
        std::future::pending::<()>().await;
    };
    let down = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from_pod.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if writer.write(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = writer.finish().await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
        () = writer.closed() => {}
    }
}
