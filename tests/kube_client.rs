//! Embedding: clusters started inside a test process, driven with kube-rs.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}}))
        .expect("configmap")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_in_one_process_are_independent() {
    let a = minke::Cluster::builder()
        .in_memory()
        .start()
        .await
        .expect("a");
    let b = minke::Cluster::builder()
        .in_memory()
        .start()
        .await
        .expect("b");
    assert_ne!(a.addr(), b.addr());
    let api_a: Api<ConfigMap> = Api::default_namespaced(a.client());
    let api_b: Api<ConfigMap> = Api::default_namespaced(b.client());
    api_a
        .create(&PostParams::default(), &cm("only-in-a"))
        .await
        .expect("create");
    assert!(api_b.get_opt("only-in-a").await.expect("get").is_none());
    assert_eq!(
        api_a
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    let namespaces: Api<Namespace> = Api::all(b.client());
    assert_eq!(
        namespaces
            .list(&ListParams::default())
            .await
            .expect("ns")
            .items
            .len(),
        4
    );
    // Clients keep a cluster's store open; drop them so shutdown can release it.
    drop((api_a, api_b, namespaces));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_watch_sees_changes_after_its_resource_version() {
    let c = minke::Cluster::builder()
        .in_memory()
        .start()
        .await
        .expect("cluster");
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut stream = api
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .expect("watch")
        .boxed();
    api.create(&PostParams::default(), &cm("watched"))
        .await
        .expect("create");
    api.delete("watched", &Default::default())
        .await
        .expect("delete");
    let mut kinds = Vec::new();
    while let Some(ev) = stream.next().await {
        match ev.expect("event") {
            WatchEvent::Added(o) => kinds.push(("ADDED", o.metadata.name)),
            WatchEvent::Deleted(o) => {
                kinds.push(("DELETED", o.metadata.name));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        kinds,
        [
            ("ADDED", Some("watched".to_string())),
            ("DELETED", Some("watched".to_string()))
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_dry_run_stores_nothing_and_generate_name_fills_a_name() {
    let c = minke::Cluster::builder()
        .in_memory()
        .start()
        .await
        .expect("cluster");
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    let dry = api
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &cm("dry"),
        )
        .await
        .expect("dry run");
    assert_eq!(dry.metadata.name.as_deref(), Some("dry"));
    assert!(api.get_opt("dry").await.expect("get").is_none());
    let generated: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).expect("cm");
    let made = api
        .create(&PostParams::default(), &generated)
        .await
        .expect("create");
    let name = made.metadata.name.expect("name");
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_hold_a_deleted_object_until_removed() {
    let c = minke::Cluster::builder()
        .in_memory()
        .start()
        .await
        .expect("cluster");
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    let held: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .expect("cm");
    api.create(&PostParams::default(), &held)
        .await
        .expect("create");
    api.delete("held", &Default::default())
        .await
        .expect("delete accepted");
    let pending = api.get("held").await.expect("still there");
    assert!(pending.metadata.deletion_timestamp.is_some());
    let patch = kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}}));
    api.patch("held", &Default::default(), &patch)
        .await
        .expect("remove finalizer");
    assert!(
        api.get_opt("held").await.expect("get").is_none(),
        "gone once the last finalizer is removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_with_limit_and_continue() {
    let c = minke::Cluster::builder()
        .in_memory()
        .start()
        .await
        .expect("cluster");
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("p{i}")))
            .await
            .expect("create");
    }
    let first = api
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().expect("continue");
    let second = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    let third = api
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(&second.metadata.continue_.clone().expect("more")),
        )
        .await
        .expect("page 3");
    let names: Vec<String> = [first, second, third]
        .into_iter()
        .flat_map(|l| l.items)
        .filter_map(|i| i.metadata.name)
        .collect();
    assert_eq!(names, ["p0", "p1", "p2", "p3", "p4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autoscaling_v1_hpa_reads_back_as_v2_and_events_share_storage() {
    use k8s_openapi::api::autoscaling::{v1 as as1, v2 as as2};
    let c = minke::Cluster::builder()
        .in_memory()
        .start()
        .await
        .expect("cluster");
    let v1: Api<as1::HorizontalPodAutoscaler> = Api::default_namespaced(c.client());
    let hpa: as1::HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 4, "targetCPUUtilizationPercentage": 60}
    }))
    .expect("hpa");
    v1.create(&PostParams::default(), &hpa)
        .await
        .expect("create v1");
    let v2: Api<as2::HorizontalPodAutoscaler> = Api::default_namespaced(c.client());
    let got = v2.get("web").await.expect("read as v2");
    let metric = &got.spec.metrics.expect("metrics")[0];
    assert_eq!(
        metric
            .resource
            .as_ref()
            .and_then(|r| r.target.average_utilization),
        Some(60)
    );
    assert_eq!(
        v1.get("web")
            .await
            .expect("v1")
            .spec
            .target_cpu_utilization_percentage,
        Some(60)
    );

    use k8s_openapi::api::{core::v1::Event as CoreEvent, events::v1::Event as NewEvent};
    let new: Api<NewEvent> = Api::default_namespaced(c.client());
    let ev: NewEvent = serde_json::from_value(json!({
        "metadata": {"name": "e1"}, "eventTime": "2026-11-23T19:00:00.000000Z", "reportingController": "minke", "reportingInstance": "minke-1",
        "action": "Testing", "reason": "Tested", "type": "Normal", "note": "hello", "regarding": {"kind": "ConfigMap", "name": "x", "namespace": "default"}
    }))
    .expect("event");
    new.create(&PostParams::default(), &ev)
        .await
        .expect("create events.k8s.io");
    let core: Api<CoreEvent> = Api::default_namespaced(c.client());
    let got = core.get("e1").await.expect("read as core");
    assert_eq!(got.message.as_deref(), Some("hello"));
    assert_eq!(got.involved_object.name.as_deref(), Some("x"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_resource_version_rules_match_the_real_server() {
    use kube::api::VersionMatch;
    let c = minke::Cluster::builder()
        .in_memory()
        .start()
        .await
        .expect("cluster");
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    api.create(&PostParams::default(), &cm("a"))
        .await
        .expect("create");
    // Exact reads are served at the newest resourceVersion (there is no older
    // snapshot to read); controllers write in the background, so a write may land
    // between the list and the exact read: then the read is 410 and is tried again.
    let mut served = None;
    for _ in 0..50 {
        let rv: u64 = api
            .list(&ListParams::default())
            .await
            .expect("list")
            .metadata
            .resource_version
            .expect("rv")
            .parse()
            .expect("number");
        let exact_now = ListParams::default()
            .at(&rv.to_string())
            .matching(VersionMatch::Exact);
        match api.list(&exact_now).await {
            Ok(list) => {
                served = Some(list.items.len());
                break;
            }
            Err(kube::Error::Api(s)) if s.code == 410 => continue,
            Err(e) => panic!("exact current: {e}"),
        }
    }
    assert_eq!(
        served,
        Some(1),
        "an exact read at the newest resourceVersion"
    );
    let rv: u64 = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv")
        .parse()
        .expect("number");
    let too_old = ListParams::default().at("1").matching(VersionMatch::Exact);
    match api.list(&too_old).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
    let future = ListParams::default()
        .at(&(rv + 1000).to_string())
        .matching(VersionMatch::NotOlderThan);
    match api.list(&future).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (504, "Timeout")),
        other => panic!("expected 504, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_with_bookmarks_get_them_and_delete_collection_removes_by_selector() {
    let c = minke::Cluster::builder()
        .in_memory()
        .bookmark_interval(std::time::Duration::from_millis(100))
        .start()
        .await
        .expect("cluster");
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db")] {
        let obj: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"tier": tier}}}))
                .expect("cm");
        api.create(&PostParams::default(), &obj)
            .await
            .expect("create");
    }
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut stream = api
        .watch(
            &WatchParams {
                bookmarks: true,
                ..WatchParams::default()
            }
            .timeout(10),
            &rv,
        )
        .await
        .expect("watch")
        .boxed();
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
        .await
        .expect("in time")
        .expect("event")
        .expect("ok");
    match first {
        // Controllers write meanwhile: a bookmark carries the newest resourceVersion.
        WatchEvent::Bookmark(b) => {
            let at: u64 = b.metadata.resource_version.parse().expect("numeric rv");
            assert!(at >= rv.parse::<u64>().expect("numeric rv"), "{at} < {rv}");
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
    api.delete_collection(
        &Default::default(),
        &ListParams::default().labels("tier=web"),
    )
    .await
    .expect("deletecollection");
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|i| i.metadata.name)
        .collect();
    assert_eq!(left, ["c"]);
}
