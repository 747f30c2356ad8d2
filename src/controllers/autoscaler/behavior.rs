//! From the replicas the metrics ask for to the replicas an HPA sets: the
//! stabilization windows (the highest recent recommendation holds a scale-down
//! back, the lowest a scale-up) and the rate limits of `spec.behavior` policies
//! over the scale events of each period, then minReplicas/maxReplicas. Without a
//! `behavior`, Kubernetes' older rules apply: a 5-minute scale-down window and
//! scale-ups of at most max(2 × current, 4). What the AbleToScale and
//! ScalingLimited conditions say comes out with the answer.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};

/// The scale-down window without a `behavior`.
const LEGACY_DOWN_WINDOW: i64 = 300;

/// How a set of policies is combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// The policy allowing the biggest change.
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling this way.
    Disabled,
}

/// One rate limit: so many pods, or percent, per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Pods (true) or Percent (false).
    pub pods: bool,
    /// How many pods or percent.
    pub value: i32,
    /// Over how many seconds.
    pub period: i64,
}

/// One direction's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Stabilization window, seconds.
    pub window: i64,
    /// How policies combine.
    pub select: Select,
    /// The policies.
    pub policies: Vec<Policy>,
}

impl Rules {
    fn of(r: Option<&HPAScalingRules>, window: i64, policies: Vec<Policy>) -> Rules {
        let Some(r) = r else {
            return Rules {
                window,
                select: Select::Max,
                policies,
            };
        };
        let given: Vec<Policy> = r
            .policies
            .iter()
            .flatten()
            .map(|p| Policy {
                pods: p.type_ == "Pods",
                value: p.value,
                period: i64::from(p.period_seconds),
            })
            .collect();
        Rules {
            window: r.stabilization_window_seconds.map_or(window, i64::from),
            select: match r.select_policy.as_deref() {
                Some("Min") => Select::Min,
                Some("Disabled") => Select::Disabled,
                _ => Select::Max,
            },
            policies: if given.is_empty() { policies } else { given },
        }
    }

    fn longest_period(&self) -> i64 {
        self.policies.iter().map(|p| p.period).max().unwrap_or(0)
    }
}

/// How an HPA may move its target.
#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    /// No `spec.behavior`: the rules before behaviors existed.
    Legacy,
    /// `spec.behavior`, with Kubernetes' defaults for what it leaves out.
    Rules {
        /// Scaling up.
        up: Rules,
        /// Scaling down.
        down: Rules,
    },
}

impl Behavior {
    /// The behavior `spec.behavior` describes.
    pub fn of(spec: Option<&HorizontalPodAutoscalerBehavior>) -> Behavior {
        let Some(b) = spec else {
            return Behavior::Legacy;
        };
        let every_15s = |pods, value| Policy {
            pods,
            value,
            period: 15,
        };
        Behavior::Rules {
            up: Rules::of(
                b.scale_up.as_ref(),
                0,
                vec![every_15s(true, 4), every_15s(false, 100)],
            ),
            down: Rules::of(b.scale_down.as_ref(), 300, vec![every_15s(false, 100)]),
        }
    }
}

/// A past recommendation or scale event.
#[derive(Debug, Clone, Copy)]
struct Stamped {
    at: Timestamp,
    value: i32,
}

/// What the autoscaler remembers about one HPA between syncs.
#[derive(Debug, Default)]
pub struct History {
    recommendations: Vec<Stamped>,
    ups: Vec<Stamped>,
    downs: Vec<Stamped>,
}

/// A condition's status, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    /// True or False.
    pub status: bool,
    /// The reason.
    pub reason: &'static str,
    /// The message.
    pub message: &'static str,
}

fn said(status: bool, reason: &'static str, message: &'static str) -> Said {
    Said {
        status,
        reason,
        message,
    }
}

/// The answer: replicas and what the conditions say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Replicas to set.
    pub replicas: i32,
    /// The AbleToScale condition.
    pub able: Said,
    /// The ScalingLimited condition.
    pub limited: Said,
}

/// The bounds an HPA keeps to.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// minReplicas.
    pub min: i32,
    /// maxReplicas.
    pub max: i32,
}

fn since(now: Timestamp, seconds: i64) -> Timestamp {
    now.checked_sub(SignedDuration::from_secs(seconds))
        .unwrap_or(Timestamp::MIN)
}

fn change_in(events: &[Stamped], now: Timestamp, period: i64) -> i32 {
    let cutoff = since(now, period);
    events
        .iter()
        .filter(|e| e.at > cutoff)
        .fold(0i32, |n, e| n.saturating_add(e.value))
}

/// Record `value` in `list`, reusing an entry older than `keep` seconds.
fn remember(list: &mut Vec<Stamped>, now: Timestamp, value: i32, keep: i64) {
    let entry = Stamped { at: now, value };
    let cutoff = since(now, keep);
    match list.iter_mut().find(|e| e.at < cutoff) {
        Some(old) => *old = entry,
        None => list.push(entry),
    }
}

impl History {
    /// Decide the replicas for an HPA whose metrics ask for `desired` while the
    /// target has `current`.
    pub fn decide(
        &mut self,
        behavior: &Behavior,
        now: Timestamp,
        current: i32,
        desired: i32,
        bounds: Bounds,
    ) -> Decision {
        match behavior {
            Behavior::Legacy => self.legacy(now, current, desired, bounds),
            Behavior::Rules { up, down } => {
                self.with_rules(up, down, now, current, desired, bounds)
            }
        }
    }

    /// Note that the target was scaled from `from` to `to` (for rate limits).
    pub fn scaled(&mut self, behavior: &Behavior, now: Timestamp, from: i32, to: i32) {
        let Behavior::Rules { up, down } = behavior else {
            return;
        };
        if to > from {
            remember(&mut self.ups, now, to - from, up.longest_period());
        } else if to < from {
            remember(&mut self.downs, now, from - to, down.longest_period());
        }
    }

    fn legacy(&mut self, now: Timestamp, current: i32, desired: i32, bounds: Bounds) -> Decision {
        let cutoff = since(now, LEGACY_DOWN_WINDOW);
        let stabilized = self
            .recommendations
            .iter()
            .filter(|r| r.at >= cutoff)
            .map(|r| r.value)
            .fold(desired, i32::max);
        remember(&mut self.recommendations, now, desired, LEGACY_DOWN_WINDOW);
        let able = stabilized_said(stabilized, desired);
        let up_limit = current.saturating_mul(2).max(4);
        let (replicas, limited) = if stabilized < bounds.min {
            (bounds.min, too_few())
        } else if bounds.max > up_limit && stabilized > up_limit {
            (up_limit, up_limited())
        } else if stabilized > bounds.max {
            (bounds.max, too_many())
        } else {
            (stabilized, within())
        };
        Decision {
            replicas,
            able,
            limited,
        }
    }

    fn with_rules(
        &mut self,
        up: &Rules,
        down: &Rules,
        now: Timestamp,
        current: i32,
        desired: i32,
        bounds: Bounds,
    ) -> Decision {
        // Right after a restart, the current size counts as a recent recommendation,
        // so a restart is no way around the scale-down window.
        if self.recommendations.is_empty() && down.window > 0 {
            self.recommendations.push(Stamped {
                at: now,
                value: current,
            });
        }
        let (up_cut, down_cut) = (since(now, up.window), since(now, down.window));
        let (mut lowest, mut highest) = (desired, desired);
        for r in &self.recommendations {
            if r.at > up_cut {
                lowest = lowest.min(r.value);
            }
            if r.at > down_cut {
                highest = highest.max(r.value);
            }
        }
        let stabilized = current.max(lowest).min(highest);
        remember(
            &mut self.recommendations,
            now,
            desired,
            up.window.max(down.window),
        );
        let able = stabilized_said(stabilized, desired);
        let (replicas, limited) = if stabilized > current {
            let limit = self.up_limit(up, now, current).max(current);
            let (allowed, why) = if bounds.max > limit {
                (limit, up_limited())
            } else {
                (bounds.max, too_many())
            };
            if stabilized > allowed {
                (allowed, why)
            } else {
                (stabilized, within())
            }
        } else if stabilized < current {
            let limit = self.down_limit(down, now, current).min(current);
            let (allowed, why) = if bounds.min < limit {
                (limit, down_limited())
            } else {
                (bounds.min, too_few())
            };
            if stabilized < allowed {
                (allowed, why)
            } else {
                (stabilized, within())
            }
        } else {
            (stabilized, within())
        };
        Decision {
            replicas,
            able,
            limited,
        }
    }

    fn period_start(&self, now: Timestamp, current: i32, period: i64) -> i32 {
        current - change_in(&self.ups, now, period) + change_in(&self.downs, now, period)
    }

    #[allow(clippy::cast_possible_truncation)]
    fn up_limit(&self, rules: &Rules, now: Timestamp, current: i32) -> i32 {
        let proposals = rules.policies.iter().map(|p| {
            let start = self.period_start(now, current, p.period);
            if p.pods {
                start.saturating_add(p.value)
            } else {
                (f64::from(start) * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32
            }
        });
        match rules.select {
            Select::Disabled => current,
            Select::Max => proposals.max().unwrap_or(current),
            Select::Min => proposals.min().unwrap_or(current),
        }
    }

    #[allow(clippy::cast_possible_truncation)]
    fn down_limit(&self, rules: &Rules, now: Timestamp, current: i32) -> i32 {
        let proposals = rules.policies.iter().map(|p| {
            let start = self.period_start(now, current, p.period);
            if p.pods {
                start.saturating_sub(p.value)
            } else {
                (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)) as i32
            }
        });
        match rules.select {
            Select::Disabled => current,
            // The biggest change down is the smallest count.
            Select::Max => proposals.min().unwrap_or(current),
            Select::Min => proposals.max().unwrap_or(current),
        }
    }
}

fn stabilized_said(stabilized: i32, desired: i32) -> Said {
    if stabilized > desired {
        said(
            true,
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest recent recommendation",
        )
    } else if stabilized < desired {
        said(
            true,
            "ScaleUpStabilized",
            "recent recommendations were lower than current one, applying the lowest recent recommendation",
        )
    } else {
        said(
            true,
            "ReadyForNewScale",
            "recommended size matches current size",
        )
    }
}

fn within() -> Said {
    said(
        false,
        "DesiredWithinRange",
        "the desired count is within the acceptable range",
    )
}

fn too_few() -> Said {
    said(
        true,
        "TooFewReplicas",
        "the desired replica count is less than the minimum replica count",
    )
}

fn too_many() -> Said {
    said(
        true,
        "TooManyReplicas",
        "the desired replica count is more than the maximum replica count",
    )
}

fn up_limited() -> Said {
    said(
        true,
        "ScaleUpLimit",
        "the desired replica count is increasing faster than the maximum scale rate",
    )
}

fn down_limited() -> Said {
    said(
        true,
        "ScaleDownLimit",
        "the desired replica count is decreasing faster than the maximum scale rate",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::autoscaling::v2::HPAScalingPolicy;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).expect("time")
    }

    const BOUNDS: Bounds = Bounds { min: 1, max: 10 };

    fn defaults() -> Behavior {
        Behavior::of(Some(&HorizontalPodAutoscalerBehavior::default()))
    }

    #[test]
    fn a_scale_down_waits_out_the_window() {
        let b = defaults();
        let mut h = History::default();
        assert_eq!(h.decide(&b, at(0), 4, 4, BOUNDS).replicas, 4);
        let d = h.decide(&b, at(60), 4, 1, BOUNDS);
        assert_eq!(d.replicas, 4, "the 5-minute window holds it");
        assert_eq!(d.able.reason, "ScaleDownStabilized");
        assert_eq!(h.decide(&b, at(299), 4, 1, BOUNDS).replicas, 4);
        // Five minutes after the last recommendation of 4.
        assert_eq!(h.decide(&b, at(301), 4, 1, BOUNDS).replicas, 1);
    }

    #[test]
    fn no_window_scales_down_at_once_but_minreplicas_holds() {
        let b = Behavior::of(Some(&HorizontalPodAutoscalerBehavior {
            scale_down: Some(HPAScalingRules {
                stabilization_window_seconds: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        }));
        let mut h = History::default();
        let d = h.decide(&b, at(0), 5, 0, Bounds { min: 2, max: 10 });
        assert_eq!(d.replicas, 2);
        assert_eq!(d.limited.reason, "TooFewReplicas");
        assert!(d.limited.status);
    }

    #[test]
    fn scale_ups_are_rate_limited_per_period() {
        let b = defaults();
        let mut h = History::default();
        // From 1: max(1 + 4 pods, 1 × 200%) = 5.
        let d = h.decide(&b, at(0), 1, 100, Bounds { min: 1, max: 100 });
        assert_eq!(d.replicas, 5);
        assert_eq!(d.limited.reason, "ScaleUpLimit");
        h.scaled(&b, at(0), 1, 5);
        // Within the same 15 s the period started at 1: still 5.
        assert_eq!(
            h.decide(&b, at(10), 5, 100, Bounds { min: 1, max: 100 })
                .replicas,
            5
        );
        // A new period starts from 5: max(9, 10) = 10.
        assert_eq!(
            h.decide(&b, at(16), 5, 100, Bounds { min: 1, max: 100 })
                .replicas,
            10
        );
    }

    #[test]
    fn max_replicas_caps_and_says_so() {
        let b = defaults();
        let mut h = History::default();
        let d = h.decide(&b, at(0), 2, 50, Bounds { min: 1, max: 3 });
        assert_eq!(d.replicas, 3);
        assert_eq!(d.limited.reason, "TooManyReplicas");
    }

    #[test]
    fn min_select_and_disabled_policies() {
        let rules = |select: &str| HPAScalingRules {
            select_policy: Some(select.into()),
            policies: Some(vec![
                HPAScalingPolicy {
                    type_: "Pods".into(),
                    value: 1,
                    period_seconds: 60,
                },
                HPAScalingPolicy {
                    type_: "Percent".into(),
                    value: 50,
                    period_seconds: 60,
                },
            ]),
            ..Default::default()
        };
        let b = Behavior::of(Some(&HorizontalPodAutoscalerBehavior {
            scale_up: Some(rules("Min")),
            scale_down: Some(HPAScalingRules {
                stabilization_window_seconds: Some(0),
                ..rules("Disabled")
            }),
        }));
        let mut h = History::default();
        assert_eq!(
            h.decide(&b, at(0), 4, 20, BOUNDS).replicas,
            5,
            "min(4+1, 6)"
        );
        assert_eq!(
            h.decide(&b, at(1), 4, 1, BOUNDS).replicas,
            4,
            "scale-down disabled"
        );
    }

    #[test]
    fn legacy_rules_double_at_most_and_hold_scale_downs() {
        let mut h = History::default();
        let d = h.decide(&Behavior::Legacy, at(0), 3, 20, Bounds { min: 1, max: 50 });
        assert_eq!(d.replicas, 6);
        assert_eq!(d.limited.reason, "ScaleUpLimit");
        // The recommendation of 20 holds the scale-down; maxReplicas caps it.
        assert_eq!(
            h.decide(&Behavior::Legacy, at(10), 6, 1, BOUNDS).replicas,
            10
        );
    }
}
