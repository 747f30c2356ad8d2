//! Getting a container's image onto the node, as the kubelet's image manager
//! (`pkg/kubelet/images/image_manager.go`, v1.32) does: honour `imagePullPolicy`,
//! pull with the pod's `imagePullSecrets`, report `Pulling`/`Pulled`/`Failed`/
//! `BackOff` events in the kubelet's words, and keep the container waiting in
//! `ErrImagePull` / `ImagePullBackOff` (or `ErrImageNeverPull`, `InvalidImageName`)
//! with back-off retries — 10 s doubling to 5 min — until the image appears.
//!
//! The back-off is per container task and lives as long as the pod's worker, like
//! the kubelet's `podUID_image` back-off key.

use std::borrow::Cow;
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use kube::api::Api;

use super::images::{self, Credentials, Image, Reference, Store, registry};
use super::pods::Kubelet;
use crate::events::Kind;

/// First image pull back-off (the kubelet's `imageBackOffPeriod`); it doubles up to
/// [`MAX_BACKOFF`]. [`crate::ClusterBuilder::image_pull_backoff`] changes it.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(10);
/// Longest image pull back-off (the kubelet's `MaxContainerBackOff`).
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long a failed pull shows as `ErrImagePull` before the next sync reports the
/// back-off.
const SYNC_DELAY: Duration = Duration::from_secs(1);

/// Ensure the image of `c` is on the node and return its wasm bytes, or `None` when
/// it cannot ever be (an invalid name). Until then the container waits: `event`
/// records an event about the container, `waiting(reason, message)` sets and
/// reports its waiting state.
pub(super) async fn ensure_image<E, EF, W, WF>(
    k: &Kubelet,
    pod: &Pod,
    c: &Container,
    event: E,
    waiting: W,
) -> Option<Cow<'static, [u8]>>
where
    E: Fn(Kind, &'static str, String) -> EF,
    EF: Future<Output = ()>,
    W: Fn(&'static str, String) -> WF,
    WF: Future<Output = ()>,
{
    let requested = c.image.clone().unwrap_or_default();
    if let Some(bytes) = images::builtin(&requested) {
        event(Kind::Normal, "Pulled", already_present(&requested)).await;
        return Some(Cow::Borrowed(bytes));
    }
    let r: Reference = match requested.parse() {
        Ok(r) => r,
        Err(e) => {
            let msg = format!(
                "Failed to apply default image tag {requested:?}: couldn't parse image reference {requested:?}: {e}"
            );
            event(Kind::Warning, "InspectFailed", msg.clone()).await;
            event(Kind::Warning, "Failed", "Error: InvalidImageName".into()).await;
            waiting("InvalidImageName", msg).await;
            return None;
        }
    };
    let policy = c
        .image_pull_policy
        .clone()
        .unwrap_or_else(|| default_policy(&r).into());
    let mut backoff = k.backoff.image;
    let mut never_reported = false;
    loop {
        let present = lookup(&k.images, &r).await;
        if policy != "Always"
            && let Some((_, bytes)) = &present
        {
            event(Kind::Normal, "Pulled", already_present(&requested)).await;
            return Some(Cow::Owned(bytes.clone()));
        }
        if policy == "Never" {
            // The kubelet re-checks on every pod sync; an `image import` ends the wait.
            if !never_reported {
                let msg = format!(
                    "Container image {requested:?} is not present with pull policy of Never"
                );
                event(Kind::Warning, "ErrImageNeverPull", msg.clone()).await;
                event(Kind::Warning, "Failed", "Error: ErrImageNeverPull".into()).await;
                waiting("ErrImageNeverPull", msg).await;
                never_reported = true;
            }
            tokio::time::sleep(k.backoff.image).await;
            continue;
        }
        event(
            Kind::Normal,
            "Pulling",
            format!("Pulling image {requested:?}"),
        )
        .await;
        let started = Instant::now();
        match fetch(k, pod, &r, present.map(|(i, _)| i), &event).await {
            Ok((bytes, size)) => {
                let took = go_duration(started.elapsed());
                event(
                    Kind::Normal,
                    "Pulled",
                    format!(
                        "Successfully pulled image {requested:?} in {took} ({took} including waiting). Image size: {size} bytes."
                    ),
                )
                .await;
                return Some(Cow::Owned(bytes));
            }
            Err(msg) => {
                tracing::info!(image = %requested, error = %msg, "image pull failed");
                event(
                    Kind::Warning,
                    "Failed",
                    format!("Failed to pull image {requested:?}: {msg}"),
                )
                .await;
                event(Kind::Warning, "Failed", "Error: ErrImagePull".into()).await;
                waiting("ErrImagePull", msg.clone()).await;
                let pause = SYNC_DELAY.min(backoff);
                tokio::time::sleep(pause).await;
                event(
                    Kind::Normal,
                    "BackOff",
                    format!("Back-off pulling image {requested:?}"),
                )
                .await;
                event(Kind::Warning, "Failed", "Error: ImagePullBackOff".into()).await;
                waiting(
                    "ImagePullBackOff",
                    format!("Back-off pulling image {requested:?}: ErrImagePull: {msg}"),
                )
                .await;
                tokio::time::sleep(backoff.saturating_sub(pause)).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn already_present(requested: &str) -> String {
    format!("Container image {requested:?} already present on machine")
}

/// What API defaulting sets when the pod did not say: `Always` for `:latest` (or
/// no tag), else `IfNotPresent`.
fn default_policy(r: &Reference) -> &'static str {
    if r.digest().is_none() && r.tag() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// The stored image `r` names and its bytes, if present and intact.
async fn lookup(store: &Store, r: &Reference) -> Option<(Image, Vec<u8>)> {
    let (store, r) = (store.clone(), r.clone());
    let found = tokio::task::spawn_blocking(move || {
        let image = store
            .get(&r)?
            .ok_or_else(|| images::Error::NotFound(r.to_string()))?;
        let bytes = store.read(&image)?;
        Ok::<_, images::Error>((image, bytes))
    })
    .await;
    match found {
        Ok(Ok(found)) => Some(found),
        Ok(Err(e)) if e.is_not_found() => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "reading the image store; pulling again");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading the image store");
            None
        }
    }
}

/// The pod's `imagePullSecrets` that exist; a missing one is reported as the
/// kubelet reports it, and the pull goes on without it.
async fn pull_secrets<E, EF>(k: &Kubelet, pod: &Pod, event: &E) -> Vec<Secret>
where
    E: Fn(Kind, &'static str, String) -> EF,
    EF: Future<Output = ()>,
{
    let names: Vec<String> = pod
        .spec
        .as_ref()
        .and_then(|s| s.image_pull_secrets.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.name)
        .filter(|n| !n.is_empty())
        .collect();
    let Some(ns) = pod.metadata.namespace.as_deref() else {
        return Vec::new();
    };
    let api: Api<Secret> = Api::namespaced(k.client.clone(), ns);
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for name in names {
        match api.get_opt(&name).await {
            Ok(Some(s)) => found.push(s),
            _ => missing.push(name),
        }
    }
    if !missing.is_empty() {
        event(
            Kind::Warning,
            "FailedToRetrieveImagePullSecret",
            format!(
                "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                missing.join(", ")
            ),
        )
        .await;
    }
    found
}

/// Pull `r` into the store (or confirm the stored copy is what the registry has)
/// and return its bytes and size; the error is the message the kubelet shows.
async fn fetch<E, EF>(
    k: &Kubelet,
    pod: &Pod,
    r: &Reference,
    present: Option<Image>,
    event: &E,
) -> Result<(Vec<u8>, u64), String>
where
    E: Fn(Kind, &'static str, String) -> EF,
    EF: Future<Output = ()>,
{
    let failed =
        |e: &dyn std::fmt::Display| format!("failed to pull and unpack image \"{r}\": {e}");
    if r.registry() == images::DEFAULT_REGISTRY && r.repository().starts_with("minke/") {
        let builtins: Vec<_> = images::builtin_names().collect();
        return Err(failed(&format!(
            "minke/ names only the built-in images ({}), which are never pulled",
            builtins.join(", ")
        )));
    }
    let secrets = pull_secrets(k, pod, event).await;
    let creds = images::credentials_for(r.registry(), &secrets);
    let attempts: Vec<Option<&Credentials>> = if creds.is_empty() {
        vec![None]
    } else {
        creds.iter().map(Some).collect()
    };
    let mut last = None;
    for creds in attempts {
        // `Always` with the image present: a HEAD request says whether the registry
        // still has the same manifest, and nothing is downloaded if so.
        if let Some(image) = &present
            && let Some(have) = &image.repo_digest
            && let Ok(now) = registry::resolve(r, creds).await
            && &now == have
            && let Some((_, bytes)) = lookup(&k.images, r).await
        {
            return Ok((bytes, image.size));
        }
        match registry::pull(r, creds).await {
            Ok(pulled) => {
                let (store, r2) = (k.images.clone(), r.clone());
                let stored = tokio::task::spawn_blocking(move || {
                    store.put(
                        &r2,
                        &pulled.bytes,
                        "registry",
                        Some(&pulled.manifest_digest),
                    )?;
                    Ok::<_, images::Error>(pulled.bytes)
                })
                .await
                .map_err(|e| failed(&e))?
                .map_err(|e| failed(&e))?;
                let size = stored.len() as u64;
                return Ok((stored, size));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| failed(&"no attempt made"), |e| failed(&e)))
}

/// A duration as Go prints a `time.Duration` truncated to milliseconds, as the
/// kubelet's `Pulled` event does: `0s`, `313ms`, `1.5s`, `1m2.345s`.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, frac) = (rem / 1000, rem % 1000);
    let mut secs = s.to_string();
    if frac > 0 {
        let f = format!("{frac:03}");
        secs.push('.');
        secs.push_str(f.trim_end_matches('0'));
    }
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_micros(900)), "0s");
        assert_eq!(go_duration(ms(313)), "313ms");
        assert_eq!(go_duration(ms(1000)), "1s");
        assert_eq!(go_duration(ms(1500)), "1.5s");
        assert_eq!(go_duration(ms(62_345)), "1m2.345s");
        assert_eq!(go_duration(ms(3_600_000)), "1h0m0s");
    }

    #[test]
    fn pull_policy_defaults_follow_the_tag() {
        let p = |s: &str| default_policy(&s.parse().expect("ref"));
        assert_eq!(p("app"), "Always");
        assert_eq!(p("app:latest"), "Always");
        assert_eq!(p("app:v1"), "IfNotPresent");
        assert_eq!(p(&format!("app@sha256:{}", "c".repeat(64))), "IfNotPresent");
    }
}
