//! Table-driven decoding of one protobuf message into the JSON object Go would print.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::schema::{self, Card, Go, Message, Ty};
use super::wire::{Fields, Wire, packed_varints};
use super::{Error, special};

/// Kubernetes objects nest a dozen levels; the bound only stops hostile input.
const MAX_DEPTH: usize = 64;

type Object = Map<String, Value>;

/// Decodes `bytes` as `msg` into a new object, fields in Go struct order.
pub(super) fn message(bytes: &[u8], msg: &Message, depth: usize) -> Result<Object, Error> {
    let mut out = Object::new();
    merge(bytes, msg, &mut out, depth)?;
    Ok(out)
}

/// Decodes `bytes` as `msg` on top of `out`, an earlier occurrence of the same field
/// (protobuf merges repeated message fields), then applies Go's JSON rules and order.
fn merge(bytes: &[u8], msg: &Message, out: &mut Object, depth: usize) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep);
    }
    fields_into(bytes, msg, out, depth)?;
    finish(msg, out, depth)?;
    let mut ordered = Object::new();
    take_in_order(msg, out, &mut ordered)?;
    ordered.append(out);
    *out = ordered;
    Ok(())
}

/// The wire fields of `msg` into `out`, merging repeats as protobuf does: a repeated
/// singular field overwrites, a repeated message field merges, repeated/map fields append.
fn fields_into(bytes: &[u8], msg: &Message, out: &mut Object, depth: usize) -> Result<(), Error> {
    for item in Fields::new(bytes) {
        let (tag, wire) = item?;
        // Unknown fields (a newer kubectl) are skipped, as Go's decoder does.
        let Some(field) = msg.field(tag) else {
            continue;
        };
        match (field.card, field.ty) {
            (Card::Inline, Ty::Msg(name)) => {
                fields_into(wire.bytes(tag)?, lookup(name)?, out, depth + 1)?;
            }
            (Card::One, Ty::Msg(name)) => {
                let mut obj = take_object(out, field.json);
                merge(wire.bytes(tag)?, lookup(name)?, &mut obj, depth + 1)?;
                out.insert(field.json.to_owned(), Value::Object(obj));
            }
            // The generator only inlines messages (a schema test checks it).
            (Card::One | Card::Inline, ty) => {
                out.insert(field.json.to_owned(), value(ty, wire, tag, depth)?);
            }
            (Card::Repeated, ty) => {
                // Taken out and put back: `take_in_order` settles the order.
                let mut items = match out.remove(field.json) {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                match (ty, wire) {
                    (Ty::Bool | Ty::Int32 | Ty::Int64, Wire::Bytes(packed)) => {
                        for v in packed_varints(packed) {
                            items.push(value(ty, Wire::Varint(v?), tag, depth)?);
                        }
                    }
                    _ => items.push(value(ty, wire, tag, depth)?),
                }
                out.insert(field.json.to_owned(), Value::Array(items));
            }
            (Card::Map, ty) => {
                let mut map = take_object(out, field.json);
                let (key, v) = map_entry(ty, wire.bytes(tag)?, depth)?;
                map.insert(key, v);
                out.insert(field.json.to_owned(), Value::Object(map));
            }
        }
    }
    Ok(())
}

/// One value of type `ty`.
fn value(ty: Ty, wire: Wire<'_>, tag: u32, depth: usize) -> Result<Value, Error> {
    Ok(match ty {
        // Go keeps invalid UTF-8 and encoding/json prints it as U+FFFD; so does this.
        Ty::Str => Value::String(String::from_utf8_lossy(wire.bytes(tag)?).into_owned()),
        Ty::Bool => Value::Bool(wire.varint(tag)? != 0),
        // Go narrows with a plain conversion; truncation matches it.
        Ty::Int32 => Value::from(wire.varint(tag)? as i32),
        Ty::Int64 => Value::from(wire.varint(tag)? as i64),
        Ty::Bytes => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(wire.bytes(tag)?))
        }
        Ty::Msg(name) => Value::Object(message(wire.bytes(tag)?, lookup(name)?, depth + 1)?),
        Ty::Time => special::time(wire.bytes(tag)?, false)?,
        Ty::MicroTime => special::time(wire.bytes(tag)?, true)?,
        Ty::Duration => special::duration(wire.bytes(tag)?)?,
        Ty::Quantity => special::quantity(wire.bytes(tag)?)?,
        Ty::IntOrString => special::int_or_string(wire.bytes(tag)?)?,
        Ty::StringList => special::string_list(wire.bytes(tag)?)?,
        Ty::RawExtension => embedded(special::raw(wire.bytes(tag)?)?, true, depth)?,
        Ty::FieldsV1 => embedded(special::raw(wire.bytes(tag)?)?, false, depth)?,
    })
}

/// What Go prints for an unset non-pointer field of type `ty`.
fn zero(ty: Ty, depth: usize) -> Result<Value, Error> {
    Ok(match ty {
        Ty::Str | Ty::Bytes => Value::String(String::new()),
        Ty::Bool => Value::Bool(false),
        Ty::Int32 | Ty::Int64 => Value::from(0),
        // The message-shaped types decode empty bytes to their zero form.
        _ => value(ty, Wire::Bytes(&[]), 0, depth)?,
    })
}

/// JSON embedded in a bytes field; a RawExtension may also hold a protobuf envelope.
fn embedded(raw: &[u8], allow_envelope: bool, depth: usize) -> Result<Value, Error> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if allow_envelope && super::is_envelope(raw) {
        return super::decode_at(raw, depth + 1);
    }
    serde_json::from_slice(raw).map_err(Error::EmbeddedJson)
}

/// A map entry {key = 1, value = 2}; a missing value is the type's zero.
fn map_entry(ty: Ty, bytes: &[u8], depth: usize) -> Result<(String, Value), Error> {
    let mut key = String::new();
    let mut v = None;
    for item in Fields::new(bytes) {
        match item? {
            (1, w) => key = String::from_utf8_lossy(w.bytes(1)?).into_owned(),
            (2, w) => v = Some(value(ty, w, 2, depth)?),
            _ => {}
        }
    }
    let v = match v {
        Some(v) => v,
        None => zero(ty, depth)?,
    };
    Ok((key, v))
}

/// Applies encoding/json's rules to the fields of `msg` the wire left unset or empty.
fn finish(msg: &Message, out: &mut Object, depth: usize) -> Result<(), Error> {
    for field in msg.fields {
        if let (Card::Inline, Ty::Msg(name)) = (field.card, field.ty) {
            finish(lookup(name)?, out, depth + 1)?;
            continue;
        }
        let empty = out.get(field.json).map(is_empty);
        match (field.go, empty) {
            (Go::OmitEmpty, Some(true)) => {
                out.shift_remove(field.json);
            }
            // A packed list with no elements still leaves Go's slice nil.
            (Go::Nullable, Some(true)) if field.card != Card::One => {
                out.insert(field.json.to_owned(), Value::Null);
            }
            // encoding/json sorts map keys.
            (_, Some(_)) if field.card == Card::Map => {
                if let Some(Value::Object(map)) = out.get_mut(field.json) {
                    map.sort_keys();
                }
            }
            (_, Some(_)) | (Go::OmitEmpty | Go::Pointer, None) => {}
            (Go::Value, None) => {
                out.insert(field.json.to_owned(), zero(field.ty, depth)?);
            }
            (Go::Nullable, None) => {
                out.insert(field.json.to_owned(), Value::Null);
            }
        }
    }
    Ok(())
}

/// Moves the fields of `msg` from `from` to `to` in table (Go struct) order.
fn take_in_order(msg: &Message, from: &mut Object, to: &mut Object) -> Result<(), Error> {
    for field in msg.fields {
        if let (Card::Inline, Ty::Msg(name)) = (field.card, field.ty) {
            take_in_order(lookup(name)?, from, to)?;
        } else if let Some(v) = from.shift_remove(field.json) {
            to.insert(field.json.to_owned(), v);
        }
    }
    Ok(())
}

/// Go's omitempty test: false, 0, "", null, and empty arrays and maps.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn lookup(name: &'static str) -> Result<&'static Message, Error> {
    schema::message(name).ok_or(Error::Schema(name))
}

/// The object at `key`, removed from `out` (an earlier occurrence), or a new one.
fn take_object(out: &mut Object, key: &str) -> Object {
    match out.remove(key) {
        Some(Value::Object(obj)) => obj,
        _ => Object::new(),
    }
}
