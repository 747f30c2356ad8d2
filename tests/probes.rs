//! Container probes end to end: a readiness probe takes a pod out of its Service's
//! endpoints and traffic and back; a failing liveness probe restarts the container
//! with the kubelet's events; a startup probe holds `started` and readiness back.

use std::time::Duration;

use crate::common::TestCluster;

/// Service `web` selecting `app: web`.
const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"#;

/// An echo pod behind Service `web`, ready while `/state/ready` exists; `extra`
/// adds lines to its container (indented as its fields).
fn web_pod(name: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: web}}}}
spec:
  volumes: [{{name: state, emptyDir: {{}}}}]
  containers:
  - name: echo
    image: minke/echo
    ports: [{{name: http, containerPort: 8080}}]
    volumeMounts: [{{name: state, mountPath: /state}}]
    readinessProbe:
      exec: {{command: [cat, /state/ready]}}
      periodSeconds: 1
      failureThreshold: 1
{extra}"#
    )
}

/// The pod IPs listed under `addresses` and `notReadyAddresses` of Endpoints `web`.
async fn endpoints(c: &TestCluster) -> (String, String) {
    let ready = c
        .ok(&[
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.subsets[*].addresses[*].targetRef.name}",
        ])
        .await;
    let not_ready = c
        .ok(&[
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.subsets[*].notReadyAddresses[*].targetRef.name}",
        ])
        .await;
    (ready, not_ready)
}

async fn wait_endpoints(c: &TestCluster, ready: &str, not_ready: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let now = endpoints(c).await;
        if now == (ready.to_string(), not_ready.to_string()) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "endpoints stayed {now:?}, wanted ready {ready:?}, not ready {not_ready:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_moves_a_pod_out_of_the_endpoints_and_the_traffic_and_back() {
    let c = TestCluster::start().await;
    // web-a also has a liveness probe (GET /healthz on its named port) that passes.
    let liveness =
        "    livenessProbe:\n      httpGet: {path: /healthz, port: http}\n      periodSeconds: 1\n";
    let web = [SERVICE, &web_pod("web-a", liveness), &web_pod("web-b", "")].join("---");
    c.ok_stdin(&["apply", "-f", "-"], &web).await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "pod/web-a",
        "pod/web-b",
        "--timeout=120s",
    ])
    .await;
    // No file yet: running, not ready, and listed as not ready.
    wait_endpoints(&c, "", "web-a web-b").await;
    let ready = c
        .ok(&[
            "get",
            "pod",
            "web-a",
            "-o",
            "jsonpath={.status.containerStatuses[0].ready}",
        ])
        .await;
    assert_eq!(ready, "false");

    for pod in ["web-a", "web-b"] {
        c.ok(&["exec", pod, "--", "write", "/state/ready", "yes"])
            .await;
    }
    wait_endpoints(&c, "web-a web-b", "").await;
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/web-a",
        "pod/web-b",
        "--timeout=60s",
    ])
    .await;

    // web-b fails its probe: out of the endpoints, and no request reaches it.
    c.ok(&["exec", "web-b", "--", "rm", "/state/ready"]).await;
    wait_endpoints(&c, "web-a", "web-b").await;
    for _ in 0..6 {
        let body = c
            .ok(&["exec", "web-a", "--", "wget", "-qO-", "http://web/"])
            .await;
        assert!(
            body.contains("pod: web-a"),
            "answered by another pod:\n{body}"
        );
    }
    let events = c
        .until(
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=web-b,reason=Unhealthy",
                "-o",
                "jsonpath={.items[*].message}",
            ],
            "web-b's Unhealthy event",
            |out| !out.is_empty(),
        )
        .await;
    assert!(events.contains("Readiness probe failed"), "{events}");
    let not_ready = c
        .ok(&[
            "get",
            "pod",
            "web-b",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ])
        .await;
    assert_eq!(not_ready, "False");

    // And back in once the probe passes again.
    c.ok(&["exec", "web-b", "--", "write", "/state/ready", "again"])
        .await;
    wait_endpoints(&c, "web-a web-b", "").await;
    // web-a's liveness probe (GET /healthz on its named port) passed all along.
    let restarts = c
        .ok(&[
            "get",
            "pod",
            "web-a",
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount}",
        ])
        .await;
    assert_eq!(restarts, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_liveness_probe_restarts_the_container_with_events() {
    let c = TestCluster::start_with(|b| b.restart_backoff(Duration::from_millis(200))).await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: sick}
spec:
  containers:
  - name: echo
    image: minke/echo
    livenessProbe:
      tcpSocket: {port: 9999}
      periodSeconds: 1
      failureThreshold: 2
"#,
    )
    .await;
    c.until(
        &[
            "get",
            "pod",
            "sick",
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount}",
        ],
        "a restart",
        |n| n.parse::<u32>().is_ok_and(|n| n >= 1),
    )
    .await;
    let last = c
        .ok(&[
            "get",
            "pod",
            "sick",
            "-o",
            "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode}",
        ])
        .await;
    assert_eq!(last, "137");
    let events = c
        .until(
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=sick",
                "-o",
                "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
            ],
            "the Killing event",
            |out| out.contains("Killing"),
        )
        .await;
    assert!(
        events.contains("Unhealthy: Liveness probe failed: dial tcp 10.244."),
        "{events}"
    );
    assert!(
        events.contains(":9999: connect: connection refused"),
        "{events}"
    );
    assert!(
        events.contains("Killing: Container echo failed liveness probe, will be restarted"),
        "{events}"
    );
    // `kubectl describe` shows them as a user would read them.
    let describe = c.ok(&["describe", "pod", "sick"]).await;
    assert!(describe.contains("Liveness:"), "{describe}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_startup_probe_holds_back_started_and_ready_until_it_passes() {
    let c = TestCluster::start().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: slow}
spec:
  volumes: [{name: state, emptyDir: {}}]
  containers:
  - name: echo
    image: minke/echo
    volumeMounts: [{name: state, mountPath: /state}]
    startupProbe:
      exec: {command: [cat, /state/started]}
      periodSeconds: 1
      failureThreshold: 120
"#,
    )
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "pod/slow",
        "--timeout=120s",
    ])
    .await;
    let status = |field: &'static str| {
        let c = &c;
        async move {
            c.ok(&[
                "get",
                "pod",
                "slow",
                "-o",
                &format!("jsonpath={{.status.containerStatuses[0].{field}}}"),
            ])
            .await
        }
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status("started").await, "false");
    assert_eq!(status("ready").await, "false");
    c.ok(&["exec", "slow", "--", "write", "/state/started", "now"])
        .await;
    c.ok(&["wait", "--for=condition=Ready", "pod/slow", "--timeout=60s"])
        .await;
    assert_eq!(status("started").await, "true");
    assert_eq!(status("restartCount").await, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_probe_against_a_plain_http_server_fails_its_handshake() {
    let c = TestCluster::start().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: tls}
spec:
  containers:
  - name: echo
    image: minke/echo
    readinessProbe:
      httpGet: {path: /healthz, port: 8080, scheme: HTTPS}
      periodSeconds: 1
"#,
    )
    .await;
    let events = c
        .until(
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=tls,reason=Unhealthy",
                "-o",
                "jsonpath={.items[*].message}",
            ],
            "the failed HTTPS probe",
            |out| !out.is_empty(),
        )
        .await;
    assert!(
        events.contains("Readiness probe failed: Get \"https://10.244.") && events.contains("tls"),
        "{events}"
    );
    let ready = c
        .ok(&[
            "get",
            "pod",
            "tls",
            "-o",
            "jsonpath={.status.containerStatuses[0].ready}",
        ])
        .await;
    assert_eq!(ready, "false");
}
