//! The CronJob controller: at each start of `spec.schedule` (in `spec.timeZone`, else
//! the local zone) it creates a Job named `<cronjob>-<minutes since the epoch>`
//! from `jobTemplate`, annotated with its scheduled time and controlled by the
//! CronJob; it honours `concurrencyPolicy` (Allow / Forbid / Replace),
//! `startingDeadlineSeconds` (and runs only the latest of many missed starts, with a
//! warning past 100), `suspend`, and the successful/failed history limits; it
//! keeps `status.active`, `lastScheduleTime` and `lastSuccessfulTime`, records the
//! events Kubernetes records, and sleeps until the next start.

mod clock;
mod jobs;
mod schedule;

pub use clock::Clock;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::pods;
use crate::events::{Involved, Kind, Recorder};
use jobs::{finished, job_for, rfc1123z};
use schedule::{Missed, Schedule};

pub use jobs::{SCHEDULED_TIMESTAMP, job_name};

/// What the reconciler needs.
pub(crate) struct Context {
    client: kube::Client,
    recorder: Recorder,
    clock: Clock,
}

/// Reconcile failures (retried with a delay).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("cronjob sync: {0}")]
    Api(#[from] kube::Error),
    /// An active Job of a Replace CronJob could not be deleted.
    #[error("could not replace job {0}")]
    Replace(String),
}

/// Run the controller until the cluster stops; `clock` tells it the time.
pub(crate) async fn run(client: kube::Client, clock: Clock) {
    let moves = clock.moves();
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "cronjob-controller", None),
        client: client.clone(),
        clock,
    });
    Controller::new(
        Api::<CronJob>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<Job>::all(client), watcher::Config::default())
    .reconcile_all_on(moves)
    .run(sync, |_, _, _| Action::requeue(Duration::from_secs(1)), ctx)
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "cronjob sync");
        }
    })
    .await;
}

fn time(t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> Option<Timestamp> {
    t.map(|t| t.0)
}

/// The status the controller maintains, as it will be written.
#[derive(Debug, Clone, Default, PartialEq)]
struct Status {
    active: Vec<Value>,
    last_schedule: Option<Timestamp>,
    last_successful: Option<Timestamp>,
}

impl Status {
    fn of(cj: &CronJob) -> Status {
        let s = cj.status.as_ref();
        Status {
            active: s
                .and_then(|s| s.active.as_ref())
                .map(|a| {
                    a.iter()
                        .filter_map(|r| serde_json::to_value(r).ok())
                        .collect()
                })
                .unwrap_or_default(),
            last_schedule: time(s.and_then(|s| s.last_schedule_time.as_ref())),
            last_successful: time(s.and_then(|s| s.last_successful_time.as_ref())),
        }
    }

    fn holds(&self, uid: &str) -> bool {
        self.active.iter().any(|r| r["uid"] == uid)
    }

    fn holds_name(&self, name: &str) -> bool {
        self.active.iter().any(|r| r["name"] == name)
    }

    fn forget(&mut self, uid: &str) {
        self.active.retain(|r| r["uid"] != uid);
    }

    fn to_json(&self) -> Value {
        let stamp = |t: Timestamp| json!(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
        let mut v = json!({});
        if !self.active.is_empty() {
            v["active"] = json!(self.active);
        }
        if let Some(t) = self.last_schedule {
            v["lastScheduleTime"] = stamp(t);
        }
        if let Some(t) = self.last_successful {
            v["lastSuccessfulTime"] = stamp(t);
        }
        v
    }
}

/// One sync: prune finished Jobs, follow the active ones, start the Job that is due.
async fn sync(cj: Arc<CronJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (Some(ns), Some(uid)) = (cj.namespace(), cj.uid()) else {
        return Ok(Action::await_change());
    };
    // Our own status writes may not have reached the cache yet: work on the latest.
    let api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);
    let cj = match api.get(&cj.name_any()).await {
        Ok(fresh) if fresh.uid().as_deref() == Some(uid.as_str()) => fresh,
        Ok(_) | Err(kube::Error::Api(_)) => return Ok(Action::await_change()),
        Err(e) => return Err(e.into()),
    };
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let jobs: Vec<Job> = jobs_api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|j| pods::controller_of(&j.metadata).is_some_and(|r| r.uid == uid))
        .collect();
    let stored = Status::of(&cj);
    let mut status = stored.clone();
    let about = Involved::of(&cj);
    let round = Round {
        ctx: &ctx,
        cj: &cj,
        jobs: &jobs_api,
        about: about.as_ref(),
    };
    round.cleanup(&mut status, &jobs).await;
    let result = round.run(&mut status, &jobs).await;
    if status != stored {
        let patch = json!({"status": super::replace(&stored.to_json(), status.to_json())});
        api.patch_status(
            &cj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    Ok(match result? {
        Some(wait) => Action::requeue(wait),
        None => Action::await_change(),
    })
}

/// The pieces one sync works with.
struct Round<'a> {
    ctx: &'a Context,
    cj: &'a CronJob,
    jobs: &'a Api<Job>,
    about: Option<&'a Involved>,
}

impl Round<'_> {
    async fn event(&self, kind: Kind, reason: &str, message: String) {
        if let Some(a) = self.about {
            self.ctx.recorder.record(a, kind, reason, message).await;
        }
    }

    /// `cleanupFinishedJobs`: keep the newest successfulJobsHistoryLimit complete and
    /// failedJobsHistoryLimit failed Jobs.
    async fn cleanup(&self, status: &mut Status, jobs: &[Job]) {
        let spec = &self.cj.spec;
        for (kind, limit) in [
            ("Complete", spec.successful_jobs_history_limit),
            ("Failed", spec.failed_jobs_history_limit),
        ] {
            let Some(limit) = limit else { continue };
            let mut done: Vec<&Job> = jobs.iter().filter(|j| finished(j) == Some(kind)).collect();
            let excess = done
                .len()
                .saturating_sub(usize::try_from(limit).unwrap_or(0));
            if excess == 0 {
                continue;
            }
            // Oldest start first; never-started ones last, then by name.
            done.sort_by_key(|j| {
                let start = time(j.status.as_ref().and_then(|s| s.start_time.as_ref()));
                (start.is_none(), start, j.name_any())
            });
            for job in done.into_iter().take(excess) {
                self.delete(status, job).await;
            }
        }
    }

    /// Delete a Job (its pods in the background) and drop it from the active list.
    async fn delete(&self, status: &mut Status, job: &Job) -> bool {
        match self
            .jobs
            .delete(&job.name_any(), &DeleteParams::background())
            .await
        {
            Ok(_) => {
                status.forget(&job.uid().unwrap_or_default());
                self.event(
                    Kind::Normal,
                    "SuccessfulDelete",
                    format!("Deleted job {}", job.name_any()),
                )
                .await;
                true
            }
            Err(e) => {
                tracing::debug!(job = %job.name_any(), error = %e, "deleting a cronjob's job");
                self.event(
                    Kind::Warning,
                    "FailedDelete",
                    format!("Deleted job: {}", super::replicaset::api_message(&e)),
                )
                .await;
                false
            }
        }
    }

    /// `syncCronJob`: reconcile the active list with the Jobs, then start the Job
    /// due now, if any. Returns when to look again (`None`: only on a change).
    async fn run(&self, status: &mut Status, jobs: &[Job]) -> Result<Option<Duration>, Error> {
        let now = self.ctx.clock.now();
        for job in jobs {
            let job_uid = job.uid().unwrap_or_default();
            let active = status.holds(&job_uid);
            match finished(job) {
                None if !active => {
                    self.event(
                        Kind::Warning,
                        "UnexpectedJob",
                        format!(
                            "Saw a job that the controller did not create or forgot: {}",
                            job.name_any()
                        ),
                    )
                    .await;
                }
                Some(state) if active => {
                    status.forget(&job_uid);
                    self.event(
                        Kind::Normal,
                        "SawCompletedJob",
                        format!("Saw completed job: {}, status: {state}", job.name_any()),
                    )
                    .await;
                }
                _ => {}
            }
            if finished(job) == Some("Complete") {
                let completed = time(job.status.as_ref().and_then(|s| s.completion_time.as_ref()));
                if completed.is_some()
                    && (status.last_successful.is_none() || completed > status.last_successful)
                {
                    status.last_successful = completed;
                }
            }
        }
        // Active Jobs that are gone (checked against the server, not the list).
        for reference in status.active.clone() {
            let (Some(job_uid), Some(name)) =
                (reference["uid"].as_str(), reference["name"].as_str())
            else {
                continue;
            };
            if jobs.iter().any(|j| j.uid().as_deref() == Some(job_uid)) {
                continue;
            }
            match self.jobs.get(name).await {
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    self.event(
                        Kind::Normal,
                        "MissingJob",
                        format!("Active job went missing: {name}"),
                    )
                    .await;
                    status.forget(job_uid);
                }
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
        }
        if self.cj.meta().deletion_timestamp.is_some() {
            return Ok(None);
        }
        let spec = &self.cj.spec;
        let zone = match spec.time_zone.as_deref() {
            Some(name) => match TimeZone::get(name) {
                Ok(tz) => Some(tz),
                Err(_) => {
                    self.event(
                        Kind::Warning,
                        "UnknownTimeZone",
                        format!("invalid timeZone: {name:?}: unknown time zone {name}"),
                    )
                    .await;
                    return Ok(None);
                }
            },
            None => None,
        };
        if spec.suspend == Some(true) {
            return Ok(None);
        }
        if spec.schedule.contains("TZ") {
            self.event(
                Kind::Warning,
                "UnsupportedSchedule",
                format!(
                    "CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
                    spec.schedule
                ),
            )
            .await;
        }
        let local = zone.clone().unwrap_or_else(TimeZone::system);
        let sched = match Schedule::parse(&spec.schedule, local) {
            Ok(s) => s,
            Err(e) => {
                self.event(
                    Kind::Warning,
                    "UnparseableSchedule",
                    format!("unparseable schedule: {:?} : {e}", spec.schedule),
                )
                .await;
                return Ok(None);
            }
        };
        let created = time(self.cj.metadata.creation_timestamp.as_ref()).unwrap_or(now);
        let from = schedule::earliest(
            created,
            status.last_schedule,
            spec.starting_deadline_seconds,
            now,
        );
        let due = match schedule::most_recent(&sched, from, now) {
            Ok(due) => due,
            Err(e) => {
                self.event(
                    Kind::Warning,
                    "InvalidSchedule",
                    format!("invalid schedule: {} : {e}", spec.schedule),
                )
                .await;
                return Ok(None);
            }
        };
        let wake = |status: &Status| {
            let from = schedule::earliest(created, status.last_schedule, None, now);
            Some(schedule::wake_after(&sched, from, now))
        };
        let Some(scheduled) = due.most_recent.filter(|t| *t <= now) else {
            return Ok(wake(status));
        };
        if due.missed == Missed::Many {
            self.event(
                Kind::Warning,
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into(),
            )
            .await;
        }
        if let Some(deadline) = spec.starting_deadline_seconds {
            let latest = scheduled
                .checked_add(jiff::SignedDuration::from_secs(deadline))
                .unwrap_or(Timestamp::MAX);
            if latest < now {
                self.event(
                    Kind::Warning,
                    "MissSchedule",
                    format!(
                        "Missed scheduled time to start a job: {}",
                        rfc1123z(scheduled)
                    ),
                )
                .await;
                return Ok(wake(status));
            }
        }
        let name = job_name(&self.cj.name_any(), scheduled);
        if status.holds_name(&name) || status.last_schedule == Some(scheduled) {
            return Ok(wake(status));
        }
        match spec.concurrency_policy.as_deref() {
            Some("Forbid") if !status.active.is_empty() => {
                self.event(
                    Kind::Normal,
                    "JobAlreadyActive",
                    "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
                )
                .await;
                return Ok(wake(status));
            }
            Some("Replace") => {
                for reference in status.active.clone() {
                    let Some(active) = reference["name"].as_str() else {
                        continue;
                    };
                    let job = match self.jobs.get(active).await {
                        Ok(job) => job,
                        Err(e) => {
                            self.event(
                                Kind::Warning,
                                "FailedGet",
                                format!("Get job: {}", super::replicaset::api_message(&e)),
                            )
                            .await;
                            return Err(e.into());
                        }
                    };
                    if !self.delete(status, &job).await {
                        return Err(Error::Replace(active.to_string()));
                    }
                }
            }
            _ => {}
        }
        let job = job_for(self.cj, &name, scheduled, zone.as_ref());
        let job = match self.jobs.create(&PostParams::default(), &job).await {
            Ok(created) => {
                self.event(
                    Kind::Normal,
                    "SuccessfulCreate",
                    format!("Created job {name}"),
                )
                .await;
                created
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Ours from an earlier sync whose status write was lost, or someone else's.
                let existing = self.jobs.get(&name).await?;
                let ours = pods::controller_of(&existing.metadata)
                    .is_some_and(|r| Some(&r.uid) == self.cj.metadata.uid.as_ref());
                if !ours || status.holds(&existing.uid().unwrap_or_default()) {
                    return Ok(wake(status));
                }
                existing
            }
            Err(e) => {
                self.event(
                    Kind::Warning,
                    "FailedCreate",
                    format!("Error creating job: {}", super::replicaset::api_message(&e)),
                )
                .await;
                return Err(e.into());
            }
        };
        status.active.push(json!({
            "kind": "Job",
            "namespace": job.namespace(),
            "name": job.name_any(),
            "uid": job.uid(),
            "apiVersion": "batch/v1",
            "resourceVersion": job.resource_version(),
        }));
        status.last_schedule = Some(scheduled);
        Ok(wake(status))
    }
}
