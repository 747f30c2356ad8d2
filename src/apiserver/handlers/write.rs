//! `create` and `update` (PUT, including the `status` and `finalize` subresources).

use http::Response;
use rand::Rng;
use serde_json::Value;

use super::{RETRIES, Req, admit_body, commit_update, current, retryable, validate};
use crate::api::error::ApiError;
use crate::apiserver::objects::{
    meta_mut, name_of, prepare_create, prepare_update, sent_resource_version, store_error,
};
use crate::apiserver::response::{self, Body};
use crate::apiserver::{Shared, admission, crd};
use crate::store::Write;

/// The characters Kubernetes uses for generated name suffixes (no vowels, no
/// look-alikes).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn generate_name(base: &str) -> String {
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHANUMS[rng.random_range(0..ALPHANUMS.len())] as char)
        .collect();
    // Kubernetes trims the base so the result stays within 63 characters.
    let base: String = base.chars().take(58).collect();
    format!("{base}{suffix}")
}

/// Create a new object from a full body; used by POST and by server-side apply when
/// the object does not exist yet.
pub(super) async fn create_object(
    s: &Shared,
    r: &Req,
    mut obj: Value,
    warnings_in: Vec<String>,
) -> Result<(Value, Vec<String>), ApiError> {
    let meta = meta_mut(&mut obj);
    let named = meta
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !named
        && let Some(base) = meta
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|b| !b.is_empty())
    {
        let name = generate_name(base);
        meta.insert("name".into(), Value::String(name));
    }
    let (mut obj, mut warnings) = admit_body(&r.rt, obj, r.field_validation()?)?;
    warnings.splice(0..0, warnings_in);
    prepare_create(&r.rt, &mut obj);
    crd::prepare(&r.rt, &mut obj);
    if r.rt.codec.is_some() {
        crate::api::defaults::apply_admission_defaults(&r.rt.group, &r.rt.kind, &mut obj);
        if r.rt.group == "batch" && r.rt.kind == "Job" {
            crate::api::validation::generate_job_selector(&mut obj);
        }
    }
    if obj.pointer("/metadata/managedFields").is_none() {
        crate::api::patch::apply::track_update(&r.rt, None, &mut obj, &r.field_manager());
    }
    admission::mutate_create(s, &r.rt, &mut obj)?;
    validate(&r.rt, &obj, None)?;
    let dry_run = r.query.dry_run()?;
    let name = name_of(&obj).to_string();
    let key = r.rt.key(r.namespace.as_deref(), &name);
    // An existing object is AlreadyExists before any admission step (a Service's
    // address allocation would otherwise report a clash with itself).
    if s.store.get(&key).map_err(super::internal)?.is_some() {
        return Err(crate::api::error::ApiError::already_exists(
            &r.rt.group,
            &r.rt.resource,
            &name,
        ));
    }
    // Held until the object is stored (allocations and quota are charged atomically).
    let _admitted = admission::admit_create(s, &r.rt, &mut obj).await?;
    if dry_run {
        return Ok((obj, warnings));
    }
    let stored = s
        .store
        .write(Write::Create {
            key,
            object: r.rt.to_storage(obj),
        })
        .await
        .map_err(|e| store_error(&r.rt, &name, e))?;
    crd::after_write(s, &r.rt, &stored);
    Ok((r.rt.from_storage((*stored).clone()), warnings))
}

pub(super) async fn create(s: &Shared, r: Req) -> Result<Response<Body>, ApiError> {
    let obj = r.body_object()?;
    let (stored, warnings) = create_object(s, &r, obj, Vec::new()).await?;
    Ok(response::warn(
        response::object(201, &r.rt, &stored, r.output),
        &warnings,
    ))
}

/// Turn the object a client sent into the object to store, given what is stored now.
pub(super) fn updated_object(
    r: &Req,
    current: &Value,
    sent: Value,
) -> Result<(Value, Vec<String>), ApiError> {
    match r.sub.as_deref() {
        Some("finalize") => {
            // The finalize subresource changes spec.finalizers only.
            let mut next = current.clone();
            next["spec"]["finalizers"] = sent
                .pointer("/spec/finalizers")
                .cloned()
                .unwrap_or(Value::Array(Vec::new()));
            Ok((next, Vec::new()))
        }
        Some("status") => {
            let (sent, warnings) =
                crate::api::codec::normalize(&r.rt, sent, r.field_validation()?)?;
            Ok((
                prepare_update(&r.rt, current, sent, Some("status")),
                warnings,
            ))
        }
        _ => {
            let (sent, warnings) = admit_body(&r.rt, sent, r.field_validation()?)?;
            Ok((prepare_update(&r.rt, current, sent, None), warnings))
        }
    }
}

pub(super) async fn update(s: &Shared, r: Req) -> Result<Response<Body>, ApiError> {
    let sent = r.body_object()?;
    let name = r.name().to_string();
    match name_of(&sent) {
        "" => {}
        n if n == name => {}
        n => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the request ({name})"
            )));
        }
    }
    let pinned = sent_resource_version(&sent, &r.rt, &name)?;
    let dry_run = r.query.dry_run()?;
    let key = r.key();
    let mut last = None;
    for _ in 0..RETRIES {
        let (rv, cur) = current(s, &r.rt, r.namespace.as_deref(), &name)?;
        if pinned.is_some_and(|p| p != rv) {
            return Err(ApiError::conflict(
                &r.rt.group,
                &r.rt.resource,
                &name,
                ApiError::MODIFIED,
            ));
        }
        let mut sent = sent.clone();
        meta_mut(&mut sent).insert("name".into(), Value::String(name.clone()));
        let (mut next, warnings) = updated_object(&r, &cur, sent)?;
        crate::api::patch::apply::track_update(&r.rt, Some(&cur), &mut next, &r.field_manager());
        validate(&r.rt, &next, Some(&cur))?;
        // Held until the update is stored (quota is charged atomically).
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
            Err(e) if retryable(&e, pinned.is_some()) => last = Some(e),
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

    #[test]
    fn generated_names_append_five_safe_characters() {
        let n = generate_name("web-");
        assert_eq!(n.len(), 9);
        assert!(n.starts_with("web-") && n[4..].bytes().all(|b| ALPHANUMS.contains(&b)));
    }
}
