//! Port forwarding over SPDY (upgraded directly or through the websocket
//! tunnel): the client opens an `error` and a `data` stream per forwarded
//! connection, paired by `requestID` as the kubelet pairs them; each complete
//! pair is piped to the pod's port.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Target;
use super::pipe::pipe;
use crate::apiserver::spdy::{Reset, Session, Stream};

/// How long the second stream of a pair may lag the first (the kubelet's
/// default `streamCreationTimeout`).
const PAIR_TIMEOUT: Duration = Duration::from_secs(30);

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
pub(super) async fn serve<T>(io: T, target: Target, shutdown: CancellationToken)
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
    match target.connect(port).await {
        Ok(conn) => {
            let Stream { reader, writer, .. } = data;
            pipe(conn, reader, &writer).await;
            let _ = error.writer.finish().await;
        }
        Err(message) => {
            let _ = data.writer.finish().await;
            report(&error, &message).await;
        }
    }
}
