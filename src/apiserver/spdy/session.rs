//! One SPDY/3.1 connection, server side, the way Kubernetes' streaming
//! protocols use it: the client opens every stream (odd ids), the server
//! replies, and each stream carries bytes both ways until both sides sent FIN
//! or one reset it. A reader task owns the inbound zlib context and routes
//! frames to streams; a writer task owns the outbound one and serializes every
//! frame, so SYN_REPLY always precedes a stream's DATA.
//!
//! Flow control is not enforced in either direction: Kubernetes' peers
//! (moby/spdystream) never send WINDOW_UPDATE and ignore it, so honouring the
//! 64 KiB windows would stall every transfer. Back-pressure is the transport's:
//! a full stream buffer stops the reader, and so the peer's TCP window.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Error;
use super::compress::{Deflater, Inflater};
use super::frame::{self, FLAG_FIN, Frame, Headers, Reset};

/// Chunks buffered per stream before the reader waits for its consumer.
const STREAM_BUFFER: usize = 16;
/// Frames queued for the writer.
const OUT_QUEUE: usize = 64;
/// Streams opened but not yet accepted by the application.
const ACCEPT_QUEUE: usize = 16;
/// The largest DATA frame we send.
const CHUNK: usize = 64 * 1024;
/// How many bytes the writer gathers before one write to the transport.
const BATCH: usize = 128 * 1024;

/// A server-side SPDY connection; dropping it stops its tasks.
pub(crate) struct Session {
    incoming: mpsc::Receiver<Stream>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

impl Session {
    /// Serve SPDY on `io` (an upgraded HTTP connection or a websocket tunnel).
    pub(crate) fn new<T>(io: T) -> Session
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
        let (accept_tx, incoming) = mpsc::channel(ACCEPT_QUEUE);
        Session {
            incoming,
            reader: tokio::spawn(read_loop(r, out_tx, accept_tx)),
            writer: tokio::spawn(write_loop(w, out_rx)),
        }
    }

    /// The next stream the peer opened; `None` once the connection is gone.
    pub(crate) async fn accept(&mut self) -> Option<Stream> {
        self.incoming.recv().await
    }
}

/// A stream the peer opened: its headers, and both directions.
pub(crate) struct Stream {
    /// The stream id.
    pub id: u32,
    /// The SYN_STREAM's headers.
    pub headers: Headers,
    /// What the peer sends.
    pub reader: StreamReader,
    /// What we send.
    pub writer: StreamWriter,
}

impl Stream {
    /// The first value of header `name` (names are lowercase on the wire).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split('\0').next().unwrap_or(""))
    }
}

/// The peer's side of a stream.
pub(crate) struct StreamReader {
    rx: mpsc::Receiver<Bytes>,
    _alive: Arc<()>,
}

impl StreamReader {
    /// The next bytes; `None` once the peer sent FIN or reset the stream.
    pub(crate) async fn read(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }
}

/// Our side of a stream.
pub(crate) struct StreamWriter {
    id: u32,
    out: mpsc::Sender<Frame>,
    reset: CancellationToken,
    _alive: Arc<()>,
}

impl StreamWriter {
    async fn send(&self, f: Frame) -> Result<(), Error> {
        if self.reset.is_cancelled() {
            return Err(Error::Reset);
        }
        self.out.send(f).await.map_err(|_| Error::Closed)
    }

    /// Accept the stream (SYN_REPLY, no headers).
    pub(crate) async fn reply(&self) -> Result<(), Error> {
        self.send(Frame::SynReply {
            stream: self.id,
            flags: 0,
            headers: Vec::new(),
        })
        .await
    }

    /// Send `data` (in frames of at most 64 KiB).
    pub(crate) async fn write(&self, data: &[u8]) -> Result<(), Error> {
        for chunk in data.chunks(CHUNK) {
            self.send(Frame::Data {
                stream: self.id,
                flags: 0,
                data: Bytes::copy_from_slice(chunk),
            })
            .await?;
        }
        Ok(())
    }

    /// Half-close: we send nothing more.
    pub(crate) async fn finish(&self) -> Result<(), Error> {
        self.send(Frame::Data {
            stream: self.id,
            flags: FLAG_FIN,
            data: Bytes::new(),
        })
        .await
    }

    /// End the stream abnormally in both directions.
    pub(crate) async fn reset(&self, why: Reset) {
        let _ = self
            .send(Frame::RstStream {
                stream: self.id,
                status: why as u32,
            })
            .await;
        self.reset.cancel();
    }

    /// Resolves once the peer reset the stream or the connection ended.
    pub(crate) async fn closed(&self) {
        self.reset.cancelled().await;
    }
}

/// What the reader keeps of an open stream.
struct Inbound {
    /// Where the peer's bytes go, until its FIN.
    tx: Option<mpsc::Sender<Bytes>>,
    reset: CancellationToken,
    /// Dead once the application dropped both halves.
    alive: Weak<()>,
}

async fn read_loop<R>(mut r: R, out: mpsc::Sender<Frame>, accept: mpsc::Sender<Stream>)
where
    R: AsyncRead + Unpin,
{
    let mut inflater = Inflater::new();
    let mut streams: HashMap<u32, Inbound> = HashMap::new();
    let mut last_id = 0u32;
    let mut going_away = false;
    let why = loop {
        let frame = match frame::read(&mut r, &mut inflater).await {
            Ok(Some(f)) => f,
            Ok(None) => break "the peer closed the connection".to_string(),
            Err(e) => {
                let _ = out
                    .send(Frame::GoAway {
                        last_good: last_id,
                        status: 1,
                    })
                    .await;
                break e.to_string();
            }
        };
        match frame {
            Frame::SynStream {
                stream,
                flags,
                headers,
                ..
            } => {
                let refuse = |why| Frame::RstStream {
                    stream,
                    status: why as u32,
                };
                // Client streams are odd and increasing (§2.3.2).
                if stream % 2 == 0 || stream <= last_id {
                    let _ = out.send(refuse(Reset::ProtocolError)).await;
                    continue;
                }
                last_id = stream;
                if going_away {
                    let _ = out.send(refuse(Reset::RefusedStream)).await;
                    continue;
                }
                streams.retain(|_, s| s.alive.strong_count() > 0);
                let (tx, rx) = mpsc::channel(STREAM_BUFFER);
                let (reset, alive) = (CancellationToken::new(), Arc::new(()));
                streams.insert(
                    stream,
                    Inbound {
                        tx: (flags & FLAG_FIN == 0).then_some(tx),
                        reset: reset.clone(),
                        alive: Arc::downgrade(&alive),
                    },
                );
                let s = Stream {
                    id: stream,
                    headers,
                    reader: StreamReader {
                        rx,
                        _alive: alive.clone(),
                    },
                    writer: StreamWriter {
                        id: stream,
                        out: out.clone(),
                        reset,
                        _alive: alive,
                    },
                };
                if accept.send(s).await.is_err() {
                    break "nobody accepts streams any more".to_string();
                }
            }
            Frame::Data {
                stream,
                flags,
                data,
            } => {
                // Data for a stream we do not know is dropped, as spdystream does.
                let Some(s) = streams.get_mut(&stream) else {
                    continue;
                };
                if let Some(tx) = &s.tx
                    && !data.is_empty()
                    && tx.send(data).await.is_err()
                {
                    s.tx = None;
                }
                if flags & FLAG_FIN != 0 {
                    s.tx = None;
                }
            }
            Frame::RstStream { stream, .. } => {
                if let Some(s) = streams.remove(&stream) {
                    s.reset.cancel();
                }
            }
            // Pings from the client have odd ids; echo them (we send none of our own).
            Frame::Ping { id } if id % 2 == 1 => {
                let _ = out.send(Frame::Ping { id }).await;
            }
            Frame::GoAway { .. } => going_away = true,
            Frame::Ping { .. }
            | Frame::SynReply { .. }
            | Frame::Headers { .. }
            | Frame::Settings
            | Frame::WindowUpdate { .. }
            | Frame::Unknown { .. } => {}
        }
    };
    tracing::debug!(%why, "SPDY connection read side ended");
    for s in streams.values() {
        s.reset.cancel();
    }
}

async fn write_loop<W>(mut w: W, mut rx: mpsc::Receiver<Frame>)
where
    W: AsyncWrite + Unpin,
{
    let mut deflater = match Deflater::new() {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "SPDY header compression unavailable");
            return;
        }
    };
    let mut buf = BytesMut::new();
    while let Some(f) = rx.recv().await {
        let mut next = Some(f);
        // Gather what is already queued into one write.
        while let Some(f) = next.take() {
            if let Err(e) = frame::encode(&f, &mut deflater, &mut buf) {
                tracing::debug!(error = %e, "SPDY frame not sent");
            }
            if buf.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if w.write_all(&buf).await.is_err() || w.flush().await.is_err() {
            return;
        }
        buf.clear();
    }
    let _ = w.shutdown().await;
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
