//! SPDY inside a websocket (`SPDY/3.1+<protocol>`, KEP-4006): the connection's
//! bytes travel as binary messages whose boundaries mean nothing, so the tunnel
//! turns the websocket back into a plain byte stream for [`super::Session`].

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::apiserver::websocket::normal_close;

/// Bytes buffered between the websocket and the SPDY session.
const PIPE: usize = 256 * 1024;

/// The websocket's payload as a byte stream; the pumping task ends when either
/// side closes (a normal closure is sent to the client).
pub(crate) fn tunnel<S>(ws: WebSocketStream<S>) -> (DuplexStream, tokio::task::JoinHandle<()>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(PIPE);
    let task = tokio::spawn(async move {
        let (mut sink, mut messages) = ws.split();
        let (mut from_session, mut to_session) = tokio::io::split(ours);
        let inbound = async {
            while let Some(Ok(m)) = messages.next().await {
                // Text is not part of the protocol; pings are answered by tungstenite.
                let b = match m {
                    Message::Binary(b) => b,
                    Message::Close(_) => break,
                    _ => continue,
                };
                if to_session.write_all(&b).await.is_err() {
                    break;
                }
            }
            let _ = to_session.shutdown().await;
        };
        let outbound = async {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match from_session.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let m = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
                        if sink.send(m).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = sink.send(normal_close()).await;
        };
        // The session ending (outbound) ends the tunnel at once; the client
        // leaving ends the session's input, and the session then ends outbound.
        tokio::pin!(inbound, outbound);
        tokio::select! {
            () = &mut outbound => {}
            () = &mut inbound => outbound.await,
        }
    });
    (theirs, task)
}
