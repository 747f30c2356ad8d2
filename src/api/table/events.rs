//! The event row, shared by core/v1 events and events.k8s.io/v1 events (the same objects under two field layouts).

use jiff::Timestamp;
use serde_json::Value;

use super::format::{Obj, since};
use super::{Column, docs};

/// Event columns. Unlike every other kind, NAME is not first: it is a wide column at the end.
pub(super) fn columns() -> Vec<Column> {
    let mut name = Column::name();
    name.priority = 1;
    vec![
        Column::new("Last Seen", "string", docs::EVENT_LAST_TIMESTAMP),
        Column::new("Type", "string", docs::EVENT_TYPE),
        Column::new("Reason", "string", docs::EVENT_REASON),
        Column::new("Object", "string", docs::EVENT_INVOLVED_OBJECT),
        Column::wide("Subobject", "string", docs::OBJECT_REFERENCE_FIELD_PATH),
        Column::wide("Source", "string", docs::EVENT_SOURCE),
        Column::new("Message", "string", docs::EVENT_MESSAGE),
        Column::wide("First Seen", "string", docs::EVENT_FIRST_TIMESTAMP),
        Column::wide("Count", "string", docs::EVENT_COUNT),
        name,
    ]
}

/// Where each piece of an event lives in one of the two API layouts.
struct Layout {
    regarding: &'static str,
    source: &'static str,
    first_timestamp: &'static str,
    last_timestamp: &'static str,
    count: &'static str,
    reporting_controller: &'static str,
    message: &'static str,
}

const CORE: Layout = Layout {
    regarding: "involvedObject",
    source: "source",
    first_timestamp: "firstTimestamp",
    last_timestamp: "lastTimestamp",
    count: "count",
    // core/v1 spells ReportingController "reportingComponent" on the wire.
    reporting_controller: "reportingComponent",
    message: "message",
};

const EVENTS_API: Layout = Layout {
    regarding: "regarding",
    source: "deprecatedSource",
    first_timestamp: "deprecatedFirstTimestamp",
    last_timestamp: "deprecatedLastTimestamp",
    count: "deprecatedCount",
    reporting_controller: "reportingController",
    message: "note",
};

pub(super) fn core_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    event_cells(Obj(obj), &CORE, now)
}

pub(super) fn events_api_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    event_cells(Obj(obj), &EVENTS_API, now)
}

/// printEvent: old-style timestamps first, falling back to eventTime and series for events
/// written through the newer API.
fn event_cells(e: Obj, layout: &Layout, now: Timestamp) -> Vec<Value> {
    let first_seen = match e.time(&[layout.first_timestamp]) {
        Some(t) => since(Some(t), now),
        None => since(e.time(&["eventTime"]), now),
    };
    let mut last_seen = match e.time(&[layout.last_timestamp]) {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = e.int(&[layout.count]);
    if e.has(&["series"]) {
        last_seen = since(e.time(&["series", "lastObservedTime"]), now);
        count = e.int(&["series", "count"]);
    } else if count == 0 {
        // Singleton events don't have a count set in the new API.
        count = 1;
    }

    let regarding = e.child(&[layout.regarding]);
    let kind = regarding.str(&["kind"]).to_lowercase();
    let target = match regarding.str(&["name"]) {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let component = first_non_empty(
        e.str(&[layout.source, "component"]),
        e.str(&[layout.reporting_controller]),
    );
    let host = first_non_empty(
        e.str(&[layout.source, "host"]),
        e.str(&["reportingInstance"]),
    );
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };

    vec![
        last_seen.into(),
        e.str(&["type"]).into(),
        e.str(&["reason"]).into(),
        target.into(),
        regarding.str(&["fieldPath"]).into(),
        source.into(),
        e.str(&[layout.message]).trim().into(),
        first_seen.into(),
        count.into(),
        e.name().into(),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().expect("valid timestamp")
    }

    #[test]
    fn core_event_shows_last_seen_object_and_wide_details() {
        let obj = json!({
            "metadata": {"name": "web-0.17c2a", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{web}"},
            "reason": "Pulled", "type": "Normal", "message": "Successfully pulled image \"nginx\"\n",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2024-05-01T11:00:00Z", "lastTimestamp": "2024-05-01T11:58:00Z", "count": 4
        });
        assert_eq!(
            core_cells(&obj, now()),
            [
                json!("2m"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/web-0"),
                json!("spec.containers{web}"),
                json!("kubelet, node-1"),
                json!("Successfully pulled image \"nginx\""),
                json!("60m"),
                json!(4),
                json!("web-0.17c2a")
            ]
        );
    }

    #[test]
    fn event_without_old_timestamps_uses_event_time_and_counts_one() {
        let obj = json!({
            "metadata": {"name": "e"}, "involvedObject": {"kind": "Node"}, "type": "Warning", "reason": "Rebooted",
            "eventTime": "2024-05-01T11:59:30.123456Z", "reportingComponent": "kubelet", "reportingInstance": "node-2"
        });
        let row = core_cells(&obj, now());
        assert_eq!(
            (&row[0], &row[3], &row[5], &row[7], &row[8]),
            (
                &json!("29s"),
                &json!("node"),
                &json!("kubelet, node-2"),
                &json!("29s"),
                &json!(1)
            )
        );
    }

    #[test]
    fn events_api_event_reads_regarding_note_and_series() {
        let obj = json!({
            "metadata": {"name": "job.1"}, "regarding": {"kind": "Job", "name": "backup"},
            "note": "Created pod: backup-x", "type": "Normal", "reason": "SuccessfulCreate",
            "eventTime": "2024-05-01T10:00:00.000000Z", "reportingController": "job-controller",
            "series": {"count": 7, "lastObservedTime": "2024-05-01T11:59:00.000000Z"}
        });
        let row = events_api_cells(&obj, now());
        assert_eq!(
            row,
            [
                json!("60s"),
                json!("Normal"),
                json!("SuccessfulCreate"),
                json!("job/backup"),
                json!(""),
                json!("job-controller"),
                json!("Created pod: backup-x"),
                json!("120m"),
                json!(7),
                json!("job.1")
            ]
        );
    }

    #[test]
    fn event_with_no_times_at_all_is_unknown() {
        let row = core_cells(&json!({}), now());
        assert_eq!(
            (&row[0], &row[7]),
            (&json!("<unknown>"), &json!("<unknown>"))
        );
    }
}
