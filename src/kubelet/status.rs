//! Pod status as the kubelet reports it: each container's state machine
//! (`waiting` → `running` → `terminated`, with restarts and `lastState`), init
//! containers first, and the phase and conditions that follow from them.

use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::api::clock::now;

/// Which container of the pod: an init container or a regular one, by index.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub init: bool,
    pub i: usize,
}

/// The status of one container, kept in the JSON shape Kubernetes reports.
#[derive(Debug, Clone)]
pub(super) struct ContainerStatus {
    pub name: String,
    pub image: String,
    pub state: Value,
    pub last_state: Value,
    pub restarts: u64,
    pub ready: bool,
    /// Whether its startup probe (if any) passed in the current run.
    pub started: bool,
}

impl ContainerStatus {
    /// A container not started yet.
    pub fn new(c: &Container) -> ContainerStatus {
        ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            state: json!({"waiting": {"reason": "ContainerCreating"}}),
            last_state: json!({}),
            restarts: 0,
            ready: false,
            started: false,
        }
    }

    fn exit_code(&self) -> Option<i64> {
        self.state
            .pointer("/terminated/exitCode")
            .and_then(Value::as_i64)
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name, "image": self.image, "imageID": "", "containerID": format!("wasm://{}", self.name),
            "state": self.state, "lastState": self.last_state, "ready": self.ready,
            "restartCount": self.restarts, "started": self.started && self.state.get("running").is_some(),
        })
    }
}

/// Everything the worker reports, shared by its container tasks.
pub(super) struct PodState {
    pub pod_ip: Option<String>,
    pub init: Vec<ContainerStatus>,
    pub containers: Vec<ContainerStatus>,
    pub started: String,
}

impl PodState {
    /// The state of a pod about to start.
    pub fn new(pod: &Pod) -> PodState {
        let spec = pod.spec.clone().unwrap_or_default();
        let initializing = spec.init_containers.as_ref().is_some_and(|i| !i.is_empty());
        let mut containers: Vec<ContainerStatus> =
            spec.containers.iter().map(ContainerStatus::new).collect();
        if initializing {
            for c in &mut containers {
                c.state = json!({"waiting": {"reason": "PodInitializing"}});
            }
        }
        PodState {
            pod_ip: pod.status.as_ref().and_then(|s| s.pod_ip.clone()),
            init: spec
                .init_containers
                .iter()
                .flatten()
                .map(ContainerStatus::new)
                .collect(),
            containers,
            started: now(),
        }
    }

    /// Whether every init container has completed.
    fn initialized(&self) -> bool {
        self.init.iter().all(|c| c.exit_code() == Some(0))
    }

    fn get_mut(&mut self, slot: Slot) -> Option<&mut ContainerStatus> {
        if slot.init {
            self.init.get_mut(slot.i)
        } else {
            self.containers.get_mut(slot.i)
        }
    }

    /// A container's restart count.
    pub fn restarts(&mut self, slot: Slot) -> u64 {
        self.get_mut(slot).map_or(0, |c| c.restarts)
    }
}

fn phase(s: &PodState, policy: &str) -> &'static str {
    if !s.initialized() {
        // An init container that failed for good fails the pod.
        let failed = policy == "Never"
            && s.init
                .iter()
                .any(|c| c.exit_code().is_some_and(|code| code != 0));
        return if failed { "Failed" } else { "Pending" };
    }
    let cs = &s.containers;
    let terminated = |c: &ContainerStatus| c.state.get("terminated").is_some();
    let succeeded = |c: &ContainerStatus| {
        c.state
            .pointer("/terminated/exitCode")
            .and_then(Value::as_i64)
            == Some(0)
    };
    if cs.iter().any(|c| c.state.get("running").is_some()) {
        return "Running";
    }
    if !cs.is_empty() && cs.iter().all(terminated) && policy != "Always" {
        return if cs.iter().all(succeeded) {
            "Succeeded"
        } else {
            "Failed"
        };
    }
    if cs
        .iter()
        .any(|c| c.restarts > 0 || c.last_state.get("terminated").is_some())
    {
        return "Running";
    }
    "Pending"
}

fn condition(t: &str, ok: bool, reason: Option<&str>, at: &str) -> Value {
    let mut c = json!({"type": t, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": at});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

/// The status `s` reports, stamping transitions with `at`.
fn build(s: &PodState, policy: &str, at: &str) -> Value {
    let phase = phase(s, policy);
    let initialized = s.initialized();
    let ready = !s.containers.is_empty() && s.containers.iter().all(|c| c.ready);
    let done = matches!(phase, "Succeeded" | "Failed");
    let reason = if done {
        Some("PodCompleted")
    } else if ready {
        None
    } else {
        Some("ContainersNotReady")
    };
    let mut status = json!({
        "phase": phase,
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "startTime": s.started,
        "conditions": [
            condition("PodReadyToStartContainers", true, None, at),
            condition(
                "Initialized",
                initialized,
                if !initialized {
                    Some("ContainersNotInitialized")
                } else if done {
                    Some("PodCompleted")
                } else {
                    None
                },
                at,
            ),
            condition("Ready", ready, reason, at),
            condition("ContainersReady", ready, reason, at),
            condition("PodScheduled", true, None, at),
        ],
        "containerStatuses": s.containers.iter().map(ContainerStatus::to_json).collect::<Vec<_>>(),
    });
    if let Some(ip) = &s.pod_ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    if !s.init.is_empty() {
        status["initContainerStatuses"] = s.init.iter().map(ContainerStatus::to_json).collect();
    }
    status
}

/// Write the pod's status. Container tasks report concurrently, so a write can land
/// after a newer one; each reporter looks again after its write and writes once
/// more while the state moved on, so the last write is the newest state (a
/// container that finished while another started was once left `waiting` for good).
pub(super) async fn report(api: &Api<Pod>, name: &str, state: &Mutex<PodState>, policy: &str) {
    let at = now();
    let current = || state.lock().ok().map(|s| build(&s, policy, &at));
    let Some(mut status) = current() else { return };
    for _ in 0..8 {
        let patch = Patch::Merge(json!({"status": status}));
        if let Err(e) = api
            .patch_status(name, &PatchParams::default(), &patch)
            .await
        {
            tracing::debug!(pod = %name, error = %e, "reporting pod status");
            return;
        }
        match current() {
            Some(now) if now != status => status = now,
            _ => return,
        }
    }
}

/// Change one container's status; what `f` returns, when the container is there.
pub(super) fn set<T>(
    state: &Mutex<PodState>,
    slot: Slot,
    f: impl FnOnce(&mut ContainerStatus) -> T,
) -> Option<T> {
    let mut s = state.lock().ok()?;
    s.get_mut(slot).map(f)
}
