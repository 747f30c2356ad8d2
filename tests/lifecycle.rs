//! Pod lifecycle with the real kubectl: graceful deletion (the API server keeps a
//! bound pod until its kubelet stopped it; unbound pods and `--force` go at once).

mod common;

use std::time::{Duration, Instant};

use common::TestCluster;

const WAIT: &str = "--timeout=60s";

/// Poll kubectl until `want` holds for its output (bounded; for objects that
/// `kubectl wait` cannot wait for because they may not exist yet).
async fn eventually(c: &TestCluster, args: &[&str], want: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    for _ in 0..200 {
        out = c.ok(args).await;
        if want(&out) {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "kubectl {} never satisfied the check; last output:\n{out}",
        args.join(" ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_running_pod_stops_it_within_its_grace_period_with_a_killing_event() {
    let c = TestCluster::start().await;
    c.ok(&[
        "run",
        "forever",
        "--image=minke/toolbox",
        "--overrides={\"spec\":{\"terminationGracePeriodSeconds\":30}}",
        "--",
        "loop",
        "1",
        "echo",
        "tick",
    ])
    .await;
    c.ok(&["wait", "--for=condition=Ready", "pod/forever", WAIT])
        .await;
    let started = Instant::now();
    let out = c.ok(&["delete", "pod", "forever", WAIT]).await;
    assert_eq!(out.trim(), "pod \"forever\" deleted");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a guest cannot be signalled, so it is stopped at once, not after the grace period"
    );
    let missing = c.fails(&["get", "pod", "forever"]).await;
    assert!(missing.contains("pods \"forever\" not found"), "{missing}");
    let events = eventually(
        &c,
        &[
            "get",
            "events",
            "--field-selector=involvedObject.name=forever,reason=Killing",
            "-o",
            "jsonpath={.items[*].message}",
        ],
        |m| !m.is_empty(),
    )
    .await;
    assert_eq!(events, "Stopping container forever");
}

/// A pod bound to a node no kubelet runs stays Terminating until forced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_pod_waits_for_its_kubelet_and_force_deletes_at_once() {
    let c = TestCluster::start().await;
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"elsewhere"},
        "spec":{"nodeName":"no-such-node","terminationGracePeriodSeconds":45,
        "containers":[{"name":"c","image":"minke/toolbox"}]}}"#;
    c.ok_stdin(&["create", "-f", "-"], pod).await;
    let out = c.ok(&["delete", "pod", "elsewhere", "--wait=false"]).await;
    assert_eq!(out.trim(), "pod \"elsewhere\" deleted");
    let meta = c
        .ok(&[
            "get",
            "pod",
            "elsewhere",
            "-o",
            "jsonpath={.metadata.deletionGracePeriodSeconds} {.metadata.deletionTimestamp}",
        ])
        .await;
    assert!(meta.starts_with("45 20"), "{meta}");
    let table = c.ok(&["get", "pod", "elsewhere"]).await;
    assert!(table.contains("Terminating"), "{table}");
    // A shorter grace period shortens the pending deletion; a longer one does not.
    c.ok(&[
        "delete",
        "pod",
        "elsewhere",
        "--wait=false",
        "--grace-period=5",
    ])
    .await;
    c.ok(&[
        "delete",
        "pod",
        "elsewhere",
        "--wait=false",
        "--grace-period=60",
    ])
    .await;
    let period = c
        .ok(&[
            "get",
            "pod",
            "elsewhere",
            "-o",
            "jsonpath={.metadata.deletionGracePeriodSeconds}",
        ])
        .await;
    assert_eq!(period, "5");
    let out = c
        .kubectl(&["delete", "pod", "elsewhere", "--force", "--grace-period=0"])
        .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("pod \"elsewhere\" force deleted"),
        "{stdout}"
    );
    assert!(
        stderr.contains("Immediate deletion does not wait"),
        "{stderr}"
    );
    c.fails(&["get", "pod", "elsewhere"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unscheduled_and_finished_pods_are_deleted_at_once() {
    let c = TestCluster::start().await;
    c.ok(&["run", "done", "--image=minke/hello", "--restart=Never"])
        .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/done",
        WAIT,
    ])
    .await;
    let out = c.ok(&["delete", "pod", "done", "--wait=false"]).await;
    assert_eq!(out.trim(), "pod \"done\" deleted");
    c.fails(&["get", "pod", "done"]).await;
}
