//! CronJobs with the real kubectl and a CronJob clock the tests move forward: Jobs
//! named for their start minute and annotated with it, history limits, Forbid and
//! Replace, suspend, time zones, too many missed starts, `kubectl create job
//! --from=cronjob/…`, the `kubectl get cronjob` table and validation messages.

use crate::common;

use std::time::Duration;

use common::TestCluster;
use k8s_openapi::api::batch::v1::CronJob;
use kube::api::Api;
use kube::runtime::wait::await_condition;
use minke::controllers::cronjob::Clock;

const WAIT: &str = "--timeout=60s";
const MINUTE: Duration = Duration::from_secs(60);

fn cronjob(name: &str, schedule: &str, extra: &str, image: &str) -> String {
    format!(
        r#"{{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {{"name": "{name}"}},
  "spec": {{"schedule": "{schedule}", {extra}
    "jobTemplate": {{"metadata": {{"labels": {{"cron": "{name}"}}}},
      "spec": {{"template": {{"spec": {{"restartPolicy": "Never",
        "containers": [{{"name": "c", "image": "{image}"}}]}}}}}}}}}}}}"#
    )
}

async fn with_clock() -> (TestCluster, Clock) {
    let clock = Clock::system();
    let c = TestCluster::start_with(|b| b.cronjob_clock(clock.clone())).await;
    (c, clock)
}

/// Wait until the CronJob satisfies `cond` (a watch, at most 60 s).
async fn until(c: &TestCluster, name: &str, cond: impl Fn(&CronJob) -> bool) -> CronJob {
    let api: Api<CronJob> = Api::default_namespaced(c.cluster.client());
    let found = tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(api, name, move |cj: Option<&CronJob>| cj.is_some_and(&cond)),
    )
    .await
    .expect("in time")
    .expect("watch");
    found.expect("the cronjob exists")
}

fn last_schedule(cj: &CronJob) -> Option<jiff::Timestamp> {
    cj.status.as_ref()?.last_schedule_time.as_ref().map(|t| t.0)
}

fn active(cj: &CronJob) -> usize {
    cj.status
        .as_ref()
        .and_then(|s| s.active.as_ref())
        .map_or(0, Vec::len)
}

/// Poll `kubectl` until `check` holds on its output (at most 60 s).
async fn eventually(c: &TestCluster, args: &[&str], check: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..240 {
        last = c.ok(args).await;
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "kubectl {} never satisfied the check; last output:\n{last}",
        args.join(" ")
    );
}

async fn job_names(c: &TestCluster, cron: &str) -> Vec<String> {
    let out = c
        .ok(&[
            "get",
            "jobs",
            "-l",
            &format!("cron={cron}"),
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .await;
    let mut names: Vec<String> = out.split_whitespace().map(String::from).collect();
    names.sort();
    names
}

async fn events(c: &TestCluster, name: &str) -> String {
    c.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={name}"),
        "-o",
        r#"jsonpath={range .items[*]}{.type} {.reason}: {.message}{"\n"}{end}"#,
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_start_creates_a_job_named_for_its_minute_which_runs_to_completion() {
    let (c, clock) = with_clock().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &cronjob("hello", "*/5 * * * *", "", "minke/hello"),
    )
    .await;
    let table = c.ok(&["get", "cronjob", "hello"]).await;
    let mut lines = table.lines();
    assert_eq!(
        lines
            .next()
            .map(|h| h.split_whitespace().collect::<Vec<_>>()),
        Some(vec![
            "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"
        ]),
        "{table}"
    );
    let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
    assert_eq!(
        &row[..10],
        [
            "hello", "*/5", "*", "*", "*", "*", "<none>", "False", "0", "<none>"
        ],
        "{table}"
    );

    clock.advance(5 * MINUTE);
    let cj = until(&c, "hello", |cj| last_schedule(cj).is_some()).await;
    let scheduled = last_schedule(&cj).expect("scheduled");
    assert_eq!(
        scheduled.as_second() % 300,
        0,
        "a five-minute mark: {scheduled}"
    );
    let job = format!("hello-{}", scheduled.as_second() / 60);
    assert!(job_names(&c, "hello").await.contains(&job));
    let get = |path: &str| {
        let (c, job, path) = (&c, job.clone(), path.to_string());
        async move {
            c.ok(&["get", "job", &job, "-o", &format!("jsonpath={path}")])
                .await
        }
    };
    assert_eq!(
        get("{.metadata.annotations.batch\\.kubernetes\\.io/cronjob-scheduled-timestamp}").await,
        scheduled.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    );
    assert_eq!(
        get("{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}").await,
        "CronJob/hello/true"
    );
    c.ok(&[
        "wait",
        "--for=condition=Complete",
        &format!("job/{job}"),
        WAIT,
    ])
    .await;
    let cj = until(&c, "hello", |cj| {
        active(cj) == 0
            && cj
                .status
                .as_ref()
                .is_some_and(|s| s.last_successful_time.is_some())
    })
    .await;
    assert_eq!(last_schedule(&cj), Some(scheduled));
    let seen = events(&c, "hello").await;
    assert!(
        seen.contains(&format!("Normal SuccessfulCreate: Created job {job}")),
        "{seen}"
    );
    assert!(
        seen.contains(&format!(
            "Normal SawCompletedJob: Saw completed job: {job}, status: Complete"
        )),
        "{seen}"
    );
    let table = c.ok(&["get", "cronjob", "hello"]).await;
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .expect("row")
        .split_whitespace()
        .collect();
    assert_ne!(row[9], "<none>", "LAST SCHEDULE is set: {table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_newest_finished_jobs_are_kept() {
    let (c, clock) = with_clock().await;
    let limits = r#""successfulJobsHistoryLimit": 2,"#;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &cronjob("tick", "* * * * *", limits, "minke/hello"),
    )
    .await;
    let mut made = Vec::new();
    for _ in 0..4 {
        let before = until(&c, "tick", |_| true).await;
        let previous = last_schedule(&before);
        clock.advance(MINUTE);
        let cj = until(&c, "tick", move |cj| last_schedule(cj) != previous).await;
        let job = format!(
            "tick-{}",
            last_schedule(&cj).expect("scheduled").as_second() / 60
        );
        c.ok(&[
            "wait",
            "--for=condition=Complete",
            &format!("job/{job}"),
            WAIT,
        ])
        .await;
        made.push(job);
    }
    eventually(
        &c,
        &["get", "jobs", "-l", "cron=tick", "-o", "name"],
        |out| out.lines().count() == 2,
    )
    .await;
    // The newest two remain (the system clock may have added a start of its own,
    // which is newer still).
    let minute = |job: &str| {
        job.trim_start_matches("tick-")
            .parse::<i64>()
            .expect("minute")
    };
    let kept = job_names(&c, "tick").await;
    assert!(
        kept.iter().all(|j| minute(j) >= minute(&made[2])),
        "{kept:?} of {made:?}"
    );
    let seen = events(&c, "tick").await;
    assert!(
        seen.contains(&format!("Normal SuccessfulDelete: Deleted job {}", made[0])),
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbid_skips_a_start_while_a_job_runs_and_replace_swaps_it() {
    let (c, clock) = with_clock().await;
    // minke/echo serves forever: the Job stays active.
    let forbid = r#""concurrencyPolicy": "Forbid","#;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &cronjob("serve", "* * * * *", forbid, "minke/echo"),
    )
    .await;
    clock.advance(MINUTE);
    let cj = until(&c, "serve", |cj| active(cj) == 1).await;
    let first = format!(
        "serve-{}",
        last_schedule(&cj).expect("scheduled").as_second() / 60
    );
    clock.advance(MINUTE);
    eventually(
        &c,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=serve",
        ],
        |out| out.contains("JobAlreadyActive"),
    )
    .await;
    assert_eq!(
        job_names(&c, "serve").await,
        std::slice::from_ref(&first),
        "no second job"
    );
    let seen = events(&c, "serve").await;
    assert!(
        seen.contains("Normal JobAlreadyActive: Not starting job because prior execution is running and concurrency policy is Forbid"),
        "{seen}"
    );

    // Replace: the start that was skipped runs now, in place of the running Job.
    c.ok(&[
        "patch",
        "cronjob",
        "serve",
        "-p",
        r#"{"spec":{"concurrencyPolicy":"Replace"}}"#,
    ])
    .await;
    let replaced = first.clone();
    let cj = until(&c, "serve", move |cj| {
        last_schedule(cj).is_some_and(|t| format!("serve-{}", t.as_second() / 60) != replaced)
    })
    .await;
    let second = format!(
        "serve-{}",
        last_schedule(&cj).expect("scheduled").as_second() / 60
    );
    assert_eq!(active(&cj), 1);
    let seen = events(&c, "serve").await;
    assert!(
        seen.contains(&format!("Normal SuccessfulDelete: Deleted job {first}")),
        "{seen}"
    );
    let left = eventually(
        &c,
        &["get", "jobs", "-l", "cron=serve", "-o", "name"],
        |out| out.lines().count() == 1,
    )
    .await;
    assert_ne!(
        left.trim(),
        format!("job.batch/{first}"),
        "the first job was replaced"
    );
    assert!(!second.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_cronjob_starts_nothing_until_resumed() {
    let (c, clock) = with_clock().await;
    let suspended = r#""suspend": true,"#;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &cronjob("paused", "* * * * *", suspended, "minke/hello"),
    )
    .await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &cronjob("running", "* * * * *", "", "minke/hello"),
    )
    .await;
    clock.advance(2 * MINUTE);
    until(&c, "running", |cj| last_schedule(cj).is_some()).await;
    let table = c.ok(&["get", "cronjob", "paused"]).await;
    assert!(table.contains(" True "), "SUSPEND: {table}");
    assert!(job_names(&c, "paused").await.is_empty());
    c.ok(&[
        "patch",
        "cronjob",
        "paused",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ])
    .await;
    // The latest missed start runs on resume.
    let cj = until(&c, "paused", |cj| last_schedule(cj).is_some()).await;
    assert_eq!(job_names(&c, "paused").await.len(), 1, "{cj:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_too_many_missed_starts_only_the_latest_runs_with_a_warning() {
    let (c, clock) = with_clock().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &cronjob("late", "* * * * *", "", "minke/hello"),
    )
    .await;
    clock.advance(3 * 60 * MINUTE);
    let cj = until(&c, "late", |cj| last_schedule(cj).is_some()).await;
    let scheduled = last_schedule(&cj).expect("scheduled");
    let now = clock.now();
    assert!(
        now.duration_since(scheduled).as_secs() < 60,
        "the latest start: {scheduled} at {now}"
    );
    let job = format!("late-{}", scheduled.as_second() / 60);
    assert!(job_names(&c, "late").await.contains(&job));
    let seen = events(&c, "late").await;
    assert!(
        seen.contains("Warning TooManyMissedTimes: too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"),
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_zone_moves_the_schedule_and_the_scheduled_annotation() {
    let (c, clock) = with_clock().await;
    // 30 past the hour in Kolkata (UTC+05:30) is on the hour in UTC.
    let zone = r#""timeZone": "Asia/Kolkata","#;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &cronjob("zoned", "30 * * * *", zone, "minke/hello"),
    )
    .await;
    clock.advance(61 * MINUTE);
    let cj = until(&c, "zoned", |cj| last_schedule(cj).is_some()).await;
    let scheduled = last_schedule(&cj).expect("scheduled");
    assert_eq!(scheduled.as_second() % 3600, 0, "{scheduled}");
    let job = format!("zoned-{}", scheduled.as_second() / 60);
    let stamp = c
        .ok(&[
            "get",
            "job",
            &job,
            "-o",
            "jsonpath={.metadata.annotations.batch\\.kubernetes\\.io/cronjob-scheduled-timestamp}",
        ])
        .await;
    assert!(stamp.ends_with(":30:00+05:30"), "{stamp}");
    let table = c.ok(&["get", "cronjob", "zoned"]).await;
    assert!(table.contains("Asia/Kolkata"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_can_be_created_by_hand_from_a_cronjob() {
    let c = TestCluster::start().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &cronjob("hello", "@daily", "", "minke/hello"),
    )
    .await;
    let out = c
        .ok(&["create", "job", "manual", "--from=cronjob/hello"])
        .await;
    assert_eq!(out.trim(), "job.batch/manual created");
    c.ok(&["wait", "--for=condition=Complete", "job/manual", WAIT])
        .await;
    let meta = c
        .ok(&["get", "job", "manual", "-o", "jsonpath={.metadata.annotations.cronjob\\.kubernetes\\.io/instantiate} {.metadata.ownerReferences[0].kind} {.metadata.labels.cron}"])
        .await;
    assert_eq!(meta, "manual CronJob hello");
    let logs = c.ok(&["logs", "job/manual"]).await;
    assert!(!logs.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_and_time_zones_are_validated_as_kubernetes_does() {
    let c = TestCluster::start().await;
    let err = c
        .fails_stdin(
            &["apply", "-f", "-"],
            &cronjob("bad", "61 * * * *", "", "minke/hello"),
        )
        .await;
    assert!(
        err.contains(r#"The CronJob "bad" is invalid: spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61"#),
        "{err}"
    );
    let err = c
        .fails_stdin(
            &["apply", "-f", "-"],
            &cronjob(
                "bad",
                "0 9 * * *",
                r#""timeZone": "Mars/Olympus","#,
                "minke/hello",
            ),
        )
        .await;
    assert!(
        err.contains(
            r#"spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus"#
        ),
        "{err}"
    );
    let ok = c
        .ok_stdin(
            &["apply", "-f", "-"],
            &cronjob("names", "0 9-17/2 * JAN-MAR MON-FRI", "", "minke/hello"),
        )
        .await;
    assert!(ok.contains("cronjob.batch/names created"), "{ok}");
}
