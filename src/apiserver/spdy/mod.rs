//! SPDY/3.1, as Kubernetes still speaks it for `pods/portforward`: the framing
//! ([`frame`]), header compression with the protocol's dictionary
//! ([`compress`]), a server-side connection that hands out the streams a
//! client opens ([`session`]), and the websocket tunnel kubectl ≥ 1.31 wraps it
//! in (`SPDY/3.1+portforward.k8s.io`, [`tunnel`]).
//!
//! No maintained Rust SPDY crate serves the accepting side, so this is our own:
//! only what Kubernetes' peers (moby/spdystream) use — no server push, no
//! flow-control enforcement, no priorities.

mod compress;
mod frame;
mod session;
mod tunnel;

pub(crate) use frame::Reset;
pub(crate) use session::{Session, Stream, StreamReader, StreamWriter};
pub(crate) use tunnel::tunnel;

/// Why a SPDY connection or stream failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The transport failed.
    #[error("reading the SPDY connection: {0}")]
    Io(#[from] std::io::Error),
    /// A control frame of another SPDY version.
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    /// A frame that does not parse.
    #[error("malformed SPDY frame: {0}")]
    Malformed(&'static str),
    /// zlib refused a header block.
    #[error("SPDY header compression: {0}")]
    Compression(String),
    /// A header block inflating past what any real client sends.
    #[error("a SPDY header block is too large")]
    HeadersTooLarge,
    /// The peer reset the stream (or the connection ended).
    #[error("the stream was reset")]
    Reset,
    /// The connection's writer is gone.
    #[error("the SPDY connection is closed")]
    Closed,
}
