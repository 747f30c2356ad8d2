//! The scheduler with several virtual nodes (`--nodes`): pods spread by least
//! allocation, honour nodeSelector, taints and cordons, and a pod no node fits
//! shows kube-scheduler's FailedScheduling message, then runs once room frees up.

use crate::common;

use common::TestCluster;
use minke::kubelet::node::Capacity;

const WAIT: &str = "--timeout=60s";

async fn three_small_nodes() -> TestCluster {
    TestCluster::start_with(|b| {
        b.nodes(3).node_capacity(Capacity {
            cpu: "1".into(),
            memory: "1Gi".into(),
            pods: 10,
        })
    })
    .await
}

fn pod(name: &str, memory: &str, extra: &str) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "{name}"}},
            "spec": {{{extra} "containers": [{{"name": "c", "image": "minke/toolbox", "args": ["sleep", "3600"],
              "resources": {{"requests": {{"memory": "{memory}"}}}}}}]}}}}"#
    )
}

async fn node_of(c: &TestCluster, pod: &str) -> String {
    c.ok(&["get", "pod", pod, "-o", "jsonpath={.spec.nodeName}"])
        .await
}

async fn nodes(c: &TestCluster) -> Vec<String> {
    c.ok(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"])
        .await
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_spread_over_nodes_and_wait_for_room_with_the_schedulers_message() {
    let c = three_small_nodes().await;
    let names = nodes(&c).await;
    assert_eq!(names.len(), 3, "{names:?}");
    let table = c.ok(&["get", "nodes"]).await;
    assert_eq!(table.matches(" Ready ").count(), 3, "{table}");
    assert!(
        names[1].ends_with("-m02") && names[2].ends_with("-m03"),
        "{names:?}"
    );

    // Three pods of 700Mi: one per node, by least allocation.
    let mut placed = Vec::new();
    for i in 0..3 {
        let name = format!("big{i}");
        c.ok_stdin(&["apply", "-f", "-"], &pod(&name, "700Mi", ""))
            .await;
        c.ok(&[
            "wait",
            "--for=condition=Ready",
            &format!("pod/{name}"),
            WAIT,
        ])
        .await;
        placed.push(node_of(&c, &name).await);
    }
    placed.sort();
    assert_eq!(placed, names, "one per node");

    // A fourth does not fit anywhere.
    c.ok_stdin(&["apply", "-f", "-"], &pod("late", "700Mi", ""))
        .await;
    c.ok(&[
        "wait",
        "--for=condition=PodScheduled=false",
        "pod/late",
        WAIT,
    ])
    .await;
    let message = "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are \
                   available: 3 No preemption victims found for incoming pod..";
    let condition = c
        .ok(&[
            "get",
            "pod",
            "late",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].reason}: {.status.conditions[?(@.type==\"PodScheduled\")].message}",
        ])
        .await;
    assert_eq!(condition, format!("Unschedulable: {message}"));
    let described = c.ok(&["describe", "pod", "late"]).await;
    assert!(
        described.contains("FailedScheduling")
            && described.contains("default-scheduler")
            && described.contains(message),
        "{described}"
    );
    assert!(
        c.ok(&["get", "pod", "late"]).await.contains("Pending"),
        "still pending"
    );

    // Room frees up: it runs.
    c.ok(&["delete", "pod", "big1", "--grace-period=0", "--force"])
        .await;
    c.ok(&["wait", "--for=condition=Ready", "pod/late", WAIT])
        .await;
    assert_eq!(node_of(&c, "late").await, placed[1]);
    let events = c
        .ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=late",
        ])
        .await;
    assert!(
        events.contains("Successfully assigned default/late to"),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_selectors_taints_tolerations_and_cordons_decide_where_pods_go() {
    let c = three_small_nodes().await;
    let names = nodes(&c).await;
    let (first, second, third) = (&names[0], &names[1], &names[2]);

    let on = |node: &str| format!(r#""nodeSelector": {{"kubernetes.io/hostname": "{node}"}},"#);
    c.ok_stdin(&["apply", "-f", "-"], &pod("pinned", "1Mi", &on(third)))
        .await;
    c.ok(&["wait", "--for=condition=Ready", "pod/pinned", WAIT])
        .await;
    assert_eq!(&node_of(&c, "pinned").await, third);

    c.ok(&["taint", "node", second, "dedicated=gpu:NoSchedule"])
        .await;
    c.ok_stdin(&["apply", "-f", "-"], &pod("gpu", "1Mi", &on(second)))
        .await;
    c.ok(&[
        "wait",
        "--for=condition=PodScheduled=false",
        "pod/gpu",
        WAIT,
    ])
    .await;
    let message = c
        .ok(&[
            "get",
            "pod",
            "gpu",
            "-o",
            "jsonpath={.status.conditions[0].message}",
        ])
        .await;
    assert_eq!(
        message,
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) \
         didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 \
         Preemption is not helpful for scheduling.."
    );
    // A toleration lets it in.
    let tolerant = pod(
        "gpu2",
        "1Mi",
        &format!(
            r#"{} "tolerations": [{{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}}],"#,
            on(second)
        ),
    );
    c.ok_stdin(&["apply", "-f", "-"], &tolerant).await;
    c.ok(&["wait", "--for=condition=Ready", "pod/gpu2", WAIT])
        .await;
    assert_eq!(&node_of(&c, "gpu2").await, second);
    // Removing the taint lets the first one in too.
    c.ok(&["taint", "node", second, "dedicated=gpu:NoSchedule-"])
        .await;
    c.ok(&["wait", "--for=condition=Ready", "pod/gpu", WAIT])
        .await;

    // A cordoned node takes no new pods.
    c.ok(&["cordon", first]).await;
    c.ok_stdin(&["apply", "-f", "-"], &pod("cordoned", "1Mi", &on(first)))
        .await;
    c.ok(&[
        "wait",
        "--for=condition=PodScheduled=false",
        "pod/cordoned",
        WAIT,
    ])
    .await;
    let message = c
        .ok(&[
            "get",
            "pod",
            "cordoned",
            "-o",
            "jsonpath={.status.conditions[0].message}",
        ])
        .await;
    assert!(
        message.starts_with(
            "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match"
        ),
        "{message}"
    );
    c.ok(&["uncordon", first]).await;
    c.ok(&["wait", "--for=condition=Ready", "pod/cordoned", WAIT])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_gives_pod_ips_from_its_own_block() {
    let c = three_small_nodes().await;
    let names = nodes(&c).await;
    let cidrs = c
        .ok(&["get", "nodes", "-o", "jsonpath={.items[*].spec.podCIDR}"])
        .await;
    assert_eq!(cidrs, "10.244.0.0/20 10.244.16.0/20 10.244.32.0/20");
    let on = format!(
        r#""nodeSelector": {{"kubernetes.io/hostname": "{}"}},"#,
        names[2]
    );
    c.ok_stdin(&["apply", "-f", "-"], &pod("third", "1Mi", &on))
        .await;
    c.ok(&["wait", "--for=condition=Ready", "pod/third", WAIT])
        .await;
    let ip = c
        .ok(&["get", "pod", "third", "-o", "jsonpath={.status.podIP}"])
        .await;
    assert!(ip.starts_with("10.244.32."), "{ip}");
}
