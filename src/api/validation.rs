//! Validation (interim: metadata.name only).
use serde_json::Value;

/// A field error.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Path.
    pub field: String,
    /// Detail.
    pub detail: String,
}

impl FieldError {
    /// StatusCause reason.
    pub fn reason(&self) -> &'static str {
        "FieldValueInvalid"
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.detail)
    }
}

/// Validate.
pub fn validate(_group: &str, _kind: &str, obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        return vec![FieldError { field: "metadata.name".into(), detail: "Required value: name or generateName is required".into() }];
    }
    Vec::new()
}

/// The 422 message.
pub fn invalid_message(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> String {
    let k = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
    if list.len() == 1 { format!("{k} \"{name}\" is invalid: {}", list[0]) } else { format!("{k} \"{name}\" is invalid: [{}]", list.join(", ")) }
}
