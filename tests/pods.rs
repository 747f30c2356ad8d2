//! Pods run as wasm (first slice of the pod runtime): completion and logs, exit codes
//! and CrashLoopBackOff with previous logs, OOMKilled, and a missing image.

use crate::common;

use common::TestCluster;

const WAIT: &str = "--timeout=60s";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_run_hello_completes_and_logs_show_its_args() {
    let c = TestCluster::start().await;
    let out = c
        .ok(&[
            "run",
            "hello",
            "--image=minke/hello",
            "--restart=Never",
            "--",
            "a",
            "b",
        ])
        .await;
    assert!(out.contains("pod/hello created"), "{out}");
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/hello",
        WAIT,
    ])
    .await;
    let table = c.ok(&["get", "pod", "hello"]).await;
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().nth(2) == Some("Completed")),
        "{table}"
    );
    let logs = c.ok(&["logs", "hello"]).await;
    assert!(logs.contains("hello from minke! args: a b"), "{logs}");
    assert!(logs.contains("HOSTNAME=hello"), "{logs}");
    let node = c
        .ok(&[
            "get",
            "pod",
            "hello",
            "-o",
            "jsonpath={.spec.nodeName} {.status.conditions[?(@.type==\"PodScheduled\")].status}",
        ])
        .await;
    assert!(node.ends_with(" True") && node.len() > 5, "{node}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_container_restarts_and_previous_logs_are_kept() {
    let c =
        TestCluster::start_with(|b| b.restart_backoff(std::time::Duration::from_millis(500))).await;
    c.ok(&["run", "crash", "--image=minke/crasher", "--", "3", "50"])
        .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.containerStatuses[0].restartCount}=1",
        "pod/crash",
        WAIT,
    ])
    .await;
    let last = c.ok(&["get", "pod", "crash", "-o", "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode} {.status.containerStatuses[0].lastState.terminated.reason}"]).await;
    assert_eq!(last, "3 Error");
    let previous = c.ok(&["logs", "crash", "--previous"]).await;
    assert!(previous.contains("crasher: exiting with 3"), "{previous}");
    let table = c.ok(&["get", "pod", "crash"]).await;
    assert!(
        table.contains("CrashLoopBackOff") || table.contains("Running") || table.contains("Error"),
        "{table}"
    );
    c.ok(&["delete", "pod", "crash", "--wait=true", WAIT]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_over_its_memory_limit_is_oom_killed() {
    let c = TestCluster::start().await;
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hog\nspec:\n  restartPolicy: Never\n  containers:\n  - name: hog\n    image: minke/hog\n    resources:\n      limits:\n        memory: 32Mi\n";
    c.ok_stdin(&["apply", "-f", "-"], pod).await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Failed",
        "pod/hog",
        WAIT,
    ])
    .await;
    let t = c.ok(&["get", "pod", "hog", "-o", "jsonpath={.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode}"]).await;
    assert_eq!(t, "OOMKilled 137");
    let table = c.ok(&["get", "pod", "hog"]).await;
    assert!(table.contains("OOMKilled"), "{table}");
    let events = c
        .ok(&[
            "get",
            "events",
            "--field-selector=involvedObject.name=hog,reason=OOMKilling",
            "-o",
            "jsonpath={.items[*].message}",
        ])
        .await;
    assert_eq!(
        events,
        "Memory limit of 33554432 bytes exceeded: container hog killed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_err_image_pull() {
    let c = TestCluster::start().await;
    c.ok(&[
        "run",
        "ghost",
        "--image=minke/does-not-exist",
        "--restart=Never",
    ])
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=ErrImagePull",
        "pod/ghost",
        WAIT,
    ])
    .await;
    let table = c.ok(&["get", "pod", "ghost"]).await;
    assert!(table.contains("ErrImagePull"), "{table}");
    let err = c.fails(&["logs", "ghost"]).await;
    assert!(err.contains("is waiting to start"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_running_containers_and_releases_the_data_dir() {
    let data = tempfile::tempdir().expect("data dir");
    let c = TestCluster::start_with(|b| b.data_dir(data.path())).await;
    c.ok(&["run", "spin", "--image=minke/spinner"]).await;
    c.ok(&["wait", "--for=condition=Ready", "pod/spin", WAIT])
        .await;
    let TestCluster { cluster, .. } = c;
    cluster.shutdown().await;
    // A running pod must not keep the store open: the data dir is free again.
    let again = minke::Cluster::builder()
        .data_dir(data.path())
        .start()
        .await
        .expect("restart on the same data dir");
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_comes_from_configmaps_secrets_and_pod_fields_and_expands_in_args() {
    let c = TestCluster::start().await;
    let pod = r#"apiVersion: v1
kind: Pod
metadata:
  name: envy
  labels: {app: envy}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: minke/hello
    args: ["$(GREETING)", "$(MY_POD)", "$$(NOT_EXPANDED)"]
    env:
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: settings, key: greeting}}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    - name: MY_POD
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: APP
      valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: MEM_LIMIT_MI
      valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}
    - name: CPU_REQUEST_M
      valueFrom: {resourceFieldRef: {containerName: main, resource: requests.cpu, divisor: 1m}}
    resources:
      limits: {memory: 64Mi, cpu: 500m}
      requests: {cpu: 250m}
    envFrom:
    - prefix: CFG_
      configMapRef: {name: settings}
"#;
    c.ok_stdin(&["apply", "-f", "-"], pod).await;
    // The ConfigMap does not exist yet: the container waits with the kubelet's reason.
    c.ok(&["wait", "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=CreateContainerConfigError", "pod/envy", WAIT]).await;
    let message = c
        .ok(&[
            "get",
            "pod",
            "envy",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.message}",
        ])
        .await;
    assert_eq!(message, "configmap \"settings\" not found");
    c.ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=greeting=bonjour",
        "--from-literal=color=blue",
    ])
    .await;
    c.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=password=s3cret",
    ])
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/envy",
        WAIT,
    ])
    .await;
    let logs = c.ok(&["logs", "envy"]).await;
    for line in [
        "args: bonjour envy $(NOT_EXPANDED)",
        "GREETING=bonjour",
        "PASSWORD=s3cret",
        "MY_POD=envy",
        "APP=envy",
        "CFG_color=blue",
        "MEM_LIMIT_MI=64",
        "POD_IP=10.244.",
        "CPU_REQUEST_M=250",
    ] {
        assert!(logs.contains(line), "missing {line:?} in:\n{logs}");
    }
}

/// Follow a pod's logs until a line satisfies `want` (or time runs out).
async fn follow_until(c: &TestCluster, pod: &str, want: impl Fn(&str) -> bool) -> String {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(common::kubectl_bin())
        .args(["logs", "-f", pod])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.dir.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl logs -f");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = String::new();
    let found = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if want(&line) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "never saw the line; got:\n{seen}"
    );
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_volumes_show_in_the_pod_and_follow_edits() {
    let c = TestCluster::start().await;
    c.ok(&["apply", "-f", &common::example("pod-config.yaml")])
        .await;
    c.ok(&["wait", "--for=condition=Ready", "pod/config-demo", WAIT])
        .await;
    follow_until(&c, "config-demo", |l| l == "lives=3").await;
    c.ok(&[
        "patch",
        "configmap",
        "game-config",
        "-p",
        r#"{"data":{"game.properties":"enemies=aliens\nlives=5\n"}}"#,
    ])
    .await;
    follow_until(&c, "config-demo", |l| l == "lives=5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_cannot_escape_their_mounts_or_write_read_only_ones() {
    let c = TestCluster::start().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: '1'\n",
    )
    .await;
    let pod = |name: &str, args: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: minke/toolbox\n    args: {args}\n    volumeMounts:\n    - {{name: cfg, mountPath: /etc/config}}\n    - {{name: scratch, mountPath: /scratch}}\n  volumes:\n  - {{name: cfg, configMap: {{name: cfg}}}}\n  - {{name: scratch, emptyDir: {{}}}}\n"
        )
    };
    let cases = [
        (
            "dotdot",
            r#"["cat", "/etc/config/../../../etc/passwd"]"#,
            false,
        ),
        ("absolute", r#"["cat", "/etc/passwd"]"#, false),
        (
            "readonly",
            r#"["write", "/etc/config/a", "changed"]"#,
            false,
        ),
        ("scratch", r#"["write", "/scratch/note", "ok"]"#, true),
        ("reads", r#"["cat", "/etc/config/a"]"#, true),
    ];
    for (name, args, _) in &cases {
        c.ok_stdin(&["apply", "-f", "-"], &pod(name, args)).await;
    }
    for (name, _, succeeds) in &cases {
        let phase = if *succeeds { "Succeeded" } else { "Failed" };
        c.ok(&[
            "wait",
            &format!("--for=jsonpath={{.status.phase}}={phase}"),
            &format!("pod/{name}"),
            WAIT,
        ])
        .await;
    }
    assert_eq!(c.ok(&["logs", "reads"]).await, "1");
    assert_eq!(
        c.ok(&["get", "cm", "cfg", "-o", "jsonpath={.data.a}"])
            .await,
        "1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_pod_shows_the_kubelet_events_and_the_node_lease_is_renewed() {
    let c = TestCluster::start().await;
    c.ok(&["run", "hello", "--image=minke/hello", "--restart=Never"])
        .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/hello",
        WAIT,
    ])
    .await;
    // The binder records Scheduled concurrently with the worker's run: poll (bounded)
    // until it is there; `kubectl wait` cannot wait for objects that do not exist yet.
    let mut reasons = String::new();
    for _ in 0..100 {
        reasons = c
            .ok(&[
                "get",
                "events",
                "--field-selector=involvedObject.name=hello",
                "-o",
                "jsonpath={.items[*].reason}",
            ])
            .await;
        if reasons.contains("Scheduled") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(reasons.contains("Scheduled"), "{reasons}");
    assert!(
        reasons.starts_with("Scheduled"),
        "the scheduler's event comes first: {reasons}"
    );
    let ip = c
        .ok(&["get", "pod", "hello", "-o", "jsonpath={.status.podIP}"])
        .await;
    assert!(ip.starts_with("10.244."), "{ip}");
    let describe = c.ok(&["describe", "pod", "hello"]).await;
    for reason in ["Scheduled", "Pulled", "Created", "Started"] {
        assert!(
            describe
                .lines()
                .any(|l| l.trim_start().starts_with("Normal") && l.contains(reason)),
            "{reason} missing:\n{describe}"
        );
    }
    assert!(
        describe.contains("Successfully assigned default/hello to"),
        "{describe}"
    );
    let lease = c
        .ok(&[
            "get",
            "lease",
            "-n",
            "kube-node-lease",
            "-o",
            "jsonpath={.items[0].spec.holderIdentity} {.items[0].spec.leaseDurationSeconds}",
        ])
        .await;
    assert!(lease.ends_with(" 40") && lease.len() > 3, "{lease}");
}
