//! Pod runtime benchmarks (issue 4), each against a peer measured in the same run:
//! - pod create → Running for 200 pods with a warm module (p50/p99; goal p99 < 10 ms
//!   with the in-memory store), beside the cost of spawning a native process;
//! - instance start of the `hello` component, cold (compile), from the disk cache,
//!   and warm, against `wasmtime run` of the same component when `wasmtime` is on
//!   PATH (`cargo install wasmtime-cli --version 48.0.8 --locked`), else against
//!   spawning `/bin/true`;
//! - total RSS of 1 000 idle `echo` pods (goal < 1 GiB) and the per-pod overhead.
//!
//! Run: `cargo bench --bench pods` (`BENCH_PODS` changes the idle pod count).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use minke::kubelet::images::builtin;
use minke::kubelet::runtime::{Context, Runtime, Spec, log_file};

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn pod(name: &str, image: &str, args: &[&str]) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"bench": "pods"}},
        "spec": {"containers": [{"name": "c", "image": image, "args": args}]},
    }))
    .expect("pod")
}

/// Create `names` one at a time; each create → the watch reporting `want`.
async fn start_latencies(
    api: &Api<Pod>,
    image: &str,
    args: &[&str],
    names: &[String],
    want: impl Fn(&Pod) -> bool,
) -> Vec<f64> {
    let mut events = api
        .watch(&WatchParams::default().labels("bench=pods"), "0")
        .await
        .expect("watch")
        .boxed();
    let mut started: HashMap<String, Instant> = HashMap::new();
    let mut out = Vec::new();
    for name in names {
        started.insert(name.clone(), Instant::now());
        api.create(&PostParams::default(), &pod(name, image, args))
            .await
            .expect("create");
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(30), events.try_next())
                .await
                .expect("pod starts within 30s")
                .expect("watch event")
                .expect("watch open");
            if let WatchEvent::Modified(p) | WatchEvent::Added(p) = ev
                && p.metadata.name.as_deref() == Some(name.as_str())
                && want(&p)
            {
                out.push(started[name].elapsed().as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    out
}

fn running(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

async fn instance_run(rt: &Runtime, bytes: &[u8], dir: &std::path::Path) -> f64 {
    let started = Instant::now();
    let compiled = rt.compile(bytes).expect("compile");
    let spec = Spec {
        ctx: Context {
            argv: vec!["hello".into()],
            ..Context::default()
        },
        stdin: None,
        stdout: log_file(&dir.join("out")),
        stderr: log_file(&dir.join("err")),
    };
    rt.run(&compiled, spec).await.expect("runs");
    started.elapsed().as_secs_f64() * 1000.0
}

fn spawn_ms(program: &str, args: &[&str]) -> Option<f64> {
    let started = Instant::now();
    let ok = std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .ok()?
        .success();
    ok.then(|| started.elapsed().as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("pod benchmarks: skipped (run `cargo bench --bench pods`)");
        return;
    }
    let idle: usize = std::env::var("BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("tmp");
    let hello = builtin("minke/hello").expect("hello image");

    // Instance start: cold compile, disk cache, warm; against the peer.
    let cache = dir.path().join("cache");
    let cold = instance_run(
        &Runtime::new().expect("rt").with_disk_cache(&cache),
        hello,
        dir.path(),
    )
    .await;
    let disk = instance_run(
        &Runtime::new().expect("rt").with_disk_cache(&cache),
        hello,
        dir.path(),
    )
    .await;
    let rt = Runtime::new().expect("rt");
    instance_run(&rt, hello, dir.path()).await;
    let mut warm = Vec::new();
    for _ in 0..50 {
        warm.push(instance_run(&rt, hello, dir.path()).await);
    }
    let warm_p50 = percentile(&mut warm, 0.5);
    let wasm_file = dir.path().join("hello.wasm");
    std::fs::write(&wasm_file, hello).expect("write hello.wasm");
    let wasm_path = wasm_file.display().to_string();
    let peer = (0..10)
        .filter_map(|_| spawn_ms("wasmtime", &["run", &wasm_path]))
        .collect::<Vec<_>>();
    let (peer_name, mut peer) = if peer.is_empty() {
        (
            "spawn /bin/true",
            (0..20)
                .filter_map(|_| spawn_ms("/bin/true", &[]))
                .collect::<Vec<_>>(),
        )
    } else {
        ("wasmtime run", peer)
    };
    let peer_p50 = percentile(&mut peer, 0.5);
    println!("minke pod benchmarks");
    println!(
        "instance start (hello): cold {cold:.2} ms, disk cache {disk:.2} ms, warm p50 {warm_p50:.3} ms; {peer_name} p50 {peer_p50:.3} ms → ratio {:.2}x (lower is better)",
        warm_p50 / peer_p50
    );

    // Pod create → Running, warm module, in-memory store.
    let cluster = minke::Cluster::builder().start().await.expect("cluster");
    let api: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let names: Vec<String> = (0..200).map(|i| format!("run-{i:03}")).collect();
    start_latencies(
        &api,
        "minke/toolbox",
        &["loop", "3600", "true"],
        &names[..1],
        running,
    )
    .await;
    let mut lat = start_latencies(
        &api,
        "minke/toolbox",
        &["loop", "3600", "true"],
        &names[1..],
        running,
    )
    .await;
    let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));
    let mut spawn: Vec<f64> = (0..20).filter_map(|_| spawn_ms("/bin/true", &[])).collect();
    println!(
        "pod create → Running (199 pods, warm): p50 {p50:.2} ms, p99 {p99:.2} ms (goal p99 < 10 ms); native process spawn p50 {:.2} ms",
        percentile(&mut spawn, 0.5)
    );

    // Idle echo pods: what each costs in resident memory.
    let before = rss_bytes();
    let idle_names: Vec<String> = (0..idle).map(|i| format!("echo-{i:04}")).collect();
    let started = Instant::now();
    start_latencies(&api, "minke/echo", &[], &idle_names, running).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_bytes();
    println!(
        "{idle} idle echo pods: process RSS {:.1} MiB (goal < 1024 MiB), {:.1} KiB per pod over the {:.1} MiB before; all Running in {:.1} s",
        after as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / 1024.0 / idle as f64,
        before as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );
    cluster.shutdown().await;
}
