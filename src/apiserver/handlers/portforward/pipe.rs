//! Joining one client-side stream to a connection inside the pod: the client's
//! bytes go to the pod until the client's end of input (then the pod's side is
//! half-closed), the pod's bytes go to the client until the pod closes (then
//! the client gets its end of input), and a reset from the client ends both.

use std::future::Future;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::apiserver::spdy::{StreamReader, StreamWriter};

/// Read size from the pod.
const CHUNK: usize = 32 * 1024;

/// Bytes the client sends toward the pod.
pub(super) trait FromClient: Send {
    /// The next bytes; `None` at the client's end of input.
    fn recv(&mut self) -> impl Future<Output = Option<Bytes>> + Send;
}

/// Where the pod's bytes go.
pub(super) trait ToClient: Sync {
    /// Send `data`; false once the client can take no more.
    fn send(&self, data: &[u8]) -> impl Future<Output = bool> + Send;
    /// Tell the client the pod closed its side.
    fn finish(&self) -> impl Future<Output = ()> + Send;
    /// Resolves when the client gave up on the stream.
    fn closed(&self) -> impl Future<Output = ()> + Send;
}

impl FromClient for StreamReader {
    fn recv(&mut self) -> impl Future<Output = Option<Bytes>> + Send {
        self.read()
    }
}

impl FromClient for mpsc::Receiver<Bytes> {
    fn recv(&mut self) -> impl Future<Output = Option<Bytes>> + Send {
        mpsc::Receiver::recv(self)
    }
}

impl ToClient for StreamWriter {
    async fn send(&self, data: &[u8]) -> bool {
        self.write(data).await.is_ok()
    }
    async fn finish(&self) {
        let _ = StreamWriter::finish(self).await;
    }
    async fn closed(&self) {
        StreamWriter::closed(self).await;
    }
}

/// Copy both ways until the pod closes its side or the client gives up.
pub(super) async fn pipe(
    pod: crate::net::Stream,
    mut from_client: impl FromClient,
    to_client: &impl ToClient,
) {
    let (mut from_pod, mut to_pod) = tokio::io::split(pod);
    let up = async {
        while let Some(b) = from_client.recv().await {
            if to_pod.write_all(&b).await.is_err() {
                return;
            }
        }
        let _ = to_pod.shutdown().await;
        // Half-closed: what ends the copy now is the pod's side.
        std::future::pending::<()>().await;
    };
    let down = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from_pod.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !to_client.send(&buf[..n]).await {
                        return;
                    }
                }
            }
        }
        to_client.finish().await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
        () = to_client.closed() => {}
    }
}
