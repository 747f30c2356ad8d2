//! Decodes `application/vnd.kubernetes.protobuf` request bodies into the JSON object Go would print.
//!
//! kubectl 1.32+ sends built-in objects (`create namespace`, `create deployment`,
//! `autoscale`, `auth can-i`, …) as protobuf and never retries with JSON. The body is an
//! envelope: the 4-byte magic `k8s\0`, then a `runtime.Unknown` {typeMeta = 1 {apiVersion = 1,
//! kind = 2}, raw = 2, contentEncoding = 3, contentType = 4} whose `raw` is the object's
//! message. Messages are read through a table generated from k8s.io/api's
//! `generated.proto` files and Go struct tags (`messages.rs`), and printed with the rules
//! of Go's encoding/json, so the result equals the JSON body kubectl 1.31 sends for the
//! same command (`creationTimestamp: null`, `status: {}`, omitempty, `replicas: 0`, …).

mod decode;
// Generated: one row per line reads better than rustfmt's layout.
#[rustfmt::skip]
mod messages;
mod schema;
mod special;
mod wire;

use serde_json::{Map, Value};

use self::wire::Fields;

/// Why a body could not be decoded. Every variant is a malformed or unsupported request
/// (HTTP 400 at the caller).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body does not start with the `k8s\0` magic.
    #[error("body does not start with the kubernetes protobuf magic")]
    NotEnvelope,
    /// The input ends inside a varint, a fixed-width or length-delimited value, or a group.
    #[error("protobuf message is truncated")]
    Truncated,
    /// A varint runs past ten bytes or overflows 64 bits.
    #[error("protobuf varint is longer than 64 bits")]
    Varint,
    /// A field key has field number 0 or one above the protobuf maximum (2^29 - 1).
    #[error("invalid protobuf field number {0}")]
    FieldNumber(u64),
    /// A field key has wire type 6 or 7, or an end-group that closes no open group.
    #[error("unsupported protobuf wire type {0}")]
    WireType(u8),
    /// A field's wire type is not the one its schema type is read with.
    #[error("protobuf field {field} has wire type {got}, expected {expected}")]
    WrongWireType {
        /// The field number.
        field: u32,
        /// The wire type found in the body.
        got: u8,
        /// The wire type the field's type needs.
        expected: u8,
    },
    /// Messages, groups or embedded envelopes nest deeper than the decoder's limit.
    #[error("protobuf messages nest too deeply")]
    TooDeep,
    /// The envelope's typeMeta names a kind the schema table has no message for.
    #[error("no protobuf schema for kind {kind:?} of apiVersion {api_version:?}")]
    UnknownKind {
        /// The envelope's apiVersion.
        api_version: String,
        /// The envelope's kind.
        kind: String,
    },
    /// A message named in the schema table (the field) has no entry of its own there.
    #[error("message {0} is missing from the protobuf schema table")]
    Schema(&'static str),
    /// A `metav1.Time` or `metav1.MicroTime` lies outside the years 0000-9999.
    #[error("time is outside the years 0000-9999")]
    Time,
    /// An `intstr.IntOrString` has a type other than 0 (int) or 1 (string); the field holds it.
    #[error("invalid IntOrString type {0}")]
    IntOrString(u64),
    /// A bytes field holding raw JSON (e.g. a `RawExtension`) is not valid JSON.
    #[error("embedded raw JSON is invalid: {0}")]
    EmbeddedJson(#[source] serde_json::Error),
}

/// `k8s\0`: what the apiserver's protobuf serializer writes before the `runtime.Unknown`.
const MAGIC: &[u8] = b"k8s\x00";

/// True if the body starts with the Kubernetes protobuf magic.
pub fn is_envelope(body: &[u8]) -> bool {
    body.starts_with(MAGIC)
}

/// Decode an envelope into the JSON object (with "apiVersion" and "kind" from its typeMeta).
pub fn decode(body: &[u8]) -> Result<Value, Error> {
    decode_at(body, 0)
}

/// [`decode`] at a nesting depth: a RawExtension may embed another envelope.
fn decode_at(body: &[u8], depth: usize) -> Result<Value, Error> {
    let unknown = body.strip_prefix(MAGIC).ok_or(Error::NotEnvelope)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    // contentEncoding and contentType are ignored, as by the apiserver's serializer.
    for item in Fields::new(unknown) {
        match item? {
            (1, w) => {
                for item in Fields::new(w.bytes(1)?) {
                    match item? {
                        (1, w) => api_version = String::from_utf8_lossy(w.bytes(1)?).into_owned(),
                        (2, w) => kind = String::from_utf8_lossy(w.bytes(2)?).into_owned(),
                        _ => {}
                    }
                }
            }
            (2, w) => raw = w.bytes(2)?,
            _ => {}
        }
    }
    let msg = schema::kind(&api_version, &kind).ok_or_else(|| Error::UnknownKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let fields = decode::message(raw, msg, depth)?;
    // TypeMeta leads, as in Go's struct order.
    let mut out = Map::new();
    out.insert("kind".to_owned(), Value::String(kind));
    out.insert("apiVersion".to_owned(), Value::String(api_version));
    out.extend(fields);
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests;
