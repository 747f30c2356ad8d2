//! The scheduler: assigns each unscheduled pod (schedulerName `default-scheduler`)
//! to the node that fits it best, through the `binding` subresource, as
//! kube-scheduler does. A pod no node fits gets a `FailedScheduling` event and a
//! `PodScheduled=False` (`Unschedulable`) condition, and is tried again whenever a
//! node changes or a pod leaves a node.
//!
//! Its view of the cluster is its own cache, kept from watches of pods and nodes;
//! a pod it has just placed is *assumed* on its node until the binding lands, so a
//! burst of creations never overfills a node.

pub mod fit;

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::events::{Involved, Kind, Recorder};
use fit::{NodeInfo, Resources};

/// The name pods ask for to be placed by this scheduler.
pub const NAME: &str = "default-scheduler";

/// What the scheduler knows.
#[derive(Default)]
struct State {
    nodes: BTreeMap<String, NodeInfo>,
    /// Pods holding room on a node (bound or assumed), by uid.
    placed: HashMap<String, (String, Resources)>,
    /// Unscheduled pods to try, in arrival order.
    pending: BTreeMap<u64, Pod>,
    queued: HashMap<String, u64>,
    next: u64,
    /// Pods no node fits, with the last failure message.
    unschedulable: HashMap<String, (Pod, String)>,
    /// Pods being bound right now.
    binding: HashMap<String, Pod>,
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

impl State {
    fn place(&mut self, id: &str, node: &str, req: Resources) {
        if self.placed.get(id).is_some_and(|(n, _)| n == node) {
            return;
        }
        self.release(id);
        if let Some(n) = self.nodes.get_mut(node) {
            n.requested = n.requested + req;
            n.pods += 1;
        }
        self.placed.insert(id.to_string(), (node.to_string(), req));
    }

    /// Free what a pod held; true when it held anything.
    fn release(&mut self, id: &str) -> bool {
        let Some((node, req)) = self.placed.remove(id) else {
            return false;
        };
        if let Some(n) = self.nodes.get_mut(&node) {
            n.requested = n.requested - req;
            n.pods -= 1;
        }
        true
    }

    fn enqueue(&mut self, pod: Pod) {
        let id = uid(&pod);
        if let Some(seq) = self.queued.remove(&id) {
            self.pending.remove(&seq);
        }
        self.next += 1;
        self.queued.insert(id, self.next);
        self.pending.insert(self.next, pod);
    }

    fn forget(&mut self, id: &str) {
        if let Some(seq) = self.queued.remove(id) {
            self.pending.remove(&seq);
        }
        self.unschedulable.remove(id);
    }

    /// Room may have freed up: try every unschedulable pod again.
    fn retry_unschedulable(&mut self) {
        let waiting: Vec<Pod> = self
            .unschedulable
            .values()
            .map(|(p, _)| p.clone())
            .collect();
        for p in waiting {
            self.enqueue(p);
        }
    }

    fn on_pod(&mut self, pod: Pod) {
        let id = uid(&pod);
        let spec = pod.spec.clone().unwrap_or_default();
        let node = spec.node_name.clone().unwrap_or_default();
        if terminal(&pod) || (pod.metadata.deletion_timestamp.is_some() && node.is_empty()) {
            self.forget(&id);
            self.binding.remove(&id);
            if self.release(&id) {
                self.retry_unschedulable();
            }
            return;
        }
        if !node.is_empty() {
            self.forget(&id);
            self.binding.remove(&id);
            self.place(&id, &node, fit::requests(&spec));
            return;
        }
        if spec.scheduler_name.as_deref().is_some_and(|s| s != NAME)
            || self.binding.contains_key(&id)
        {
            return;
        }
        // Our own status write about an unschedulable pod is no reason to retry it.
        if let Some((known, _)) = self.unschedulable.get_mut(&id)
            && known.spec == pod.spec
        {
            *known = pod;
            return;
        }
        self.unschedulable.remove(&id);
        self.enqueue(pod);
    }

    fn on_pod_gone(&mut self, pod: &Pod) {
        let id = uid(pod);
        self.forget(&id);
        self.binding.remove(&id);
        if self.release(&id) {
            self.retry_unschedulable();
        }
    }

    fn on_node(&mut self, node: &Node) {
        let mut info = NodeInfo::of(node);
        for (n, req) in self.placed.values() {
            if *n == info.name {
                info.requested = info.requested + *req;
                info.pods += 1;
            }
        }
        self.nodes.insert(info.name.clone(), info);
        self.retry_unschedulable();
    }

    /// Pick a node for the oldest pending pod: `Ok(node)` (assumed there now) or
    /// `Err(message)` when none fits.
    fn schedule_next(&mut self) -> Option<(Pod, Result<String, String>)> {
        let (_, pod) = self.pending.pop_first()?;
        let id = uid(&pod);
        self.queued.remove(&id);
        let spec = pod.spec.clone().unwrap_or_default();
        let req = fit::requests(&spec);
        let mut refused = Vec::new();
        let mut best: Option<(i128, &str)> = None;
        for n in self.nodes.values() {
            let reasons = fit::filter(&spec, req, n);
            if reasons.is_empty() {
                let s = fit::score(req, n);
                if best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, &n.name));
                }
            } else {
                refused.push(reasons);
            }
        }
        let Some((_, node)) = best else {
            let message = fit::fit_error(self.nodes.len(), &refused);
            return Some((pod, Err(message)));
        };
        let node = node.to_string();
        self.place(&id, &node, req);
        self.binding.insert(id, pod.clone());
        Some((pod, Ok(node)))
    }
}

enum Input {
    Pod(Box<Result<watcher::Event<Pod>, watcher::Error>>),
    Node(Box<Result<watcher::Event<Node>, watcher::Error>>),
}

/// Schedule pods until the watch streams end (the cluster's shutdown stops it).
pub async fn run(client: kube::Client) {
    let recorder = Recorder::new(client.clone(), NAME, None);
    let pods = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .map(|e| Input::Pod(Box::new(e)))
        .boxed();
    let nodes = watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .map(|e| Input::Node(Box::new(e)))
        .boxed();
    let mut inputs = stream::select(pods, nodes);
    let mut state = State::default();
    // Bindings in flight; dropped (aborted) with this loop.
    let mut bindings: JoinSet<(String, bool)> = JoinSet::new();
    loop {
        tokio::select! {
            input = inputs.next() => match input {
                Some(input) => on_input(&mut state, input),
                None => return,
            },
            Some(Ok((id, bound))) = bindings.join_next(), if !bindings.is_empty() => {
                if let Some(pod) = state.binding.remove(&id)
                    && !bound
                {
                    // The pod watch brings the truth (bound elsewhere, or gone);
                    // until then it is tried again.
                    state.release(&id);
                    state.enqueue(pod);
                }
            }
        }
        while let Some((pod, outcome)) = state.schedule_next() {
            match outcome {
                Ok(node) => {
                    let (client, recorder) = (client.clone(), recorder.clone());
                    bindings.spawn(async move {
                        let bound = bind(&client, &recorder, &pod, &node).await;
                        (uid(&pod), bound)
                    });
                }
                Err(message) => {
                    let id = uid(&pod);
                    let changed = state
                        .unschedulable
                        .get(&id)
                        .is_none_or(|(_, last)| *last != message);
                    state
                        .unschedulable
                        .insert(id, (pod.clone(), message.clone()));
                    let (client, recorder) = (client.clone(), recorder.clone());
                    bindings.spawn(async move {
                        unschedulable(&client, &recorder, &pod, message, changed).await;
                        (String::new(), true)
                    });
                }
            }
        }
    }
}

fn on_input(state: &mut State, input: Input) {
    match input {
        Input::Pod(event) => on_pod_event(state, *event),
        Input::Node(event) => match *event {
            Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n)) => state.on_node(&n),
            Ok(watcher::Event::Delete(n)) => {
                if let Some(name) = &n.metadata.name {
                    state.nodes.remove(name);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "scheduler node watch (retrying)"),
        },
    }
}

fn on_pod_event(state: &mut State, event: Result<watcher::Event<Pod>, watcher::Error>) {
    match event {
        Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => state.on_pod(p),
        Ok(watcher::Event::Delete(p)) => state.on_pod_gone(&p),
        Ok(watcher::Event::Init) => {
            // A fresh list follows: forget what it will restate.
            for id in state.placed.keys().cloned().collect::<Vec<_>>() {
                if !state.binding.contains_key(&id) {
                    state.release(&id);
                }
            }
            state.pending.clear();
            state.queued.clear();
            state.unschedulable.clear();
        }
        Ok(watcher::Event::InitDone) => {}
        Err(e) => tracing::debug!(error = %e, "scheduler pod watch (retrying)"),
    }
}

/// Bind `pod` to `node`; on success record `Scheduled`.
async fn bind(client: &kube::Client, recorder: &Recorder, pod: &Pod, node: &str) -> bool {
    let (Some(ns), Some(name)) = (
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref(),
    ) else {
        return false;
    };
    // Stamped before the binding, so it lists before the kubelet's events.
    let at = jiff::Timestamp::now();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": name, "namespace": ns, "uid": pod.metadata.uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    match api
        .create_subresource::<Value, Value>("binding", name, &PostParams::default(), &binding)
        .await
    {
        Ok(_) => {
            if let Some(about) = Involved::of(pod) {
                let message = format!("Successfully assigned {ns}/{name} to {node}");
                recorder
                    .record_at(&about, Kind::Normal, "Scheduled", message, at)
                    .await;
            }
            true
        }
        Err(e) => {
            tracing::debug!(pod = %name, node, error = %e, "binding failed");
            false
        }
    }
}

/// Report a pod no node fits: a `FailedScheduling` event each attempt, and the
/// `PodScheduled=False` condition when the reason changed.
async fn unschedulable(
    client: &kube::Client,
    recorder: &Recorder,
    pod: &Pod,
    message: String,
    changed: bool,
) {
    let (Some(ns), Some(name)) = (
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref(),
    ) else {
        return;
    };
    if changed {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let patch = json!({"status": {"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastProbeTime": null,
            "lastTransitionTime": crate::api::clock::now(),
        }]}});
        if let Err(e) = api
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            tracing::debug!(pod = %name, error = %e, "marking a pod unschedulable");
        }
    }
    if let Some(about) = Involved::of(pod) {
        recorder
            .record(&about, Kind::Warning, "FailedScheduling", message)
            .await;
    }
}
