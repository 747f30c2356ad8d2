//! SPDY/3.1 frames: the 8-byte header every frame starts with, the control
//! frames a stream multiplexer needs (SYN_STREAM, SYN_REPLY, RST_STREAM,
//! SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE) and DATA — decoded from and
//! encoded to bytes, with header blocks going through the connection's zlib
//! contexts.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::Error;
use super::compress::{Deflater, Inflater};

/// The protocol version in every control frame.
const VERSION: u16 = 3;
/// Flag: the sender is done with the stream (DATA, SYN_STREAM, SYN_REPLY, HEADERS).
pub(crate) const FLAG_FIN: u8 = 0x01;
/// The largest payload a frame's 24-bit length can carry.
pub(crate) const MAX_PAYLOAD: usize = 0x00ff_ffff;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status codes (§2.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Reset {
    /// The frame broke the protocol (a bad stream id, missing headers).
    ProtocolError = 1,
    /// The stream was refused before any processing.
    RefusedStream = 3,
    /// The stream is no longer needed.
    Cancel = 5,
}

/// A header block: lowercase names, values as sent (several values of one name
/// are joined by NUL bytes).
pub(crate) type Headers = Vec<(String, String)>;

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// The peer opens a stream.
    SynStream {
        stream: u32,
        associated: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    /// The answer to a SYN_STREAM.
    SynReply {
        stream: u32,
        flags: u8,
        headers: Headers,
    },
    /// Abnormal termination of a stream.
    RstStream { stream: u32, status: u32 },
    /// Connection parameters (ignored by this implementation).
    Settings,
    /// A liveness check, echoed by the side that did not send it.
    Ping { id: u32 },
    /// The sender accepts no more new streams.
    GoAway { last_good: u32, status: u32 },
    /// More headers for an open stream.
    Headers {
        stream: u32,
        flags: u8,
        headers: Headers,
    },
    /// Flow-control credit (ignored: Kubernetes' SPDY peers never enforce it).
    WindowUpdate { stream: u32, delta: u32 },
    /// Stream payload.
    Data { stream: u32, flags: u8, data: Bytes },
    /// A control frame of a type we do not know, skipped as §2.2 asks.
    Unknown { kind: u16 },
}

fn be32(b: &[u8], at: usize) -> Result<u32, Error> {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_be_bytes)
        .ok_or(Error::Malformed("a frame is shorter than its fields"))
}

/// Read the next frame; `None` at a clean end of the connection.
pub(crate) async fn read<R: AsyncRead + Unpin>(
    r: &mut R,
    inflater: &mut Inflater,
) -> Result<Option<Frame>, Error> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Error::Io(e)),
    }
    let len = usize::try_from(u32::from_be_bytes([0, head[5], head[6], head[7]])).unwrap_or(0);
    let mut payload = BytesMut::zeroed(len);
    r.read_exact(&mut payload).await?;
    decode(head, payload.freeze(), inflater).map(Some)
}

/// Decode one frame from its header and payload.
pub(crate) fn decode(
    head: [u8; 8],
    payload: Bytes,
    inflater: &mut Inflater,
) -> Result<Frame, Error> {
    let first = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let flags = head[4];
    if first & 0x8000_0000 == 0 {
        let stream = first & 0x7fff_ffff;
        if stream == 0 {
            return Err(Error::Malformed("a DATA frame for stream 0"));
        }
        return Ok(Frame::Data {
            stream,
            flags,
            data: payload,
        });
    }
    let version = u16::try_from((first >> 16) & 0x7fff).unwrap_or(0);
    if version != VERSION {
        return Err(Error::Version(version));
    }
    let kind = u16::try_from(first & 0xffff).unwrap_or(0);
    let p = &payload[..];
    let stream = || be32(p, 0).map(|s| s & 0x7fff_ffff);
    let headers = |inflater: &mut Inflater, at: usize| -> Result<Headers, Error> {
        let block = p
            .get(at..)
            .ok_or(Error::Malformed("a header block is missing"))?;
        parse_headers(&inflater.inflate(block)?)
    };
    Ok(match kind {
        SYN_STREAM => Frame::SynStream {
            stream: stream()?,
            associated: be32(p, 4)? & 0x7fff_ffff,
            priority: p.get(8).map_or(0, |b| b >> 5),
            flags,
            headers: headers(inflater, 10)?,
        },
        SYN_REPLY => Frame::SynReply {
            stream: stream()?,
            flags,
            headers: headers(inflater, 4)?,
        },
        HEADERS => Frame::Headers {
            stream: stream()?,
            flags,
            headers: headers(inflater, 4)?,
        },
        RST_STREAM => Frame::RstStream {
            stream: stream()?,
            status: be32(p, 4)?,
        },
        SETTINGS => Frame::Settings,
        PING => Frame::Ping { id: be32(p, 0)? },
        GOAWAY => Frame::GoAway {
            last_good: stream()?,
            status: be32(p, 4).unwrap_or(0),
        },
        WINDOW_UPDATE => Frame::WindowUpdate {
            stream: stream()?,
            delta: be32(p, 4)? & 0x7fff_ffff,
        },
        kind => Frame::Unknown { kind },
    })
}

/// A header block's name/value pairs (§2.6.10).
fn parse_headers(b: &[u8]) -> Result<Headers, Error> {
    let count = be32(b, 0)?;
    let mut at = 4;
    let field = |at: &mut usize| -> Result<String, Error> {
        let len = usize::try_from(be32(b, *at)?).unwrap_or(usize::MAX);
        let start = *at + 4;
        let bytes = b
            .get(start..start.saturating_add(len))
            .ok_or(Error::Malformed("a header is longer than its block"))?;
        *at = start + len;
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::Malformed("a header is not UTF-8"))
    };
    let mut out = Vec::new();
    for _ in 0..count {
        let name = field(&mut at)?.to_ascii_lowercase();
        let value = field(&mut at)?;
        out.push((name, value));
    }
    Ok(out)
}

fn header_block(headers: &[(String, String)]) -> Vec<u8> {
    let mut b = Vec::new();
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes();
    b.extend_from_slice(&len(headers.len()));
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        b.extend_from_slice(&len(name.len()));
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(&len(value.len()));
        b.extend_from_slice(value.as_bytes());
    }
    b
}

fn control(out: &mut BytesMut, kind: u16, flags: u8, payload: &[u8]) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    let len = u32::try_from(payload.len()).unwrap_or(0) & 0x00ff_ffff;
    out.put_u32(u32::from(flags) << 24 | len);
    out.put_slice(payload);
}

/// Append `frame`'s bytes to `out`. DATA payloads over [`MAX_PAYLOAD`] are the
/// caller's to split.
pub(crate) fn encode(
    frame: &Frame,
    deflater: &mut Deflater,
    out: &mut BytesMut,
) -> Result<(), Error> {
    let with_block = |prefix: &[u8], headers: &Headers, deflater: &mut Deflater| {
        let mut p = prefix.to_vec();
        p.extend(deflater.deflate(&header_block(headers))?);
        Ok::<_, Error>(p)
    };
    match frame {
        Frame::SynStream {
            stream,
            associated,
            priority,
            flags,
            headers,
        } => {
            let mut prefix = Vec::with_capacity(10);
            prefix.extend_from_slice(&stream.to_be_bytes());
            prefix.extend_from_slice(&associated.to_be_bytes());
            prefix.extend_from_slice(&[priority << 5, 0]);
            control(
                out,
                SYN_STREAM,
                *flags,
                &with_block(&prefix, headers, deflater)?,
            );
        }
        Frame::SynReply {
            stream,
            flags,
            headers,
        } => control(
            out,
            SYN_REPLY,
            *flags,
            &with_block(&stream.to_be_bytes(), headers, deflater)?,
        ),
        Frame::Headers {
            stream,
            flags,
            headers,
        } => control(
            out,
            HEADERS,
            *flags,
            &with_block(&stream.to_be_bytes(), headers, deflater)?,
        ),
        Frame::RstStream { stream, status } => {
            control(
                out,
                RST_STREAM,
                0,
                &[stream.to_be_bytes(), status.to_be_bytes()].concat(),
            );
        }
        Frame::Settings => control(out, SETTINGS, 0, &0u32.to_be_bytes()),
        Frame::Ping { id } => control(out, PING, 0, &id.to_be_bytes()),
        Frame::GoAway { last_good, status } => {
            control(
                out,
                GOAWAY,
                0,
                &[last_good.to_be_bytes(), status.to_be_bytes()].concat(),
            );
        }
        Frame::WindowUpdate { stream, delta } => {
            control(
                out,
                WINDOW_UPDATE,
                0,
                &[stream.to_be_bytes(), delta.to_be_bytes()].concat(),
            );
        }
        Frame::Data {
            stream,
            flags,
            data,
        } => {
            if data.len() > MAX_PAYLOAD {
                return Err(Error::Malformed("a DATA payload over 16 MiB"));
            }
            out.put_u32(stream & 0x7fff_ffff);
            out.put_u32(u32::from(*flags) << 24 | u32::try_from(data.len()).unwrap_or(0));
            out.put_slice(data);
        }
        Frame::Unknown { kind } => control(out, *kind, 0, &[]),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// Encode with one context and read back with another, as two peers do.
    async fn round_trip(frames: &[Frame]) -> Vec<Frame> {
        let mut deflater = Deflater::new().expect("deflater");
        let mut wire = BytesMut::new();
        for f in frames {
            encode(f, &mut deflater, &mut wire).expect("encode");
        }
        let mut r = &wire[..];
        let mut inflater = Inflater::new();
        let mut back = Vec::new();
        while let Some(f) = read(&mut r, &mut inflater).await.expect("read") {
            back.push(f);
        }
        back
    }

    #[tokio::test]
    async fn every_frame_kind_round_trips() {
        let frames = vec![
            Frame::SynStream {
                stream: 1,
                associated: 0,
                priority: 0,
                flags: 0,
                headers: h(&[
                    ("streamtype", "error"),
                    ("port", "8080"),
                    ("requestid", "0"),
                ]),
            },
            Frame::SynStream {
                stream: 3,
                associated: 0,
                priority: 7,
                flags: FLAG_FIN,
                headers: h(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]),
            },
            Frame::SynReply {
                stream: 1,
                flags: 0,
                headers: vec![],
            },
            Frame::Headers {
                stream: 3,
                flags: 0,
                headers: h(&[("x", "a\0b")]),
            },
            Frame::Data {
                stream: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"),
            },
            Frame::Data {
                stream: 3,
                flags: 0,
                data: Bytes::new(),
            },
            Frame::RstStream {
                stream: 3,
                status: Reset::Cancel as u32,
            },
            Frame::Settings,
            Frame::Ping { id: 1 },
            Frame::GoAway {
                last_good: 3,
                status: 0,
            },
            Frame::WindowUpdate {
                stream: 1,
                delta: 65536,
            },
            Frame::Unknown { kind: 10 },
        ];
        assert_eq!(round_trip(&frames).await, frames);
    }

    #[test]
    fn the_wire_layout_matches_the_spec() {
        let mut deflater = Deflater::new().expect("deflater");
        let mut out = BytesMut::new();
        encode(&Frame::Ping { id: 2 }, &mut deflater, &mut out).expect("ping");
        assert_eq!(&out[..], [0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 2]);
        out.clear();
        let data = Frame::Data {
            stream: 5,
            flags: FLAG_FIN,
            data: Bytes::from_static(b"hi"),
        };
        encode(&data, &mut deflater, &mut out).expect("data");
        assert_eq!(&out[..], [0, 0, 0, 5, 1, 0, 0, 2, b'h', b'i']);
    }

    #[test]
    fn header_names_are_lowercased_both_ways() {
        let block = header_block(&h(&[("StreamType", "data")]));
        assert_eq!(
            parse_headers(&block).expect("parse"),
            h(&[("streamtype", "data")])
        );
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        let mut inflater = Inflater::new();
        // SPDY/2 control frame.
        let v2 = [0x80, 2, 0, 1, 0, 0, 0, 0];
        assert!(matches!(
            decode(v2, Bytes::new(), &mut inflater),
            Err(Error::Version(2))
        ));
        // A RST_STREAM too short for its fields.
        let rst = [0x80, 3, 0, 3, 0, 0, 0, 2];
        assert!(decode(rst, Bytes::from_static(&[0, 1]), &mut inflater).is_err());
        // A header block claiming more pairs than it holds.
        assert!(parse_headers(&[0, 0, 0, 9, 0, 0, 0, 1, b'a']).is_err());
        assert!(parse_headers(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]).is_err());
        // DATA on stream 0.
        assert!(decode([0; 8], Bytes::new(), &mut inflater).is_err());
    }

    #[tokio::test]
    async fn a_truncated_connection_is_an_error_and_a_clean_end_is_none() {
        let mut inflater = Inflater::new();
        let mut empty: &[u8] = &[];
        assert!(
            read(&mut empty, &mut inflater)
                .await
                .expect("eof")
                .is_none()
        );
        let mut cut: &[u8] = &[0, 0, 0, 1, 0, 0, 0, 9, 1, 2];
        assert!(read(&mut cut, &mut inflater).await.is_err());
    }
}
