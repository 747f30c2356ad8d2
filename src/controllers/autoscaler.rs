//! The horizontal pod autoscaler (autoscaling/v2): every sync period it reads the
//! target's `scale` subresource, the pods its selector picks and their
//! `metrics.k8s.io` usage, asks each Resource / ContainerResource metric how many
//! replicas it wants ([`replicas`]), takes the largest, passes it through the
//! stabilization windows and rate limits ([`behavior`]), writes the new scale and
//! reports status (current metrics, conditions AbleToScale / ScalingActive /
//! ScalingLimited) and events (`SuccessfulRescale`, `FailedGetResourceMetric`, …)
//! worded as Kubernetes words them.

mod behavior;
mod replicas;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, MetricSpec, MetricStatus,
    MetricTarget, MetricValueStatus, ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{PredicateConfig, WatchStreamExt, predicates, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;

use self::behavior::{Behavior, Bounds, History, Said};
use self::replicas::{PodSample, PodState, Target};
use super::pods;
use crate::api::quantity;
use crate::api::registry::Registry;
use crate::events::{Involved, Kind, Recorder};

/// How often every HPA is looked at (`--horizontal-pod-autoscaler-sync-period`).
pub const SYNC_PERIOD: Duration = Duration::from_secs(15);

/// How far from the target usage may be before anything changes.
const TOLERANCE: f64 = 0.1;

/// After a pod starts, CPU samples count only once it is ready and a whole
/// window was measured since (`--horizontal-pod-autoscaler-cpu-initialization-period`).
const CPU_INITIALIZATION: i64 = 300;

/// A pod not ready this long after starting never became ready
/// (`--horizontal-pod-autoscaler-initial-readiness-delay`).
const INITIAL_READINESS_DELAY: i64 = 30;

/// What the controller needs.
pub(crate) struct Context {
    /// The in-process API client.
    pub client: kube::Client,
    /// Served types, to find a scale target's resource.
    pub registry: Arc<Registry>,
    /// How often each HPA is synced.
    pub period: Duration,
}

struct State {
    client: kube::Client,
    registry: Arc<Registry>,
    recorder: Recorder,
    /// Recommendations and scale events per HPA uid.
    history: Mutex<HashMap<String, History>>,
}

/// Reconcile failures (retried after a sync period).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("autoscaler sync: {0}")]
    Api(#[from] kube::Error),
    /// The status could not be encoded.
    #[error("autoscaler sync: {0}")]
    Json(#[from] serde_json::Error),
}

/// Run the autoscaler until the cluster stops.
pub(crate) async fn run(ctx: Context) {
    let state = Arc::new(State {
        recorder: Recorder::new(ctx.client.clone(), "horizontal-pod-autoscaler", None),
        client: ctx.client.clone(),
        registry: ctx.registry,
        history: Mutex::default(),
    });
    let api = Api::<HorizontalPodAutoscaler>::all(ctx.client);
    // Only spec changes (a new generation) bring a sync forward: the controller's
    // own status writes do not, or the sync period would mean nothing.
    let mut changes = watcher::watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .predicate_filter(predicates::generation, PredicateConfig::default())
        .boxed();
    let mut every = tokio::time::interval(ctx.period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(changed) = changes.next() => {
                if let Ok(hpa) = changed {
                    sync_logged(&hpa, &state).await;
                }
            }
            _ = every.tick() => {
                let Ok(all) = api.list(&ListParams::default()).await else {
                    continue;
                };
                if let Ok(mut h) = state.history.lock() {
                    h.retain(|uid, _| all.items.iter().any(|a| a.uid().as_deref() == Some(uid)));
                }
                for hpa in &all.items {
                    sync_logged(hpa, &state).await;
                }
            }
        }
    }
}

async fn sync_logged(hpa: &HorizontalPodAutoscaler, state: &State) {
    if let Err(e) = sync(hpa, state).await {
        tracing::debug!(hpa = %hpa.name_any(), error = %e, "autoscaler sync");
    }
}

/// The conditions an HPA reports, in the order Kubernetes adds them.
#[derive(Default)]
struct Conditions {
    able: Option<(bool, String, String)>,
    active: Option<(bool, String, String)>,
    limited: Option<(bool, String, String)>,
}

impl Conditions {
    fn set(slot: &mut Option<(bool, String, String)>, status: bool, reason: &str, message: String) {
        *slot = Some((status, reason.to_string(), message));
    }

    fn said(slot: &mut Option<(bool, String, String)>, s: &Said) {
        Self::set(slot, s.status, s.reason, s.message.to_string());
    }

    /// As stored conditions, keeping the transition time of those whose status
    /// did not change.
    fn render(
        &self,
        old: &[HorizontalPodAutoscalerCondition],
        now: Timestamp,
    ) -> Vec<HorizontalPodAutoscalerCondition> {
        let mut out: Vec<HorizontalPodAutoscalerCondition> = old.to_vec();
        for (type_, slot) in [
            ("AbleToScale", &self.able),
            ("ScalingActive", &self.active),
            ("ScalingLimited", &self.limited),
        ] {
            let Some((status, reason, message)) = slot else {
                continue;
            };
            let status = if *status { "True" } else { "False" };
            let kept = old
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .and_then(|c| c.last_transition_time.clone());
            let c = HorizontalPodAutoscalerCondition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: Some(reason.clone()),
                message: Some(message.clone()),
                last_transition_time: Some(kept.unwrap_or(Time(now))),
                observed_generation: None,
            };
            match out.iter_mut().find(|o| o.type_ == type_) {
                Some(o) => *o = c,
                None => out.push(c),
            }
        }
        out
    }
}

/// A resource metric to evaluate.
struct ResourceMetric<'a> {
    resource: &'a str,
    container: Option<&'a str>,
    target: &'a MetricTarget,
}

/// What the metrics recommend.
struct Recommendation {
    replicas: i32,
    /// What the largest recommendation came from ("cpu resource utilization …").
    metric: String,
}

/// What a metric evaluation failed with: condition reason, message.
struct Failure {
    reason: &'static str,
    message: String,
}

/// One sync of one HPA.
async fn sync(hpa: &HorizontalPodAutoscaler, state: &State) -> Result<(), Error> {
    let (Some(ns), Some(uid)) = (hpa.namespace(), hpa.uid()) else {
        return Ok(());
    };
    if hpa.meta().deletion_timestamp.is_some() {
        if let Ok(mut h) = state.history.lock() {
            h.remove(&uid);
        }
        return Ok(());
    }
    let now = Timestamp::now();
    let about = Involved::of(hpa);
    let about = &about;
    let event = |kind: Kind, reason: &'static str, message: String| async move {
        if let Some(a) = &about {
            state.recorder.record(a, kind, reason, message).await;
        }
    };
    let spec = &hpa.spec;
    let old_status = hpa.status.clone().unwrap_or_default();
    let mut conditions = Conditions::default();
    let mut status = old_status.clone();
    status.observed_generation = hpa.meta().generation;

    // The target's scale.
    let target = &spec.scale_target_ref;
    let api = target_api(state, &ns, target);
    let scale = match &api {
        Ok(api) => api.get_scale(&target.name).await.map_err(|e| match e {
            kube::Error::Api(s) => s.message,
            other => other.to_string(),
        }),
        Err(message) => Err(message.clone()),
    };
    let (api, scale) = match (api, scale) {
        (Ok(api), Ok(s)) => (api, s),
        (_, Err(message)) | (Err(message), _) => {
            let message = format!(
                "the HPA controller was unable to get the target's current scale: {message}"
            );
            event(Kind::Warning, "FailedGetScale", message.clone()).await;
            Conditions::set(&mut conditions.able, false, "FailedGetScale", message);
            write_status(state, hpa, status, &conditions, now).await?;
            return Ok(());
        }
    };
    let current = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    status.current_replicas = scale.status.as_ref().map(|s| s.replicas);
    let min = spec.min_replicas.unwrap_or(1);
    let behavior = Behavior::of(spec.behavior.as_ref());

    let (desired, reason) = if current == 0 && min != 0 {
        Conditions::set(
            &mut conditions.active,
            false,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero".into(),
        );
        (0, String::new())
    } else if current > spec.max_replicas {
        (
            spec.max_replicas,
            "Current number of replicas above Spec.MaxReplicas".into(),
        )
    } else if current < min {
        (
            min,
            "Current number of replicas below Spec.MinReplicas".into(),
        )
    } else {
        let selector = scale.status.as_ref().and_then(|s| s.selector.clone());
        let recommended = match selector {
            None => Err(Failure {
                reason: "InvalidSelector",
                message: "the HPA target's scale is missing a selector".into(),
            }),
            Some(sel) => {
                recommend(
                    state,
                    &ns,
                    &sel,
                    spec.metrics.as_deref().unwrap_or_default(),
                    current,
                    now,
                    &mut status,
                )
                .await
            }
        };
        let r = match recommended {
            Ok(r) => r,
            Err(f) => {
                event(Kind::Warning, f.reason, f.message.clone()).await;
                Conditions::set(
                    &mut conditions.active,
                    false,
                    f.reason,
                    format!(
                        "the HPA was unable to compute the replica count: {}",
                        f.message
                    ),
                );
                if conditions.able.is_none() {
                    Conditions::set(
                        &mut conditions.able,
                        true,
                        "SucceededGetScale",
                        "the HPA controller was able to get the target's current scale".into(),
                    );
                }
                status.desired_replicas = current;
                write_status(state, hpa, status, &conditions, now).await?;
                return Ok(());
            }
        };
        Conditions::set(
            &mut conditions.active,
            true,
            "ValidMetricFound",
            format!(
                "the HPA was able to successfully calculate a replica count from {}",
                r.metric
            ),
        );
        let decision = {
            let mut all = state
                .history
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            all.entry(uid.clone()).or_default().decide(
                &behavior,
                now,
                current,
                r.replicas,
                Bounds {
                    min,
                    max: spec.max_replicas,
                },
            )
        };
        Conditions::said(&mut conditions.able, &decision.able);
        Conditions::said(&mut conditions.limited, &decision.limited);
        let reason = if decision.replicas > current {
            format!("{} above target", r.metric)
        } else {
            "All metrics below target".to_string()
        };
        (decision.replicas, reason)
    };

    if desired != current && !(current == 0 && min != 0) {
        let patch = json!({"spec": {"replicas": desired}});
        match api
            .patch_scale(&target.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                event(
                    Kind::Normal,
                    "SuccessfulRescale",
                    format!("New size: {desired}; reason: {reason}"),
                )
                .await;
                Conditions::set(
                    &mut conditions.able,
                    true,
                    "SucceededRescale",
                    format!("the HPA controller was able to update the target scale to {desired}"),
                );
                if let Ok(mut all) = state.history.lock() {
                    all.entry(uid.clone())
                        .or_default()
                        .scaled(&behavior, now, current, desired);
                }
                status.last_scale_time = Some(Time(now));
            }
            Err(e) => {
                let message = match e {
                    kube::Error::Api(s) => s.message,
                    other => other.to_string(),
                };
                event(
                    Kind::Warning,
                    "FailedRescale",
                    format!("New size: {desired}; reason: {reason}; error: {message}"),
                )
                .await;
                Conditions::set(
                    &mut conditions.able,
                    false,
                    "FailedUpdateScale",
                    format!("the HPA controller was unable to update the target scale: {message}"),
                );
                status.desired_replicas = current;
                write_status(state, hpa, status, &conditions, now).await?;
                return Ok(());
            }
        }
    }
    status.desired_replicas = desired;
    write_status(state, hpa, status, &conditions, now).await?;
    Ok(())
}

/// An API for the scale target's resource, or why there is none.
fn target_api(
    state: &State,
    namespace: &str,
    target: &k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference,
) -> Result<Api<DynamicObject>, String> {
    let api_version = target.api_version.as_deref().unwrap_or("v1");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let t = state
        .registry
        .by_kind(group, version, &target.kind)
        .filter(|t| t.has_scale())
        .ok_or_else(|| {
            format!(
                "no matches for kind \"{}\" in group \"{group}\"",
                target.kind
            )
        })?;
    let gvk = GroupVersionKind::gvk(&t.group, &t.version, &t.kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, &t.resource);
    Ok(Api::namespaced_with(state.client.clone(), namespace, &ar))
}

/// Evaluate every metric; the largest recommendation wins. Fills
/// `status.current_metrics` with what was measured.
async fn recommend(
    state: &State,
    namespace: &str,
    selector: &str,
    metrics: &[MetricSpec],
    current: i32,
    now: Timestamp,
    status: &mut k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerStatus,
) -> Result<Recommendation, Failure> {
    let lp = ListParams::default().labels(selector);
    let pod_list = Api::<Pod>::namespaced(state.client.clone(), namespace)
        .list(&lp)
        .await
        .map_err(|e| Failure {
            reason: "FailedGetResourceMetric",
            message: format!("unable to get pods: {e}"),
        })?
        .items;
    let samples = pod_metrics(state, namespace, &lp).await;
    let mut best: Option<Recommendation> = None;
    let mut measured = Vec::new();
    let mut first_failure = None;
    let mut invalid = 0;
    for m in metrics {
        let metric = match (m.type_.as_str(), &m.resource, &m.container_resource) {
            ("Resource", Some(r), _) => ResourceMetric {
                resource: &r.name,
                container: None,
                target: &r.target,
            },
            ("ContainerResource", _, Some(c)) => ResourceMetric {
                resource: &c.name,
                container: Some(&c.container),
                target: &c.target,
            },
            (other, _, _) => {
                invalid += 1;
                first_failure.get_or_insert(Failure {
                    reason: match other {
                        "Pods" => "FailedGetPodsMetric",
                        "Object" => "FailedGetObjectMetric",
                        _ => "FailedGetExternalMetric",
                    },
                    message: format!(
                        "unable to get metric of type {other}: this cluster serves no custom or external metrics API"
                    ),
                });
                continue;
            }
        };
        match evaluate(&metric, &pod_list, &samples, current, now) {
            Ok((replicas, name, st)) => {
                measured.push(st);
                if best.as_ref().is_none_or(|b| replicas > b.replicas) {
                    best = Some(Recommendation {
                        replicas,
                        metric: name,
                    });
                }
            }
            Err(f) => {
                invalid += 1;
                first_failure.get_or_insert(f);
            }
        }
    }
    status.current_metrics = (!measured.is_empty()).then_some(measured);
    match (best, first_failure) {
        (Some(b), _) => Ok(b),
        (None, Some(f)) => Err(Failure {
            reason: f.reason,
            message: if invalid > 1 {
                format!(
                    "invalid metrics ({invalid} invalid out of {}), first error is: {}",
                    metrics.len(),
                    f.message
                )
            } else {
                f.message
            },
        }),
        (None, None) => Err(Failure {
            reason: "FailedGetResourceMetric",
            message: "no metrics to compute a replica count from".into(),
        }),
    }
}

/// One pod's sample: when, over what window, and usage per container
/// (milli-units, as Kubernetes' metrics client reads them).
struct Sample {
    at: Timestamp,
    window: SignedDuration,
    containers: HashMap<String, HashMap<String, i64>>,
}

/// The `metrics.k8s.io` samples of the selected pods, by pod name.
async fn pod_metrics(state: &State, namespace: &str, lp: &ListParams) -> HashMap<String, Sample> {
    let gvk = GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "pods");
    let api: Api<DynamicObject> = Api::namespaced_with(state.client.clone(), namespace, &ar);
    let Ok(list) = api.list(lp).await else {
        return HashMap::new();
    };
    let mut out = HashMap::new();
    for item in list.items {
        let Some(name) = item.metadata.name.clone() else {
            continue;
        };
        let at = item.data["timestamp"]
            .as_str()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .unwrap_or_else(Timestamp::now);
        let window = item.data["window"]
            .as_str()
            .and_then(|w| w.trim_end_matches('s').parse::<f64>().ok())
            .map_or(SignedDuration::ZERO, |s| {
                SignedDuration::from_secs_f64(s.max(0.0))
            });
        let containers = item.data["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                let name = c["name"].as_str()?.to_string();
                let usage = c["usage"]
                    .as_object()?
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), quantity::from_json(v)?.milli_value())))
                    .collect();
                Some((name, usage))
            })
            .collect();
        out.insert(
            name,
            Sample {
                at,
                window,
                containers,
            },
        );
    }
    out
}

/// How `pod` counts for `resource`, from its phase, readiness and start (the
/// `groupPods` rules of Kubernetes).
fn pod_state(pod: &Pod, resource: &str, sample: Option<&Sample>, now: Timestamp) -> PodState {
    if pod.metadata.deletion_timestamp.is_some() || pods::phase(pod) == "Failed" {
        return PodState::Ignored;
    }
    if pods::phase(pod) == "Pending" {
        return PodState::Unready;
    }
    let Some(sample) = sample else {
        return PodState::Ready;
    };
    if resource != "cpu" {
        return PodState::Ready;
    }
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
    let started = status.and_then(|s| s.start_time.as_ref()).map(|t| t.0);
    let (Some(ready), Some(started)) = (ready, started) else {
        return PodState::Unready;
    };
    let changed = ready.last_transition_time.as_ref().map_or(started, |t| t.0);
    let add = |t: Timestamp, d: SignedDuration| t.checked_add(d).unwrap_or(Timestamp::MAX);
    let unready = if add(started, SignedDuration::from_secs(CPU_INITIALIZATION)) > now {
        ready.status == "False" || sample.at < add(changed, sample.window)
    } else {
        ready.status == "False"
            && add(started, SignedDuration::from_secs(INITIAL_READINESS_DELAY)) > changed
    };
    if unready {
        PodState::Unready
    } else {
        PodState::Ready
    }
}

/// Milli-units of `resource` a pod's containers (or one of them) request, or the
/// first container without a request.
fn requested(pod: &Pod, resource: &str, container: Option<&str>) -> Result<i64, String> {
    let mut total = 0i64;
    for c in &pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default()
    {
        if container.is_some_and(|n| n != c.name) {
            continue;
        }
        let request = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(resource))
            .and_then(|q| crate::api::quantity::Quantity::parse(&q.0));
        match request {
            Some(q) => total = total.saturating_add(q.milli_value()),
            None => return Err(c.name.clone()),
        }
    }
    Ok(total)
}

/// One resource metric: the replicas it asks for, its name in messages and its
/// status entry.
fn evaluate(
    metric: &ResourceMetric<'_>,
    pod_list: &[Pod],
    samples: &HashMap<String, Sample>,
    current: i32,
    now: Timestamp,
) -> Result<(i32, String, MetricStatus), Failure> {
    let resource = metric.resource;
    let (kind, failed) = match metric.container {
        Some(_) => ("container resource", "FailedGetContainerResourceMetric"),
        None => ("resource", "FailedGetResourceMetric"),
    };
    let target = match (
        metric.target.type_.as_str(),
        metric.target.average_utilization,
        &metric.target.average_value,
    ) {
        ("Utilization", Some(u), _) => Target::Utilization(u),
        ("AverageValue", _, Some(v)) => {
            Target::AverageValue(quantity::Quantity::parse(&v.0).map_or(0, |q| q.milli_value()))
        }
        (t, _, _) => {
            return Err(Failure {
                reason: failed,
                message: format!("invalid {resource} metric target of type {t}"),
            });
        }
    };
    let what = match target {
        Target::Utilization(_) => "utilization",
        Target::AverageValue(_) => "usage",
    };
    let fail = |message: String| Failure {
        reason: failed,
        message: format!("failed to get {resource} {what}: {message}"),
    };
    if samples.is_empty() {
        return Err(fail(format!(
            "unable to get metrics for resource {resource}: no metrics returned from resource metrics API"
        )));
    }
    let pods: Vec<PodSample> = pod_list
        .iter()
        .map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            let sample = samples.get(&name);
            let usage = sample.and_then(|s| {
                let values = s
                    .containers
                    .iter()
                    .filter(|(c, _)| metric.container.is_none_or(|n| n == c.as_str()))
                    .filter_map(|(_, u)| u.get(resource).copied());
                let mut any = false;
                let total = values.fold(0i64, |a, v| {
                    any = true;
                    a.saturating_add(v)
                });
                any.then_some(total)
            });
            PodSample {
                state: pod_state(p, resource, sample, now),
                usage,
                request: requested(p, resource, metric.container),
                name,
            }
        })
        .collect();
    let e = replicas::estimate(&pods, resource, current, target, TOLERANCE)
        .map_err(|p| fail(p.to_string()))?;
    let name = match target {
        Target::Utilization(_) => format!("{resource} {kind} utilization (percentage of request)"),
        Target::AverageValue(_) => format!("{resource} {kind}"),
    };
    let current_value = MetricValueStatus {
        average_utilization: e.utilization,
        average_value: Some(Quantity(milli_quantity(e.average))),
        value: None,
    };
    let status = match metric.container {
        None => MetricStatus {
            type_: "Resource".into(),
            resource: Some(ResourceMetricStatus {
                name: resource.to_string(),
                current: current_value,
            }),
            ..Default::default()
        },
        Some(c) => MetricStatus {
            type_: "ContainerResource".into(),
            container_resource: Some(
                k8s_openapi::api::autoscaling::v2::ContainerResourceMetricStatus {
                    name: resource.to_string(),
                    container: c.to_string(),
                    current: current_value,
                },
            ),
            ..Default::default()
        },
    };
    Ok((e.replicas, name, status))
}

/// A milli-unit count as a canonical quantity (`250m`, `2`, `64Mi` stays decimal).
fn milli_quantity(milli: i64) -> String {
    quantity::Quantity::parse(&format!("{milli}m"))
        .map_or_else(|| format!("{milli}m"), |q| q.canonical())
}

/// Write the status if it changed.
async fn write_status(
    state: &State,
    hpa: &HorizontalPodAutoscaler,
    mut status: k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerStatus,
    conditions: &Conditions,
    now: Timestamp,
) -> Result<(), Error> {
    let old = hpa.status.clone().unwrap_or_default();
    status.conditions = Some(conditions.render(old.conditions.as_deref().unwrap_or_default(), now));
    let stored = serde_json::to_value(&hpa.status)?;
    let wanted = serde_json::to_value(&status)?;
    if stored == wanted {
        return Ok(());
    }
    let api: Api<HorizontalPodAutoscaler> =
        Api::namespaced(state.client.clone(), &hpa.namespace().unwrap_or_default());
    let patch = json!({"status": super::replace(&stored, wanted)});
    api.patch_status(
        &hpa.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}
