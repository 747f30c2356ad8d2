//! Deployments and ReplicaSets with the real kubectl: rolling updates that keep
//! every replica ready, rollout history/undo/pause/resume/restart, scaling,
//! Recreate, and ReplicaSets replacing deleted pods.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::TestCluster;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

const WAIT: &str = "--timeout=60s";

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: echo, image: minke/echo, ports: [{containerPort: 8080}]}]
"#;

fn serving(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Watch the `app=web` pods; returns the fewest ready ones seen since `armed`.
fn watch_ready(c: &TestCluster) -> (Arc<Mutex<Option<usize>>>, tokio::task::JoinHandle<()>) {
    let fewest: Arc<Mutex<Option<usize>>> = Arc::default();
    let api: Api<Pod> = Api::default_namespaced(c.cluster.client());
    let seen = fewest.clone();
    let task = tokio::spawn(async move {
        let mut ready: HashMap<String, bool> = HashMap::new();
        let mut listed = false;
        let mut events = watcher(api, watcher::Config::default().labels("app=web"))
            .default_backoff()
            .boxed();
        while let Some(Ok(ev)) = events.next().await {
            match ev {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    ready.insert(p.metadata.name.clone().unwrap_or_default(), serving(&p));
                }
                watcher::Event::Delete(p) => {
                    ready.remove(&p.metadata.name.clone().unwrap_or_default());
                }
                watcher::Event::InitDone => listed = true,
                watcher::Event::Init => continue,
            }
            if !listed {
                continue;
            }
            let now = ready.values().filter(|r| **r).count();
            if let Ok(mut f) = seen.lock() {
                *f = Some(f.map_or(now, |f| f.min(now)));
            }
        }
    });
    (fewest, task)
}

async fn image(c: &TestCluster) -> String {
    c.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_keeps_every_replica_ready_and_can_be_undone() {
    let c = TestCluster::start().await;
    c.ok_stdin(&["apply", "-f", "-"], WEB).await;
    let out = c.ok(&["rollout", "status", "deployment/web", WAIT]).await;
    assert!(
        out.contains("deployment \"web\" successfully rolled out"),
        "{out}"
    );
    let rs = c
        .ok(&["get", "rs", "-o", "jsonpath={.items[*].metadata.name}"])
        .await;
    let hash = c
        .ok(&[
            "get",
            "rs",
            "-o",
            "jsonpath={.items[0].metadata.labels.pod-template-hash}",
        ])
        .await;
    assert_eq!(
        rs,
        format!("web-{hash}"),
        "the ReplicaSet is named for its template"
    );

    let (fewest, watch) = watch_ready(&c);
    // The watch has listed the three ready pods before the update starts.
    for _ in 0..100 {
        if fewest.lock().map(|f| f.is_some()).unwrap_or(false) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    c.ok(&["set", "image", "deployment/web", "echo=minke/echo:v2"])
        .await;
    let out = c.ok(&["rollout", "status", "deployment/web", WAIT]).await;
    assert!(out.contains("successfully rolled out"), "{out}");
    watch.abort();
    assert_eq!(
        *fewest.lock().expect("lock"),
        Some(3),
        "never fewer than 3 ready pods"
    );

    let history = c.ok(&["rollout", "history", "deployment/web"]).await;
    let revisions: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    let pods = c
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ])
        .await;
    assert_eq!(
        pods.split_whitespace()
            .filter(|i| *i == "minke/echo:v2")
            .count(),
        3,
        "{pods}"
    );

    let out = c.ok(&["rollout", "undo", "deployment/web"]).await;
    assert!(out.contains("deployment.apps/web rolled back"), "{out}");
    c.ok(&["rollout", "status", "deployment/web", WAIT]).await;
    assert_eq!(image(&c).await, "minke/echo");
    let history = c.ok(&["rollout", "history", "deployment/web"]).await;
    assert!(
        history.contains("\n2 ") && history.contains("\n3 ") && !history.contains("\n1 "),
        "{history}"
    );
    let ready = c
        .ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}/{.status.updatedReplicas}",
        ])
        .await;
    assert_eq!(ready, "3/3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_rollout_waits_for_resume_and_restart_rolls_new_pods() {
    let c = TestCluster::start().await;
    c.ok_stdin(&["apply", "-f", "-"], WEB).await;
    c.ok(&["rollout", "status", "deployment/web", WAIT]).await;
    c.ok(&["rollout", "pause", "deployment/web"]).await;
    c.ok(&["set", "image", "deployment/web", "echo=minke/echo:v2"])
        .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}=DeploymentPaused",
        "deploy/web",
        WAIT,
    ])
    .await;
    let sets = c.ok(&["get", "rs", "-o", "name"]).await;
    assert_eq!(
        sets.lines().count(),
        1,
        "no new ReplicaSet while paused: {sets}"
    );
    c.ok(&["rollout", "resume", "deployment/web"]).await;
    c.ok(&["rollout", "status", "deployment/web", WAIT]).await;
    assert_eq!(c.ok(&["get", "rs", "-o", "name"]).await.lines().count(), 2);

    let before = c.ok(&["get", "pods", "-l", "app=web", "-o", "name"]).await;
    c.ok(&["rollout", "restart", "deployment/web"]).await;
    c.ok(&["rollout", "status", "deployment/web", WAIT]).await;
    let after = c
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "--field-selector=status.phase=Running",
            "-o",
            "name",
        ])
        .await;
    assert!(
        before.lines().all(|p| !after.contains(p)),
        "all pods replaced: {before} / {after}"
    );

    c.ok(&["scale", "deployment/web", "--replicas=5"]).await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.availableReplicas}=5",
        "deploy/web",
        WAIT,
    ])
    .await;
    c.ok(&["scale", "deployment/web", "--replicas=1"]).await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.replicas}=1",
        "deploy/web",
        WAIT,
    ])
    .await;
    let events = c.ok(&["describe", "deploy", "web"]).await;
    assert!(
        events.contains("ScalingReplicaSet") && events.contains("from 5 to 1"),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_stops_every_old_pod_before_starting_new_ones() {
    let c = TestCluster::start().await;
    let recreate = WEB.replace(
        "    type: RollingUpdate\n    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}",
        "    type: Recreate",
    );
    c.ok_stdin(&["apply", "-f", "-"], &recreate).await;
    c.ok(&["rollout", "status", "deployment/web", WAIT]).await;
    c.ok(&["set", "image", "deployment/web", "echo=minke/echo:v2"])
        .await;
    c.ok(&["rollout", "status", "deployment/web", WAIT]).await;
    let events = c.ok(&["describe", "deploy", "web"]).await;
    let down = events.find("Scaled down replica set").expect("scaled down");
    let up = events.rfind("from 0 to 3").expect("scaled up");
    assert!(down < up, "old set emptied first: {events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicaset_replaces_deleted_pods_and_reports_ready_replicas() {
    let c = TestCluster::start().await;
    let rs = r#"{"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
      "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "rs"}},
        "template": {"metadata": {"labels": {"app": "rs"}},
          "spec": {"containers": [{"name": "c", "image": "minke/toolbox", "args": ["sleep", "3600"]}]}}}}"#;
    c.ok_stdin(&["apply", "-f", "-"], rs).await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.readyReplicas}=2",
        "rs/rs",
        WAIT,
    ])
    .await;
    let first = c
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=rs",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .await;
    c.ok(&["delete", "pod", &first, "--wait=false"]).await;
    c.ok(&["wait", "--for=delete", &format!("pod/{first}"), WAIT])
        .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.readyReplicas}=2",
        "rs/rs",
        WAIT,
    ])
    .await;
    let owner = c
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=rs",
            "-o",
            "jsonpath={.items[*].metadata.ownerReferences[0].name}",
        ])
        .await;
    assert_eq!(owner, "rs rs");
    let described = c.ok(&["describe", "rs", "rs"]).await;
    assert!(
        described.contains("SuccessfulCreate") && described.contains("Created pod: rs-"),
        "{described}"
    );
    assert!(described.contains("Pods Status:  2 Running"), "{described}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_deployment_cascades_unless_told_to_orphan() {
    let c = TestCluster::start().await;
    c.ok_stdin(&["apply", "-f", "-"], WEB).await;
    c.ok(&["rollout", "status", "deployment/web", WAIT]).await;

    // --cascade=orphan: the ReplicaSet and its pods stay, their owner references go.
    c.ok(&["delete", "deployment", "web", "--cascade=orphan", WAIT])
        .await;
    let owners = c
        .ok(&[
            "get",
            "rs",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].metadata.name}/{.items[*].metadata.ownerReferences}",
        ])
        .await;
    assert!(
        owners.starts_with("web-") && owners.ends_with('/'),
        "{owners}"
    );
    let pods = c
        .ok(&["get", "pods", "-l", "app=web", "--no-headers"])
        .await;
    assert_eq!(pods.lines().count(), 3, "{pods}");

    // Applied again, the Deployment adopts the orphaned ReplicaSet (same template):
    // no new pods are made.
    c.ok_stdin(&["apply", "-f", "-"], WEB).await;
    c.ok(&["rollout", "status", "deployment/web", WAIT]).await;
    let rs = c.ok(&["get", "rs", "-l", "app=web", "--no-headers"]).await;
    assert_eq!(rs.lines().count(), 1, "{rs}");

    // A plain delete (background) takes the ReplicaSet and the pods with it.
    c.ok(&["delete", "deployment", "web", WAIT]).await;
    c.ok(&["wait", "--for=delete", "pods", "-l", "app=web", WAIT])
        .await;
    let left = c
        .ok(&["get", "rs,pods", "-l", "app=web", "--no-headers"])
        .await;
    assert_eq!(left.trim(), "", "{left}");
}
