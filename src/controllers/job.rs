//! The Job controller: runs pods from the template until `completions` succeed
//! (at most `parallelism` at once; Indexed jobs give each pod its
//! `JOB_COMPLETION_INDEX`), fails the job past `backoffLimit` or
//! `activeDeadlineSeconds`, reports active/ready/succeeded/failed, start and
//! completion times and the Complete / Failed conditions, and deletes finished jobs
//! after `ttlSecondsAfterFinished`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::pods::{self, Naming};
use crate::events::{Involved, Kind, Recorder};

const INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// What the reconciler needs.
pub(crate) struct Context {
    client: kube::Client,
    recorder: Recorder,
}

/// Reconcile failures (retried with a delay).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("job sync: {0}")]
    Api(#[from] kube::Error),
}

/// Run the controller until the cluster stops.
pub(crate) async fn run(client: kube::Client) {
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), "job-controller", None),
        client: client.clone(),
    });
    Controller::new(Api::<Job>::all(client.clone()), watcher::Config::default())
        .owns(Api::<Pod>::all(client), watcher::Config::default())
        .run(sync, |_, _, _| Action::requeue(Duration::from_secs(1)), ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "job sync");
            }
        })
        .await;
}

fn condition(job: &Job, type_: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

fn index_of(pod: &Pod) -> Option<i32> {
    pod.annotations().get(INDEX)?.parse().ok()
}

/// `0-2,4` for indexes {0,1,2,4}, as `status.completedIndexes` writes them.
pub fn compress(indexes: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

async fn sync(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (Some(ns), Some(uid)) = (job.namespace(), job.uid()) else {
        return Ok(Action::await_change());
    };
    if job.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    if condition(&job, "Complete") || condition(&job, "Failed") {
        return expire(&jobs, &job).await;
    }
    let spec = job.spec.clone().unwrap_or_default();
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let owned: Vec<Pod> = pod_api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| pods::controller_of(&p.metadata).is_some_and(|r| r.uid == uid))
        .collect();
    let active: Vec<&Pod> = owned.iter().filter(|p| pods::is_active(p)).collect();
    let phase_count = |ph: &str| owned.iter().filter(|p| pods::phase(p) == ph).count();
    let (succeeded, failed) = (phase_count("Succeeded"), phase_count("Failed"));
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let completed: BTreeSet<i32> = owned
        .iter()
        .filter(|p| pods::phase(p) == "Succeeded")
        .filter_map(index_of)
        .collect();
    let completions = spec.completions;
    let parallelism = usize::try_from(spec.parallelism.unwrap_or(1)).unwrap_or(0);
    let now = jiff::Timestamp::now();
    let start = job
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map_or(now, |t| t.0);
    // Restarts in place count as failures for OnFailure pods.
    let restarts: usize = active
        .iter()
        .filter_map(|p| p.status.as_ref()?.container_statuses.as_ref())
        .flatten()
        .map(|c| usize::try_from(c.restart_count).unwrap_or(0))
        .sum();
    let backoff_limit = usize::try_from(spec.backoff_limit.unwrap_or(6)).unwrap_or(0);
    let deadline = spec
        .active_deadline_seconds
        .map(|s| start + jiff::SignedDuration::from_secs(s));

    let done = match completions {
        Some(n) if indexed => (0..n).all(|i| completed.contains(&i)),
        Some(n) => succeeded >= usize::try_from(n).unwrap_or(0),
        // A work queue: done when one pod succeeded and none is still running.
        None => succeeded > 0 && active.is_empty(),
    };
    let failure = if done {
        None
    } else if failed + restarts > backoff_limit {
        Some((
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ))
    } else if deadline.is_some_and(|d| d <= now) {
        Some((
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ))
    } else {
        None
    };

    let about = Involved::of(&*job);
    let mut conditions = Vec::new();
    let stamp = crate::api::clock::now();
    let mut finished = false;
    if done {
        for t in ["SuccessCriteriaMet", "Complete"] {
            conditions.push(
                json!({"type": t, "status": "True", "reason": "CompletionsReached",
                "message": "Reached expected number of succeeded pods",
                "lastProbeTime": stamp, "lastTransitionTime": stamp}),
            );
        }
        if let Some(a) = &about {
            ctx.recorder
                .record(a, Kind::Normal, "Completed", "Job completed".into())
                .await;
        }
        finished = true;
    } else if let Some((reason, message)) = failure {
        for t in ["FailureTarget", "Failed"] {
            conditions.push(
                json!({"type": t, "status": "True", "reason": reason, "message": message,
                "lastProbeTime": stamp, "lastTransitionTime": stamp}),
            );
        }
        for p in &active {
            let _ = pod_api
                .delete(&p.name_any(), &DeleteParams::default())
                .await;
        }
        if let Some(a) = &about {
            ctx.recorder
                .record(a, Kind::Warning, reason, message.into())
                .await;
        }
        finished = true;
    } else if !spec.suspend.unwrap_or(false) {
        create_missing(
            &ctx,
            &pod_api,
            &job,
            &active,
            &completed,
            succeeded,
            parallelism,
        )
        .await;
    }

    let ready = active.iter().filter(|p| pods::is_ready(p)).count();
    let mut status = json!({
        "startTime": job.status.as_ref().and_then(|s| s.start_time.clone()).map_or_else(|| json!(stamp), |t| json!(t)),
        "active": if finished { 0 } else { active.len() },
        "ready": if finished { 0 } else { ready },
        "succeeded": succeeded,
        "failed": failed,
        "terminating": 0,
    });
    if indexed {
        status["completedIndexes"] = json!(compress(&completed));
    }
    if finished {
        status["conditions"] = json!(conditions);
        if done {
            status["completionTime"] = json!(stamp);
        }
    } else if let Some(c) = job.status.as_ref().and_then(|s| s.conditions.clone()) {
        status["conditions"] = serde_json::to_value(c).unwrap_or_default();
    }
    if let Some(m) = status.as_object_mut() {
        m.retain(|k, v| !(v.is_null() || (v == &json!(0) && k != "ready" && k != "terminating")));
    }
    let stored = serde_json::to_value(&job.status).unwrap_or_default();
    if status != stored {
        let patch = json!({"status": super::replace(&stored, status)});
        jobs.patch_status(
            &job.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    Ok(match deadline {
        Some(d) if !finished => Action::requeue(
            Duration::try_from(d.duration_since(now)).unwrap_or_default()
                + Duration::from_millis(50),
        ),
        _ => Action::requeue(Duration::from_secs(300)),
    })
}

/// Start pods until `parallelism` run (never more than the completions left);
/// an Indexed job starts the lowest indexes not done and not running.
async fn create_missing(
    ctx: &Context,
    api: &Api<Pod>,
    job: &Job,
    active: &[&Pod],
    completed: &BTreeSet<i32>,
    succeeded: usize,
    parallelism: usize,
) {
    let spec = job.spec.clone().unwrap_or_default();
    let template = spec.template;
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let left = spec.completions.map_or(parallelism, |n| {
        usize::try_from(n).unwrap_or(0).saturating_sub(succeeded)
    });
    let want = parallelism.min(left).saturating_sub(active.len());
    let running: BTreeSet<i32> = active.iter().filter_map(|p| index_of(p)).collect();
    let indexes: Vec<Option<i32>> = if indexed {
        (0..spec.completions.unwrap_or(0))
            .filter(|i| !completed.contains(i) && !running.contains(i))
            .take(want)
            .map(Some)
            .collect()
    } else {
        vec![None; want]
    };
    let name = job.name_any();
    let about = Involved::of(job);
    for index in indexes {
        let prefix = match index {
            Some(i) => format!("{name}-{i}-"),
            None => format!("{name}-"),
        };
        let mut pod =
            pods::from_template(&template, Naming::Generate(&prefix), pods::owner_ref(job));
        if let Some(i) = index {
            pod.metadata
                .annotations
                .get_or_insert_default()
                .insert(INDEX.into(), i.to_string());
            pod.metadata
                .labels
                .get_or_insert_default()
                .insert(INDEX.into(), i.to_string());
            if let Some(s) = pod.spec.as_mut() {
                s.hostname.get_or_insert_with(|| format!("{name}-{i}"));
                for c in s
                    .containers
                    .iter_mut()
                    .chain(s.init_containers.iter_mut().flatten())
                {
                    c.env.get_or_insert_default().push(EnvVar {
                        name: "JOB_COMPLETION_INDEX".into(),
                        value: Some(i.to_string()),
                        value_from: None,
                    });
                }
            }
        }
        let (kind, reason, message) = match api.create(&PostParams::default(), &pod).await {
            Ok(p) => (
                Kind::Normal,
                "SuccessfulCreate",
                format!("Created pod: {}", p.name_any()),
            ),
            Err(e) => (
                Kind::Warning,
                "FailedCreate",
                format!("Error creating: {}", super::replicaset::api_message(&e)),
            ),
        };
        if let Some(a) = &about {
            ctx.recorder.record(a, kind, reason, message).await;
        }
    }
}

/// A finished job with `ttlSecondsAfterFinished` is deleted (with its pods)
/// once that long has passed since it finished.
async fn expire(api: &Api<Job>, job: &Job) -> Result<Action, Error> {
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return Ok(Action::await_change());
    };
    let finished_at = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| {
            cs.iter()
                .filter(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
                .find_map(|c| c.last_transition_time.as_ref().map(|t| t.0))
        })
        .unwrap_or_else(jiff::Timestamp::now);
    let due = finished_at + jiff::SignedDuration::from_secs(i64::from(ttl));
    let now = jiff::Timestamp::now();
    if due > now {
        let wait = Duration::try_from(due.duration_since(now)).unwrap_or_default();
        return Ok(Action::requeue(wait + Duration::from_millis(50)));
    }
    let params = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: job.uid(),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    match api.delete(&job.name_any(), &params).await {
        Ok(_) | Err(kube::Error::Api(_)) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes_are_written_as_ranges() {
        let set = |v: &[i32]| v.iter().copied().collect::<BTreeSet<i32>>();
        assert_eq!(compress(&set(&[0, 1, 2, 4])), "0-2,4");
        assert_eq!(compress(&set(&[])), "");
        assert_eq!(compress(&set(&[3])), "3");
        assert_eq!(compress(&set(&[1, 3, 4, 5, 7])), "1,3-5,7");
    }
}
