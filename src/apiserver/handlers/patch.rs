//! `patch`: JSON patch, JSON merge patch, strategic merge patch and server-side apply.

use http::Response;

use super::write::{create_object, updated_object};
use super::{RETRIES, Req, commit_update, current, retryable, validate};
use crate::api::error::ApiError;
use crate::api::patch::{self, PatchKind};
use crate::api::registry::ResourceType;
use crate::apiserver::objects::{name_of, sent_resource_version};
use crate::apiserver::response::{self, Body};
use crate::apiserver::{Shared, admission};

/// The patch type named by a Content-Type.
pub(super) fn patch_kind(content_type: &str, rt: &ResourceType) -> Result<PatchKind, ApiError> {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    let kind = match mime {
        "application/json-patch+json" => PatchKind::Json,
        "application/merge-patch+json" => PatchKind::Merge,
        "application/strategic-merge-patch+json" => PatchKind::Strategic,
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => PatchKind::Apply,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if kind == PatchKind::Strategic && rt.codec.is_none() {
        return Err(ApiError::unsupported_media_type(
            "strategic merge patch is not supported for custom resources: use a JSON merge patch instead",
        ));
    }
    Ok(kind)
}

pub(super) async fn patch(s: &Shared, r: Req) -> Result<Response<Body>, ApiError> {
    let kind = patch_kind(&r.content_type, &r.rt)?;
    let doc = match kind {
        PatchKind::Apply => crate::api::codec::decode_yaml(&r.body)?,
        _ => crate::api::codec::decode_json(&r.body)?,
    };
    let name = r.name().to_string();
    let dry_run = r.query.dry_run()?;
    let manager = r.field_manager();
    if kind == PatchKind::Apply && r.query.get("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    let force = r.query.flag("force");
    let key = r.key();
    let mut last = None;
    for _ in 0..RETRIES {
        let (rv, cur) = match current(s, &r.rt, r.namespace.as_deref(), &name) {
            Ok(found) => found,
            Err(e) if e.is_not_found() && kind == PatchKind::Apply => {
                let mut obj = doc.clone();
                super::check_object_shape(&r.rt, &mut obj, r.namespace.as_deref())?;
                if name_of(&obj) != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({}) does not match the name on the request ({name})",
                        name_of(&obj)
                    )));
                }
                let obj = patch::apply::managed_on_create(&r.rt, obj, &manager);
                let (stored, warnings) = create_object(s, &r, obj, Vec::new()).await?;
                return Ok(response::warn(
                    response::object(201, &r.rt, &stored, r.output),
                    &warnings,
                ));
            }
            Err(e) => return Err(e),
        };
        let patched = patch::apply_patch(kind, &r.rt, &cur, &doc, &manager, force)?;
        let pinned = sent_resource_version(&patched, &r.rt, &name)?.filter(|p| *p != rv);
        if pinned.is_some() {
            return Err(ApiError::conflict(
                &r.rt.group,
                &r.rt.resource,
                &name,
                ApiError::MODIFIED,
            ));
        }
        if name_of(&patched) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the request ({name})",
                name_of(&patched)
            )));
        }
        let mut shaped = patched;
        super::check_object_shape(&r.rt, &mut shaped, r.namespace.as_deref())?;
        let (mut next, warnings) = updated_object(&r, &cur, shaped)?;
        if kind != PatchKind::Apply {
            crate::api::patch::apply::track_update(&r.rt, Some(&cur), &mut next, &manager);
        }
        validate(&r.rt, &next, Some(&cur))?;
        let _admitted = match r.sub {
            None => Some(admission::admit_update(s, &r.rt, &cur, &mut next).await?),
            Some(_) => None,
        };
        match commit_update(s, &r.rt, &key, rv, &cur, next, dry_run).await {
            Ok(stored) => {
                return Ok(response::warn(
                    response::object(200, &r.rt, &stored, r.output),
                    &warnings,
                ));
            }
            Err(e) if retryable(&e, false) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        ApiError::conflict(&r.rt.group, &r.rt.resource, &name, ApiError::MODIFIED)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry::Registry;

    #[test]
    fn strategic_merge_is_refused_for_custom_resources() {
        let r = Registry::builtin();
        let mut rt = (*r.lookup("", "v1", "configmaps").expect("cm")).clone();
        assert_eq!(
            patch_kind("application/strategic-merge-patch+json", &rt).expect("ok"),
            PatchKind::Strategic
        );
        rt.codec = None;
        assert_eq!(
            patch_kind("application/strategic-merge-patch+json", &rt)
                .expect_err("415")
                .code,
            415
        );
        assert_eq!(patch_kind("text/plain", &rt).expect_err("415").code, 415);
    }
}
