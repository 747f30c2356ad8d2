//! Pod network benchmarks (issue 6), each against a peer measured in the same run:
//!
//! 1. TCP throughput pod to pod through the virtual network (a pod's listener, the
//!    other pod's connect: the in-memory path guests' wasi:sockets streams ride on)
//!    vs host loopback TCP (goal ≥ 0.5×).
//! 2. HTTP requests per second and p99 latency with `wrk` through a NodePort to one
//!    `minke/echo` pod vs `wasmtime serve` of the same component on loopback
//!    (goal ≥ 0.9×). Runs alternate (peer, minke, peer, minke); the best of each counts.
//!
//! Run: `cargo bench --bench network` (needs `wrk` and wasmtime-cli 48:
//! `MINKE_BENCH=1 scripts/setup.sh`). BENCH_MB (default 1024) sizes the transfer,
//! BENCH_SECONDS (default 10) each wrk run.

mod common;
use common::{env_or, on_path};

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use minke::net::{Egress, Network, PodInfo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const CHUNK: usize = 64 * 1024;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Send `total` bytes from `tx` to `rx` in CHUNK writes; bytes per second.
async fn pump(
    mut tx: impl AsyncWrite + Unpin + Send + 'static,
    mut rx: impl AsyncRead + Unpin,
    total: usize,
) -> f64 {
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = vec![7u8; CHUNK];
        let mut left = total;
        while left > 0 {
            let n = left.min(CHUNK);
            tx.write_all(&chunk[..n]).await.expect("write");
            left -= n;
        }
        tx.shutdown().await.expect("shutdown");
    });
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    loop {
        let n = rx.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        got += n;
    }
    writer.await.expect("writer");
    assert_eq!(got, total);
    total as f64 / started.elapsed().as_secs_f64()
}

async fn pod_to_pod(total: usize) -> f64 {
    let net = Network::new(Egress::Deny);
    let info = |name: &str| PodInfo {
        namespace: "default".into(),
        name: name.into(),
    };
    let (a, b): (IpAddr, IpAddr) = (
        "10.244.0.2".parse().expect("ip"),
        "10.244.0.3".parse().expect("ip"),
    );
    let pod_a = net.attach(a, info("a"));
    let pod_b = net.attach(b, info("b"));
    let mut listener = pod_b.listen(SocketAddr::new(b, 5000)).expect("listen");
    let (client, server) = tokio::join!(pod_a.connect(SocketAddr::new(b, 5000)), listener.accept());
    let (client, server) = (client.expect("connect"), server.expect("accept"));
    pump(client.stream, server.stream, total).await
}

async fn loopback(total: usize) -> f64 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let at = listener.local_addr().expect("addr");
    let (client, server) = tokio::join!(tokio::net::TcpStream::connect(at), listener.accept());
    let (client, (server, _)) = (client.expect("connect"), server.expect("accept"));
    pump(client, server, total).await
}

/// What one wrk run measured.
#[derive(Debug, Clone, Copy)]
struct Wrk {
    rps: f64,
    p99_ms: f64,
}

fn millis(s: &str) -> Option<f64> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        _ => return None,
    })
}

async fn wrk(url: &str, seconds: usize) -> Wrk {
    let out = tokio::process::Command::new("wrk")
        .args(["-t2", "-c32", &format!("-d{seconds}s"), "--latency", url])
        .output()
        .await
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"));
    let p99_ms = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| millis(v.trim()))
        .unwrap_or_else(|| panic!("no 99% latency in wrk's output:\n{text}"));
    let errors = text
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"));
    assert!(errors.is_none(), "wrk saw errors against {url}:\n{text}");
    Wrk { rps, p99_ms }
}

/// Wait until `GET /` at `at` answers.
async fn answers(at: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(mut s) = tokio::net::TcpStream::connect(at).await {
            let _ = s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").await;
            let mut out = Vec::new();
            if s.read_to_end(&mut out).await.is_ok() && out.starts_with(b"HTTP/1.") {
                return;
            }
        }
        assert!(Instant::now() < deadline, "nothing answers at {at}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A cluster with one echo pod behind a NodePort; the NodePort's address.
async fn echo_cluster(node: IpAddr) -> (minke::Cluster, SocketAddr) {
    let cluster = minke::Cluster::builder()
        .in_memory()
        .node_address(node)
        .start()
        .await
        .expect("cluster");
    let client = cluster.client();
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "echo", "image": "minke/echo"}]}}}
    }))
    .expect("deployment");
    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
            "ports": [{"port": 80, "targetPort": 8080}]}
    }))
    .expect("service");
    Api::<Deployment>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");
    let service = Api::<Service>::namespaced(client, "default")
        .create(&PostParams::default(), &service)
        .await
        .expect("create service");
    let port = service
        .spec
        .and_then(|s| s.ports)
        .and_then(|p| p.first().and_then(|p| p.node_port))
        .and_then(|p| u16::try_from(p).ok())
        .expect("node port");
    (cluster, SocketAddr::new(node, port))
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("network benchmarks: skipped (run `cargo bench --bench network`)");
        return;
    }
    let total = env_or("BENCH_MB", 1024).max(1) * 1024 * 1024;
    let seconds = env_or("BENCH_SECONDS", 10).max(1);

    println!(
        "== TCP throughput, {} MiB in {} KiB writes",
        total >> 20,
        CHUNK >> 10
    );
    let (mut best_loop, mut best_pod) = (0f64, 0f64);
    for _ in 0..3 {
        best_loop = best_loop.max(loopback(total).await);
        best_pod = best_pod.max(pod_to_pod(total).await);
    }
    println!(
        "host loopback TCP      {:>8.0} MiB/s",
        best_loop / 1048576.0
    );
    println!("pod to pod (minke)     {:>8.0} MiB/s", best_pod / 1048576.0);
    println!(
        "ratio minke/loopback   {:>8.2}x (goal >= 0.5x)",
        best_pod / best_loop
    );

    let wasmtime_ok = tokio::process::Command::new("wasmtime")
        .arg("--version")
        .output()
        .await
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).starts_with("wasmtime 48."));
    if !on_path("wrk") || !wasmtime_ok {
        println!(
            "HTTP benchmark: needs wrk and wasmtime-cli 48: run `MINKE_BENCH=1 scripts/setup.sh`"
        );
        return;
    }
    println!(
        "\n== HTTP through a NodePort to minke/echo vs `wasmtime serve` (wrk -t2 -c32, {seconds} s runs)"
    );
    let echo = concat!(env!("CARGO_MANIFEST_DIR"), "/guests/echo/echo.wasm");
    let peer_port = free_port();
    let mut peer = tokio::process::Command::new("wasmtime")
        .args([
            "serve",
            "-Scli",
            "--addr",
            &format!("127.0.0.1:{peer_port}"),
            echo,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("wasmtime serve");
    let peer_at = SocketAddr::from(([127, 0, 0, 1], peer_port));
    let node: IpAddr = [127, 0, 0, 1].into();
    let (cluster, node_port) = echo_cluster(node).await;
    answers(peer_at).await;
    answers(node_port).await;
    let (mut best_peer, mut best_minke): (Option<Wrk>, Option<Wrk>) = (None, None);
    let better = |best: Option<Wrk>, run: Wrk| match best {
        Some(b) if b.rps >= run.rps => Some(b),
        _ => Some(run),
    };
    for _ in 0..2 {
        best_peer = better(best_peer, wrk(&format!("http://{peer_at}/"), seconds).await);
        best_minke = better(
            best_minke,
            wrk(&format!("http://{node_port}/"), seconds).await,
        );
    }
    let (peer_run, minke_run) = (best_peer.expect("runs"), best_minke.expect("runs"));
    println!(
        "wasmtime serve         {:>8.0} req/s  p99 {:>7.2} ms",
        peer_run.rps, peer_run.p99_ms
    );
    println!(
        "minke NodePort         {:>8.0} req/s  p99 {:>7.2} ms",
        minke_run.rps, minke_run.p99_ms
    );
    println!(
        "ratio minke/wasmtime   {:>8.2}x req/s (goal >= 0.9x), p99 {:.2}x",
        minke_run.rps / peer_run.rps,
        minke_run.p99_ms / peer_run.p99_ms
    );
    let _ = peer.kill().await;
    drop(cluster);
}
