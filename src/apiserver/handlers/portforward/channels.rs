//! Port forwarding over websocket channels (`v4.channel.k8s.io`, as kube-rs
//! and the other client libraries speak it): the `ports` query lists the
//! ports, and for the i-th, channel `2i` carries its bytes both ways and
//! `2i+1` the server's error text. Each channel's first message is its port
//! (2 bytes, little-endian). One connection per port; the websocket closes
//! once they all ended, or when the client closes it.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::Target;
use super::pipe::{ToClient, pipe};
use crate::apiserver::websocket::{frame, normal_close};

/// The most ports one connection can carry (two channels each, one byte per channel).
pub(super) const MAX_PORTS: usize = 128;
/// Chunks from the client buffered per port.
const BUFFER: usize = 16;

/// The data channel of one port, toward the client.
struct Channel {
    channel: u8,
    out: mpsc::Sender<Message>,
}

impl ToClient for Channel {
    async fn send(&self, data: &[u8]) -> bool {
        self.out.send(frame(self.channel, data)).await.is_ok()
    }
    // The v4 protocol has no per-channel close: the port's end is the websocket's.
    async fn finish(&self) {}
    async fn closed(&self) {
        self.out.closed().await;
    }
}

/// One port: connect, then pipe; a failure goes to its error channel.
async fn forward(
    index: u8,
    port: u16,
    target: Target,
    from_client: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<Message>,
) {
    let data = Channel {
        channel: 2 * index,
        out,
    };
    match target.connect(port).await {
        Ok(conn) => pipe(conn, from_client, &data).await,
        Err(message) => {
            let _ = data
                .out
                .send(frame(2 * index + 1, message.as_bytes()))
                .await;
        }
    }
}

/// Serve the ports until they all ended, the client closed, or the cluster stops.
pub(super) async fn serve<S>(
    ws: WebSocketStream<S>,
    ports: Vec<u16>,
    target: Target,
    shutdown: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut incoming) = ws.split();
    let (out, mut queue) = mpsc::channel::<Message>(64);
    let ports: Vec<(u8, u16)> = (0u8..).zip(ports).take(MAX_PORTS).collect();
    // Every channel names its port before anything else is sent on it.
    let hello: Vec<Message> = ports
        .iter()
        .flat_map(|(i, port)| {
            let le = port.to_le_bytes();
            [frame(2 * i, &le), frame(2 * i + 1, &le)]
        })
        .collect();
    let writer = tokio::spawn(async move {
        for m in hello {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        while let Some(m) = queue.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        let _ = sink.send(normal_close()).await;
    });
    let mut to_ports = Vec::new();
    let mut forwards = JoinSet::new();
    for (i, port) in &ports {
        let (tx, rx) = mpsc::channel(BUFFER);
        to_ports.push(Some(tx));
        forwards.spawn(forward(*i, *port, target.clone(), rx, out.clone()));
    }
    drop(out);
    loop {
        tokio::select! {
            m = incoming.next() => {
                let b = match m {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                // Only data channels (even) carry client bytes; an unknown or
                // finished port's bytes are dropped, as the kubelet drops them.
                let Some((&channel, data)) = b.split_first() else { continue };
                let port = usize::from(channel / 2);
                if channel % 2 != 0 || data.is_empty() {
                    continue;
                }
                if let Some(Some(tx)) = to_ports.get(port)
                    && tx.send(Bytes::copy_from_slice(data)).await.is_err()
                {
                    to_ports[port] = None;
                }
            }
            done = forwards.join_next() => if done.is_none() { break },
            () = shutdown.cancelled() => break,
        }
    }
    forwards.abort_all();
    while forwards.join_next().await.is_some() {}
    if tokio::time::timeout(Duration::from_secs(5), writer)
        .await
        .is_err()
    {
        tracing::debug!("port-forward websocket did not close in time");
    }
}
