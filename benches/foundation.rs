//! Foundation benchmarks, each printed as a ratio against a peer measured in the same
//! run: startup to `/readyz`, durable create throughput (1 and 64 clients) against
//! etcd 3.4 on loopback on the same disk, and listing 10 000 ConfigMaps.
//!
//! Run: `cargo bench --bench foundation` (needs `etcd` on PATH: `MINKE_BENCH=1
//! scripts/setup.sh` installs it). Set `BENCH_OBJECTS` to change the object count.

use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A ConfigMap of realistic size (~300 bytes as stored).
fn config_map(i: usize) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("cm-{i:06}"), "labels": {"app": "bench", "shard": (i % 8).to_string()}},
        "data": {"key": "value-0123456789abcdef", "other": "x".repeat(64)}
    }))
    .expect("configmap")
}

async fn kube_client(kubeconfig_yaml: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig_yaml).expect("kubeconfig");
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config");
    kube::Client::try_from(config).expect("client")
}

/// Run `total` operations with `clients` concurrent workers; returns ops/s.
async fn throughput<F, Fut>(total: usize, clients: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..clients {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < total {
                op(i).await;
                i += clients;
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

struct Etcd {
    child: tokio::process::Child,
    url: String,
    http: HttpClient,
}

impl Etcd {
    async fn start(dir: &std::path::Path) -> Option<Etcd> {
        let (client, peer) = (free_port(), free_port());
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = tokio::process::Command::new("etcd")
            .args([
                "--data-dir",
                &dir.join("etcd").display().to_string(),
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                &format!("default={peer_url}"),
                "--log-level",
                "error",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .ok()?;
        let http: HttpClient =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(128)
                .build_http();
        let etcd = Etcd { child, url, http };
        for _ in 0..500 {
            if etcd
                .post(
                    "/v3/kv/range",
                    serde_json::json!({"key": B64.encode("probe")}),
                )
                .await
                .is_some()
            {
                return Some(etcd);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> Option<Bytes> {
        let req = http::Request::post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .ok()?;
        let resp = self.http.request(req).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.into_body().collect().await.ok().map(|b| b.to_bytes())
    }
}

fn ratio_line(what: &str, minke: f64, peer: f64, unit: &str, goal: &str) {
    println!(
        "{what:<44} minke {minke:>10.1} {unit:<6} etcd {peer:>10.1} {unit:<6} ratio {:>5.2}x  (goal {goal})",
        minke / peer
    );
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`: compile-check
    // only, the measurements belong to `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("foundation benchmarks: skipped (run `cargo bench --bench foundation`)");
        return;
    }
    let objects: usize = std::env::var("BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("tmp");
    println!(
        "minke foundation benchmarks ({objects} objects; durable stores on {})",
        dir.path().display()
    );

    // Startup: the `minke up` binary from exec to an HTTPS /readyz answering ok.
    let mut startups = Vec::new();
    for run in 0..5 {
        let data = dir.path().join(format!("startup-{run}"));
        let kubeconfig = dir.path().join(format!("kubeconfig-{run}"));
        let started = Instant::now();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_minke"))
            .args([
                "up",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                &data.display().to_string(),
                "--kubeconfig",
                &kubeconfig.display().to_string(),
                "--dns-listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("minke up");
        // The kubeconfig is written once the API answers; then ask /readyz over HTTPS.
        let text = loop {
            if let Ok(t) = std::fs::read_to_string(&kubeconfig)
                && t.contains("current-context")
            {
                break t;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        let client = kube_client(&text).await;
        let ready = client
            .request_text(http::Request::get("/readyz").body(Vec::new()).expect("req"))
            .await
            .expect("readyz");
        assert_eq!(ready, "ok");
        startups.push(started.elapsed().as_secs_f64() * 1000.0);
        let _ = child.kill().await;
    }
    let mut etcd_startups = Vec::new();
    for run in 0..3 {
        let started = Instant::now();
        let Some(mut e) = Etcd::start(&dir.path().join(format!("etcd-startup-{run}"))).await else {
            println!("etcd is not on PATH: run `MINKE_BENCH=1 scripts/setup.sh`");
            return;
        };
        etcd_startups.push(started.elapsed().as_secs_f64() * 1000.0);
        let _ = e.child.kill().await;
    }
    let (m, e) = (
        percentile(&mut startups, 0.5),
        percentile(&mut etcd_startups, 0.5),
    );
    println!(
        "{:<44} minke {m:>10.1} ms     etcd {e:>10.1} ms     (goal: minke under 50 ms)",
        "startup to ready (median, fresh data dir)"
    );

    // Create throughput, durable, over the network API of each.
    let cluster = minke::Cluster::builder()
        .data_dir(dir.path().join("minke"))
        .start()
        .await
        .expect("cluster");
    let client = kube_client(&cluster.kubeconfig_yaml()).await;
    let etcd = Arc::new(
        Etcd::start(&dir.path().join("etcd-main"))
            .await
            .expect("etcd"),
    );
    for clients in [1usize, 64] {
        let n = if clients == 1 { objects / 10 } else { objects };
        let offset = if clients == 1 { 1_000_000 } else { 0 };
        let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
        let minke_rate = throughput(n, clients, move |i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &config_map(offset + i))
                    .await
                    .expect("create");
            }
        })
        .await;
        let etcd2 = etcd.clone();
        let etcd_rate = throughput(n, clients, move |i| {
            let etcd = etcd2.clone();
            async move {
                let value = serde_json::to_vec(&config_map(offset + i)).expect("json");
                let key = format!("/registry/configmaps/default/cm-{:06}", offset + i);
                etcd.post(
                    "/v3/kv/put",
                    serde_json::json!({"key": B64.encode(key), "value": B64.encode(value)}),
                )
                .await
                .expect("put");
            }
        })
        .await;
        ratio_line(
            &format!("creates/s, {clients} client(s), durable"),
            minke_rate,
            etcd_rate,
            "ops/s",
            ">= 1.0x",
        );
    }

    // List: the 10 000 ConfigMaps created with 64 clients, as JSON.
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let lp = ListParams::default().labels("app=bench");
    let mut minke_ms = Vec::new();
    let mut etcd_ms = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let list = api.list(&lp).await.expect("list");
        minke_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(list.items.len() >= objects);
        let t = Instant::now();
        let body = etcd
            .post(
                "/v3/kv/range",
                serde_json::json!({"key": B64.encode("/registry/configmaps/default/"), "range_end": B64.encode("/registry/configmaps/default0")}),
            )
            .await
            .expect("range");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        etcd_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(v["kvs"].as_array().map_or(0, Vec::len) >= objects);
    }
    let (m, e) = (
        percentile(&mut minke_ms, 0.5),
        percentile(&mut etcd_ms, 0.5),
    );
    println!(
        "{:<44} minke {m:>10.1} ms     etcd {e:>10.1} ms     ratio {:>5.2}x  (etcd/minke; >1 = minke faster)",
        format!("list {}+ ConfigMaps (median of 10)", objects),
        e / m
    );
    cluster.shutdown().await;
}
