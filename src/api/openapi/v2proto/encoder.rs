//! Walks a Swagger 2.0 JSON value along the message tables and writes its protobuf encoding.

use serde_json::{Map, Value};

use super::Error;
use super::spec::{Kind, Message};
use super::wire;

/// Writes the fields of `message` read from `object`.
pub(super) fn message(
    out: &mut Vec<u8>,
    message: &Message,
    object: &Map<String, Value>,
) -> Result<(), Error> {
    for field in message.fields.iter().flat_map(|run| run.iter()) {
        let Some(value) = object.get(field.key) else {
            continue;
        };
        // JSON null reads as "not given", except where the field carries an arbitrary value.
        if value.is_null() && !matches!(field.kind, Kind::Any) {
            continue;
        }
        write(out, field.number, &field.kind, value, false)
            .map_err(|error| error.within(field.key))?;
    }
    // The `Named*` pairs: `x-…` keys go to the vendor extensions where the message has them,
    // every other key to the entries of a map-like message. Lower field number first.
    let extensions = message.extensions.map(|number| (number, &Kind::Any, true));
    let entries = message.entries.map(|(number, kind)| (number, kind, false));
    let mut pairs = [extensions, entries];
    if let [Some(first), Some(second)] = pairs
        && first.0 > second.0
    {
        pairs.swap(0, 1);
    }
    for (number, kind, vendor) in pairs.into_iter().flatten() {
        for (key, value) in object {
            let is_extension = message.extensions.is_some() && key.starts_with("x-");
            if is_extension == vendor {
                named(out, number, key, kind, value).map_err(|error| error.within(key))?;
            }
        }
    }
    Ok(())
}

/// Writes `value` as field `number`. `force` also writes proto3 default values (empty string,
/// false, zero), which Go's marshaller leaves out of plain fields but must keep for oneof members
/// and repeated elements, or `additionalProperties: false` and `""` list items would vanish.
fn write(
    out: &mut Vec<u8>,
    number: u32,
    kind: &Kind,
    value: &Value,
    force: bool,
) -> Result<(), Error> {
    match kind {
        Kind::Str => {
            let text = value.as_str().ok_or_else(|| Error::expected("a string"))?;
            if force || !text.is_empty() {
                wire::put_bytes(out, number, text.as_bytes());
            }
        }
        Kind::Bool => {
            let flag = value
                .as_bool()
                .ok_or_else(|| Error::expected("a boolean"))?;
            if force || flag {
                wire::put_bool(out, number, flag);
            }
        }
        Kind::Double => {
            let real = value.as_f64().ok_or_else(|| Error::expected("a number"))?;
            if force || real.to_bits() != 0 {
                wire::put_double(out, number, real);
            }
        }
        Kind::Int64 => {
            let whole = integer(value)?;
            if force || whole != 0 {
                wire::put_int64(out, number, whole);
            }
        }
        Kind::Any => nested(out, number, |any| {
            wire::put_bytes(any, 2, yaml(value).as_bytes());
            Ok(())
        })?,
        Kind::Msg(inner) => {
            let object = value
                .as_object()
                .ok_or_else(|| Error::expected("an object"))?;
            nested(out, number, |body| message(body, inner, object))?;
        }
        Kind::Choice(choose) => {
            let (member, member_kind) = choose(value)?;
            nested(out, number, |body| {
                write(body, member, member_kind, value, true)
            })?;
        }
        Kind::OneOrMany(item) => nested(out, number, |body| match value {
            Value::Array(items) => each(body, 1, item, items),
            _ => write(body, 1, item, value, true),
        })?,
        Kind::List(item) => {
            let items = value
                .as_array()
                .ok_or_else(|| Error::expected("an array"))?;
            each(out, number, item, items)?;
        }
    }
    Ok(())
}

fn each(out: &mut Vec<u8>, number: u32, kind: &Kind, items: &[Value]) -> Result<(), Error> {
    for (index, item) in items.iter().enumerate() {
        write(out, number, kind, item, true).map_err(|error| error.within(&index.to_string()))?;
    }
    Ok(())
}

/// A `Named*` pair: `name = 1`, `value = 2`.
fn named(
    out: &mut Vec<u8>,
    number: u32,
    name: &str,
    kind: &Kind,
    value: &Value,
) -> Result<(), Error> {
    nested(out, number, |pair| {
        wire::put_bytes(pair, 1, name.as_bytes());
        write(pair, 2, kind, value, false)
    })
}

/// A nested message as a length-delimited field. It is written even when empty: Go decodes that
/// to a non-nil message, and kube-openapi tells a kind from a map by `properties` being non-nil.
fn nested(
    out: &mut Vec<u8>,
    number: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut buffer = Vec::new();
    body(&mut buffer)?;
    wire::put_bytes(out, number, &buffer);
    Ok(())
}

fn integer(value: &Value) -> Result<i64, Error> {
    if let Some(whole) = value.as_i64() {
        return Ok(whole);
    }
    // A generator may write a count as `5.0`; a whole float in range means the same.
    match value.as_f64() {
        Some(real)
            if real.fract() == 0.0
                && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&real) =>
        {
            Ok(real as i64)
        }
        _ => Err(Error::expected("an integer")),
    }
}

/// `Any.yaml`: the value as JSON, which is YAML in flow style. Flow style quotes every string, so
/// YAML 1.1 readers (kube-openapi and cli-runtime read these with yaml.v2) keep `on`, `no` or `y`
/// as strings, where a block-style emitter would leave them bare and have them read as booleans.
fn yaml(value: &Value) -> String {
    let json = value.to_string();
    if !json.chars().any(needs_escape) {
        return json;
    }
    let mut text = String::with_capacity(json.len() + 16);
    for character in json.chars() {
        if needs_escape(character) {
            text.push_str(&format!("\\u{:04x}", u32::from(character)));
        } else {
            text.push(character);
        }
    }
    text
}

/// Characters JSON leaves raw that YAML must not see raw: the non-printable ones (DEL, C1
/// controls, BOM, U+FFFE/U+FFFF), which YAML rejects, and the line breaks NEL, LS and PS, which it
/// would fold inside a quoted string. They only occur inside JSON strings, where `\uXXXX` means the
/// same to both.
fn needs_escape(character: char) -> bool {
    matches!(
        character,
        '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
    )
}
