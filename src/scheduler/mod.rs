//! The scheduler: assigns each unscheduled pod (schedulerName `default-scheduler`)
//! to the node that fits it best, through the `binding` subresource, as
//! kube-scheduler does. A pod no node fits gets a `FailedScheduling` event and a
//! `PodScheduled=False` (`Unschedulable`) condition, and is tried again whenever a
//! node changes or a pod leaves a node.
//!
//! Its view of the cluster is its own cache, kept from watches of pods and nodes;
//! a pod it has just placed is *assumed* on its node until the binding lands, so a
//! burst of creations never overfills a node. Pods with PersistentVolumeClaims go
//! through the VolumeBinding plugin ([`volumes`]): claims, volumes and classes are
//! watched too, and a pod whose claims wait for their first consumer is bound
//! only once they are.

pub mod fit;
pub mod volumes;

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
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
    /// Claims, volumes and classes, with what bindings in flight assume.
    volumes: volumes::Volumes,
}

/// Where a pod goes and the volume bindings to write first, or why it fits nowhere.
type Placement = Result<(String, volumes::Writes), String>;

/// How a binding in flight ended.
enum Outcome {
    /// The pod is bound.
    Bound,
    /// The binding call failed; the pod watch tells what happened.
    Failed,
    /// Binding the pod's volumes failed (the FailedScheduling message).
    Volumes(String, volumes::Writes),
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
        self.retry_where(|_| true);
    }

    /// Try again the unschedulable pods `affected` picks.
    fn retry_where(&mut self, affected: impl Fn(&Pod) -> bool) {
        let waiting: Vec<Pod> = self
            .unschedulable
            .values()
            .map(|(p, _)| p)
            .filter(|p| affected(p))
            .cloned()
            .collect();
        for p in waiting {
            self.enqueue(p);
        }
    }

    /// Storage changed: retry the pods it may let in (those mounting the claim
    /// that changed, or any pod with claims when a volume or class changed).
    fn on_storage(&mut self, change: Option<volumes::Change>) {
        match change {
            None => {}
            Some(volumes::Change::Claim(key)) if !key.is_empty() => {
                self.retry_where(|p| {
                    let ns = p.metadata.namespace.as_deref().unwrap_or_default();
                    volumes::claim_names(p)
                        .iter()
                        .any(|c| format!("{ns}/{c}") == key)
                });
            }
            Some(_) => self.retry_where(|p| !volumes::claim_names(p).is_empty()),
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

    /// Pick a node for the oldest pending pod: `Ok(node)` (assumed there now,
    /// with the volume bindings to make first) or `Err(message)` when none fits.
    /// Nothing is scheduled before the storage watches have listed.
    fn schedule_next(&mut self) -> Option<(Pod, Placement)> {
        if !self.volumes.synced() {
            return None;
        }
        let (_, pod) = self.pending.pop_first()?;
        let id = uid(&pod);
        self.queued.remove(&id);
        let claims = match volumes::prefilter(&self.volumes, &pod) {
            Ok(c) => c,
            Err(message) => {
                let message = fit::prefilter_error(self.nodes.len(), &message);
                return Some((pod, Err(message)));
            }
        };
        let spec = pod.spec.clone().unwrap_or_default();
        let req = fit::requests(&spec);
        let mut refused = Vec::new();
        let mut best: Option<(i128, &str, volumes::Plan)> = None;
        for n in self.nodes.values() {
            let mut reasons = fit::filter(&spec, req, n);
            let mut plan = volumes::Plan::default();
            if reasons.is_empty()
                && let Some(claims) = &claims
            {
                match volumes::filter(&self.volumes, claims, n) {
                    Ok(p) => plan = p,
                    Err(r) => reasons = r,
                }
            }
            if reasons.is_empty() {
                let s = fit::score(req, n);
                if best.as_ref().is_none_or(|(b, _, _)| s > *b) {
                    best = Some((s, &n.name, plan));
                }
            } else {
                refused.push(reasons);
            }
        }
        let Some((_, node, plan)) = best else {
            let message = fit::fit_error(self.nodes.len(), &refused);
            return Some((pod, Err(message)));
        };
        let node = node.to_string();
        let writes = self.volumes.assume(&plan, &node);
        self.place(&id, &node, req);
        self.binding.insert(id, pod.clone());
        Some((pod, Ok((node, writes))))
    }
}

enum Input {
    Pod(Box<Result<watcher::Event<Pod>, watcher::Error>>),
    Node(Box<Result<watcher::Event<Node>, watcher::Error>>),
    Claim(Box<Result<watcher::Event<PersistentVolumeClaim>, watcher::Error>>),
    Volume(Box<Result<watcher::Event<PersistentVolume>, watcher::Error>>),
    Class(Box<Result<watcher::Event<StorageClass>, watcher::Error>>),
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
    let claims = watcher(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .map(|e| Input::Claim(Box::new(e)))
    .boxed();
    let pvs = watcher(
        Api::<PersistentVolume>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .map(|e| Input::Volume(Box::new(e)))
    .boxed();
    let classes = watcher(
        Api::<StorageClass>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .map(|e| Input::Class(Box::new(e)))
    .boxed();
    let mut inputs = stream::select_all([pods, nodes, claims, pvs, classes]);
    let mut state = State::default();
    // Bindings in flight; dropped (aborted) with this loop.
    let mut bindings: JoinSet<(String, Outcome)> = JoinSet::new();
    loop {
        tokio::select! {
            input = inputs.next() => match input {
                Some(input) => on_input(&mut state, input),
                None => return,
            },
            Some(Ok((id, outcome))) = bindings.join_next(), if !bindings.is_empty() => {
                if let Some(pod) = state.binding.remove(&id) {
                    match outcome {
                        Outcome::Bound => {}
                        Outcome::Failed => {
                            // The pod watch brings the truth (bound elsewhere, or
                            // gone); until then it is tried again.
                            state.release(&id);
                            state.enqueue(pod);
                        }
                        Outcome::Volumes(message, writes) => {
                            // Unreserve; the pod waits for a change that may help.
                            state.volumes.forget(&writes);
                            state.release(&id);
                            state.unschedulable.insert(id, (pod.clone(), message.clone()));
                            let (client, recorder) = (client.clone(), recorder.clone());
                            bindings.spawn(async move {
                                unschedulable(&client, &recorder, &pod, message, true).await;
                                (String::new(), Outcome::Bound)
                            });
                        }
                    }
                }
            }
        }
        while let Some((pod, outcome)) = state.schedule_next() {
            match outcome {
                Ok((node, writes)) => {
                    let (client, recorder) = (client.clone(), recorder.clone());
                    bindings.spawn(async move {
                        if !writes.is_empty()
                            && let Err(message) =
                                volumes::bind_volumes(&client, &pod, &writes, volumes::BIND_TIMEOUT)
                                    .await
                        {
                            return (uid(&pod), Outcome::Volumes(message, writes));
                        }
                        let outcome = if bind(&client, &recorder, &pod, &node).await {
                            Outcome::Bound
                        } else {
                            Outcome::Failed
                        };
                        (uid(&pod), outcome)
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
                        (String::new(), Outcome::Bound)
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
        Input::Claim(event) => match *event {
            Ok(e) => {
                let change = state.volumes.on_claim(e);
                state.on_storage(change);
            }
            Err(e) => tracing::debug!(error = %e, "scheduler claim watch (retrying)"),
        },
        Input::Volume(event) => match *event {
            Ok(e) => {
                let change = state.volumes.on_volume(e);
                state.on_storage(change);
            }
            Err(e) => tracing::debug!(error = %e, "scheduler volume watch (retrying)"),
        },
        Input::Class(event) => match *event {
            Ok(e) => {
                let change = state.volumes.on_class(e);
                state.on_storage(change);
            }
            Err(e) => tracing::debug!(error = %e, "scheduler class watch (retrying)"),
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
