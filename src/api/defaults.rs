//! Defaulting (interim: none).
use serde_json::Value;

/// Fill in defaults.
pub fn apply_defaults(_group: &str, _version: &str, _kind: &str, _obj: &mut Value) {}
