//! DaemonSets with the real kubectl on several virtual nodes: one pod per node,
//! nodeSelector and taints deciding which nodes, node relabelling followed, deleted
//! and extra pods put right, RollingUpdate (with and without surge) watched by
//! `kubectl rollout status`, history and undo through ControllerRevisions, OnDelete.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestCluster;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

const WAIT: &str = "--timeout=90s";

fn agent(name: &str, extra_spec: &str, extra_pod: &str) -> String {
    format!(
        r#"{{"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {{"name": "{name}"}},
  "spec": {{{extra_spec} "selector": {{"matchLabels": {{"app": "{name}"}}}},
    "template": {{"metadata": {{"labels": {{"app": "{name}"}}}},
      "spec": {{{extra_pod} "containers": [{{"name": "echo", "image": "minke/echo"}}]}}}}}}}}"#
    )
}

async fn three_nodes() -> TestCluster {
    TestCluster::start_with(|b| b.nodes(3)).await
}

async fn node_names(c: &TestCluster) -> Vec<String> {
    c.ok(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"])
        .await
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Live pods of `app` (not being deleted) by name, with their node.
async fn pods_of(c: &TestCluster, app: &str) -> BTreeMap<String, String> {
    let out = c
        .ok(&[
            "get",
            "pods",
            "-l",
            &format!("app={app}"),
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.name}|{.spec.nodeName}|{.metadata.deletionTimestamp}{"\n"}{end}"#,
        ])
        .await;
    out.lines()
        .filter_map(|l| {
            let mut f = l.split('|');
            let (name, node, deleting) = (f.next()?, f.next()?, f.next()?);
            deleting
                .is_empty()
                .then(|| (name.to_string(), node.to_string()))
        })
        .collect()
}

/// Wait for a jsonpath of the DaemonSet to read `value`.
async fn wait_for(c: &TestCluster, ds: &str, path: &str, value: &str) {
    c.ok(&[
        "wait",
        &format!("--for=jsonpath={{{path}}}={value}"),
        &format!("ds/{ds}"),
        WAIT,
    ])
    .await;
}

fn serving(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Watch the pods of `app`; returns the fewest nodes with a ready pod seen once listed.
fn watch_ready_nodes(
    c: &TestCluster,
    app: &str,
) -> (Arc<Mutex<Option<usize>>>, tokio::task::JoinHandle<()>) {
    let fewest: Arc<Mutex<Option<usize>>> = Arc::default();
    let api: Api<Pod> = Api::default_namespaced(c.cluster.client());
    let seen = fewest.clone();
    let labels = format!("app={app}");
    let task = tokio::spawn(async move {
        let mut ready: HashMap<String, (String, bool)> = HashMap::new();
        let mut listed = false;
        let mut events = watcher(api, watcher::Config::default().labels(&labels))
            .default_backoff()
            .boxed();
        while let Some(Ok(ev)) = events.next().await {
            match ev {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    let node = p
                        .spec
                        .as_ref()
                        .and_then(|s| s.node_name.clone())
                        .unwrap_or_default();
                    ready.insert(
                        p.metadata.name.clone().unwrap_or_default(),
                        (node, serving(&p)),
                    );
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
            let mut nodes: Vec<&String> =
                ready.values().filter(|(_, r)| *r).map(|(n, _)| n).collect();
            nodes.sort();
            nodes.dedup();
            if let Ok(mut f) = seen.lock() {
                *f = Some(f.map_or(nodes.len(), |f| f.min(nodes.len())));
            }
        }
    });
    (fewest, task)
}

async fn armed(fewest: &Arc<Mutex<Option<usize>>>) {
    for _ in 0..250 {
        if fewest.lock().map(|f| f.is_some()).unwrap_or(false) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the pod watch never listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemonset_runs_one_pod_per_node_rolls_updates_and_rolls_back() {
    let c = three_nodes().await;
    let nodes = node_names(&c).await;
    c.ok_stdin(&["apply", "-f", "-"], &agent("agent", "", ""))
        .await;
    let out = c.ok(&["rollout", "status", "ds/agent", WAIT]).await;
    assert!(
        out.contains("daemon set \"agent\" successfully rolled out"),
        "{out}"
    );

    let placed = pods_of(&c, "agent").await;
    let mut on: Vec<&String> = placed.values().collect();
    on.sort();
    assert_eq!(
        on,
        nodes.iter().collect::<Vec<_>>(),
        "one pod on each node: {placed:?}"
    );
    let wide = c.ok(&["get", "pods", "-o", "wide"]).await;
    for n in &nodes {
        assert_eq!(wide.matches(&format!(" {n} ")).count(), 1, "{wide}");
    }
    for name in placed.keys() {
        assert!(
            name.starts_with("agent-") && name.len() == "agent-".len() + 5,
            "{name}"
        );
    }
    let table = c.ok(&["get", "ds", "agent"]).await;
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .expect("row")
        .split_whitespace()
        .collect();
    assert_eq!(&row[..6], ["agent", "3", "3", "3", "3", "3"], "{table}");

    // The pod: revision hash and generation labels, the default tolerations, pinned.
    let pod = placed.keys().next().expect("a pod");
    let get = |path: &str| {
        let pod = pod.clone();
        let path = path.to_string();
        let c = &c;
        async move {
            c.ok(&["get", "pod", &pod, "-o", &format!("jsonpath={path}")])
                .await
        }
    };
    let hash = get("{.metadata.labels.controller-revision-hash}").await;
    assert!(!hash.is_empty());
    assert_eq!(get("{.metadata.labels.pod-template-generation}").await, "1");
    assert_eq!(
        get("{.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].values[0]}").await,
        placed[pod]
    );
    let tolerations = get("{range .spec.tolerations[*]}{.key}:{.effect} {end}").await;
    assert_eq!(
        tolerations.trim(),
        "node.kubernetes.io/not-ready:NoExecute node.kubernetes.io/unreachable:NoExecute \
         node.kubernetes.io/disk-pressure:NoSchedule node.kubernetes.io/memory-pressure:NoSchedule \
         node.kubernetes.io/pid-pressure:NoSchedule node.kubernetes.io/unschedulable:NoSchedule"
    );
    let revisions = c.ok(&["get", "controllerrevisions"]).await;
    assert!(revisions.contains(&format!("agent-{hash}")), "{revisions}");
    assert!(revisions.contains("daemonset.apps/agent"), "{revisions}");

    // A rolling update (maxUnavailable 1): never more than one node without a ready pod.
    let (fewest, watch) = watch_ready_nodes(&c, "agent");
    armed(&fewest).await;
    c.ok(&["set", "image", "ds/agent", "echo=minke/echo:v2"])
        .await;
    let out = c.ok(&["rollout", "status", "ds/agent", WAIT]).await;
    assert!(out.contains("successfully rolled out"), "{out}");
    watch.abort();
    assert_eq!(*fewest.lock().expect("lock"), Some(2), "one node at a time");
    let images = c
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ])
        .await;
    assert_eq!(
        images.split_whitespace().collect::<Vec<_>>(),
        ["minke/echo:v2"; 3]
    );
    let generations = c
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].metadata.labels.pod-template-generation}",
        ])
        .await;
    assert_eq!(generations.split_whitespace().collect::<Vec<_>>(), ["2"; 3]);

    let history = c.ok(&["rollout", "history", "ds/agent"]).await;
    let numbers: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(numbers, ["1", "2"], "{history}");
    let first = c
        .ok(&["rollout", "history", "ds/agent", "--revision=1"])
        .await;
    assert!(first.contains("Image:\tminke/echo\n"), "{first}");

    // Undo: revision 1's template comes back and becomes revision 3.
    let out = c.ok(&["rollout", "undo", "ds/agent"]).await;
    assert_eq!(out.trim(), "daemonset.apps/agent rolled back");
    let out = c.ok(&["rollout", "status", "ds/agent", WAIT]).await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let images = c
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ])
        .await;
    assert_eq!(
        images.split_whitespace().collect::<Vec<_>>(),
        ["minke/echo"; 3]
    );
    let history = c.ok(&["rollout", "history", "ds/agent"]).await;
    let numbers: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(numbers, ["2", "3"], "{history}");
    let hashes = c
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].metadata.labels.controller-revision-hash}",
        ])
        .await;
    assert_eq!(
        hashes.split_whitespace().collect::<Vec<_>>(),
        [hash.as_str(); 3],
        "the first revision's hash again"
    );
    // kubectl compares the recorded patch with the live template byte for byte.
    let out = c
        .ok(&["rollout", "undo", "ds/agent", "--to-revision=3"])
        .await;
    assert_eq!(
        out.trim(),
        "daemonset.apps/agent skipped rollback (current template already matches revision 3)"
    );
    let events = c
        .ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=DaemonSet",
            "-o",
            "jsonpath={range .items[*]}{.reason}:{.message}{\"\\n\"}{end}",
        ])
        .await;
    assert!(
        events.contains("SuccessfulCreate:Created pod: agent-"),
        "{events}"
    );
    assert!(
        events.contains("SuccessfulDelete:Deleted pod: agent-"),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_selectors_labels_and_taints_decide_which_nodes_run_a_daemon_pod() {
    let c = three_nodes().await;
    let nodes = node_names(&c).await;
    c.ok(&["label", "node", &nodes[1], "role=edge"]).await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &agent("edge", "", r#""nodeSelector": {"role": "edge"},"#),
    )
    .await;
    c.ok(&["rollout", "status", "ds/edge", WAIT]).await;
    let placed = pods_of(&c, "edge").await;
    assert_eq!(
        placed.values().collect::<Vec<_>>(),
        [&nodes[1]],
        "{placed:?}"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "ds",
            "edge",
            "-o",
            "jsonpath={.status.desiredNumberScheduled}"
        ])
        .await,
        "1"
    );
    let table = c.ok(&["get", "ds", "edge"]).await;
    assert!(table.contains("role=edge"), "NODE SELECTOR column: {table}");

    // Relabelled nodes are followed both ways.
    c.ok(&["label", "node", &nodes[2], "role=edge"]).await;
    wait_for(&c, "edge", ".status.numberReady", "2").await;
    c.ok(&["label", "node", &nodes[1], "role-"]).await;
    let gone = placed.keys().next().expect("pod").clone();
    c.ok(&["wait", "--for=delete", &format!("pod/{gone}"), WAIT])
        .await;
    wait_for(&c, "edge", ".status.desiredNumberScheduled", "1").await;
    let placed = pods_of(&c, "edge").await;
    assert_eq!(
        placed.values().collect::<Vec<_>>(),
        [&nodes[2]],
        "{placed:?}"
    );

    // A NoSchedule taint keeps new daemon pods off unless tolerated.
    c.ok(&["taint", "node", &nodes[0], "dedicated=gpu:NoSchedule"])
        .await;
    c.ok_stdin(&["apply", "-f", "-"], &agent("plain", "", ""))
        .await;
    c.ok(&["rollout", "status", "ds/plain", WAIT]).await;
    let placed = pods_of(&c, "plain").await;
    let mut on: Vec<&String> = placed.values().collect();
    on.sort();
    assert_eq!(on, [&nodes[1], &nodes[2]], "the tainted node is skipped");
    let tolerant = r#""tolerations": [{"key": "dedicated", "operator": "Exists"}],"#;
    c.ok_stdin(&["apply", "-f", "-"], &agent("tolerant", "", tolerant))
        .await;
    c.ok(&["rollout", "status", "ds/tolerant", WAIT]).await;
    assert_eq!(pods_of(&c, "tolerant").await.len(), 3);

    // A NoExecute taint evicts the daemon pods that do not tolerate it.
    let evicted: Vec<String> = placed
        .iter()
        .filter(|(_, n)| **n == nodes[2])
        .map(|(p, _)| p.clone())
        .collect();
    c.ok(&["taint", "node", &nodes[2], "maintenance=now:NoExecute"])
        .await;
    c.ok(&["wait", "--for=delete", &format!("pod/{}", evicted[0]), WAIT])
        .await;
    wait_for(&c, "plain", ".status.desiredNumberScheduled", "1").await;
    assert_eq!(
        pods_of(&c, "plain").await.values().collect::<Vec<_>>(),
        [&nodes[1]]
    );
    assert_eq!(
        pods_of(&c, "tolerant").await.len(),
        2,
        "no toleration for maintenance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_daemon_pods_come_back_and_extra_ones_go() {
    let c = three_nodes().await;
    let nodes = node_names(&c).await;
    c.ok_stdin(&["apply", "-f", "-"], &agent("agent", "", ""))
        .await;
    c.ok(&["rollout", "status", "ds/agent", WAIT]).await;
    let before = pods_of(&c, "agent").await;
    let (victim, node) = before.iter().next().expect("a pod");
    c.ok(&["delete", "pod", victim]).await;
    wait_for(&c, "agent", ".status.numberReady", "3").await;
    let after = pods_of(&c, "agent").await;
    assert!(!after.contains_key(victim));
    assert_eq!(
        after.values().filter(|n| *n == node).count(),
        1,
        "{after:?}"
    );

    // An orphan with the DaemonSet's labels on a node that has its pod: adopted,
    // then removed as the newer of the two.
    let extra = format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "extra", "labels": {{"app": "agent"}}}},
            "spec": {{"nodeName": "{}", "containers": [{{"name": "echo", "image": "minke/echo"}}]}}}}"#,
        nodes[0]
    );
    c.ok_stdin(&["apply", "-f", "-"], &extra).await;
    c.ok(&["wait", "--for=delete", "pod/extra", WAIT]).await;
    assert_eq!(pods_of(&c, "agent").await.len(), 3);
    let events = c
        .ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=agent",
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ])
        .await;
    assert!(events.contains("Deleted pod: extra"), "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_surging_update_starts_each_new_pod_before_its_old_one_goes() {
    let c = three_nodes().await;
    let surge = r#""updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},"#;
    c.ok_stdin(&["apply", "-f", "-"], &agent("agent", surge, ""))
        .await;
    c.ok(&["rollout", "status", "ds/agent", WAIT]).await;
    let (fewest, watch) = watch_ready_nodes(&c, "agent");
    armed(&fewest).await;
    c.ok(&["set", "image", "ds/agent", "echo=minke/echo:v2"])
        .await;
    let out = c.ok(&["rollout", "status", "ds/agent", WAIT]).await;
    assert!(out.contains("successfully rolled out"), "{out}");
    watch.abort();
    assert_eq!(
        *fewest.lock().expect("lock"),
        Some(3),
        "every node kept a ready pod"
    );
    let images = c
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ])
        .await;
    assert_eq!(
        images.split_whitespace().collect::<Vec<_>>(),
        ["minke/echo:v2"; 3]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_replaces_a_pod_only_when_it_is_deleted() {
    let c = TestCluster::start_with(|b| b.nodes(2)).await;
    let strategy = r#""updateStrategy": {"type": "OnDelete"},"#;
    c.ok_stdin(&["apply", "-f", "-"], &agent("agent", strategy, ""))
        .await;
    wait_for(&c, "agent", ".status.numberReady", "2").await;
    c.ok(&["set", "image", "ds/agent", "echo=minke/echo:v2"])
        .await;
    wait_for(&c, "agent", ".status.observedGeneration", "2").await;
    let out = c.kubectl(&["rollout", "status", "ds/agent", WAIT]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("rollout status is only available for RollingUpdate strategy type"),
        "{out:?}"
    );
    let before = pods_of(&c, "agent").await;
    assert_eq!(before.len(), 2, "nothing replaced on its own: {before:?}");
    let victim = before.keys().next().expect("pod");
    c.ok(&["delete", "pod", victim]).await;
    wait_for(&c, "agent", ".status.updatedNumberScheduled", "1").await;
    let images: Vec<String> = c
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ])
        .await
        .split_whitespace()
        .map(String::from)
        .collect();
    assert!(images.contains(&"minke/echo:v2".to_string()), "{images:?}");
    assert!(images.contains(&"minke/echo".to_string()), "{images:?}");
}
