//! Wall-clock timestamps in the form Kubernetes writes them.

/// Now, as RFC 3339 with second precision (`2026-11-23T19:00:00Z`).
pub fn now() -> String {
    in_seconds(0)
}

/// `seconds` from now, in the same form (a pod's graceful deletionTimestamp).
pub fn in_seconds(seconds: i64) -> String {
    let at = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .unwrap_or(jiff::Timestamp::MAX);
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
