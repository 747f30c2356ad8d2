//! DNS benchmark (issue 6): queries per second with `dnsperf` against minke's host DNS
//! port and against Knot DNS serving an equivalent `cluster.local` zone on loopback,
//! in the same run (goal ≥ 0.8×). Both serve the same records (BENCH_SERVICES
//! ClusterIP Services with a named port, one headless Service with 3 endpoints) and
//! get the same query mix: 70 % A hits, 10 % SRV, 10 % AAAA (NODATA), 10 % NXDOMAIN.
//! Runs alternate (knot, minke, knot, minke) and the best of each counts, so a
//! neighbour's burst of CPU use does not decide the ratio. Also printed: the cost of
//! one in-process `Dns::answer` (no sockets), to tell handler from transport.
//!
//! Run: `cargo bench --bench dns` (needs `dnsperf` and `knotd`: `MINKE_BENCH=1
//! scripts/setup.sh`). BENCH_SERVICES (default 1000) and BENCH_SECONDS (default 10
//! per run) change the size.

mod common;
use common::{env_or, on_path};

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};

/// knotd lives in /usr/sbin, which is not on every user's PATH.
fn knotd() -> Option<String> {
    if on_path("knotd") {
        return Some("knotd".into());
    }
    std::path::Path::new("/usr/sbin/knotd")
        .exists()
        .then(|| "/usr/sbin/knotd".into())
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The ClusterIP of Service `i`: 10.100.x.y, inside the service CIDR.
fn service_ip(i: usize) -> String {
    format!("10.100.{}.{}", (i >> 8) & 255, i & 255)
}

const HEADLESS: [(&str, &str); 3] = [
    ("web-0", "10.244.0.20"),
    ("web-1", "10.244.0.21"),
    ("web-2", "10.244.0.22"),
];

async fn create_objects(client: &kube::Client, services: usize) {
    let api: Api<Service> = Api::default_namespaced(client.clone());
    futures::stream::iter(0..services)
        .map(|i| {
            let api = api.clone();
            async move {
                let svc: Service = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("svc-{i}")},
                    "spec": {"clusterIP": service_ip(i), "ports": [{"name": "http", "port": 80}]}
                }))
                .expect("service");
                api.create(&PostParams::default(), &svc)
                    .await
                    .expect("create service");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    // The NS record's glue in both zones: ns.dns.cluster.local is kube-dns's address.
    let kube_dns: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "kube-dns", "namespace": "kube-system"},
        "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}
    }))
    .expect("service");
    Api::<Service>::namespaced(client.clone(), "kube-system")
        .create(&PostParams::default(), &kube_dns)
        .await
        .expect("kube-dns");
    let headless: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "nginx"},
        "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 80}]}
    }))
    .expect("service");
    api.create(&PostParams::default(), &headless)
        .await
        .expect("headless");
    let endpoints: Vec<_> = HEADLESS
        .iter()
        .map(|(host, ip)| serde_json::json!({"addresses": [ip], "hostname": host, "conditions": {"ready": true}}))
        .collect();
    let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "nginx-1", "labels": {"kubernetes.io/service-name": "nginx"}},
        "addressType": "IPv4",
        "ports": [{"name": "web", "port": 80, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .expect("slice");
    Api::<EndpointSlice>::default_namespaced(client.clone())
        .create(&PostParams::default(), &slice)
        .await
        .expect("slice");
}

/// The same records as a zone file for knot (as minke's zone: TTL 5, SOA, NS).
fn zone_file(services: usize) -> String {
    let mut z = String::from(
        "$ORIGIN cluster.local.\n$TTL 5\n\
         @ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5\n\
         @ IN NS ns.dns.cluster.local.\n\
         ns.dns IN A 10.96.0.10\n\
         kube-dns.kube-system.svc IN A 10.96.0.10\n\
         dns-version IN TXT \"1.1.0\"\n\
         kubernetes.default.svc IN A 10.96.0.1\n\
         _https._tcp.kubernetes.default.svc IN SRV 0 100 443 kubernetes.default.svc.cluster.local.\n",
    );
    for i in 0..services {
        let _ = writeln!(z, "svc-{i}.default.svc IN A {}", service_ip(i));
        let _ = writeln!(
            z,
            "_http._tcp.svc-{i}.default.svc IN SRV 0 100 80 svc-{i}.default.svc.cluster.local."
        );
    }
    for (host, ip) in HEADLESS {
        let _ = writeln!(z, "nginx.default.svc IN A {ip}");
        let _ = writeln!(z, "{host}.nginx.default.svc IN A {ip}");
        let _ = writeln!(
            z,
            "_web._tcp.nginx.default.svc IN SRV 0 33 80 {host}.nginx.default.svc.cluster.local."
        );
    }
    z
}

/// dnsperf's input: the query mix, deterministic.
fn query_file(services: usize) -> String {
    let mut q = String::new();
    for n in 0..20_000usize {
        let i = (n * 7919) % services;
        let _ = match n % 10 {
            0 => writeln!(q, "_http._tcp.svc-{i}.default.svc.cluster.local SRV"),
            1 => writeln!(q, "svc-{i}.default.svc.cluster.local AAAA"),
            2 => writeln!(q, "missing-{i}.default.svc.cluster.local A"),
            3 => writeln!(q, "nginx.default.svc.cluster.local A"),
            _ => writeln!(q, "svc-{i}.default.svc.cluster.local A"),
        };
    }
    q
}

struct Knot {
    child: tokio::process::Child,
    addr: SocketAddr,
}

async fn start_knot(knotd: &str, dir: &std::path::Path, services: usize) -> Knot {
    let port = free_port();
    std::fs::write(dir.join("cluster.local.zone"), zone_file(services)).expect("zone file");
    let conf = format!(
        "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\nlog:\n  - target: stderr\n    any: warning\ndatabase:\n    storage: \"{d}\"\nzone:\n  - domain: cluster.local\n    storage: \"{d}\"\n    file: \"cluster.local.zone\"\n",
        d = dir.display()
    );
    std::fs::write(dir.join("knot.conf"), conf).expect("knot.conf");
    let child = tokio::process::Command::new(knotd)
        .arg("-c")
        .arg(dir.join("knot.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("knotd");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(20);
    while dig_short(addr, "svc-0.default.svc.cluster.local", "A")
        .await
        .is_empty()
    {
        assert!(Instant::now() < deadline, "knotd did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Knot { child, addr }
}

async fn dig_short(addr: SocketAddr, name: &str, rtype: &str) -> Vec<String> {
    let out = tokio::process::Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .args([
            "-p",
            &addr.port().to_string(),
            "+time=1",
            "+tries=1",
            "+short",
            name,
            rtype,
        ])
        .output()
        .await;
    let mut lines: Vec<String> = out
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    lines.sort();
    lines
}

/// Run dnsperf for `seconds` against `addr`: (queries per second, lost queries).
async fn dnsperf(addr: SocketAddr, queries: &std::path::Path, seconds: usize) -> (f64, u64) {
    let out = tokio::process::Command::new("dnsperf")
        .args(["-s", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .arg("-d")
        .arg(queries)
        .args(["-l", &seconds.to_string(), "-c", "4", "-q", "200"])
        .output()
        .await
        .expect("dnsperf");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |label: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next().map(str::to_string))
    };
    let qps = field("Queries per second:")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("dnsperf output without a rate:\n{text}"));
    let lost = field("Queries lost:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (qps, lost)
}

/// In-process answers per second (one task, no sockets).
async fn in_process(dns: &minke::dns::Dns, services: usize) -> f64 {
    let queries: Vec<Vec<u8>> = (0..services.min(1000))
        .map(|i| {
            let mut m = Message::query();
            m.metadata.id = i as u16;
            m.add_query(Query::query(
                Name::from_ascii(format!("svc-{i}.default.svc.cluster.local.")).expect("name"),
                RecordType::A,
            ));
            m.to_vec().expect("query")
        })
        .collect();
    let rounds = 200_000 / queries.len();
    let started = Instant::now();
    for _ in 0..rounds {
        for q in &queries {
            assert!(dns.answer(q).await.is_some());
        }
    }
    (rounds * queries.len()) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("dns benchmarks: skipped (run `cargo bench --bench dns`)");
        return;
    }
    let knotd = knotd();
    for (tool, found) in [
        ("dnsperf", on_path("dnsperf")),
        ("dig", on_path("dig")),
        ("knotd", knotd.is_some()),
    ] {
        if !found {
            println!(
                "dns benchmarks: {tool} is not installed: run `MINKE_BENCH=1 scripts/setup.sh`"
            );
            return;
        }
    }
    let knotd = knotd.unwrap_or_default();
    let services = env_or("BENCH_SERVICES", 1000).clamp(1, 65_000);
    let seconds = env_or("BENCH_SECONDS", 10).max(1);
    let dir = tempfile::tempdir().expect("tmp");
    let cluster = minke::Cluster::builder()
        .in_memory()
        .dns_listen("127.0.0.1:0".parse().expect("addr"))
        .pod_egress(minke::net::Egress::Deny)
        .start()
        .await
        .expect("cluster");
    let minke_addr = cluster.dns_addr().expect("dns addr");
    create_objects(&cluster.client(), services).await;
    let last = format!("svc-{}.default.svc.cluster.local.", services - 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.dns().lookup_ip(&last, "default").await.is_err() {
        assert!(Instant::now() < deadline, "minke DNS never served {last}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut knot = start_knot(&knotd, dir.path(), services).await;

    // Both answer the same.
    for (name, rtype) in [
        ("svc-1.default.svc.cluster.local", "A"),
        ("_http._tcp.svc-1.default.svc.cluster.local", "SRV"),
        ("_web._tcp.nginx.default.svc.cluster.local", "SRV"),
        ("nginx.default.svc.cluster.local", "A"),
    ] {
        let (m, k) = (
            dig_short(minke_addr, name, rtype).await,
            dig_short(knot.addr, name, rtype).await,
        );
        assert_eq!(m, k, "{name} {rtype}: minke and knot disagree");
    }

    let queries = dir.path().join("queries.txt");
    std::fs::write(&queries, query_file(services)).expect("queries");
    println!(
        "minke DNS benchmark: {services} services, {seconds} s per run, dnsperf -c 4 -q 200, 2 runs each"
    );
    let (mut best_knot, mut best_minke) = ((0.0f64, 0u64), (0.0f64, 0u64));
    for _ in 0..2 {
        let k = dnsperf(knot.addr, &queries, seconds).await;
        let m = dnsperf(minke_addr, &queries, seconds).await;
        println!(
            "  run: knot {:>9.0} q/s ({} lost)   minke {:>9.0} q/s ({} lost)",
            k.0, k.1, m.0, m.1
        );
        if k.0 > best_knot.0 {
            best_knot = k;
        }
        if m.0 > best_minke.0 {
            best_minke = m;
        }
    }
    println!(
        "{:<44} minke {:>10.0} q/s    knot {:>10.0} q/s    ratio {:>5.2}x  (goal >= 0.8x)",
        "DNS queries per second (UDP, dnsperf)",
        best_minke.0,
        best_knot.0,
        best_minke.0 / best_knot.0
    );
    let inproc = in_process(cluster.dns(), services).await;
    println!(
        "{:<44} {:>10.0} answers/s ({:.2} us each; Dns::answer, one task, no sockets)",
        "in-process wire answers",
        inproc,
        1e6 / inproc
    );
    let _ = knot.child.kill().await;
    cluster.shutdown().await;
}
