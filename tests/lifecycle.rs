//! Pod lifecycle with the real kubectl: graceful deletion (the API server keeps a
//! bound pod until its kubelet stopped it; unbound pods and `--force` go at once).

use crate::common;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_runs_toolbox_applets_in_the_pod_sandbox() {
    let c = TestCluster::start().await;
    c.ok_stdin(&["apply", "-f", &common::example("pod-config.yaml")], "")
        .await;
    c.ok(&["wait", "--for=condition=Ready", "pod/config-demo", WAIT])
        .await;
    let env = c.ok(&["exec", "config-demo", "--", "env"]).await;
    assert!(env.contains("HOSTNAME=config-demo"), "{env}");
    let ls = c
        .ok(&["exec", "config-demo", "--", "ls", "/etc/config"])
        .await;
    assert!(ls.contains("game.properties"), "{ls}");
    // stdin reaches the command; its exit code comes back as kubectl's.
    let out = c
        .kubectl_with(
            &["exec", "-i", "config-demo", "--", "cat"],
            Some("typed in\n"),
            &[],
        )
        .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "typed in\n");
    let out = c
        .kubectl(&["exec", "config-demo", "--", "cat", "/etc/passwd"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cat: /etc/passwd")
            && stderr.contains("command terminated with exit code 1"),
        "{stderr}"
    );
    // An edit of the ConfigMap reaches the running pod within seconds.
    c.ok(&[
        "patch",
        "configmap",
        "game-config",
        "-p",
        r#"{"data":{"game.properties":"enemies=ghosts\n"}}"#,
    ])
    .await;
    eventually(
        &c,
        &[
            "exec",
            "config-demo",
            "--",
            "cat",
            "/etc/config/game.properties",
        ],
        |out| out == "enemies=ghosts\n",
    )
    .await;
    let missing = c
        .fails(&["exec", "config-demo", "-c", "nope", "--", "ls"])
        .await;
    assert!(
        missing.contains("container nope is not valid for pod config-demo"),
        "{missing}"
    );
}

/// Millicores from a `kubectl top` row's CPU column (`198m`, or `1` for a core).
fn millicores(row: &str) -> Option<u64> {
    let cpu = row.split_whitespace().nth(1)?;
    match cpu.strip_suffix('m') {
        Some(m) => m.parse().ok(),
        None => cpu.parse::<u64>().ok().map(|c| c * 1000),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_limit_holds_a_spinner_near_its_share_in_kubectl_top() {
    let c = TestCluster::start().await;
    c.ok(&[
        "run",
        "spin",
        "--image=minke/spinner",
        "--overrides={\"spec\":{\"containers\":[{\"name\":\"spin\",\"image\":\"minke/spinner\",\"resources\":{\"limits\":{\"cpu\":\"200m\",\"memory\":\"64Mi\"}}}]}}",
    ])
    .await;
    c.ok(&["wait", "--for=condition=Ready", "pod/spin", WAIT])
        .await;
    // Metrics need two samples; then average a few windows so one busy moment of
    // the test machine does not decide.
    let mut first = None;
    for _ in 0..100 {
        let out = c.kubectl(&["top", "pod", "spin", "--no-headers"]).await;
        first = millicores(&String::from_utf8_lossy(&out.stdout));
        if first.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut samples = vec![first.expect("metrics for the pod within 20s")];
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let row = c.ok(&["top", "pod", "spin", "--no-headers"]).await;
        samples.push(millicores(&row).unwrap_or(0));
    }
    let mean = samples.iter().sum::<u64>() / samples.len() as u64;
    assert!(
        (100..=300).contains(&mean),
        "a 200m limit should hold the spinner near 0.2 core, saw {samples:?}m"
    );
    let containers = c
        .ok(&["top", "pod", "spin", "--containers", "--no-headers"])
        .await;
    assert!(
        containers.starts_with("spin") && containers.contains("Mi"),
        "{containers}"
    );
    let node = c.ok(&["top", "node", "--no-headers"]).await;
    assert!(node.contains('%') && node.contains("Mi"), "{node}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_component_is_served_ready_and_answers_through_the_pod_proxy() {
    let c = TestCluster::start().await;
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"echo"},
        "spec":{"containers":[{"name":"echo","image":"minke/echo","ports":[{"containerPort":8080}],
        "env":[{"name":"ECHO_TEXT","value":"hi"}]}]}}"#;
    c.ok_stdin(&["create", "-f", "-"], pod).await;
    c.ok(&["wait", "--for=condition=Ready", "pod/echo", WAIT])
        .await;
    let answer = c
        .ok(&[
            "get",
            "--raw",
            "/api/v1/namespaces/default/pods/echo:8080/proxy/some/path?x=1",
        ])
        .await;
    assert!(answer.contains("text: hi"), "{answer}");
    assert!(answer.contains("method: GET"), "{answer}");
    assert!(answer.contains("path: /some/path?x=1"), "{answer}");
    assert!(answer.contains("pod: echo"), "{answer}");
    let health = c
        .ok(&[
            "get",
            "--raw",
            "/api/v1/namespaces/default/pods/echo/proxy/healthz",
        ])
        .await;
    assert_eq!(health, "ok\n");
    // Each request is logged by the component to the container's log.
    let logs = eventually(&c, &["logs", "echo"], |l| l.contains("GET /healthz 200")).await;
    assert!(logs.contains("GET /some/path"), "{logs}");
    let closed = c
        .fails(&[
            "get",
            "--raw",
            "/api/v1/namespaces/default/pods/echo:9999/proxy/",
        ])
        .await;
    assert!(closed.contains("connection refused"), "{closed}");
    c.ok(&["delete", "pod", "echo", WAIT]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_run_in_order_before_the_app_and_share_its_volumes() {
    let c = TestCluster::start().await;
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"init"},
        "spec":{"restartPolicy":"Never",
        "volumes":[{"name":"work","emptyDir":{}}],
        "initContainers":[
          {"name":"first","image":"minke/toolbox","args":["write","/work/a","one"],
           "volumeMounts":[{"name":"work","mountPath":"/work"}]},
          {"name":"second","image":"minke/toolbox","args":["sh","-c","cat /work/a"],
           "volumeMounts":[{"name":"work","mountPath":"/work"}]}],
        "containers":[{"name":"app","image":"minke/toolbox","args":["cat","/work/a"],
           "volumeMounts":[{"name":"work","mountPath":"/work"}]}]}}"#;
    c.ok_stdin(&["create", "-f", "-"], pod).await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/init",
        WAIT,
    ])
    .await;
    assert_eq!(c.ok(&["logs", "init", "-c", "second"]).await, "one\n");
    assert_eq!(c.ok(&["logs", "init"]).await, "one\n");
    let init = c
        .ok(&[
            "get",
            "pod",
            "init",
            "-o",
            "jsonpath={.status.initContainerStatuses[*].state.terminated.reason} {.status.conditions[?(@.type==\"Initialized\")].status}",
        ])
        .await;
    assert_eq!(init, "Completed Completed True");
    let all = c
        .ok(&["logs", "init", "--all-containers", "--prefix"])
        .await;
    assert!(all.contains("[pod/init/second] one"), "{all}");

    // A failing init container with restartPolicy Never fails the pod; the app never runs.
    let failing = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"badinit"},
        "spec":{"restartPolicy":"Never",
        "initContainers":[{"name":"fail","image":"minke/toolbox","args":["false"]}],
        "containers":[{"name":"app","image":"minke/hello"}]}}"#;
    c.ok_stdin(&["create", "-f", "-"], failing).await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Failed",
        "pod/badinit",
        WAIT,
    ])
    .await;
    let table = c.ok(&["get", "pod", "badinit"]).await;
    assert!(table.contains("Init:Error"), "{table}");
    let app = c
        .ok(&[
            "get",
            "pod",
            "badinit",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
        ])
        .await;
    assert_eq!(app, "PodInitializing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_tail_timestamps_and_since() {
    let c = TestCluster::start().await;
    c.ok(&[
        "run",
        "ticker",
        "--image=minke/toolbox",
        "--",
        "loop",
        "1",
        "date",
    ])
    .await;
    c.ok(&["wait", "--for=condition=Ready", "pod/ticker", WAIT])
        .await;
    // `logs -f` streams: lines keep arriving while kubectl runs.
    let mut follow = tokio::process::Command::new(common::kubectl_bin())
        .args(["logs", "-f", "ticker"])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl logs -f");
    let mut out = tokio::io::BufReader::new(follow.stdout.take().expect("stdout"));
    let mut lines = Vec::new();
    while lines.len() < 3 {
        let mut line = String::new();
        let n = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line),
        )
        .await
        .expect("a new line within 30s")
        .expect("read");
        assert!(n > 0, "the stream ended early after {lines:?}");
        lines.push(line);
    }
    drop(follow);
    let stamped = c.ok(&["logs", "ticker", "--timestamps", "--tail=1"]).await;
    let (ts, _) = stamped.split_once(' ').expect("timestamp then line");
    assert!(
        ts.ends_with('Z') && ts.contains('T') && ts.contains('.'),
        "{stamped}"
    );
    assert_eq!(stamped.lines().count(), 1, "{stamped}");
    let recent = c.ok(&["logs", "ticker", "--since=2s"]).await;
    let all = c.ok(&["logs", "ticker"]).await;
    assert!(
        recent.lines().count() < all.lines().count(),
        "--since keeps only recent lines:\n{recent}\nof\n{all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_a_terminal_lists_the_config_volume() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: `script` (util-linux) is needed to give kubectl a terminal");
        return;
    }
    let c = TestCluster::start().await;
    c.ok_stdin(&["apply", "-f", &common::example("pod-config.yaml")], "")
        .await;
    c.ok(&["wait", "--for=condition=Ready", "pod/config-demo", WAIT])
        .await;
    // `script` runs kubectl on a pseudo-terminal, as a user's shell would.
    let cmd = format!(
        "{} exec -it config-demo -- ls /etc/config",
        common::kubectl_bin()
    );
    let out = tokio::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .stdin(std::process::Stdio::piped())
        .output()
        .await
        .expect("script runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("game.properties\r\n"),
        "a terminal gets CRLF: {text:?}"
    );
}

/// `(module (func (export "_start") unreachable))`: a guest that traps at once.
const TRAPPING_MODULE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
    0x03, 0x02, 0x01, 0x00, // one function of that type
    0x07, 0x0a, 0x01, 0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, // export _start
    0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // body: unreachable
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_module_ends_in_error_with_the_trap_message() {
    let data = tempfile::tempdir().expect("data dir");
    let c = TestCluster::start_with(|b| b.data_dir(data.path())).await;
    let file = c.path("trap.wasm");
    std::fs::write(&file, TRAPPING_MODULE).expect("write module");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minke"))
        .args(["image", "import"])
        .arg(&file)
        .args(["example.local/trap:v1", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("minke image import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.ok(&[
        "run",
        "trap",
        "--image=example.local/trap:v1",
        "--image-pull-policy=Never",
        "--restart=Never",
    ])
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Failed",
        "pod/trap",
        WAIT,
    ])
    .await;
    let t = c
        .ok(&[
            "get",
            "pod",
            "trap",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.terminated.reason}|{.status.containerStatuses[0].state.terminated.message}",
        ])
        .await;
    let (reason, message) = t.split_once('|').expect("reason|message");
    assert_eq!(reason, "Error");
    assert!(message.contains("unreachable"), "{message}");
}
