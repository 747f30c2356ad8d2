//! Pods run as wasm (first slice of the pod runtime): completion and logs, exit codes
//! and CrashLoopBackOff with previous logs, OOMKilled, and a missing image.

mod common;

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
    let c = TestCluster::start().await;
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
    ] {
        assert!(logs.contains(line), "missing {line:?} in:\n{logs}");
    }
}
