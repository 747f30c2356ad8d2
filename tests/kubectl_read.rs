//! kubectl reading a fresh and a populated cluster: get in every output format,
//! selectors, describe, discovery (api-resources, api-versions) and explain.

use crate::common;

use common::{TestCluster, example};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_cluster_has_the_four_namespaces_a_node_and_the_kubernetes_service() {
    let c = TestCluster::start().await;
    let ns = c.ok(&["get", "ns"]).await;
    let names: Vec<&str> = ns
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    assert!(ns.lines().skip(1).all(|l| l.contains("Active")), "{ns}");
    let nodes = c.ok(&["get", "nodes"]).await;
    assert!(
        nodes.lines().nth(1).is_some_and(|l| l.contains(" Ready ")),
        "{nodes}"
    );
    let svc = c
        .ok(&[
            "get",
            "svc",
            "kubernetes",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])
        .await;
    assert_eq!(svc, "10.96.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_objects_print_in_every_output_format() {
    let c = TestCluster::start().await;
    c.ok(&["create", "namespace", "demo"]).await;
    let applied = c
        .ok(&["apply", "-n", "demo", "-f", &example("web.yaml")])
        .await;
    for line in [
        "configmap/web-config created",
        "secret/web-secret created",
        "service/web created",
        "deployment.apps/web created",
    ] {
        assert!(applied.contains(line), "{applied}");
    }
    let all = c.ok(&["get", "all", "-A"]).await;
    assert!(
        all.contains("service/web") && all.contains("deployment.apps/web"),
        "{all}"
    );
    // The READY column reads `ready/desired` (the controllers are bringing it up).
    assert!(all.contains("/3 "), "deployment READY column: {all}");

    let wide = c
        .ok(&["get", "deploy", "web", "-n", "demo", "-o", "wide"])
        .await;
    let header: Vec<&str> = wide
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert!(
        wide.contains("minke/echo") && wide.contains("app=web"),
        "{wide}"
    );

    let yaml = c
        .ok(&["get", "cm", "web-config", "-n", "demo", "-o", "yaml"])
        .await;
    assert!(
        yaml.contains("greeting: hello") && yaml.contains("resourceVersion:"),
        "{yaml}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &c.ok(&["get", "secret", "web-secret", "-n", "demo", "-o", "json"])
            .await,
    )
    .expect("json");
    assert_eq!(
        json["data"]["password"], "czNjcmV0",
        "stringData is stored base64 in data"
    );
    assert_eq!(json["type"], "Opaque");
    let port = c
        .ok(&[
            "get",
            "svc",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.ports[0].port}/{.spec.ports[0].protocol}",
        ])
        .await;
    assert_eq!(port, "80/TCP");

    let labels = c.ok(&["get", "cm", "-n", "demo", "--show-labels"]).await;
    assert!(
        labels
            .lines()
            .any(|l| l.starts_with("web-config") && l.ends_with("app=web")),
        "{labels}"
    );
    let selected = c
        .ok(&[
            "get",
            "cm,secret",
            "-n",
            "demo",
            "-l",
            "app=web",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(
        selected.lines().collect::<Vec<_>>(),
        ["configmap/web-config", "secret/web-secret"]
    );
    let none = c
        .ok(&["get", "cm", "-n", "demo", "-l", "app=nope", "-o", "name"])
        .await;
    assert_eq!(none, "");
    let by_field = c
        .ok(&[
            "get",
            "ns",
            "--field-selector",
            "metadata.name=demo",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(by_field.trim(), "namespace/demo");

    let describe = c.ok(&["describe", "deployment", "web", "-n", "demo"]).await;
    assert!(
        describe.contains("Replicas:") && describe.contains("3 desired"),
        "{describe}"
    );
    assert!(
        describe
            .lines()
            .any(|l| l.starts_with("StrategyType:") && l.ends_with("RollingUpdate")),
        "defaults are applied: {describe}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resources_and_versions_list_every_kind() {
    let c = TestCluster::start().await;
    let resources = c.ok(&["api-resources"]).await;
    for (name, short, group_version, kind) in [
        ("pods", "po", "v1", "Pod"),
        ("deployments", "deploy", "apps/v1", "Deployment"),
        ("cronjobs", "cj", "batch/v1", "CronJob"),
        (
            "horizontalpodautoscalers",
            "hpa",
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
        ),
        ("ingresses", "ing", "networking.k8s.io/v1", "Ingress"),
        (
            "customresourcedefinitions",
            "crd,crds",
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
        ),
        ("leases", "", "coordination.k8s.io/v1", "Lease"),
        (
            "poddisruptionbudgets",
            "pdb",
            "policy/v1",
            "PodDisruptionBudget",
        ),
        ("storageclasses", "sc", "storage.k8s.io/v1", "StorageClass"),
        (
            "clusterroles",
            "",
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
        ),
        ("endpointslices", "", "discovery.k8s.io/v1", "EndpointSlice"),
    ] {
        let found = resources.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.first() == Some(&name)
                && cols.contains(&group_version)
                && cols.last() == Some(&kind)
                && (short.is_empty() || cols.contains(&short))
        });
        assert!(found, "{name} missing from api-resources:\n{resources}");
    }
    let versions = c.ok(&["api-versions"]).await;
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "autoscaling/v1",
        "autoscaling/v2",
        "events.k8s.io/v1",
        "policy/v1",
    ] {
        assert!(
            versions.lines().any(|l| l == gv),
            "{gv} missing:\n{versions}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_reads_field_docs_from_openapi_v3() {
    let c = TestCluster::start().await;
    let out = c.ok(&["explain", "deployment.spec.strategy"]).await;
    assert!(
        out.contains("GROUP:      apps")
            && out.contains("KIND:       Deployment")
            && out.contains("VERSION:    v1"),
        "{out}"
    );
    assert!(
        out.contains("FIELD: strategy <DeploymentStrategy>"),
        "{out}"
    );
    assert!(
        out.contains("rollingUpdate") && out.contains("type"),
        "{out}"
    );
}
