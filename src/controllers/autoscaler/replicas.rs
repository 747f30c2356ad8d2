//! How many replicas one resource metric asks for (the replica calculator of
//! Kubernetes' HPA): pods are grouped into ready, unready, missing (no sample) and
//! ignored (deleting or failed); the ratio of usage to target over the ready ones
//! is applied to their count, unless it is within the tolerance. When pods are
//! missing or unready, the estimate is made again assuming the least helpful usage
//! for them (0 when scaling up, the target when scaling down) and kept only if it
//! still points the same way.

use std::collections::HashMap;

/// A pod as the calculator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSample {
    /// The pod's name.
    pub name: String,
    /// What it counts as.
    pub state: PodState,
    /// Its usage of the resource (milli-CPU or bytes), if a sample came.
    pub usage: Option<i64>,
    /// The sum of its containers' requests for the resource, or the first container
    /// without one.
    pub request: Result<i64, String>,
}

/// How a pod counts toward the estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodState {
    /// Counts.
    Ready,
    /// Pending, or (for CPU) not ready or just started: not trusted to scale up.
    Unready,
    /// Being deleted or failed: left out.
    Ignored,
}

/// What a metric aims for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Average utilization, percent of the pods' requests.
    Utilization(i32),
    /// Average usage per pod (milli-CPU or bytes).
    AverageValue(i64),
}

/// One metric's recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Replicas wanted.
    pub replicas: i32,
    /// Average utilization in percent of requests (utilization targets only).
    pub utilization: Option<i32>,
    /// Average usage per pod.
    pub average: i64,
}

/// Why no recommendation could be made (worded as Kubernetes words it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The selector matches nothing.
    #[error("no pods returned by selector while calculating replica count")]
    NoPods,
    /// No usable samples.
    #[error("did not receive metrics for targeted pods (pods might be unready)")]
    NoMetrics,
    /// A container has no request for the resource.
    #[error("missing request for {resource} in container {container} of Pod {pod}")]
    MissingRequest {
        /// The resource.
        resource: String,
        /// The container.
        container: String,
        /// The pod.
        pod: String,
    },
    /// No sampled pod has requests.
    #[error("no metrics returned matched known pods")]
    NoMatch,
}

/// The ratio of usage to target over `usage` (pod → usage), with the utilization
/// and average usage it was computed from.
fn ratio(
    usage: &HashMap<&str, i64>,
    requests: &HashMap<&str, i64>,
    target: Target,
) -> Result<(f64, Option<i32>, i64), Problem> {
    if usage.is_empty() {
        return Err(Problem::NoMetrics);
    }
    let entries = i64::try_from(usage.len()).unwrap_or(i64::MAX);
    match target {
        Target::Utilization(percent) => {
            let (mut used, mut requested, mut counted) = (0i64, 0i64, 0i64);
            for (pod, u) in usage {
                if let Some(r) = requests.get(pod) {
                    used = used.saturating_add(*u);
                    requested = requested.saturating_add(*r);
                    counted += 1;
                }
            }
            if requested == 0 {
                return Err(Problem::NoMatch);
            }
            let utilization =
                i32::try_from(used.saturating_mul(100) / requested).unwrap_or(i32::MAX);
            Ok((
                f64::from(utilization) / f64::from(percent.max(1)),
                Some(utilization),
                used / counted.max(1),
            ))
        }
        Target::AverageValue(per_pod) => {
            let total: i64 = usage.values().fold(0, |a, u| a.saturating_add(*u));
            let average = total / entries;
            #[allow(clippy::cast_precision_loss)]
            let r = average as f64 / per_pod.max(1) as f64;
            Ok((r, None, average))
        }
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
fn scaled(ratio: f64, pods: usize) -> i32 {
    (ratio * pods as f64).ceil().min(f64::from(i32::MAX)) as i32
}

/// The replicas `pods` call for under `target`, from `current` replicas, within
/// `tolerance` (0.1 in Kubernetes) of the target meaning "stay".
pub fn estimate(
    pods: &[PodSample],
    resource: &str,
    current: i32,
    target: Target,
    tolerance: f64,
) -> Result<Estimate, Problem> {
    if pods.is_empty() {
        return Err(Problem::NoPods);
    }
    let mut usage: HashMap<&str, i64> = HashMap::new();
    let (mut unready, mut missing) = (Vec::new(), Vec::new());
    for p in pods {
        match (p.state, p.usage) {
            (PodState::Ignored, _) => {}
            (PodState::Unready, _) => unready.push(p.name.as_str()),
            (PodState::Ready, None) => missing.push(p.name.as_str()),
            (PodState::Ready, Some(u)) => {
                usage.insert(&p.name, u);
            }
        }
    }
    let ready = usage.len();
    if usage.is_empty() {
        return Err(Problem::NoMetrics);
    }
    let mut requests: HashMap<&str, i64> = HashMap::new();
    if let Target::Utilization(_) = target {
        for p in pods {
            match &p.request {
                Ok(r) => {
                    requests.insert(&p.name, *r);
                }
                Err(container) => {
                    return Err(Problem::MissingRequest {
                        resource: resource.to_string(),
                        container: container.clone(),
                        pod: p.name.clone(),
                    });
                }
            }
        }
    }
    let (first, utilization, average) = ratio(&usage, &requests, target)?;
    let stay = Estimate {
        replicas: current,
        utilization,
        average,
    };
    let within = |r: f64| (1.0 - r).abs() <= tolerance;
    let up_with_unready = !unready.is_empty() && first > 1.0;
    if !up_with_unready && missing.is_empty() {
        if within(first) {
            return Ok(stay);
        }
        return Ok(Estimate {
            replicas: scaled(first, ready),
            ..stay
        });
    }
    // Assume the least helpful usage for pods without a trustworthy sample.
    for pod in &missing {
        let assumed = if first < 1.0 {
            Some(match target {
                Target::Utilization(_) => requests.get(pod).copied().unwrap_or(0),
                Target::AverageValue(v) => v,
            })
        } else if first > 1.0 {
            Some(0)
        } else {
            None
        };
        if let Some(a) = assumed {
            usage.insert(pod, a);
        }
    }
    if up_with_unready {
        for pod in &unready {
            usage.insert(pod, 0);
        }
    }
    let (second, _, _) = ratio(&usage, &requests, target)?;
    if within(second) || (first < 1.0 && second > 1.0) || (first > 1.0 && second < 1.0) {
        return Ok(stay);
    }
    let replicas = scaled(second, usage.len());
    if (second < 1.0 && replicas > current) || (second > 1.0 && replicas < current) {
        return Ok(stay);
    }
    Ok(Estimate { replicas, ..stay })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, state: PodState, usage: Option<i64>, request: i64) -> PodSample {
        PodSample {
            name: name.into(),
            state,
            usage,
            request: Ok(request),
        }
    }

    #[test]
    fn the_ratio_of_usage_to_target_scales_the_ready_pods() {
        let pods = [
            pod("a", PodState::Ready, Some(200), 100),
            pod("b", PodState::Ready, Some(200), 100),
        ];
        let e = estimate(&pods, "cpu", 2, Target::Utilization(50), 0.1).expect("estimate");
        assert_eq!(e.replicas, 8);
        assert_eq!(e.utilization, Some(200));
        assert_eq!(e.average, 200);
    }

    #[test]
    fn within_the_tolerance_nothing_changes() {
        let pods = [pod("a", PodState::Ready, Some(105), 100)];
        let e = estimate(&pods, "cpu", 1, Target::Utilization(100), 0.1).expect("estimate");
        assert_eq!(e.replicas, 1);
        assert_eq!(e.utilization, Some(105));
    }

    #[test]
    fn unready_pods_count_as_idle_when_scaling_up() {
        // Ready pod at 200% of a 100% target; the unready one is assumed at 0:
        // (200 + 0) / 2 = 100% → stay.
        let pods = [
            pod("a", PodState::Ready, Some(200), 100),
            pod("b", PodState::Unready, Some(900), 100),
        ];
        let e = estimate(&pods, "cpu", 2, Target::Utilization(100), 0.1).expect("estimate");
        assert_eq!(e.replicas, 2);
        // A bigger load still scales: (400 + 0) / 2 = 200% → 4.
        let pods = [
            pod("a", PodState::Ready, Some(400), 100),
            pod("b", PodState::Unready, None, 100),
        ];
        let e = estimate(&pods, "cpu", 2, Target::Utilization(100), 0.1).expect("estimate");
        assert_eq!(e.replicas, 4);
    }

    #[test]
    fn pods_without_samples_count_as_at_target_when_scaling_down() {
        // 10% of request on one pod; the missing one assumed at 100%: 55% of a 50%
        // target is within tolerance → stay.
        let pods = [
            pod("a", PodState::Ready, Some(10), 100),
            pod("b", PodState::Ready, None, 100),
        ];
        let e = estimate(&pods, "cpu", 2, Target::Utilization(50), 0.1).expect("estimate");
        assert_eq!(e.replicas, 2);
        // Without the missing pod the same load halves the replicas.
        let e = estimate(&pods[..1], "cpu", 2, Target::Utilization(50), 0.1).expect("estimate");
        assert_eq!(e.replicas, 1);
    }

    #[test]
    fn average_value_targets_divide_the_mean_usage() {
        let pods = [
            pod("a", PodState::Ready, Some(300), 0),
            pod("b", PodState::Ready, Some(100), 0),
            pod("c", PodState::Ignored, Some(5000), 0),
        ];
        let e = estimate(&pods, "cpu", 2, Target::AverageValue(100), 0.1).expect("estimate");
        assert_eq!(e.replicas, 4);
        assert_eq!(e.utilization, None);
        assert_eq!(e.average, 200);
    }

    #[test]
    fn problems_are_worded_as_kubernetes_words_them() {
        assert_eq!(
            estimate(&[], "cpu", 1, Target::Utilization(50), 0.1)
                .expect_err("no pods")
                .to_string(),
            "no pods returned by selector while calculating replica count"
        );
        let unready = [pod("a", PodState::Unready, Some(1), 1)];
        assert_eq!(
            estimate(&unready, "cpu", 1, Target::Utilization(50), 0.1).expect_err("unready"),
            Problem::NoMetrics
        );
        let mut p = pod("web-1", PodState::Ready, Some(1), 1);
        p.request = Err("app".into());
        assert_eq!(
            estimate(&[p], "cpu", 1, Target::Utilization(50), 0.1)
                .expect_err("no request")
                .to_string(),
            "missing request for cpu in container app of Pod web-1"
        );
    }
}
