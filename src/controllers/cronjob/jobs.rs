//! The Jobs a CronJob makes: named `<cronjob>-<minutes since the epoch>` of their
//! start, carrying the template's metadata and spec plus the scheduled time in Go's
//! RFC 3339 form, controlled by the CronJob; and when a Job counts as finished.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::ResourceExt;

use crate::controllers::pods;

/// The annotation carrying a Job's scheduled time (RFC 3339, in the CronJob's zone).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// A finished Job's final condition (`Complete` or `Failed`), if it has one.
pub(super) fn finished(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    ["Complete", "Failed"].into_iter().find(|t| {
        conditions
            .iter()
            .any(|c| c.type_ == *t && c.status == "True")
    })
}

/// `<cronjob>-<scheduled time in minutes since the epoch>`: one name per start, so a
/// start is never run twice.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// The Job for the start at `scheduled`: the template's labels, annotations and
/// spec, the scheduled-time annotation (in the CronJob's zone, UTC without one),
/// controlled by the CronJob.
pub(super) fn job_for(
    cj: &CronJob,
    name: &str,
    scheduled: Timestamp,
    zone: Option<&TimeZone>,
) -> Job {
    let template = &cj.spec.job_template;
    let meta = template.metadata.clone().unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        rfc3339(scheduled, zone.cloned().unwrap_or(TimeZone::UTC)),
    );
    Job {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.to_string()),
            namespace: cj.namespace(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![pods::owner_ref(cj)]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Go's `time.RFC3339` in `tz`: `Z` for a zero offset, else `±hh:mm`.
pub(super) fn rfc3339(t: Timestamp, tz: TimeZone) -> String {
    let z = t.to_zoned(tz);
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// Go's `time.RFC1123Z` in UTC (`Mon, 02 Jan 2006 15:04:05 +0000`).
pub(super) fn rfc1123z(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC)
        .strftime("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn jobs_are_named_by_the_minute_of_their_start() {
        assert_eq!(
            job_name("hello", at("2026-03-01T10:05:00Z")),
            "hello-29539325"
        );
        assert_eq!(
            job_name("hello", at("2026-03-01T10:05:59Z")),
            "hello-29539325",
            "one name per minute"
        );
    }

    #[test]
    fn the_scheduled_time_is_written_as_go_writes_rfc3339() {
        let t = at("2026-03-01T10:05:00Z");
        assert_eq!(rfc3339(t, TimeZone::UTC), "2026-03-01T10:05:00Z");
        let kolkata = TimeZone::get("Asia/Kolkata").expect("zone");
        assert_eq!(rfc3339(t, kolkata), "2026-03-01T15:35:00+05:30");
        assert_eq!(rfc1123z(t), "Sun, 01 Mar 2026 10:05:00 +0000");
    }

    #[test]
    fn a_job_takes_the_templates_metadata_and_spec_and_is_owned() {
        let cj: CronJob = serde_json::from_value(json!({
            "metadata": {"name": "hello", "namespace": "default", "uid": "u1"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {
                "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
                "spec": {"template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "minke/hello"}]}}}}}
        }))
        .expect("cronjob");
        let t = at("2026-03-01T10:05:00Z");
        let job = job_for(&cj, &job_name("hello", t), t, None);
        assert_eq!(job.name_any(), "hello-29539325");
        assert_eq!(job.labels().get("team").map(String::as_str), Some("a"));
        assert_eq!(job.annotations().get("note").map(String::as_str), Some("x"));
        assert_eq!(
            job.annotations()
                .get(SCHEDULED_TIMESTAMP)
                .map(String::as_str),
            Some("2026-03-01T10:05:00Z")
        );
        let owner = pods::controller_of(&job.metadata).expect("owner");
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("CronJob", "u1"));
        assert!(job.spec.is_some());
    }
}
