//! Durability across restarts, the data-dir lock, busy ports, and expired watches.

use crate::common;

use common::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_keep_their_resource_versions_across_a_restart() {
    let data = tempfile::tempdir().expect("data dir");
    let c = TestCluster::start_with(|b| b.data_dir(data.path())).await;
    c.ok(&["apply", "-f", &common::example("web.yaml")]).await;
    let before = c.ok(&["get", "cm,secret,svc", "-o", "jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion}/{.metadata.uid} {end}"]).await;
    // The deployment's status keeps changing (its controller runs): its uid must stay.
    let deploy_uid = c
        .ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.uid}"])
        .await;
    let second = minke::Cluster::builder()
        .data_dir(data.path())
        .start()
        .await;
    let err = second.expect_err("a second cluster on the same data dir is refused");
    assert!(
        err.to_string().contains("is in use by another process"),
        "{err}"
    );
    let TestCluster { cluster, dir, .. } = c;
    cluster.shutdown().await;

    let restarted = TestCluster::start_with(|b| b.data_dir(data.path())).await;
    let after = restarted.ok(&["get", "cm,secret,svc", "-o", "jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion}/{.metadata.uid} {end}"]).await;
    assert_eq!(before, after);
    let uid = restarted
        .ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.uid}"])
        .await;
    assert_eq!(deploy_uid, uid);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_port_fails_at_once() {
    let c = TestCluster::start().await;
    let err = minke::Cluster::builder()
        .listen(c.cluster.addr())
        .start()
        .await
        .expect_err("port taken");
    assert!(
        err.to_string()
            .contains(&format!("cannot listen on {}", c.cluster.addr())),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_an_expired_resource_version_gets_410() {
    let c = TestCluster::start_with(|b| b.watch_history(5)).await;
    for i in 0..10 {
        c.ok_stdin(
            &["apply", "-f", "-"],
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n"),
        )
        .await;
    }
    let out = c
        .ok(&[
            "get",
            "--raw",
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=2&timeoutSeconds=5",
        ])
        .await;
    let event: serde_json::Value =
        serde_json::from_str(out.lines().next().expect("one event")).expect("json");
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
    assert!(
        event["object"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("too old resource version: 2 (")),
        "{event}"
    );
}
