//! The pod row: READY, the derived STATUS (init progress, waiting and termination reasons, Terminating), RESTARTS with the last restart's age.

use jiff::Timestamp;
use serde_json::Value;

use super::format::{NONE, Obj, or_none, since};
use super::{Column, docs};

pub(super) fn columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new(
            "Ready",
            "string",
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        Column::new(
            "Status",
            "string",
            "The aggregate status of the containers in this pod.",
        ),
        Column::new(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        Column::age(),
        Column::wide("IP", "string", docs::POD_STATUS_POD_IP),
        Column::wide("Node", "string", docs::POD_SPEC_NODE_NAME),
        Column::wide(
            "Nominated Node",
            "string",
            docs::POD_STATUS_NOMINATED_NODE_NAME,
        ),
        Column::wide("Readiness Gates", "string", docs::POD_SPEC_READINESS_GATES),
    ]
}

/// Restart counts and the latest time a counted container last terminated.
#[derive(Default)]
struct Restarts {
    count: i64,
    last: Option<Timestamp>,
}

impl Restarts {
    fn add(&mut self, status: Obj) {
        self.count += status.int(&["restartCount"]);
        if let Some(finished) = status.time(&["lastState", "terminated", "finishedAt"]) {
            // Go starts from the zero time, so any real finish time is later than "none yet".
            if self.last.is_none_or(|last| last < finished) {
                self.last = Some(finished);
            }
        }
    }
}

/// printPod, reading the v1 JSON.
pub(super) fn cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let pod = Obj(obj);
    let phase = pod.str(&["status", "phase"]);
    let mut reason = pod
        .opt_str(&["status", "reason"])
        .filter(|r| !r.is_empty())
        .unwrap_or(phase)
        .to_string();
    let gated = pod
        .items(&["status", "conditions"])
        .any(|c| c.str(&["type"]) == "PodScheduled" && c.str(&["reason"]) == "SchedulingGated");
    if gated {
        reason = "SchedulingGated".to_string();
    }

    let init_specs: Vec<Obj> = pod.items(&["spec", "initContainers"]).collect();
    let is_sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| c.str(&["name"]) == name && c.str(&["restartPolicy"]) == "Always")
    };
    // Sidecars (restartable init containers) count towards READY like regular containers.
    let sidecars = init_specs
        .iter()
        .filter(|c| c.str(&["restartPolicy"]) == "Always")
        .count();
    let total = pod.len(&["spec", "containers"]) + sidecars;
    let mut ready = 0;

    let mut all = Restarts::default();
    let mut sidecar_restarts = Restarts::default();
    let mut initializing = false;
    for (i, status) in pod.items(&["status", "initContainerStatuses"]).enumerate() {
        all.add(status);
        let sidecar = is_sidecar(status.str(&["name"]));
        if sidecar {
            sidecar_restarts.add(status);
        }
        let terminated = status.child(&["state", "terminated"]);
        let waiting_reason = status.str(&["state", "waiting", "reason"]);
        if terminated.0.is_object() && terminated.int(&["exitCode"]) == 0 {
            continue;
        } else if sidecar && status.bool(&["started"]) {
            if status.bool(&["ready"]) {
                ready += 1;
            }
            continue;
        } else if terminated.0.is_object() {
            reason = format!("Init:{}", termination_reason(terminated));
        } else if status.has(&["state", "waiting"])
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    let mut restarts = all;
    if !initializing || pod.condition("Initialized") == Some("True") {
        // Once initialised, only sidecars' restarts count alongside the regular containers'.
        restarts = sidecar_restarts;
        let mut has_running = false;
        let statuses: Vec<Obj> = pod.items(&["status", "containerStatuses"]).collect();
        for status in statuses.into_iter().rev() {
            restarts.add(status);
            let waiting_reason = status.str(&["state", "waiting", "reason"]);
            let terminated = status.child(&["state", "terminated"]);
            if status.has(&["state", "waiting"]) && !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if terminated.0.is_object() {
                reason = termination_reason(terminated);
            } else if status.bool(&["ready"]) && status.has(&["state", "running"]) {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed but which still has one running is not done.
        if reason == "Completed" && has_running {
            reason = if pod.condition("Ready") == Some("True") {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    if pod.has(&["metadata", "deletionTimestamp"]) {
        if pod.str(&["status", "reason"]) == "NodeLost" {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    let restarts_cell = match restarts.last {
        Some(last) if restarts.count != 0 => {
            format!("{} ({} ago)", restarts.count, since(Some(last), now))
        }
        _ => restarts.count.to_string(),
    };

    vec![
        pod.name().into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_cell.into(),
        pod.age(now),
        or_none(pod_ip(pod)).into(),
        or_none(pod.str(&["spec", "nodeName"])).into(),
        or_none(pod.str(&["status", "nominatedNodeName"])).into(),
        readiness_gates(pod).into(),
    ]
}

/// A terminated container's reason, or its signal or exit code when the runtime gave none.
fn termination_reason(terminated: Obj) -> String {
    let reason = terminated.str(&["reason"]);
    if !reason.is_empty() {
        reason.to_string()
    } else if terminated.int(&["signal"]) != 0 {
        format!("Signal:{}", terminated.int(&["signal"]))
    } else {
        format!("ExitCode:{}", terminated.int(&["exitCode"]))
    }
}

/// The first pod IP. The v1→internal conversion lets status.podIP win over status.podIPs.
fn pod_ip<'a>(pod: Obj<'a>) -> &'a str {
    let ip = pod.str(&["status", "podIP"]);
    if !ip.is_empty() {
        return ip;
    }
    pod.items(&["status", "podIPs"])
        .next()
        .map_or("", |first| first.str(&["ip"]))
}

/// "true/total" for the pod's readiness gates, "<none>" when it has none.
fn readiness_gates(pod: Obj) -> String {
    let gates: Vec<&str> = pod
        .items(&["spec", "readinessGates"])
        .map(|g| g.str(&["conditionType"]))
        .collect();
    if gates.is_empty() {
        return NONE.to_string();
    }
    let passing = gates
        .iter()
        .filter(|gate| pod.condition(gate) == Some("True"))
        .count();
    format!("{passing}/{}", gates.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().expect("valid timestamp")
    }

    fn pod(spec: Value, status: Value) -> Value {
        json!({
            "metadata": {"name": "web-0", "namespace": "default", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": spec,
            "status": status,
        })
    }

    fn ready_status_restarts(obj: &Value) -> (String, String, String) {
        let row = cells(obj, now());
        let s = |i: usize| row[i].as_str().unwrap_or_default().to_string();
        (s(1), s(2), s(3))
    }

    #[test]
    fn running_pod_shows_ready_running_and_wide_cells() {
        let obj = pod(
            json!({"containers": [{"name": "web", "image": "nginx"}], "nodeName": "node-1"}),
            json!({"phase": "Running", "podIP": "10.1.2.3", "podIPs": [{"ip": "10.1.2.3"}],
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0,
                                          "state": {"running": {"startedAt": "2024-05-01T11:00:05Z"}}}]}),
        );
        let row = cells(&obj, now());
        assert_eq!(
            row,
            [
                json!("web-0"),
                json!("1/1"),
                json!("Running"),
                json!("0"),
                json!("60m"),
                json!("10.1.2.3"),
                json!("node-1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn pod_with_crashing_container_shows_crash_loop_back_off() {
        let obj = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Running", "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2024-05-01T11:59:50Z"}}
            }]}),
        );
        assert_eq!(
            ready_status_restarts(&obj),
            (
                "0/1".into(),
                "CrashLoopBackOff".into(),
                "3 (10s ago)".into()
            )
        );
    }

    #[test]
    fn pod_that_completed_shows_completed() {
        let obj = pod(
            json!({"containers": [{"name": "job"}], "restartPolicy": "Never"}),
            json!({"phase": "Succeeded", "containerStatuses": [{
                "name": "job", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": "2024-05-01T11:10:00Z"}}
            }]}),
        );
        assert_eq!(
            ready_status_restarts(&obj),
            ("0/1".into(), "Completed".into(), "0".into())
        );
    }

    #[test]
    fn pod_waiting_on_its_first_init_container_shows_init_zero_of_one() {
        let obj = pod(
            json!({"initContainers": [{"name": "migrate"}], "containers": [{"name": "app"}]}),
            json!({"phase": "Pending",
                   "conditions": [{"type": "Initialized", "status": "False"}],
                   "initContainerStatuses": [{"name": "migrate", "ready": false, "restartCount": 0,
                                              "state": {"running": {"startedAt": "2024-05-01T11:59:00Z"}}}],
                   "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                                          "state": {"waiting": {"reason": "PodInitializing"}}}]}),
        );
        assert_eq!(
            ready_status_restarts(&obj),
            ("0/1".into(), "Init:0/1".into(), "0".into())
        );
    }

    #[test]
    fn crash_looping_init_container_shows_init_crash_loop_back_off() {
        let obj = pod(
            json!({"initContainers": [{"name": "setup"}], "containers": [{"name": "app"}]}),
            json!({"phase": "Pending", "initContainerStatuses": [{
                "name": "setup", "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 2, "finishedAt": "2024-05-01T11:58:00Z"}}
            }]}),
        );
        assert_eq!(
            ready_status_restarts(&obj),
            (
                "0/1".into(),
                "Init:CrashLoopBackOff".into(),
                "4 (2m ago)".into()
            )
        );
    }

    #[test]
    fn failed_init_container_without_reason_shows_its_exit_code_or_signal() {
        let exit = pod(
            json!({"initContainers": [{"name": "a"}], "containers": [{"name": "app"}]}),
            json!({"initContainerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 3}}}]}),
        );
        assert_eq!(ready_status_restarts(&exit).1, "Init:ExitCode:3");
        let signal = pod(
            json!({"initContainers": [{"name": "a"}], "containers": [{"name": "app"}]}),
            json!({"initContainerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
        );
        assert_eq!(ready_status_restarts(&signal).1, "Init:Signal:9");
    }

    #[test]
    fn container_killed_without_reason_shows_signal() {
        let obj = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Failed", "containerStatuses": [{"name": "app", "state": {"terminated": {"exitCode": 143, "signal": 15}}}]}),
        );
        assert_eq!(ready_status_restarts(&obj).1, "Signal:15");
    }

    #[test]
    fn deleted_running_pod_shows_terminating() {
        let mut obj = pod(
            json!({"containers": [{"name": "web"}]}),
            json!({"phase": "Running", "containerStatuses": [{"name": "web", "ready": true, "state": {"running": {}}}]}),
        );
        obj["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:30Z");
        assert_eq!(
            ready_status_restarts(&obj),
            ("1/1".into(), "Terminating".into(), "0".into())
        );
    }

    #[test]
    fn deleted_pod_on_a_lost_node_shows_unknown() {
        let mut obj = pod(
            json!({"containers": [{"name": "web"}]}),
            json!({"phase": "Running", "reason": "NodeLost"}),
        );
        obj["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:30Z");
        assert_eq!(ready_status_restarts(&obj).1, "Unknown");
    }

    #[test]
    fn deleted_pod_that_already_finished_keeps_its_final_status() {
        let mut obj = pod(
            json!({"containers": [{"name": "job"}]}),
            json!({"phase": "Succeeded", "containerStatuses": [
            {"name": "job", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
        );
        obj["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:30Z");
        assert_eq!(ready_status_restarts(&obj).1, "Completed");
    }

    #[test]
    fn completed_container_beside_a_running_one_reads_as_running_or_not_ready() {
        let status = |ready: &str| {
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": ready}], "containerStatuses": [
            {"name": "a", "ready": true, "state": {"running": {}}},
            {"name": "b", "ready": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]})
        };
        let spec = json!({"containers": [{"name": "a"}, {"name": "b"}]});
        assert_eq!(
            ready_status_restarts(&pod(spec.clone(), status("True"))).1,
            "Running"
        );
        assert_eq!(
            ready_status_restarts(&pod(spec, status("False"))).1,
            "NotReady"
        );
    }

    #[test]
    fn started_sidecar_counts_towards_ready_and_its_restarts_stay_counted() {
        let obj = pod(
            json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]}),
            json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                   "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 2,
                       "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:30:00Z"}}}],
                   "containerStatuses": [{"name": "app", "ready": true, "restartCount": 1, "state": {"running": {}},
                       "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:20:00Z"}}}]}),
        );
        assert_eq!(
            ready_status_restarts(&obj),
            ("2/2".into(), "Running".into(), "3 (30m ago)".into())
        );
    }

    #[test]
    fn scheduling_gated_pod_says_so() {
        let obj = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
        );
        assert_eq!(ready_status_restarts(&obj).1, "SchedulingGated");
    }

    #[test]
    fn wide_cells_show_pod_ips_nominated_node_and_readiness_gates() {
        let obj = pod(
            json!({"containers": [{"name": "a"}], "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]}),
            json!({"phase": "Pending", "nominatedNodeName": "node-9", "podIPs": [{"ip": "fd00::5"}, {"ip": "10.0.0.5"}],
                   "conditions": [{"type": "example.com/lb", "status": "True"}, {"type": "example.com/dns", "status": "False"}]}),
        );
        let row = cells(&obj, now());
        assert_eq!(
            &row[5..],
            [
                json!("fd00::5"),
                json!("<none>"),
                json!("node-9"),
                json!("1/2")
            ]
        );
    }
}
