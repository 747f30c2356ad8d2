//! Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch
//! and server-side apply, dispatched by content type.

pub mod apply;
mod fieldset;
pub mod strategic;

use serde_json::Value;

use super::error::ApiError;
use super::registry::ResourceType;
use super::schema::TypeRef;

/// Which patch format a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

/// The root of a built-in kind's type tree (None for custom resources).
pub fn root_type(rt: &ResourceType) -> Option<TypeRef> {
    rt.codec
        .and_then(|_| TypeRef::for_kind(&rt.group, &rt.version, &rt.kind))
}

fn rejected(why: impl std::fmt::Display) -> ApiError {
    ApiError {
        code: 422,
        reason: "Invalid",
        message: format!("the server rejected our request due to an error in our request: {why}"),
        details: None,
    }
}

/// A strategic-merge failure as the status Kubernetes answers it with.
pub(crate) fn patch_error(e: &strategic::Error) -> ApiError {
    match e.status() {
        400 => ApiError::bad_request(e.to_string()),
        _ => rejected(e),
    }
}

/// Apply `doc` of the given kind to `current`, returning the patched object.
pub fn apply_patch(
    kind: PatchKind,
    rt: &ResourceType,
    current: &Value,
    doc: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApiError> {
    let mut out = current.clone();
    match kind {
        PatchKind::Json => {
            let p: json_patch::Patch = serde_json::from_value(doc.clone())
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(&mut out, &p).map_err(rejected)?;
        }
        PatchKind::Merge => {
            if !doc.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: a merge patch must be a JSON object",
                ));
            }
            json_patch::merge(&mut out, doc);
        }
        PatchKind::Strategic => {
            out = strategic::apply(current, doc, root_type(rt)).map_err(|e| patch_error(&e))?;
        }
        PatchKind::Apply => out = apply::apply(rt, current, doc, manager, force)?,
    }
    Ok(out)
}
