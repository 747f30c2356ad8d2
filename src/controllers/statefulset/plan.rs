//! What a StatefulSet should do next with its pods, as a pure function of what it
//! has: replace failed pods, create missing ordinals, delete ordinals past
//! `replicas` (highest first), and roll pods to the update revision from the
//! highest ordinal down to the partition. Under `OrderedReady` every step waits for
//! the ones before it (one pod in flight, each Running and Ready before the next);
//! under `Parallel` creations and deletions all go at once (updates stay one at a
//! time, as in Kubernetes).

/// A pod of the set as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its ordinal.
    pub ordinal: i32,
    /// The revision (ControllerRevision name) it was made from.
    pub revision: String,
    /// Being deleted.
    pub terminating: bool,
    /// Succeeded or Failed: to be replaced.
    pub finished: bool,
    /// Running and Ready (and available for minReadySeconds).
    pub healthy: bool,
}

/// The set's wishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// First ordinal (`spec.ordinals.start`).
    pub start: i32,
    /// How many.
    pub replicas: i32,
    /// `OrderedReady` (true) or `Parallel`.
    pub ordered: bool,
    /// `RollingUpdate` with this partition, or `None` for `OnDelete`.
    pub partition: Option<i32>,
    /// The revision pods below the partition get.
    pub current: String,
    /// The revision of the set's template now.
    pub update: String,
}

impl Want {
    /// The revision a new pod with `ordinal` is made from.
    pub fn revision_for(&self, ordinal: i32) -> &str {
        match self.partition {
            Some(p) if ordinal < self.start + p => &self.current,
            _ => &self.update,
        }
    }
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Make the pod (and its claims) with this ordinal.
    Create(i32),
    /// Delete the pod with this ordinal.
    Delete(i32),
}

/// The steps to take now; an empty plan means wait (or nothing to do).
pub fn plan(want: &Want, members: &[Member]) -> Vec<Step> {
    let end = want.start + want.replicas.max(0);
    let in_range = |o: i32| o >= want.start && o < end;
    let mut steps = Vec::new();
    let by_ordinal = |o: i32| members.iter().find(|m| m.ordinal == o);

    // Replicas in ascending order.
    let mut first_unhealthy = None;
    for o in want.start..end {
        match by_ordinal(o) {
            None => {
                steps.push(Step::Create(o));
                if want.ordered {
                    return steps;
                }
            }
            Some(m) if m.finished && !m.terminating => {
                steps.push(Step::Delete(o));
                if want.ordered {
                    return steps;
                }
            }
            Some(m) if m.terminating || !m.healthy => {
                first_unhealthy.get_or_insert(o);
                if want.ordered {
                    return steps;
                }
            }
            Some(_) => {}
        }
    }

    // Condemned pods, highest ordinal first.
    let mut condemned: Vec<&Member> = members.iter().filter(|m| !in_range(m.ordinal)).collect();
    condemned.sort_by_key(|m| std::cmp::Reverse(m.ordinal));
    for m in condemned {
        if m.terminating {
            if want.ordered {
                return steps;
            }
            continue;
        }
        // Ordered: a condemned pod goes only while everything below is healthy
        // (an unhealthy condemned pod itself may go: it is the first unhealthy one).
        if want.ordered && first_unhealthy.is_some() {
            return steps;
        }
        steps.push(Step::Delete(m.ordinal));
        if want.ordered {
            return steps;
        }
    }
    if !steps.is_empty() || first_unhealthy.is_some() {
        return steps;
    }

    // Rolling update from the top down to the partition, one pod at a time.
    let Some(partition) = want.partition else {
        return steps;
    };
    for o in (want.start + partition.max(0)..end).rev() {
        let Some(m) = by_ordinal(o) else {
            return steps;
        };
        if m.revision != want.update && !m.terminating {
            steps.push(Step::Delete(o));
            return steps;
        }
        if !m.healthy || m.terminating {
            return steps;
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(replicas: i32, ordered: bool) -> Want {
        Want {
            start: 0,
            replicas,
            ordered,
            partition: Some(0),
            current: "web-a".into(),
            update: "web-a".into(),
        }
    }

    fn member(ordinal: i32, healthy: bool) -> Member {
        Member {
            ordinal,
            revision: "web-a".into(),
            terminating: false,
            finished: false,
            healthy,
        }
    }

    #[test]
    fn ordered_ready_makes_one_pod_at_a_time_and_waits_for_it() {
        let w = want(3, true);
        assert_eq!(plan(&w, &[]), [Step::Create(0)]);
        assert_eq!(plan(&w, &[member(0, false)]), []);
        assert_eq!(plan(&w, &[member(0, true)]), [Step::Create(1)]);
        assert_eq!(
            plan(&w, &[member(0, true), member(1, true)]),
            [Step::Create(2)]
        );
    }

    #[test]
    fn parallel_makes_every_missing_pod_at_once() {
        let w = want(3, false);
        assert_eq!(
            plan(&w, &[member(1, false)]),
            [Step::Create(0), Step::Create(2)]
        );
    }

    #[test]
    fn scale_down_removes_the_highest_ordinal_first_one_at_a_time() {
        let w = want(1, true);
        let all = [member(0, true), member(1, true), member(2, true)];
        assert_eq!(plan(&w, &all), [Step::Delete(2)]);
        let mut going = all.clone();
        going[2].terminating = true;
        assert_eq!(plan(&w, &going), [], "waits for web-2 to go");
        assert_eq!(plan(&w, &all[..2]), [Step::Delete(1)]);
        // Not while a lower pod is unhealthy.
        assert_eq!(plan(&w, &[member(0, false), member(1, true)]), []);
        // Parallel: all at once.
        assert_eq!(
            plan(&want(1, false), &all),
            [Step::Delete(2), Step::Delete(1)]
        );
    }

    #[test]
    fn failed_pods_are_replaced() {
        let w = want(2, true);
        let mut failed = member(0, false);
        failed.finished = true;
        assert_eq!(plan(&w, &[failed, member(1, true)]), [Step::Delete(0)]);
    }

    #[test]
    fn rolling_updates_go_from_the_top_down_to_the_partition() {
        let mut w = want(3, true);
        w.update = "web-b".into();
        w.partition = Some(1);
        let all = [member(0, true), member(1, true), member(2, true)];
        assert_eq!(plan(&w, &all), [Step::Delete(2)]);
        let mut two_new = all.clone();
        two_new[2].revision = "web-b".into();
        two_new[2].healthy = false;
        assert_eq!(plan(&w, &two_new), [], "waits for the new web-2");
        two_new[2].healthy = true;
        assert_eq!(plan(&w, &two_new), [Step::Delete(1)]);
        two_new[1].revision = "web-b".into();
        assert_eq!(plan(&w, &two_new), [], "web-0 is below the partition");
        assert_eq!(w.revision_for(0), "web-a");
        assert_eq!(w.revision_for(1), "web-b");
        // OnDelete never deletes for an update.
        w.partition = None;
        assert_eq!(plan(&w, &all), []);
    }
}
