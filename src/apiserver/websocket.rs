//! What the websocket endpoints (`exec`, `portforward`) share: channel frames
//! and the normal closure.

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A normal closure (1000): the stream ended as it should, which clients read
/// as end-of-stream rather than an error.
pub(crate) fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

/// A binary message on a channel of the `v4`/`v5.channel.k8s.io` protocols:
/// the channel byte, then the data.
pub(crate) fn frame(channel: u8, data: &[u8]) -> Message {
    let mut b = Vec::with_capacity(data.len() + 1);
    b.push(channel);
    b.extend_from_slice(data);
    Message::Binary(Bytes::from(b))
}
