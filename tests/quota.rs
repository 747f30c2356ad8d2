//! ResourceQuota and LimitRange admission with the real kubectl: the 403s worded as a
//! real cluster words them, quota status kept current by the resourcequota
//! controller, LimitRange defaults in created pods, and race-free concurrent creates.

use crate::common;

use common::TestCluster;

const WAIT: &str = "--timeout=60s";

/// Wait (a watch, through `kubectl wait`) until `jsonpath` of `target` reads `value`.
async fn wait_for(c: &TestCluster, target: &str, jsonpath: &str, value: &str) {
    c.ok(&[
        "wait",
        &format!("--for=jsonpath={{{jsonpath}}}={value}"),
        target,
        WAIT,
    ])
    .await;
}

/// A one-container pod manifest with optional resources.
fn pod(name: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: {name}\n    image: minke/echo\n    resources: {resources}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_third_pod_exceeds_a_two_pod_quota_and_a_deletion_frees_room() {
    let c = TestCluster::start().await;
    let out = c
        .ok(&["create", "quota", "q", "--hard=pods=2,configmaps=10"])
        .await;
    assert_eq!(out, "resourcequota/q created\n");
    for p in ["p1", "p2"] {
        c.ok(&["run", p, "--image=minke/echo"]).await;
    }
    let denied = c.kubectl(&["run", "p3", "--image=minke/echo"]).await;
    assert_eq!(denied.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&denied.stderr),
        "Error from server (Forbidden): pods \"p3\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2\n"
    );

    wait_for(&c, "quota/q", ".status.used.pods", "2").await;
    let table = c.ok(&["get", "quota"]).await;
    assert!(table.contains("configmaps: 0/10, pods: 2/2"), "{table}");
    let described = c.ok(&["describe", "quota", "q"]).await;
    let rows: Vec<Vec<&str>> = described
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        rows.contains(&vec!["Resource", "Used", "Hard"]),
        "{described}"
    );
    assert!(rows.contains(&vec!["pods", "2", "2"]), "{described}");
    assert!(rows.contains(&vec!["configmaps", "0", "10"]), "{described}");

    c.ok(&["delete", "pod", "p1", "--wait=true", WAIT]).await;
    wait_for(&c, "quota/q", ".status.used.pods", "1").await;
    c.ok(&["run", "p3", "--image=minke/echo"]).await;
    wait_for(&c, "quota/q", ".status.used.pods", "2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_pod_no_longer_counts_against_pods_but_still_against_count_pods() {
    let c = TestCluster::start().await;
    c.ok(&["create", "quota", "q", "--hard=pods=1,count/pods=5"])
        .await;
    c.ok(&["run", "once", "--image=minke/hello", "--restart=Never"])
        .await;
    c.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/once",
        WAIT,
    ])
    .await;
    c.ok(&["run", "again", "--image=minke/echo"]).await;
    wait_for(&c, "quota/q", ".status.used.count/pods", "2").await;
    assert_eq!(
        c.ok(&["get", "quota", "q", "-o", "jsonpath={.status.used.pods}"])
            .await,
        "1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compute_quota_needs_limits_which_a_limit_range_supplies() {
    let c = TestCluster::start().await;
    c.ok(&[
        "create",
        "quota",
        "q",
        "--hard=limits.cpu=1,limits.memory=1Gi",
    ])
    .await;
    let err = c.fails(&["run", "bare", "--image=minke/echo"]).await;
    assert_eq!(
        err,
        "Error from server (Forbidden): pods \"bare\" is forbidden: failed quota: q: must specify limits.cpu for: bare; limits.memory for: bare\n"
    );

    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: lr\nspec:\n  limits:\n  - type: Container\n    default: {cpu: 500m, memory: 256Mi}\n    defaultRequest: {cpu: 100m, memory: 128Mi}\n    max: {cpu: '1'}\n",
    )
    .await;
    c.ok(&["run", "p1", "--image=minke/echo"]).await;
    let resources = c
        .ok(&[
            "get",
            "pod",
            "p1",
            "-o",
            "jsonpath={.spec.containers[0].resources.requests.cpu} {.spec.containers[0].resources.requests.memory} {.spec.containers[0].resources.limits.cpu} {.spec.containers[0].resources.limits.memory}",
        ])
        .await;
    assert_eq!(resources, "100m 128Mi 500m 256Mi");
    let note = c
        .ok(&[
            "get",
            "pod",
            "p1",
            "-o",
            "jsonpath={.metadata.annotations.kubernetes\\.io/limit-ranger}",
        ])
        .await;
    assert_eq!(
        note,
        "LimitRanger plugin set: cpu, memory request for container p1; cpu, memory limit for container p1"
    );

    // A limit set by hand is kept; its request defaults to it (pod defaulting), not to
    // the LimitRange's defaultRequest.
    c.ok_stdin(&["create", "-f", "-"], &pod("p2", "{limits: {cpu: 500m}}"))
        .await;
    assert_eq!(
        c.ok(&[
            "get",
            "pod",
            "p2",
            "-o",
            "jsonpath={.spec.containers[0].resources.requests.cpu}"
        ])
        .await,
        "500m"
    );
    let err = c.fails(&["run", "p3", "--image=minke/echo"]).await;
    assert_eq!(
        err,
        "Error from server (Forbidden): pods \"p3\" is forbidden: exceeded quota: q, requested: limits.cpu=500m, used: limits.cpu=1, limited: limits.cpu=1\n"
    );
    wait_for(&c, "quota/q", ".status.used.limits\\.memory", "512Mi").await;
    let table = c.ok(&["get", "quota", "q"]).await;
    assert!(
        table.contains("limits.cpu: 1/1, limits.memory: 512Mi/1Gi"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_over_the_limit_range_max_is_forbidden() {
    let c = TestCluster::start().await;
    c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: lr\nspec:\n  limits:\n  - type: Container\n    max: {cpu: 500m, memory: 1Gi}\n    min: {memory: 64Mi}\n",
    )
    .await;
    let err = c
        .fails_stdin(
            &["create", "-f", "-"],
            &pod(
                "big",
                "{limits: {cpu: '1', memory: 2Gi}, requests: {memory: 32Mi}}",
            ),
        )
        .await;
    assert_eq!(
        err,
        "Error from server (Forbidden): error when creating \"STDIN\": pods \"big\" is forbidden: [minimum memory usage per Container is 64Mi, but request is 32Mi, maximum cpu usage per Container is 500m, but limit is 1, maximum memory usage per Container is 1Gi, but limit is 2Gi]\n"
    );
    // Without resources the defaults (max, as the LimitRange's own defaulting sets them)
    // apply and the pod is admitted.
    c.ok(&["run", "fits", "--image=minke/echo"]).await;
    assert_eq!(
        c.ok(&["get", "pod", "fits", "-o", "jsonpath={.spec.containers[0].resources.limits.cpu} {.spec.containers[0].resources.requests.memory}"])
            .await,
        "500m 1Gi"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_never_overrun_a_quota() {
    let c = TestCluster::start().await;
    c.ok(&["create", "quota", "q", "--hard=configmaps=3"]).await;
    let outs = futures::future::join_all((0..8).map(|i| {
        let c = &c;
        async move { c.kubectl(&["create", "configmap", &format!("cm{i}")]).await }
    }))
    .await;
    let created = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(created, 3, "exactly the room left is taken");
    for o in outs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("is forbidden: exceeded quota: q, requested: configmaps=1, used: configmaps=3, limited: configmaps=3"),
            "{err}"
        );
    }
    wait_for(&c, "quota/q", ".status.used.configmaps", "3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_port_services_are_counted_per_port() {
    let c = TestCluster::start().await;
    c.ok(&[
        "create",
        "quota",
        "q",
        "--hard=services.nodeports=2,services=5",
    ])
    .await;
    c.ok(&["create", "service", "nodeport", "a", "--tcp=80:80,443:443"])
        .await;
    c.ok(&["create", "service", "clusterip", "b", "--tcp=80:80"])
        .await;
    let err = c
        .fails(&["create", "service", "nodeport", "c", "--tcp=80:80"])
        .await;
    assert_eq!(
        err,
        "error: failed to create NodePort service: services \"c\" is forbidden: exceeded quota: q, requested: services.nodeports=1, used: services.nodeports=2, limited: services.nodeports=2\n"
    );
    // Turning the ClusterIP Service into a NodePort one is charged too.
    let err = c
        .fails(&[
            "patch",
            "service",
            "b",
            "-p",
            "{\"spec\":{\"type\":\"NodePort\"}}",
        ])
        .await;
    assert!(
        err.contains("services \"b\" is forbidden: exceeded quota: q, requested: services.nodeports=1, used: services.nodeports=2, limited: services.nodeports=2"),
        "{err}"
    );
    wait_for(&c, "quota/q", ".status.used.services", "3").await;
}

fn claim(name: &str, size: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: {size}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_held_to_limit_range_storage_and_requests_storage_quota() {
    let c = TestCluster::start().await;
    c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: storage\nspec:\n  limits:\n  - type: PersistentVolumeClaim\n    min: {storage: 100Mi}\n    max: {storage: 1Gi}\n",
    )
    .await;
    c.ok(&[
        "create",
        "quota",
        "q",
        "--hard=requests.storage=2Gi,persistentvolumeclaims=5",
    ])
    .await;
    let err = c
        .fails_stdin(&["create", "-f", "-"], &claim("big", "5Gi"))
        .await;
    assert!(
        err.contains("persistentvolumeclaims \"big\" is forbidden: maximum storage usage per PersistentVolumeClaim is 1Gi, but request is 5Gi"),
        "{err}"
    );
    for name in ["a", "b"] {
        c.ok_stdin(&["create", "-f", "-"], &claim(name, "1Gi"))
            .await;
    }
    let err = c
        .fails_stdin(&["create", "-f", "-"], &claim("d", "512Mi"))
        .await;
    assert!(
        err.contains("persistentvolumeclaims \"d\" is forbidden: exceeded quota: q, requested: requests.storage=512Mi, used: requests.storage=2Gi, limited: requests.storage=2Gi"),
        "{err}"
    );
    wait_for(&c, "quota/q", ".status.used.persistentvolumeclaims", "2").await;
    assert_eq!(
        c.ok(&[
            "get",
            "quota",
            "q",
            "-o",
            "jsonpath={.status.used.requests\\.storage}"
        ])
        .await,
        "2Gi"
    );
}
