//! Strategic merge patch (interim: JSON merge semantics).
use serde_json::Value;

use crate::api::schema::TypeRef;

/// Strategic merge failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The patch is not an object.
    #[error("a strategic merge patch must be a JSON object")]
    NotObject,
}

/// Apply a strategic merge patch.
pub fn apply(original: &Value, patch: &Value, _root: Option<TypeRef>) -> Result<Value, Error> {
    if !patch.is_object() {
        return Err(Error::NotObject);
    }
    let mut out = original.clone();
    json_patch::merge(&mut out, patch);
    Ok(out)
}
