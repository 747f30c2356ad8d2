//! The horizontal pod autoscaler with the real kubectl: `kubectl autoscale` on a
//! Deployment of CPU-burning `spinner` pods scales it up to maxReplicas, reports
//! current/target utilization in `kubectl get hpa` and a SuccessfulRescale event,
//! and scales back down when the load goes away.

use crate::common;

use std::time::Duration;

use common::TestCluster;

const WAIT: &str = "--timeout=90s";

/// Spinners burn all the CPU they get; the limit holds each to 100m, five times
/// its 20m request.
const SPIN: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: spin}
spec:
  replicas: 1
  selector: {matchLabels: {app: spin}}
  template:
    metadata: {labels: {app: spin}}
    spec:
      containers:
      - name: work
        image: minke/spinner
        resources:
          requests: {cpu: 20m}
          limits: {cpu: 100m}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpa_scales_spinners_up_under_load_and_back_down_without_it() {
    let c = TestCluster::start_with(|b| b.autoscaler_sync_period(Duration::from_secs(1))).await;
    c.ok_stdin(&["apply", "-f", "-"], SPIN).await;
    c.ok(&["rollout", "status", "deployment/spin", WAIT]).await;
    let out = c
        .ok(&[
            "autoscale",
            "deployment",
            "spin",
            "--cpu-percent=50",
            "--min=1",
            "--max=3",
        ])
        .await;
    assert_eq!(
        out.trim(),
        "horizontalpodautoscaler.autoscaling/spin autoscaled"
    );
    // No five-minute wait before scaling down.
    c.ok(&[
        "patch",
        "hpa",
        "spin",
        "--type=merge",
        "-p",
        r#"{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":0}}}}"#,
    ])
    .await;

    c.ok(&[
        "wait",
        "--for=jsonpath={.spec.replicas}=3",
        "deployment/spin",
        WAIT,
    ])
    .await;
    let row = c.ok(&["get", "hpa", "spin", "--no-headers"]).await;
    let cols: Vec<&str> = row.split_whitespace().collect();
    // NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE, TARGETS as "cpu: 480%/50%".
    assert_eq!(cols[..2], ["spin", "Deployment/spin"], "{row}");
    assert_eq!(cols[2], "cpu:", "{row}");
    let (now, target) = cols[3].split_once('/').expect("current/target");
    assert_eq!(target, "50%", "{row}");
    let percent: u32 = now.trim_end_matches('%').parse().expect("a percentage");
    assert!(
        percent > 50,
        "spinners use more than half their request: {row}"
    );
    assert_eq!(cols[4..6], ["1", "3"], "{row}");
    let limited = c
        .ok(&[
            "get",
            "hpa",
            "spin",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"ScalingLimited\")].reason}",
        ])
        .await;
    assert_eq!(limited, "TooManyReplicas");
    let events = c
        .ok(&[
            "get",
            "events",
            "--field-selector",
            "reason=SuccessfulRescale",
            "-o",
            "jsonpath={.items[*].message}",
        ])
        .await;
    assert!(
        events.contains(
            "New size: 3; reason: cpu resource utilization (percentage of request) above target"
        ),
        "{events}"
    );

    // The load goes: idle echo servers in place of the spinners.
    c.ok(&["set", "image", "deployment/spin", "work=minke/echo"])
        .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.spec.replicas}=1",
        "deployment/spin",
        WAIT,
    ])
    .await;
    let events = c
        .ok(&[
            "get",
            "events",
            "--field-selector",
            "reason=SuccessfulRescale",
            "-o",
            "jsonpath={.items[*].message}",
        ])
        .await;
    assert!(
        events.contains("New size: 1; reason: All metrics below target"),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpa_without_requests_says_why_it_cannot_scale() {
    let c = TestCluster::start_with(|b| b.autoscaler_sync_period(Duration::from_secs(1))).await;
    c.ok(&["create", "deployment", "idle", "--image=minke/echo"])
        .await;
    c.ok(&["rollout", "status", "deployment/idle", WAIT]).await;
    c.ok(&[
        "autoscale",
        "deployment",
        "idle",
        "--cpu-percent=50",
        "--max=2",
    ])
    .await;
    let jsonpath = "jsonpath={.status.conditions[?(@.type==\"ScalingActive\")].message}";
    let mut message = String::new();
    for _ in 0..100 {
        message = c.ok(&["get", "hpa", "idle", "-o", jsonpath]).await;
        if message.contains("missing request") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        message.starts_with("the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu in container echo of Pod idle-"),
        "{message}"
    );
    let row = c.ok(&["get", "hpa", "idle", "--no-headers"]).await;
    assert!(row.contains("cpu: <unknown>/50%"), "{row}");
}
