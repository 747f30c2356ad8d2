//! The pod network end to end: a toolbox pod's `wget` reaches echo pods by pod IP
//! and through a Service's ClusterIP (balanced over its endpoints); the host
//! reaches the Service on its NodePort; kube-dns answers over UDP on its ClusterIP; with `--pod-egress=deny` the outside is
//! closed to pods.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use crate::common::{TestCluster, http_get};

const WAIT: &str = "--timeout=120s";

/// A loopback address of its own, so parallel clusters' NodePorts never clash.
pub(crate) fn node_address() -> IpAddr {
    let n = std::process::id() ^ u32::from(rand_byte()) << 8;
    IpAddr::from([127, 77, (n >> 8) as u8, (n as u8).max(2)])
}

fn rand_byte() -> u8 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (t >> 10) as u8
}

/// The pods answering `GET /` at `at` (from the host), trying until `want` answered
/// or 40 attempts.
async fn answering_pods(at: SocketAddr, want: usize) -> BTreeSet<String> {
    let mut answered = BTreeSet::new();
    for _ in 0..40 {
        if answered.len() == want {
            break;
        }
        match tokio::net::TcpStream::connect(at).await {
            Ok(_) => {
                let body = http_get(at, "/").await;
                if let Some(pod) = body.lines().find_map(|l| l.strip_prefix("pod: ")) {
                    answered.insert(pod.to_string());
                }
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
    answered
}

/// The first NodePort of Service `svc`.
pub(crate) async fn node_port(c: &TestCluster, svc: &str) -> u16 {
    c.ok(&[
        "get",
        "svc",
        svc,
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ])
    .await
    .parse()
    .expect("node port")
}

/// Run `wget -qO- URL` in a toolbox pod; its output once it ends, and whether it
/// succeeded.
async fn wget(c: &TestCluster, pod: &str, url: &str) -> (bool, String) {
    wget_with(c, pod, &[], url).await
}

/// [`wget`] with more `kubectl run` flags (e.g. `--labels=…`).
pub(crate) async fn wget_with(
    c: &TestCluster,
    pod: &str,
    flags: &[&str],
    url: &str,
) -> (bool, String) {
    let mut args = vec!["run", pod, "--image=minke/toolbox", "--restart=Never"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "wget", "-qO-", url]);
    c.ok(&args).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let phase = loop {
        let p = c
            .ok(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"])
            .await;
        if p == "Succeeded" || p == "Failed" {
            break p;
        }
        assert!(std::time::Instant::now() < deadline, "pod {pod} still {p}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let logs = c.ok(&["logs", pod]).await;
    (phase == "Succeeded", logs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_reach_pods_and_services_and_the_host_reaches_the_node_port() {
    let node = node_address();
    let c = TestCluster::start_with(|b| b.node_address(node)).await;
    c.echo_deployment("web", 3).await;
    let ips = c
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].status.podIP}",
        ])
        .await;
    let ips: Vec<&str> = ips.split_whitespace().collect();
    assert_eq!(ips.len(), 3, "{ips:?}");

    // Pod to pod, by IP.
    let (ok, out) = wget(&c, "direct", &format!("http://{}:8080/hello", ips[0])).await;
    assert!(ok, "{out}");
    assert!(out.contains("path: /hello"), "{out}");
    assert!(out.contains("pod: web-"), "{out}");

    // `kubectl expose`: a ClusterIP balanced over the endpoints, and a NodePort.
    c.ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
        "--type=NodePort",
    ])
    .await;
    let vip = c
        .ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"])
        .await;
    let node_port = node_port(&c, "web").await;
    let ready = c
        .ok(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={.items[*].endpoints[*].addresses[0]}",
        ])
        .await;
    assert_eq!(ready.split_whitespace().count(), 3, "{ready}");
    let (ok, out) = wget(&c, "via-service", &format!("http://{vip}/")).await;
    assert!(ok, "{out}");
    assert!(out.contains("pod: web-"), "{out}");
    // By name, through the cluster DNS and the pod's search path.
    for (pod, url) in [
        ("by-name", "http://web/"),
        ("by-ns", "http://web.default/"),
        ("by-fqdn", "http://web.default.svc.cluster.local/"),
    ] {
        let (ok, out) = wget(&c, pod, url).await;
        assert!(ok, "{url}: {out}");
        assert!(out.contains("pod: web-"), "{url}: {out}");
    }
    c.ok(&[
        "run",
        "lookup",
        "--image=minke/toolbox",
        "--restart=Never",
        "--",
        "nslookup",
        "web",
    ])
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/lookup",
        WAIT,
    ])
    .await;
    let answer = c.ok(&["logs", "lookup"]).await;
    assert!(answer.contains(&format!("Address: {vip}")), "{answer}");
    // Asked of kube-dns's ClusterIP over UDP (wasi:sockets udp), as resolv.conf would.
    c.ok(&[
        "run",
        "lookup-udp",
        "--image=minke/toolbox",
        "--restart=Never",
        "--",
        "nslookup",
        "web.default.svc.cluster.local",
        "10.96.0.10",
    ])
    .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/lookup-udp",
        WAIT,
    ])
    .await;
    let answer = c.ok(&["logs", "lookup-udp"]).await;
    assert!(answer.contains("Server:\t\t10.96.0.10"), "{answer}");
    assert!(answer.contains(&format!("Address: {vip}")), "{answer}");

    // From the host, on the NodePort: answered by all three pods in turn.
    let answered = answering_pods(SocketAddr::new(node, node_port), 3).await;
    assert_eq!(answered.len(), 3, "NodePort answers came from {answered:?}");

    // A LoadBalancer: its address is the node address, its port bound there.
    c.ok(&[
        "expose",
        "deployment",
        "web",
        "--name=web-lb",
        "--type=LoadBalancer",
        "--port=8081",
        "--target-port=8080",
    ])
    .await;
    let lb = c
        .until(
            &[
                "get",
                "svc",
                "web-lb",
                "-o",
                "jsonpath={.status.loadBalancer.ingress[0].ip}",
            ],
            "the LoadBalancer's address",
            |ip| !ip.is_empty(),
        )
        .await;
    assert_eq!(lb, node.to_string());
    let answered = answering_pods(SocketAddr::new(node, 8081), 3).await;
    assert_eq!(
        answered.len(),
        3,
        "LoadBalancer answers came from {answered:?}"
    );

    // No endpoints: refused at once.
    c.ok(&["scale", "deployment", "web", "--replicas=0"]).await;
    c.ok(&["wait", "--for=delete", "pod", "-l", "app=web", WAIT])
        .await;
    let (ok, out) = wget(&c, "no-endpoints", &format!("http://{vip}/")).await;
    assert!(!ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_deny_closes_the_outside_to_pods() {
    let c = TestCluster::start_with(|b| b.pod_egress(minke::net::Egress::Deny)).await;
    let (ok, out) = wget(&c, "out", "http://192.0.2.1/").await;
    assert!(!ok, "{out}");
    assert!(out.contains("wget:"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_with_the_same_pod_ips_never_meet() {
    let (a, b) = tokio::join!(
        TestCluster::start_with(|b| b.node_address(node_address())),
        TestCluster::start_with(|b| b.node_address(node_address()))
    );
    for (c, text) in [(&a, "from-a"), (&b, "from-b")] {
        c.ok(&[
            "run",
            "web",
            "--image=minke/echo",
            &format!("--env=ECHO_TEXT={text}"),
        ])
        .await;
        c.ok(&["wait", "--for=condition=Ready", "pod/web", WAIT])
            .await;
    }
    let ip = ["get", "pod", "web", "-o", "jsonpath={.status.podIP}"];
    let (ip_a, ip_b) = (a.ok(&ip).await, b.ok(&ip).await);
    assert_eq!(ip_a, ip_b, "both clusters hand out their first pod IP");
    for (c, text) in [(&a, "from-a"), (&b, "from-b")] {
        let (ok, out) = wget(c, "client", &format!("http://{ip_a}:8080/")).await;
        assert!(ok, "{out}");
        assert!(out.contains(&format!("text: {text}")), "{out}");
    }
}
