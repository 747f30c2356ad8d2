//! A connection as the network hands it out: a byte stream (an in-memory pipe
//! between pods, or a host TCP socket for egress and bridges) and its two ends.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

/// A bidirectional byte stream.
pub trait Duplex: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Duplex for T {}

/// A boxed bidirectional byte stream.
pub type Stream = Box<dyn Duplex>;

/// One end of an established connection.
pub struct Conn {
    /// The bytes.
    pub stream: Stream,
    /// This end's address.
    pub local: SocketAddr,
    /// The other end's address.
    pub peer: SocketAddr,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}
