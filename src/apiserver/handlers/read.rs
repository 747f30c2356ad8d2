//! `get` and `list` (label/field selectors, limit and continue).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Response;
use serde_json::{Value, json};

use super::{Req, current, internal};
use crate::api::error::ApiError;
use crate::api::selector::{FieldSelector, LabelSelector, Selectors};
use crate::apiserver::Shared;
use crate::apiserver::response::{self, Body};

pub(super) async fn get(s: &Shared, r: Req) -> Result<Response<Body>, ApiError> {
    let (_, obj) = current(s, &r.rt, r.namespace.as_deref(), r.name())?;
    Ok(response::object(200, &r.rt, &obj, r.output))
}

/// The selectors of a list, watch or deletecollection request.
pub(super) fn selectors(r: &Req) -> Result<Selectors, ApiError> {
    Ok(Selectors {
        labels: LabelSelector::parse(r.query.get("labelSelector").unwrap_or(""))?,
        fields: FieldSelector::parse(
            r.query.get("fieldSelector").unwrap_or(""),
            &r.rt.group,
            &r.rt.resource,
        )?,
    })
}

/// A continue token: where the previous page stopped, and the list's resourceVersion.
fn encode_continue(rv: u64, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(json!({"v": "meta.k8s.io/v1", "rv": rv, "start": key}).to_string())
}

fn decode_continue(token: &str, prefix: &str) -> Result<(u64, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    let key = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if !key.starts_with(prefix) {
        return Err(bad());
    }
    Ok((rv, key.to_string()))
}

/// One page of matching objects: `(key, object)` pairs, the store revision read, and
/// whether more objects match past the page.
pub(super) type Page = (Vec<(String, Value)>, u64, bool);

/// Objects matching the request's selectors in the request's namespace (all when
/// none), one page at a time.
pub(super) fn matching(
    s: &Shared,
    r: &Req,
    sel: &Selectors,
    start_after: Option<&str>,
    limit: usize,
) -> Result<Page, ApiError> {
    let prefix = r.rt.key_prefix(r.namespace.as_deref());
    let listing = s.store.list(&prefix, start_after, 0).map_err(internal)?;
    let mut out = Vec::new();
    let mut more = false;
    for item in listing.items {
        if !sel.matches(&item.object) {
            continue;
        }
        if limit > 0 && out.len() == limit {
            more = true;
            break;
        }
        out.push((item.key, item.object));
    }
    Ok((out, listing.revision, more))
}

/// The `resourceVersion` / `resourceVersionMatch` rules of a list: the store serves
/// its latest state, so an older exact version is gone (410) and a future one is
/// not there yet (504), as the real API server answers.
fn check_list_version(r: &Req, current: u64) -> Result<(), ApiError> {
    let exact = match r.query.get("resourceVersionMatch") {
        None | Some("") => false,
        Some("Exact") => true,
        Some("NotOlderThan") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
    };
    let asked = match r.query.get("resourceVersion") {
        None | Some("")
            if r.query
                .get("resourceVersionMatch")
                .is_some_and(|m| !m.is_empty()) =>
        {
            return Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        None | Some("") | Some("0") => return Ok(()),
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v:?}")))?,
    };
    if asked > current {
        return Err(ApiError::timeout(format!(
            "Too large resource version: {asked}, current: {current}"
        )));
    }
    if exact && asked < current {
        return Err(ApiError::expired(
            "The resourceVersion for the provided list is too old.",
        ));
    }
    Ok(())
}

pub(super) async fn list(s: &Shared, r: Req) -> Result<Response<Body>, ApiError> {
    let sel = selectors(&r)?;
    let limit = usize::try_from(r.query.number("limit")?.unwrap_or(0)).unwrap_or(usize::MAX);
    let prefix = r.rt.key_prefix(r.namespace.as_deref());
    let (start, first_rv) = match r.query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (rv, key) = decode_continue(token, &prefix)?;
            (Some(key), Some(rv))
        }
        None => (None, None),
    };
    let (items, rev, more) = matching(s, &r, &sel, start.as_deref(), limit)?;
    check_list_version(&r, rev)?;
    let rv = first_rv.unwrap_or(rev);
    let mut meta = json!({ "resourceVersion": rv.to_string() });
    if more && let Some((last, _)) = items.last() {
        meta["continue"] = json!(encode_continue(rv, last));
    }
    let objects = items
        .into_iter()
        .map(|(_, o)| r.rt.from_storage(o))
        .collect();
    Ok(response::list(&r.rt, objects, meta, r.output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_stay_inside_their_prefix() {
        let t = encode_continue(42, "/registry/core/configmaps/default/b");
        assert_eq!(
            decode_continue(&t, "/registry/core/configmaps/").expect("ok"),
            (42, "/registry/core/configmaps/default/b".into())
        );
        assert!(decode_continue(&t, "/registry/core/secrets/").is_err());
        assert!(decode_continue("garbage!", "/").is_err());
    }
}
