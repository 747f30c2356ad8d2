//! Workload controller benchmarks (issue 5), each against a peer measured in the
//! same run:
//! - a 100-replica Deployment of `echo` from create to all available, then a
//!   rollout of it to a new image, each beside the write floor: the same number of
//!   writes (the store's resourceVersion delta over the step) made straight through
//!   the API, 8 at a time, with no controller in between;
//! - reconcile latency: a one-replica Deployment from create until its pod exists
//!   (two reconciles: Deployment → ReplicaSet → pod), with few pods present and again
//!   with 1 000 pods present.
//!
//! Run: `cargo bench --bench workloads` (`BENCH_REPLICAS` changes the Deployment's
//! size, `BENCH_OBJECTS` the number of pods present).

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn deployment(name: &str, replicas: usize, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "echo", "image": image}]},
            },
        },
    }))
    .expect("deployment")
}

/// The store's newest resourceVersion (every write moves it by one).
async fn revision(client: &kube::Client) -> u64 {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.list(&ListParams::default().limit(1))
        .await
        .expect("list")
        .metadata
        .resource_version
        .and_then(|rv| rv.parse().ok())
        .expect("numeric resourceVersion")
}

/// Wait until the Deployment reports `replicas` updated and available, and no more.
async fn until_rolled_out(api: &Api<Deployment>, name: &str, replicas: i32) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let d = api.get(name).await.expect("get");
        let done = d.status.as_ref().is_some_and(|s| {
            d.metadata.generation == s.observed_generation
                && s.updated_replicas == Some(replicas)
                && s.available_replicas == Some(replicas)
                && s.replicas == Some(replicas)
        });
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "{name} did not roll out");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `writes` ConfigMap writes (creates, then updates), 8 at a time: what the
/// store allows for that many writes with nothing else going on.
async fn floor(client: &kube::Client, prefix: &str, writes: u64) -> f64 {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let start = Instant::now();
    let jobs = (0..writes).map(|i| {
        let api = api.clone();
        let name = format!("{prefix}-{}", i % 200);
        async move {
            if i < 200 {
                let cm: ConfigMap = serde_json::from_value(
                    json!({"metadata": {"name": name}, "data": {"n": i.to_string()}}),
                )
                .expect("cm");
                api.create(&PostParams::default(), &cm).await.map(|_| ())
            } else {
                let patch = json!({"data": {"n": i.to_string()}});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            }
        }
    });
    futures::stream::iter(jobs)
        .buffered(8)
        .try_collect::<Vec<()>>()
        .await
        .expect("writes");
    start.elapsed().as_secs_f64()
}

/// Create `rounds` one-replica Deployments named `<prefix>-<i>`, one at a time; each
/// round's time from the create to its pod's creation (the Deployment controller
/// makes a ReplicaSet, the ReplicaSet controller the pod).
async fn reconcile_latency(client: &kube::Client, prefix: &str, rounds: usize) -> Vec<f64> {
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut out = Vec::new();
    for i in 0..rounds {
        let name = format!("{prefix}-{i}");
        let rv = pods
            .list(&ListParams::default().labels(&format!("app={name}")))
            .await
            .expect("list")
            .metadata
            .resource_version
            .expect("rv");
        let mut events = pods
            .watch(&WatchParams::default().labels(&format!("app={name}")), &rv)
            .await
            .expect("watch")
            .boxed();
        let start = Instant::now();
        deploys
            .create(&PostParams::default(), &deployment(&name, 1, "minke/echo"))
            .await
            .expect("create");
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(30), events.try_next())
                .await
                .expect("a pod within 30 s")
                .expect("watch event")
                .expect("watch open");
            if let WatchEvent::Added(_) = ev {
                out.push(start.elapsed().as_secs_f64() * 1000.0);
                break;
            }
        }
        until_rolled_out(&deploys, &name, 1).await;
    }
    out
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("workload benchmarks: skipped (run `cargo bench --bench workloads`)");
        return;
    }
    let replicas = env_usize("BENCH_REPLICAS", 100);
    let objects = env_usize("BENCH_OBJECTS", 1000);
    // Room for every pod the benchmark makes (a node takes 1 000 by default).
    let capacity = minke::kubelet::node::Capacity {
        pods: u32::try_from(objects + replicas * 2 + 100).expect("pod count"),
        ..minke::kubelet::node::Capacity::of_host()
    };
    let cluster = minke::Cluster::builder()
        .node_capacity(capacity)
        .start()
        .await
        .expect("cluster");
    let client = cluster.client();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let n = i32::try_from(replicas).expect("replicas");

    // Warm the image cache so the first step measures controllers, not compiling.
    reconcile_latency(&client, "warm", 1).await;

    let before = revision(&client).await;
    let start = Instant::now();
    deploys
        .create(
            &PostParams::default(),
            &deployment("web", replicas, "minke/echo"),
        )
        .await
        .expect("create");
    until_rolled_out(&deploys, "web", n).await;
    let apply = start.elapsed().as_secs_f64();
    let apply_writes = revision(&client).await - before;
    let apply_floor = floor(&client, "apply", apply_writes).await;

    let before = revision(&client).await;
    let start = Instant::now();
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "echo", "image": "minke/echo:v2"}]}}}});
    deploys
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("set image");
    until_rolled_out(&deploys, "web", n).await;
    let rollout = start.elapsed().as_secs_f64();
    let rollout_writes = revision(&client).await - before;
    let rollout_floor = floor(&client, "rollout", rollout_writes).await;

    println!("workloads: {replicas}-replica Deployment of echo (in-memory store, release build)");
    println!(
        "  create → all available   {apply:>7.3} s  ({apply_writes} writes; write floor {apply_floor:.3} s → {:.1}×)",
        apply / apply_floor
    );
    println!(
        "  rollout to a new image   {rollout:>7.3} s  ({rollout_writes} writes; write floor {rollout_floor:.3} s → {:.1}×)",
        rollout / rollout_floor
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let count = |l: kube::core::ObjectList<Pod>| l.items.len();
    let few = count(pods.list(&ListParams::default()).await.expect("list"));
    let mut empty = reconcile_latency(&client, "probe", 30).await;
    // More pods: up to `objects` with another Deployment.
    let present = count(pods.list(&ListParams::default()).await.expect("list"));
    let more = objects.saturating_sub(present).max(1);
    deploys
        .create(
            &PostParams::default(),
            &deployment("bulk", more, "minke/echo"),
        )
        .await
        .expect("create bulk");
    until_rolled_out(&deploys, "bulk", i32::try_from(more).expect("count")).await;
    let many = count(pods.list(&ListParams::default()).await.expect("list"));
    let mut loaded = reconcile_latency(&client, "probe2", 30).await;
    let (e50, e99) = (percentile(&mut empty, 0.5), percentile(&mut empty, 0.99));
    let (l50, l99) = (percentile(&mut loaded, 0.5), percentile(&mut loaded, 0.99));
    println!("  reconcile latency (Deployment create until its pod exists), 30 rounds:");
    println!("    {few:>5}+ pods present     p50 {e50:>7.2} ms  p99 {e99:>7.2} ms");
    println!(
        "    {many:>5}+ pods present     p50 {l50:>7.2} ms  p99 {l99:>7.2} ms  → {:.1}× the p50 above",
        l50 / e50
    );
    cluster.shutdown().await;
}
