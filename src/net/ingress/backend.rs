//! The proxy's connection to a backend. Writes after the backend stopped reading
//! are discarded instead of failing: a backend that answers without reading the
//! whole request body and closes (as many do for errors, and `minke/echo` always)
//! still has its response delivered, and the client's body is still consumed, as
//! Go's and nginx's proxies manage too.

use std::io::ErrorKind;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream whose writes succeed (into the void) once the peer is gone.
pub struct Backend<S> {
    inner: S,
    gone: bool,
}

impl<S> Backend<S> {
    /// Wrap `inner`.
    pub fn new(inner: S) -> Backend<S> {
        Backend { inner, gone: false }
    }
}

/// Whether `e` says the peer no longer reads.
fn peer_gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Backend<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Backend<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.gone {
            return Poll::Ready(Ok(buf.len()));
        }
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Err(e)) if peer_gone(&e) => {
                self.gone = true;
                Poll::Ready(Ok(buf.len()))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.gone {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(Err(e)) if peer_gone(&e) => {
                self.gone = true;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.gone {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut self.inner).poll_shutdown(cx) {
            Poll::Ready(Err(e)) if peer_gone(&e) => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn an_answer_sent_before_the_peer_left_is_still_read_after_writes_fail() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        theirs.write_all(b"HTTP/1.1 413").await.expect("answer");
        drop(theirs);
        let mut b = Backend::new(ours);
        b.write_all(&[0; 1024]).await.expect("discarded");
        b.flush().await.expect("flushed");
        let mut answer = String::new();
        b.read_to_string(&mut answer).await.expect("read");
        assert_eq!(answer, "HTTP/1.1 413");
    }
}
