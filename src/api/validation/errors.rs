//! Field errors built and printed exactly like apimachinery's `field.Error` (Kubernetes 1.36), and the 422 Invalid status around them.

use serde_json::{Map, Value, json};
use std::fmt;

/// The kind of a field error; mirrors `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A value that was looked up (e.g. a reference) was not found.
    NotFound,
    /// A required value was not provided.
    Required,
    /// A value that must be unique appears more than once.
    Duplicate,
    /// A value is malformed or otherwise invalid.
    Invalid,
    /// A value is not one of a fixed set of supported values.
    NotSupported,
    /// A well-formed value is not permitted in this context.
    Forbidden,
    /// A value is longer than allowed.
    TooLong,
    /// A value is shorter than allowed.
    TooShort,
    /// A list has more items than allowed.
    TooMany,
    /// A list has fewer items than required.
    TooFew,
    /// An error not caused by the request's input.
    Internal,
    /// A value has the wrong type.
    TypeInvalid,
}

impl ErrorKind {
    /// The machine-readable reason, used as `StatusCause.reason`.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "FieldValueNotFound",
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Duplicate => "FieldValueDuplicate",
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::NotSupported => "FieldValueNotSupported",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::TooLong => "FieldValueTooLong",
            ErrorKind::TooShort => "FieldValueTooShort",
            ErrorKind::TooMany => "FieldValueTooMany",
            ErrorKind::TooFew => "FieldValueTooFew",
            ErrorKind::Internal => "InternalError",
            ErrorKind::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human label that starts every message body (`ErrorType.String()`).
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "Not found",
            ErrorKind::Required => "Required value",
            ErrorKind::Duplicate => "Duplicate value",
            ErrorKind::Invalid | ErrorKind::TypeInvalid => "Invalid value",
            ErrorKind::NotSupported => "Unsupported value",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::TooLong => "Too long",
            ErrorKind::TooShort => "Too short",
            ErrorKind::TooMany => "Too many",
            ErrorKind::TooFew => "Too few",
            ErrorKind::Internal => "Internal error",
        }
    }
}

/// One field error, printed exactly like Kubernetes' `field.Error.Error()`.
///
/// `value` is the bad value as Go would marshal it; `None` is Go's `omitValue`
/// (the body then shows only the label). Objects keep the key order they were
/// built with, so callers sort map keys (Go sorts maps) and keep struct order.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The kind of error, which gives the reason and the message's label.
    pub kind: ErrorKind,
    /// The field path, as printed (e.g. `spec.containers[0].name`).
    pub field: String,
    /// The bad value as Go would marshal it; `None` is Go's `omitValue`.
    pub value: Option<Value>,
    /// Extra explanation appended to the message; empty for none.
    pub detail: String,
}

impl FieldError {
    /// A field error from its four parts.
    pub fn new(
        kind: ErrorKind,
        field: impl Into<String>,
        value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            kind,
            field: field.into(),
            value,
            detail: detail.into(),
        }
    }
    /// `field.Required`: the field has no value but needs one.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Required, field, Some(Value::from("")), detail)
    }
    /// `field.Invalid`: the field's value is invalid, for the reason in `detail`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(ErrorKind::Invalid, field, Some(value.into()), detail)
    }
    /// `field.Duplicate`: the value repeats one that must be unique.
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(ErrorKind::Duplicate, field, Some(value.into()), "")
    }
    /// `field.NotFound`: the value refers to something that was not found.
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(ErrorKind::NotFound, field, Some(value.into()), "")
    }
    /// `field.Forbidden`: the value is not permitted here, for the reason in `detail`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, field, Some(Value::from("")), detail)
    }
    /// `field.NotSupported`: the detail lists the valid values, each Go-quoted.
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<Value>,
        valid: &[&str],
    ) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorKind::NotSupported, field, Some(value.into()), detail)
    }
    /// `field.TooLong`: the value is never shown, only the byte limit.
    pub fn too_long(field: impl Into<String>, max_bytes: usize) -> Self {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        let detail = format!("may not be more than {max_bytes} {unit}");
        Self::new(
            ErrorKind::TooLong,
            field,
            Some(Value::from("<value omitted>")),
            detail,
        )
    }
    /// `field.TooMany`: the list has `actual` items, more than `max`.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        Self::new(
            ErrorKind::TooMany,
            field,
            Some(Value::from(actual)),
            format!("must have at most {max} {unit}"),
        )
    }
    /// `field.InternalError`: a failure not caused by the request's input; no value is shown.
    pub fn internal(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, field, None, detail)
    }

    /// The StatusCause reason (`FieldValueInvalid`, ...).
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// The message without the field name (`ErrorBody()`), used as `StatusCause.message`.
    pub fn body(&self) -> String {
        let mut s = match self.kind {
            // These kinds never echo the value back.
            ErrorKind::Required
            | ErrorKind::Forbidden
            | ErrorKind::TooLong
            | ErrorKind::TooShort
            | ErrorKind::Internal => self.kind.label().to_string(),
            _ => match &self.value {
                None => self.kind.label().to_string(),
                Some(v) => format!("{}: {}", self.kind.label(), go_value(v)),
            },
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// Renders a bad value the way 1.36's `ErrorBody` does: strings `%q`, numbers
/// and bools bare, everything else through `json.Marshal`.
pub fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => go_json(v),
    }
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            // Other non-printable runes, as Go writes them.
            c if c.is_control() || matches!(c, '\u{feff}' | '\u{200b}'..='\u{200f}') => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `json.Marshal` for an already-ordered value: compact, with HTML-safe escapes.
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(v, &mut out);
    out
}

fn write_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_go_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json_string(k, out);
                out.push(':');
                write_go_json(item, out);
            }
            out.push('}');
        }
    }
}

fn write_go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // encoding/json escapes these so the output is safe inside HTML.
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A Go `map[string]string` (or any map) as json.Marshal orders it: keys sorted.
pub fn sorted_map(v: Option<&Value>) -> Value {
    match v {
        Some(Value::Object(m)) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), m[k].clone());
            }
            Value::Object(out)
        }
        Some(other) => other.clone(),
        None => Value::Null,
    }
}

/// `schema.GroupKind.String()`: `Kind` for the core group, `Kind.group` otherwise.
fn qualified_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

/// The message of `apierrors.NewInvalid`: errors deduplicated by text, one bare,
/// several in brackets.
pub fn invalid_message(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> String {
    let head = format!(
        "{} {} is invalid",
        qualified_kind(group, kind),
        go_quote(name)
    );
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        let text = e.to_string();
        if !seen.contains(&text) {
            seen.push(text);
        }
    }
    match seen.len() {
        0 => head,
        1 => format!("{head}: {}", seen[0]),
        _ => format!("{head}: [{}]", seen.join(", ")),
    }
}

/// The whole 422 `Status` body the API server returns (kubectl prints its causes).
pub fn invalid_status(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Value {
    let causes: Vec<Value> = errors
        .iter()
        .map(|e| json!({"reason": e.reason(), "message": e.body(), "field": e.field}))
        .collect();
    let mut details = Map::new();
    details.insert("name".into(), Value::from(name));
    if !group.is_empty() {
        details.insert("group".into(), Value::from(group));
    }
    details.insert("kind".into(), Value::from(kind));
    details.insert("causes".into(), Value::Array(causes));
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": invalid_message(group, kind, name, errors),
        "reason": "Invalid",
        "details": Value::Object(details),
        "code": 422
    })
}

/// A field path under construction (`field.Path`), kept as its printed form.
#[derive(Debug, Clone, PartialEq)]
pub struct Path(String);

impl Path {
    /// A path that starts at the field `name` (`field.NewPath`).
    pub fn new(name: &str) -> Path {
        Path(name.to_string())
    }
    /// The path of the field `name` under this one (`Child`); just `name` if this one is empty.
    pub fn child(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{}", self.0, name))
        }
    }
    /// The path of list element `i` of this field (`Index`).
    pub fn index(&self, i: usize) -> Path {
        Path(format!("{}[{}]", self.0, i))
    }
    /// The path of the map entry under key `k` of this field (`Key`).
    pub fn key(&self, k: &str) -> Path {
        Path(format!("{}[{}]", self.0, k))
    }
    /// The path as printed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&Path> for String {
    fn from(p: &Path) -> String {
        p.0.clone()
    }
}

impl From<Path> for String {
    fn from(p: Path) -> String {
        p.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
