//! Wall-clock timestamps in the form Kubernetes writes them.

/// Now, as RFC 3339 with second precision (`2026-11-23T19:00:00Z`).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
