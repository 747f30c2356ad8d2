//! StatefulSets with the real kubectl: `examples/statefulset.yaml` makes web-0,
//! web-1, web-2 strictly in order (each Ready before the next) with Bound claims;
//! scaling to 1 removes web-2 then web-1 and keeps their claims; data `kv` wrote on
//! web-0 survives the pod's deletion; partitioned rolling updates, ControllerRevisions
//! and `kubectl rollout status|history|undo`.

use crate::common;

use std::sync::{Arc, Mutex};

use common::TestCluster;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

const WAIT: &str = "--timeout=90s";

/// What a pod watch saw, in order: (pod, ready, being deleted, gone).
type Seen = Arc<Mutex<Vec<(String, bool, bool, bool)>>>;

fn record(c: &TestCluster, labels: &str) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let api: Api<Pod> = Api::default_namespaced(c.cluster.client());
    let out = seen.clone();
    let config = watcher::Config::default().labels(labels);
    let task = tokio::spawn(async move {
        let mut events = watcher(api, config).default_backoff().boxed();
        while let Some(Ok(ev)) = events.next().await {
            let (p, gone) = match ev {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => (p, false),
                watcher::Event::Delete(p) => (p, true),
                _ => continue,
            };
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let entry = (
                p.metadata.name.clone().unwrap_or_default(),
                ready,
                p.metadata.deletion_timestamp.is_some(),
                gone,
            );
            if let Ok(mut s) = out.lock() {
                s.push(entry);
            }
        }
    });
    (seen, task)
}

fn first(
    seen: &[(String, bool, bool, bool)],
    f: impl Fn(&(String, bool, bool, bool)) -> bool,
) -> usize {
    seen.iter().position(f).unwrap_or(usize::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_come_in_order_with_their_claims_and_keep_their_data() {
    let c = TestCluster::start().await;
    let (seen, watch) = record(&c, "app=kv");
    c.ok(&["apply", "-f", &common::example("statefulset.yaml")])
        .await;
    c.ok(&["rollout", "status", "statefulset/web", WAIT]).await;
    {
        let s = seen.lock().expect("lock").clone();
        for i in 1..3 {
            let made = first(&s, |e| e.0 == format!("web-{i}"));
            let before_ready = first(&s, |e| e.0 == format!("web-{}", i - 1) && e.1);
            assert!(
                before_ready < made,
                "web-{i} was made before web-{} was ready: {s:?}",
                i - 1
            );
        }
    }
    let claims = c
        .ok(&[
            "get",
            "pvc",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.status.phase} {end}",
        ])
        .await;
    assert_eq!(
        claims.trim(),
        "data-web-0=Bound data-web-1=Bound data-web-2=Bound"
    );
    let hostname = c
        .ok(&[
            "get",
            "pod",
            "web-1",
            "-o",
            "jsonpath={.spec.hostname}.{.spec.subdomain}",
        ])
        .await;
    assert_eq!(hostname, "web-1.kv");

    // kv on web-0 writes to its claim; the data outlives the pod.
    let value = c.path("value");
    std::fs::write(&value, "kept").expect("write value");
    let put = "/api/v1/namespaces/default/pods/web-0:8080/proxy/greeting";
    c.ok(&["replace", "--raw", put, "-f", &value.display().to_string()])
        .await;
    // Not `kubectl delete`'s own wait: the kubelet deletes the pod and the controller
    // makes a new web-0 within milliseconds, and when both land between kubectl's GET
    // and its LIST it watches the new pod for a deletion that already happened (a
    // race kubectl has against any cluster this quick). Wait for the new uid instead.
    let uid = ["get", "pod", "web-0", "-o", "jsonpath={.metadata.uid}"];
    let old = c.ok(&uid).await;
    c.ok(&["delete", "pod", "web-0", "--wait=false"]).await;
    c.until(&uid, "a new web-0", |now| !now.is_empty() && now != old)
        .await;
    c.ok(&["wait", "--for=condition=Ready", "pod/web-0", WAIT])
        .await;
    let got = c.ok(&["get", "--raw", put]).await;
    assert_eq!(got, "kept");

    // Scale down: web-2 goes before web-1 starts going; the claims stay.
    seen.lock().expect("lock").clear();
    c.ok(&["scale", "statefulset", "web", "--replicas=1"]).await;
    c.ok(&["wait", "--for=delete", "pod/web-1", "pod/web-2", WAIT])
        .await;
    watch.abort();
    let s = seen.lock().expect("lock").clone();
    let two_gone = first(&s, |e| e.0 == "web-2" && e.3);
    let one_going = first(&s, |e| e.0 == "web-1" && (e.2 || e.3));
    assert!(
        two_gone < one_going,
        "web-1 went before web-2 was gone: {s:?}"
    );
    let claims = c.ok(&["get", "pvc", "-o", "name"]).await;
    assert_eq!(
        claims.lines().collect::<Vec<_>>(),
        [
            "persistentvolumeclaim/data-web-0",
            "persistentvolumeclaim/data-web-1",
            "persistentvolumeclaim/data-web-2"
        ]
    );
    let status = c
        .ok(&[
            "get",
            "sts",
            "web",
            "-o",
            "jsonpath={.status.replicas}/{.status.readyReplicas}",
        ])
        .await;
    assert_eq!(status, "1/1");
}

const ECHO: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 3
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: echo, image: minke/echo}]
"#;

async fn images(c: &TestCluster) -> String {
    c.ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.spec.containers[0].image} {end}",
    ])
    .await
    .trim()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_rolling_update_then_undo() {
    let c = TestCluster::start().await;
    c.ok_stdin(&["apply", "-f", "-"], ECHO).await;
    c.ok(&["rollout", "status", "statefulset/web", WAIT]).await;
    c.ok(&[
        "patch",
        "sts",
        "web",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}"#,
    ])
    .await;
    c.ok(&["set", "image", "sts/web", "echo=minke/echo:v2"])
        .await;
    let out = c.ok(&["rollout", "status", "statefulset/web", WAIT]).await;
    assert!(
        out.contains("partitioned roll out complete: 1 new pods have been updated"),
        "{out}"
    );
    assert_eq!(
        images(&c).await,
        "web-0=minke/echo web-1=minke/echo web-2=minke/echo:v2"
    );

    c.ok(&[
        "patch",
        "sts",
        "web",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ])
    .await;
    let out = c.ok(&["rollout", "status", "statefulset/web", WAIT]).await;
    // kubectl reads a partition (defaulted to 0) as a partitioned roll out.
    assert!(
        out.contains("partitioned roll out complete: 3 new pods have been updated"),
        "{out}"
    );
    assert_eq!(
        images(&c).await,
        "web-0=minke/echo:v2 web-1=minke/echo:v2 web-2=minke/echo:v2"
    );
    let revisions = c.ok(&["get", "controllerrevisions", "-o", "name"]).await;
    assert_eq!(revisions.lines().count(), 2, "{revisions}");
    let history = c.ok(&["rollout", "history", "sts/web"]).await;
    let numbers: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(numbers, ["1", "2"], "{history}");

    c.ok(&["rollout", "undo", "sts/web"]).await;
    c.ok(&["rollout", "status", "statefulset/web", WAIT]).await;
    assert_eq!(
        images(&c).await,
        "web-0=minke/echo web-1=minke/echo web-2=minke/echo"
    );
    let history = c.ok(&["rollout", "history", "sts/web"]).await;
    let numbers: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        numbers,
        ["2", "3"],
        "the old template is the newest revision now: {history}"
    );
}
