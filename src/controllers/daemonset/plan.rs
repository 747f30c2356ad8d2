//! What a DaemonSet sync decides, as pure functions of nodes and pods: which nodes
//! need a pod and which pods go (`manage`), which old pods a RollingUpdate replaces
//! next within maxUnavailable / maxSurge (`rolling_update`), and the status counts.
//! The controller applies the result.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::nodes::Fit;
use crate::controllers::history::HASH_LABEL;
use crate::controllers::pods;

/// The label carrying the template generation a pod was made from.
pub const GENERATION_LABEL: &str = "pod-template-generation";

/// A node and whether the DaemonSet belongs there.
#[derive(Debug, Clone)]
pub struct NodeFit {
    /// The node's name.
    pub name: String,
    /// Its eligibility.
    pub fit: Fit,
}

/// The DaemonSet's side of a decision.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// The current revision's hash.
    pub hash: &'a str,
    /// The template generation (the `deprecated.daemonset.template.generation` annotation).
    pub generation: Option<i64>,
    /// `spec.minReadySeconds`.
    pub min_ready_seconds: i32,
    /// Whether RollingUpdate may surge (two pods on a node during an update).
    pub surge: bool,
    /// Now.
    pub now: jiff::Timestamp,
}

/// Pods grouped by the node they run on (or are pinned to).
pub type ByNode<'a> = BTreeMap<String, Vec<&'a Pod>>;

/// `IsPodUpdated`: the pod carries the current hash, or the current template generation.
pub fn is_updated(pod: &Pod, s: &Settings<'_>) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    let by_hash = !s.hash.is_empty() && get(HASH_LABEL) == Some(s.hash);
    let by_generation = s
        .generation
        .is_some_and(|g| get(GENERATION_LABEL) == Some(g.to_string().as_str()));
    by_hash || by_generation
}

fn available(pod: &Pod, s: &Settings<'_>) -> bool {
    pods::availability(pod, s.min_ready_seconds, s.now).is_ok()
}

fn scheduled(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

/// Scheduled first, then oldest, then by name (`podByCreationTimestampAndPhase`).
pub fn oldest_first(pods: &mut [&Pod]) {
    pods.sort_by(|a, b| {
        let key = |p: &Pod| {
            (
                !scheduled(p),
                p.metadata.creation_timestamp.as_ref().map(|t| t.0),
                p.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
}

/// What `manage` decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Manage {
    /// Nodes that need a daemon pod.
    pub create: Vec<String>,
    /// Pods to delete (extra, misplaced, succeeded, or pinned to a node that is gone).
    pub delete: Vec<String>,
    /// Failed pods, with their node: deleted (and so replaced) unless backing off.
    pub failed: Vec<(String, String)>,
    /// Succeeded pods, with their node (already in `delete`; reported by an event).
    pub succeeded: Vec<(String, String)>,
}

/// `manage` / `podsShouldBeOnNode`: for each node, start a pod where one belongs and
/// none is there, replace failed ones, keep one pod per node (two while surging:
/// an old one still ready beside a new one not yet available), and remove pods
/// from nodes they no longer belong on.
pub fn manage(nodes: &[NodeFit], by_node: &ByNode<'_>, s: &Settings<'_>) -> Manage {
    let mut out = Manage::default();
    for node in nodes {
        let pods = by_node.get(&node.name).filter(|p| !p.is_empty());
        match pods {
            None if node.fit.should_run => out.create.push(node.name.clone()),
            None => {}
            Some(pods) if node.fit.should_continue => {
                let mut running: Vec<&Pod> = Vec::new();
                for p in pods.iter().copied() {
                    if p.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    let name = p.metadata.name.clone().unwrap_or_default();
                    match pods::phase(p) {
                        "Failed" => out.failed.push((node.name.clone(), name)),
                        "Succeeded" => {
                            out.succeeded.push((node.name.clone(), name.clone()));
                            out.delete.push(name);
                        }
                        _ => running.push(p),
                    }
                }
                oldest_first(&mut running);
                if !s.surge {
                    // One pod per node: the oldest stays.
                    out.delete.extend(
                        running
                            .iter()
                            .skip(1)
                            .filter_map(|p| p.metadata.name.clone()),
                    );
                    continue;
                }
                if running.is_empty() {
                    if node.fit.should_run {
                        out.create.push(node.name.clone());
                    }
                    continue;
                }
                // Surging: keep the oldest new pod and the oldest old one; the old
                // one goes once it is not ready or the new one is available.
                let (mut newest, mut oldest) = (None, None);
                for p in running {
                    let slot = if is_updated(p, s) {
                        &mut newest
                    } else {
                        &mut oldest
                    };
                    if slot.is_none() {
                        *slot = Some(p);
                    } else if let Some(n) = &p.metadata.name {
                        out.delete.push(n.clone());
                    }
                }
                if let (Some(new), Some(old)) = (newest, oldest)
                    && (!pods::is_ready(old) || available(new, s))
                    && let Some(n) = &old.metadata.name
                {
                    out.delete.push(n.clone());
                }
            }
            Some(pods) => {
                out.delete.extend(
                    pods.iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                        .filter_map(|p| p.metadata.name.clone()),
                );
            }
        }
    }
    // Unscheduled pods pinned to a node that no longer exists never run; nothing
    // else would delete them.
    for (node, pods) in by_node {
        if nodes.iter().any(|n| &n.name == node) {
            continue;
        }
        out.delete.extend(
            pods.iter()
                .filter(|p| !scheduled(p) && p.metadata.deletion_timestamp.is_none())
                .filter_map(|p| p.metadata.name.clone()),
        );
    }
    out
}

/// An IntOrString scaled against `total` (percentages round up), as
/// `GetScaledValueFromIntOrPercent(…, true)`.
pub fn scaled(value: Option<&IntOrString>, total: i32) -> i32 {
    match value {
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let p: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            i32::try_from((p * i64::from(total) + 99) / 100).unwrap_or(0)
        }
        None => 0,
    }
}

/// maxSurge and maxUnavailable as pod counts for `desired` nodes; both zero would
/// stall, so unavailable becomes 1 (`updatedDesiredNodeCounts`).
pub fn limits(
    surge: Option<&IntOrString>,
    unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let surge = scaled(surge, desired);
    let unavailable = scaled(unavailable, desired);
    if desired > 0 && surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// The node's current pods split into the new and the old one (`findUpdatedPodsOnNode`);
/// `None` when there is more than one of either (manage cleans that up first).
fn new_and_old<'a>(
    pods: &[&'a Pod],
    s: &Settings<'_>,
) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for p in pods.iter().copied() {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let slot = if is_updated(p, s) { &mut new } else { &mut old };
        if slot.is_some() {
            return None;
        }
        *slot = Some(p);
    }
    Some((new, old))
}

/// What a rolling update step does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Roll {
    /// Old pods to delete (their replacements come from `manage`).
    pub delete: Vec<String>,
    /// Nodes that get a new pod beside their old one (surge).
    pub create: Vec<String>,
}

/// `rollingUpdate`: without surge, delete old pods while at most maxUnavailable
/// nodes lack an available pod (unavailable old pods go at once); with surge,
/// start new pods beside old ones, at most maxSurge at a time, and delete an old
/// pod once its replacement is available.
pub fn rolling_update(
    nodes: &[NodeFit],
    by_node: &ByNode<'_>,
    s: &Settings<'_>,
    max_surge: i32,
    max_unavailable: i32,
) -> Roll {
    // Every node that should run a pod takes part, with or without pods.
    let mut all: BTreeMap<&str, Vec<&Pod>> = by_node
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    for n in nodes.iter().filter(|n| n.fit.should_run) {
        all.entry(n.name.as_str()).or_default();
    }
    let name = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
    let mut out = Roll::default();
    if max_surge == 0 {
        let mut unavailable = 0;
        let mut candidates = Vec::new();
        for pods in all.values() {
            match new_and_old(pods, s) {
                None | Some((None, None) | (Some(_), Some(_))) => unavailable += 1,
                Some((Some(new), None)) => {
                    if !available(new, s) {
                        unavailable += 1;
                    }
                }
                Some((None, Some(old))) => {
                    if available(old, s) {
                        candidates.push(name(old));
                    } else {
                        out.delete.push(name(old));
                    }
                }
            }
        }
        let room = usize::try_from((max_unavailable - unavailable).max(0)).unwrap_or(0);
        out.delete.extend(candidates.into_iter().take(room));
        return out;
    }
    let mut surging = 0;
    let mut candidates = Vec::new();
    for (node, pods) in &all {
        match new_and_old(pods, s) {
            None => surging += 1,
            Some((_, None)) => {}
            Some((None, Some(old))) => {
                if available(old, s) {
                    candidates.push(node.to_string());
                } else {
                    out.create.push(node.to_string());
                }
            }
            Some((Some(new), Some(old))) => {
                if available(new, s) {
                    out.delete.push(name(old));
                } else {
                    surging += 1;
                }
            }
        }
    }
    let room = usize::try_from((max_surge - surging).max(0)).unwrap_or(0);
    out.create.extend(candidates.into_iter().take(room));
    out
}

/// The counts a DaemonSet's status reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Nodes that should run a pod.
    pub desired: i32,
    /// Of those, nodes running one.
    pub current: i32,
    /// Nodes running one that should not.
    pub misscheduled: i32,
    /// Nodes whose (oldest) pod is ready.
    pub ready: i32,
    /// Nodes whose (oldest) pod is from the current template.
    pub updated: i32,
    /// Nodes whose (oldest) pod has been ready for minReadySeconds.
    pub available: i32,
}

impl Counts {
    /// Nodes that should run a pod and have none available.
    pub fn unavailable(&self) -> i32 {
        self.desired - self.available
    }
}

/// `updateDaemonSetStatus`: the counts, and when a ready pod becomes available.
pub fn status(
    nodes: &[NodeFit],
    by_node: &ByNode<'_>,
    s: &Settings<'_>,
) -> (Counts, Option<Duration>) {
    let mut c = Counts::default();
    let mut wait: Option<Duration> = None;
    for node in nodes {
        let mut pods: Vec<&Pod> = by_node.get(&node.name).cloned().unwrap_or_default();
        if !node.fit.should_run {
            if !pods.is_empty() {
                c.misscheduled += 1;
            }
            continue;
        }
        c.desired += 1;
        if pods.is_empty() {
            continue;
        }
        c.current += 1;
        oldest_first(&mut pods);
        let pod = pods[0];
        if pods::is_ready(pod) {
            c.ready += 1;
            match pods::availability(pod, s.min_ready_seconds, s.now) {
                Ok(()) => c.available += 1,
                Err(Some(d)) => wait = Some(wait.map_or(d, |w| w.min(d))),
                Err(None) => {}
            }
        }
        if is_updated(pod, s) {
            c.updated += 1;
        }
    }
    (c, wait)
}

/// The status to store: the counts (zeros of the optional fields left out, as
/// Go's omitempty does), `observedGeneration`, and what the controller does not
/// own kept from `stored` (collisionCount, conditions).
pub fn status_json(c: &Counts, generation: Option<i64>, stored: &Value) -> Value {
    let mut status = json!({
        "currentNumberScheduled": c.current,
        "numberMisscheduled": c.misscheduled,
        "desiredNumberScheduled": c.desired,
        "numberReady": c.ready,
        "observedGeneration": generation,
        "updatedNumberScheduled": c.updated,
        "numberAvailable": c.available,
        "numberUnavailable": c.unavailable(),
    });
    for kept in ["collisionCount", "conditions"] {
        if let Some(v) = stored.get(kept).filter(|v| !v.is_null()) {
            status[kept] = v.clone();
        }
    }
    if let Some(m) = status.as_object_mut() {
        m.retain(|k, v| {
            let optional = matches!(
                k.as_str(),
                "observedGeneration"
                    | "updatedNumberScheduled"
                    | "numberAvailable"
                    | "numberUnavailable"
            );
            !(v.is_null() || (optional && v == &json!(0)))
        });
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:10:00Z";

    fn settings(surge: bool) -> Settings<'static> {
        Settings {
            hash: "new",
            generation: Some(2),
            min_ready_seconds: 0,
            surge,
            now: NOW.parse().expect("now"),
        }
    }

    fn pod(name: &str, node: &str, hash: &str, phase: &str, ready: bool, created: &str) -> Pod {
        let ready = if ready { "True" } else { "False" };
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {HASH_LABEL: hash},
                         "creationTimestamp": format!("2026-01-01T00:0{created}:00Z")},
            "spec": {"nodeName": node, "containers": []},
            "status": {"phase": phase, "conditions": [
                {"type": "Ready", "status": ready, "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .expect("pod")
    }

    fn nodes(names: &[&str]) -> Vec<NodeFit> {
        names
            .iter()
            .map(|n| NodeFit {
                name: (*n).into(),
                fit: Fit {
                    should_run: true,
                    should_continue: true,
                },
            })
            .collect()
    }

    fn group<'a>(pods: &'a [Pod]) -> ByNode<'a> {
        let mut by: ByNode<'a> = BTreeMap::new();
        for p in pods {
            let node = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            by.entry(node).or_default().push(p);
        }
        by
    }

    #[test]
    fn every_eligible_node_without_a_pod_gets_one_and_extras_go() {
        let pods = [
            pod("a1", "a", "new", "Running", true, "1"),
            pod("a2", "a", "new", "Running", true, "2"),
        ];
        let mut ns = nodes(&["a", "b", "c"]);
        ns[2].fit = Fit::default();
        let m = manage(&ns, &group(&pods), &settings(false));
        assert_eq!(m.create, ["b"]);
        assert_eq!(m.delete, ["a2"], "the oldest stays");
    }

    #[test]
    fn failed_pods_are_reported_for_replacement_and_succeeded_ones_deleted() {
        let pods = [
            pod("a1", "a", "new", "Failed", false, "1"),
            pod("b1", "b", "new", "Succeeded", false, "1"),
        ];
        let m = manage(&nodes(&["a", "b"]), &group(&pods), &settings(false));
        assert_eq!(m.failed, [("a".to_string(), "a1".to_string())]);
        assert_eq!(m.delete, ["b1"]);
        assert!(
            m.create.is_empty(),
            "replacements come once the pods are gone"
        );
    }

    #[test]
    fn pods_on_nodes_they_no_longer_fit_are_deleted() {
        let pods = [pod("a1", "a", "new", "Running", true, "1")];
        let mut ns = nodes(&["a"]);
        ns[0].fit = Fit::default();
        let m = manage(&ns, &group(&pods), &settings(false));
        assert_eq!(m.delete, ["a1"]);
        ns[0].fit.should_continue = true;
        assert!(
            manage(&ns, &group(&pods), &settings(false))
                .delete
                .is_empty()
        );
    }

    #[test]
    fn a_rolling_update_without_surge_replaces_at_most_max_unavailable() {
        let pods = [
            pod("a1", "a", "old", "Running", true, "1"),
            pod("b1", "b", "old", "Running", true, "1"),
            pod("c1", "c", "old", "Running", false, "1"),
        ];
        let ns = nodes(&["a", "b", "c"]);
        let r = rolling_update(&ns, &group(&pods), &settings(false), 0, 1);
        assert_eq!(
            r.delete,
            ["c1", "a1"],
            "an unavailable old pod goes at once, uncounted, and one more within the budget"
        );
        let pods = [
            pod("a2", "a", "new", "Running", false, "5"),
            pod("b1", "b", "old", "Running", true, "1"),
            pod("c1", "c", "old", "Running", true, "1"),
        ];
        let r = rolling_update(&ns, &group(&pods), &settings(false), 0, 1);
        assert!(
            r.delete.is_empty(),
            "a new pod not yet available uses the budget"
        );
        let r = rolling_update(&ns, &group(&pods), &settings(false), 0, 2);
        assert_eq!(r.delete, ["b1"]);
    }

    #[test]
    fn a_surging_update_starts_new_pods_then_retires_old_ones() {
        let ns = nodes(&["a", "b"]);
        let pods = [
            pod("a1", "a", "old", "Running", true, "1"),
            pod("b1", "b", "old", "Running", true, "1"),
        ];
        let r = rolling_update(&ns, &group(&pods), &settings(true), 1, 0);
        assert_eq!(r.create, ["a"]);
        let pods = [
            pod("a1", "a", "old", "Running", true, "1"),
            pod("a2", "a", "new", "Running", true, "5"),
            pod("b1", "b", "old", "Running", true, "1"),
        ];
        let r = rolling_update(&ns, &group(&pods), &settings(true), 1, 0);
        assert_eq!(r.delete, ["a1"]);
        assert_eq!(r.create, ["b"]);
        let m = manage(&ns, &group(&pods), &settings(true));
        assert_eq!(m.delete, ["a1"], "manage also retires the old pod");
    }

    #[test]
    fn limits_scale_percentages_up_and_never_both_zero() {
        let pct = |s: &str| Some(IntOrString::String(s.into()));
        assert_eq!(limits(None, Some(&IntOrString::Int(1)), 3), (0, 1));
        assert_eq!(limits(pct("10%").as_ref(), pct("50%").as_ref(), 3), (1, 2));
        assert_eq!(limits(pct("0%").as_ref(), pct("0%").as_ref(), 3), (0, 1));
        assert_eq!(limits(None, None, 0), (0, 0));
    }

    #[test]
    fn status_counts_nodes_by_their_oldest_pod() {
        let pods = [
            pod("a1", "a", "new", "Running", true, "1"),
            pod("b1", "b", "old", "Running", false, "1"),
            pod("c1", "c", "new", "Running", true, "1"),
        ];
        let mut ns = nodes(&["a", "b", "c", "d"]);
        ns[2].fit = Fit::default();
        let (c, wait) = status(&ns, &group(&pods), &settings(false));
        assert_eq!(
            c,
            Counts {
                desired: 3,
                current: 2,
                misscheduled: 1,
                ready: 1,
                updated: 1,
                available: 1
            }
        );
        assert_eq!(c.unavailable(), 2);
        assert_eq!(wait, None);
        let mut s = settings(false);
        s.min_ready_seconds = 900;
        let (c, wait) = status(&ns, &group(&pods), &s);
        assert_eq!(c.available, 0);
        assert_eq!(wait, Some(Duration::from_secs(300)));
    }

    #[test]
    fn a_pod_is_updated_by_hash_or_template_generation() {
        let s = settings(false);
        let mut p = pod("a1", "a", "old", "Running", true, "1");
        assert!(!is_updated(&p, &s));
        p.metadata
            .labels
            .get_or_insert_default()
            .insert(GENERATION_LABEL.into(), "2".into());
        assert!(is_updated(&p, &s));
    }

    #[test]
    fn the_status_keeps_required_zeros_and_drops_optional_ones() {
        let c = Counts {
            desired: 2,
            ..Counts::default()
        };
        let stored = json!({"collisionCount": 1, "numberReady": 5});
        assert_eq!(
            status_json(&c, Some(3), &stored),
            json!({"currentNumberScheduled": 0, "numberMisscheduled": 0,
                   "desiredNumberScheduled": 2, "numberReady": 0, "observedGeneration": 3,
                   "numberUnavailable": 2, "collisionCount": 1})
        );
    }
}
