//! The session against a hand-driven client speaking raw frames.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

use super::super::compress::{Deflater, Inflater};
use super::super::frame::{self, FLAG_FIN, Frame, Reset};
use super::Session;

/// The client's end: its own zlib contexts, as a second peer would have.
struct Client {
    r: ReadHalf<DuplexStream>,
    w: WriteHalf<DuplexStream>,
    deflater: Deflater,
    inflater: Inflater,
}

impl Client {
    fn new() -> (Client, Session) {
        let (a, b) = tokio::io::duplex(1 << 20);
        let (r, w) = tokio::io::split(a);
        let c = Client {
            r,
            w,
            deflater: Deflater::new().expect("deflater"),
            inflater: Inflater::new(),
        };
        (c, Session::new(b))
    }

    async fn send(&mut self, f: Frame) {
        let mut buf = BytesMut::new();
        frame::encode(&f, &mut self.deflater, &mut buf).expect("encode");
        self.w.write_all(&buf).await.expect("write");
    }

    async fn recv(&mut self) -> Option<Frame> {
        frame::read(&mut self.r, &mut self.inflater)
            .await
            .expect("read")
    }

    async fn open(&mut self, stream: u32, kind: &str) {
        self.send(Frame::SynStream {
            stream,
            associated: 0,
            priority: 0,
            flags: 0,
            headers: vec![
                ("streamType".into(), kind.into()),
                ("port".into(), "8080".into()),
                ("requestID".into(), "0".into()),
            ],
        })
        .await;
    }

    /// The next frame must reset `stream` for `why`.
    async fn expect_reset(&mut self, stream: u32, why: Reset) {
        let status = why as u32;
        assert_eq!(self.recv().await, Some(Frame::RstStream { stream, status }));
    }

    async fn data(&mut self, stream: u32, flags: u8, data: &'static [u8]) {
        self.send(Frame::Data {
            stream,
            flags,
            data: Bytes::from_static(data),
        })
        .await;
    }
}

#[tokio::test]
async fn streams_are_accepted_replied_and_carry_bytes_both_ways() {
    let (mut c, mut session) = Client::new();
    c.open(1, "data").await;
    let mut s = session.accept().await.expect("stream");
    assert_eq!((s.id, s.header("streamtype")), (1, Some("data")));
    assert_eq!(s.header("requestid"), Some("0"));
    s.writer.reply().await.expect("reply");
    assert!(matches!(
        c.recv().await,
        Some(Frame::SynReply { stream: 1, .. })
    ));
    c.data(1, 0, b"hello").await;
    assert_eq!(s.reader.read().await.as_deref(), Some(&b"hello"[..]));
    c.data(1, FLAG_FIN, b"").await;
    assert_eq!(s.reader.read().await, None);
    s.writer.write(b"world").await.expect("write");
    s.writer.finish().await.expect("finish");
    assert_eq!(
        c.recv().await,
        Some(Frame::Data {
            stream: 1,
            flags: 0,
            data: Bytes::from_static(b"world")
        })
    );
    assert!(matches!(
        c.recv().await,
        Some(Frame::Data {
            stream: 1,
            flags: FLAG_FIN,
            ..
        })
    ));
}

#[tokio::test]
async fn client_pings_are_echoed() {
    let (mut c, _session) = Client::new();
    c.send(Frame::Ping { id: 7 }).await;
    assert_eq!(c.recv().await, Some(Frame::Ping { id: 7 }));
}

#[tokio::test]
async fn a_reset_from_the_client_closes_the_stream() {
    let (mut c, mut session) = Client::new();
    c.open(1, "data").await;
    let s = session.accept().await.expect("stream");
    s.writer.reply().await.expect("reply");
    c.send(Frame::RstStream {
        stream: 1,
        status: Reset::Cancel as u32,
    })
    .await;
    s.writer.closed().await;
    assert!(s.writer.write(b"late").await.is_err());
}

#[tokio::test]
async fn bad_stream_ids_and_streams_after_goaway_are_refused() {
    let (mut c, mut session) = Client::new();
    c.open(2, "data").await;
    c.expect_reset(2, Reset::ProtocolError).await;
    c.open(5, "data").await;
    let _five = session.accept().await.expect("stream 5");
    c.open(3, "data").await;
    c.expect_reset(3, Reset::ProtocolError).await;
    c.send(Frame::GoAway {
        last_good: 0,
        status: 0,
    })
    .await;
    c.open(7, "data").await;
    c.expect_reset(7, Reset::RefusedStream).await;
}

#[tokio::test]
async fn the_connection_ending_resets_every_stream_and_ends_accept() {
    let (mut c, mut session) = Client::new();
    c.open(1, "error").await;
    let s = session.accept().await.expect("stream");
    drop(c);
    s.writer.closed().await;
    assert!(session.accept().await.is_none());
}

#[tokio::test]
async fn garbage_gets_a_goaway_and_ends_the_session() {
    let (mut c, mut session) = Client::new();
    c.w.write_all(&[0x80, 2, 0, 1, 0, 0, 0, 0])
        .await
        .expect("write");
    assert!(matches!(
        c.recv().await,
        Some(Frame::GoAway { status: 1, .. })
    ));
    assert!(session.accept().await.is_none());
}
