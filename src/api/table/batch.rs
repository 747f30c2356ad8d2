//! Rows for the batch group: jobs (status, completions, duration) and cron jobs.

use jiff::Timestamp;
use serde_json::Value;

use super::format::{NONE, Obj, UNKNOWN, UNSET, between, container_cells, since};
use super::selector::format_label_selector;
use super::workloads::{CONTAINERS, IMAGES};
use super::{Column, docs};

pub(super) fn job_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Status", "string", "Status of the job."),
        Column::new("Completions", "string", docs::JOB_STATUS_SUCCEEDED),
        Column::new("Duration", "string", "Time required to complete the job."),
        Column::age(),
        Column::wide("Containers", "string", CONTAINERS),
        Column::wide("Images", "string", IMAGES),
        Column::wide("Selector", "string", docs::JOB_SPEC_SELECTOR),
    ]
}

pub(super) fn job_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let job = Obj(obj);
    let succeeded = job.int(&["status", "succeeded"]);
    let completions = match job.opt_int(&["spec", "completions"]) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => match job.int(&["spec", "parallelism"]) {
            // A work-queue job: done after one success, however many pods run at once.
            parallelism if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        job.time(&["status", "startTime"]),
        job.time(&["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => since(Some(start), now),
        (Some(start), Some(end)) => between(start, end),
    };
    let (names, images) = container_cells(job.child(&["spec", "template", "spec"]));
    vec![
        job.name().into(),
        job_status(job).into(),
        completions.into(),
        duration.into(),
        job.age(now),
        names,
        images,
        format_label_selector(job.at(&["spec", "selector"])).into(),
    ]
}

/// The job's state in Go's order of precedence. A condition counts only if the first one of its
/// type is True; SuccessCriteriaMet was added by kubernetes/kubernetes#132832.
fn job_status(job: Obj) -> &'static str {
    let is = |type_: &str| job.condition(type_) == Some("True");
    if is("Complete") {
        "Complete"
    } else if is("Failed") {
        "Failed"
    } else if job.has(&["metadata", "deletionTimestamp"]) {
        "Terminating"
    } else if is("Suspended") {
        "Suspended"
    } else if is("FailureTarget") {
        "FailureTarget"
    } else if is("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

pub(super) fn cron_job_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Schedule", "string", docs::CRON_JOB_SPEC_SCHEDULE),
        Column::new("Timezone", "string", docs::CRON_JOB_SPEC_TIME_ZONE),
        Column::new("Suspend", "boolean", docs::CRON_JOB_SPEC_SUSPEND),
        Column::new("Active", "integer", docs::CRON_JOB_STATUS_ACTIVE),
        Column::new(
            "Last Schedule",
            "string",
            docs::CRON_JOB_STATUS_LAST_SCHEDULE_TIME,
        ),
        Column::age(),
        Column::wide("Containers", "string", CONTAINERS),
        Column::wide("Images", "string", IMAGES),
        Column::wide("Selector", "string", docs::JOB_SPEC_SELECTOR),
    ]
}

/// SUSPEND is printed as the strings "True"/"False"/"<unset>" although the column says boolean,
/// exactly as Go's printBoolPtr does.
pub(super) fn cron_job_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let cj = Obj(obj);
    let suspend = match cj.opt_bool(&["spec", "suspend"]) {
        Some(true) => "True",
        Some(false) => "False",
        None => UNSET,
    };
    let last_schedule = match cj.time(&["status", "lastScheduleTime"]) {
        Some(t) => since(Some(t), now),
        // A present-but-zero time still goes through translateTimestampSince in Go.
        None if cj.has(&["status", "lastScheduleTime"]) => UNKNOWN.to_string(),
        None => NONE.to_string(),
    };
    let job_spec = cj.child(&["spec", "jobTemplate", "spec"]);
    let (names, images) = container_cells(job_spec.child(&["template", "spec"]));
    vec![
        cj.name().into(),
        cj.str(&["spec", "schedule"]).into(),
        cj.opt_str(&["spec", "timeZone"]).unwrap_or(NONE).into(),
        suspend.into(),
        cj.len(&["status", "active"]).into(),
        last_schedule.into(),
        cj.age(now),
        names,
        images,
        format_label_selector(job_spec.at(&["selector"])).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().expect("valid timestamp")
    }

    fn job(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "pi", "creationTimestamp": "2024-05-01T11:00:00Z"}, "spec": spec, "status": status})
    }

    #[test]
    fn complete_job_shows_completions_and_how_long_it_took() {
        let obj = job(
            json!({"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}},
                   "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}]}}}),
            json!({"succeeded": 1, "startTime": "2024-05-01T11:00:01Z", "completionTime": "2024-05-01T11:00:38Z",
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}),
        );
        assert_eq!(
            job_cells(&obj, now()),
            [
                json!("pi"),
                json!("Complete"),
                json!("1/1"),
                json!("37s"),
                json!("60m"),
                json!("pi"),
                json!("perl:5.34"),
                json!("batch.kubernetes.io/controller-uid=abc")
            ]
        );
    }

    #[test]
    fn running_work_queue_job_counts_against_its_parallelism() {
        let obj = job(
            json!({"parallelism": 4}),
            json!({"succeeded": 2, "startTime": "2024-05-01T11:57:00Z"}),
        );
        let row = job_cells(&obj, now());
        assert_eq!(
            &row[1..4],
            [json!("Running"), json!("2/1 of 4"), json!("3m")]
        );
    }

    #[test]
    fn job_status_follows_conditions_and_deletion() {
        let with = |conditions: Value| {
            job_cells(&job(json!({}), json!({"conditions": conditions})), now())[1].clone()
        };
        assert_eq!(
            with(json!([{"type": "Failed", "status": "True"}])),
            json!("Failed")
        );
        assert_eq!(
            with(json!([{"type": "Suspended", "status": "True"}])),
            json!("Suspended")
        );
        assert_eq!(
            with(json!([{"type": "FailureTarget", "status": "True"}])),
            json!("FailureTarget")
        );
        assert_eq!(
            with(json!([{"type": "SuccessCriteriaMet", "status": "True"}])),
            json!("SuccessCriteriaMet")
        );
        assert_eq!(
            with(json!([{"type": "Complete", "status": "False"}])),
            json!("Running")
        );
        let mut deleting = job(json!({}), json!({}));
        deleting["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
        assert_eq!(
            job_cells(&deleting, now())[1..4],
            [json!("Terminating"), json!("0/1"), json!("")]
        );
    }

    #[test]
    fn cron_job_shows_schedule_suspend_and_last_schedule() {
        let obj = json!({"metadata": {"name": "backup", "creationTimestamp": "2024-04-01T00:00:00Z"},
            "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "suspend": false,
                     "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "restic"}]}}}}},
            "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": "2024-05-01T11:55:00Z"}});
        assert_eq!(
            cron_job_cells(&obj, now()),
            [
                json!("backup"),
                json!("*/5 * * * *"),
                json!("Etc/UTC"),
                json!("False"),
                json!(1),
                json!("5m"),
                json!("30d"),
                json!("b"),
                json!("restic"),
                json!("<none>")
            ]
        );
        let bare = cron_job_cells(&json!({"spec": {"schedule": "@daily"}}), now());
        assert_eq!(
            (&bare[2], &bare[3], &bare[5]),
            (&json!("<none>"), &json!("<unset>"), &json!("<none>"))
        );
    }
}
