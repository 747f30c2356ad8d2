//! Services with the real kubectl: ClusterIP and NodePort allocation (requested,
//! random, clashes and ranges with kube-apiserver's errors, release on delete and
//! on type change, kept across a restart), headless Services, the Services a fresh
//! cluster has, and the Endpoints and EndpointSlices built from pods and readiness.

use crate::common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::TestCluster;

/// Poll kubectl until `want` holds for its output (bounded; endpoints follow pods
/// through two controllers, which `kubectl wait` cannot express as a count).
async fn eventually(c: &TestCluster, args: &[&str], want: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    for _ in 0..300 {
        out = c.ok(args).await;
        if want(&out) {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "kubectl {} never satisfied the check; last output:\n{out}",
        args.join(" ")
    );
}

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

fn in_service_range(ip: &str) -> bool {
    ip.parse::<Ipv4Addr>()
        .is_ok_and(|ip| u32::from(ip) >> 20 == u32::from(Ipv4Addr::new(10, 96, 0, 0)) >> 20)
}

/// A Service manifest of `type` with one port 80 → 8080 and the given extra spec
/// lines (YAML flow entries, e.g. `clusterIP: 10.96.0.50`).
fn service(name: &str, ty: &str, node_port: Option<u16>, extra: &str) -> String {
    let np = node_port
        .map(|p| format!(", nodePort: {p}"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{type: {ty}, selector: {{app: {name}}}, ports: [{{port: 80, targetPort: 8080{np}}}]{extra}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exposed_deployment_gets_an_address_a_node_port_and_its_pods_as_endpoints() {
    let c = TestCluster::start().await;
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=minke/echo",
        "--replicas=3",
    ])
    .await;
    c.ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
        "--type=NodePort",
    ])
    .await;
    let ip = c
        .ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"])
        .await;
    assert!(in_service_range(&ip), "{ip}");
    let ips = c
        .ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIPs}"])
        .await;
    assert_eq!(ips, format!("[\"{ip}\"]"));
    let port: u16 = c
        .ok(&[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ])
        .await
        .parse()
        .expect("node port");
    assert!((30000..=32767).contains(&port), "{port}");
    let table = c.ok(&["get", "svc", "web"]).await;
    assert!(
        table.contains("NodePort")
            && table.contains(&ip)
            && table.contains(&format!("80:{port}/TCP")),
        "{table}"
    );

    c.ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    let ready = eventually(
        &c,
        &[
            "get",
            "ep",
            "web",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}",
        ],
        |out| words(out).len() == 3,
    )
    .await;
    let pod_ips = c
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].status.podIP}",
        ])
        .await;
    let (mut want, mut got) = (words(&pod_ips), words(&ready));
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(want, got);
    let ep = c.ok(&["get", "ep", "web"]).await;
    assert!(
        ep.contains("ENDPOINTS") && ep.contains(":8080,") && !ep.contains("more"),
        "{ep}"
    );
    let refs = c
        .ok(&[
            "get",
            "ep",
            "web",
            "-o",
            "jsonpath={.subsets[0].addresses[*].targetRef.kind} {.subsets[0].ports[0].port}",
        ])
        .await;
    assert_eq!(refs, "Pod Pod Pod 8080");

    // The slices say the same, owned by the Service and labelled for it.
    let slices = eventually(
        &c,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={.items[*].endpoints[*].addresses[0]}",
        ],
        |out| words(out).len() == 3,
    )
    .await;
    let mut sliced = words(&slices);
    sliced.sort_unstable();
    assert_eq!(sliced, want);
    let meta = c
        .ok(&["get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o",
              "jsonpath={.items[0].metadata.name} {.items[0].addressType} {.items[0].metadata.labels.endpointslice\\.kubernetes\\.io/managed-by} {.items[0].metadata.ownerReferences[0].kind}/{.items[0].metadata.ownerReferences[0].name} {.items[0].endpoints[0].conditions.ready} {.items[0].ports[0].port}"])
        .await;
    let fields = words(&meta);
    assert!(
        fields[0].starts_with("web-") && fields[0].len() == 9,
        "{meta}"
    );
    assert_eq!(
        &fields[1..],
        [
            "IPv4",
            "endpointslice-controller.k8s.io",
            "Service/web",
            "true",
            "8080"
        ]
    );
    let table = c.ok(&["get", "endpointslices"]).await;
    let row = table.lines().find(|l| l.starts_with(fields[0])).map(words);
    assert_eq!(
        row.as_ref().map(|r| &r[1..3]),
        Some(&["IPv4", "8080"][..]),
        "{table}"
    );

    let described = c.ok(&["describe", "svc", "web"]).await;
    for line in [
        "Type:                     NodePort",
        "TargetPort:               8080/TCP",
        &format!("NodePort:                 <unset>  {port}/TCP"),
    ] {
        assert!(described.contains(line), "missing {line:?} in\n{described}");
    }
    assert!(
        described.contains(&format!("IP:                       {ip}")),
        "{described}"
    );
    assert!(described.contains(":8080"), "{described}");

    // Scaling down takes the pods out of both.
    c.ok(&["scale", "deployment", "web", "--replicas=1"]).await;
    eventually(
        &c,
        &[
            "get",
            "ep",
            "web",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}",
        ],
        |out| words(out).len() == 1,
    )
    .await;
    eventually(
        &c,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={.items[*].endpoints[*].addresses[0]}",
        ],
        |out| words(out).len() == 1,
    )
    .await;

    // Deleting the Service removes its Endpoints and (by ownership) its slices.
    c.ok(&["delete", "svc", "web"]).await;
    eventually(
        &c,
        &["get", "ep,endpointslices", "-l", "app=web", "-o", "name"],
        |out| out.trim().is_empty(),
    )
    .await;
    eventually(
        &c,
        &["get", "ep", "--ignore-not-found", "web", "-o", "name"],
        |out| out.trim().is_empty(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_is_not_ready_is_listed_as_not_ready() {
    let c = TestCluster::start().await;
    // One container serves, the other finishes: the pod keeps running with an IP
    // but is never Ready (a finished container is not ready).
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: half, labels: {app: half}}
spec:
  restartPolicy: Never
  containers:
  - {name: web, image: minke/echo, ports: [{name: http, containerPort: 8080}]}
  - {name: once, image: minke/hello}
---
apiVersion: v1
kind: Service
metadata: {name: half}
spec: {selector: {app: half}, ports: [{port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: half-published}
spec: {selector: {app: half}, publishNotReadyAddresses: true, ports: [{port: 80, targetPort: http}]}
"#,
    )
    .await;
    eventually(
        &c,
        &[
            "get",
            "pod",
            "half",
            "-o",
            "jsonpath={.status.containerStatuses}",
        ],
        |out| out.contains(r#""reason":"Completed""#) && out.contains(r#""running""#),
    )
    .await;
    let ip = c
        .ok(&["get", "pod", "half", "-o", "jsonpath={.status.podIP}"])
        .await;
    let ready = c
        .ok(&[
            "get",
            "pod",
            "half",
            "-o",
            "jsonpath={.status.phase} {.status.conditions[?(@.type==\"Ready\")].status}",
        ])
        .await;
    assert_eq!(ready, "Running False");
    let listed = eventually(
        &c,
        &["get", "ep", "half", "-o",
          "jsonpath={.subsets[0].notReadyAddresses[*].ip}/{.subsets[0].addresses[*].ip}/{.subsets[0].ports[0].port}"],
        |out| out.starts_with(&ip),
    )
    .await;
    assert_eq!(listed, format!("{ip}//8080"));
    // The ENDPOINTS column shows ready addresses only.
    let row = c.ok(&["get", "ep", "half", "--no-headers"]).await;
    assert!(!row.contains(&ip), "{row}");
    let conditions = eventually(
        &c,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=half",
            "-o",
            "jsonpath={.items[0].endpoints[0].addresses[0]} {.items[0].endpoints[0].conditions}",
        ],
        |out| out.starts_with(&ip),
    )
    .await;
    assert!(
        conditions.contains(r#""ready":false"#)
            && conditions.contains(r#""serving":false"#)
            && conditions.contains(r#""terminating":false"#),
        "{conditions}"
    );
    let published = eventually(
        &c,
        &[
            "get",
            "ep",
            "half-published",
            "-o",
            "jsonpath={.subsets[0].addresses[*].ip}",
        ],
        |out| !out.is_empty(),
    )
    .await;
    assert_eq!(published, ip);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clashes_and_ranges_are_refused_as_kubernetes_words_them() {
    let c = TestCluster::start().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &service("a", "NodePort", Some(30080), ", clusterIP: 10.96.0.50"),
    )
    .await;
    assert_eq!(
        c.ok(&[
            "get",
            "svc",
            "a",
            "-o",
            "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort}"
        ])
        .await,
        "10.96.0.50 30080"
    );
    let clash = c
        .kubectl_with(
            &["apply", "-f", "-"],
            Some(&service("b", "NodePort", Some(30080), "")),
            &[],
        )
        .await;
    assert_eq!(clash.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&clash.stderr);
    assert!(
        stderr.contains(r#"Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"#),
        "{stderr}"
    );
    let err = c
        .fails_stdin(
            &["apply", "-f", "-"],
            &service("b", "NodePort", Some(80), ""),
        )
        .await;
    assert!(
        err.contains("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"),
        "{err}"
    );
    let err = c
        .fails_stdin(
            &["apply", "-f", "-"],
            &service("b", "ClusterIP", None, ", clusterIP: 10.96.0.50"),
        )
        .await;
    assert!(
        err.contains(r#"Service "b" is invalid: spec.clusterIPs: Invalid value: ["10.96.0.50"]: failed to allocate IP 10.96.0.50: provided IP is already allocated"#),
        "{err}"
    );
    let err = c
        .fails_stdin(
            &["apply", "-f", "-"],
            &service("b", "ClusterIP", None, ", clusterIP: 10.0.0.1"),
        )
        .await;
    assert!(
        err.contains(r#"spec.clusterIPs: Invalid value: ["10.0.0.1"]: failed to allocate IP 10.0.0.1: the provided IP (10.0.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12"#),
        "{err}"
    );
    // The cluster's own addresses are taken too.
    for taken in ["10.96.0.1", "10.96.0.10"] {
        let err = c
            .fails(&[
                "create",
                "service",
                "clusterip",
                "b",
                &format!("--clusterip={taken}"),
                "--tcp=80:8080",
            ])
            .await;
        assert!(err.contains("provided IP is already allocated"), "{err}");
    }

    // Headless: no address at all.
    c.ok(&[
        "create",
        "service",
        "clusterip",
        "h",
        "--clusterip=None",
        "--tcp=80:8080",
    ])
    .await;
    assert_eq!(
        c.ok(&[
            "get",
            "svc",
            "h",
            "-o",
            "jsonpath={.spec.clusterIP} {.spec.clusterIPs}"
        ])
        .await,
        r#"None ["None"]"#
    );
    assert!(c.ok(&["get", "svc", "h"]).await.contains("None"));

    // Deleting a Service frees its port and address at once.
    c.ok(&["delete", "svc", "a"]).await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        &service("b", "NodePort", Some(30080), ", clusterIP: 10.96.0.50"),
    )
    .await;
    // Leaving NodePort frees the port; the address stays (it is immutable).
    c.ok(&[
        "patch",
        "svc",
        "b",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ])
    .await;
    assert_eq!(
        c.ok(&[
            "get",
            "svc",
            "b",
            "-o",
            "jsonpath={.spec.type} {.spec.clusterIP} {.spec.ports[0].nodePort}"
        ])
        .await,
        "ClusterIP 10.96.0.50 "
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &service("c", "NodePort", Some(30080), ""),
    )
    .await;
    // Becoming a NodePort again draws a new port; re-applying a manifest without
    // one keeps it.
    c.ok(&["patch", "svc", "b", "-p", r#"{"spec":{"type":"NodePort"}}"#])
        .await;
    let drawn = c
        .ok(&[
            "get",
            "svc",
            "b",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ])
        .await;
    assert!(
        drawn
            .parse::<u16>()
            .is_ok_and(|p| p != 30080 && (30000..=32767).contains(&p)),
        "{drawn}"
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &service("b", "NodePort", None, ", clusterIP: 10.96.0.50"),
    )
    .await;
    assert_eq!(
        c.ok(&[
            "get",
            "svc",
            "b",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}"
        ])
        .await,
        drawn
    );
    let err = c
        .fails(&[
            "patch",
            "svc",
            "b",
            "-p",
            r#"{"spec":{"clusterIP":"10.96.0.51","clusterIPs":["10.96.0.51"]}}"#,
        ])
        .await;
    assert!(err.contains("may not change once set"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocations_and_cluster_services_survive_a_restart() {
    let data = tempfile::tempdir().expect("data dir");
    let c = TestCluster::start_with(|b| b.data_dir(data.path())).await;
    let dns = c
        .ok(&["get", "svc", "-n", "kube-system", "kube-dns", "-o",
              "jsonpath={.spec.clusterIP} {.spec.ports[*].name} {.spec.ports[*].protocol} {.metadata.labels.k8s-app}"])
        .await;
    assert_eq!(dns, "10.96.0.10 dns dns-tcp metrics UDP TCP TCP kube-dns");
    let api = c
        .ok(&[
            "get",
            "ep",
            "kubernetes",
            "-o",
            "jsonpath={.subsets[0].addresses[0].ip}:{.subsets[0].ports[0].port}",
        ])
        .await;
    assert_eq!(api, c.cluster.addr().to_string());
    let slice = c
        .ok(&[
            "get",
            "endpointslice",
            "kubernetes",
            "-o",
            "jsonpath={.endpoints[0].addresses[0]}:{.ports[0].port}",
        ])
        .await;
    assert_eq!(slice, api);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &service("kept", "NodePort", Some(30555), ", clusterIP: 10.96.0.77"),
    )
    .await;
    let TestCluster { cluster, dir, .. } = c;
    cluster.shutdown().await;

    let c = TestCluster::start_with(|b| b.data_dir(data.path())).await;
    let err = c
        .fails_stdin(
            &["apply", "-f", "-"],
            &service("other", "NodePort", Some(30555), ""),
        )
        .await;
    assert!(
        err.contains("Invalid value: 30555: provided port is already allocated"),
        "{err}"
    );
    let err = c
        .fails_stdin(
            &["apply", "-f", "-"],
            &service("other", "ClusterIP", None, ", clusterIP: 10.96.0.77"),
        )
        .await;
    assert!(
        err.contains("failed to allocate IP 10.96.0.77: provided IP is already allocated"),
        "{err}"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "svc",
            "-n",
            "kube-system",
            "kube-dns",
            "-o",
            "jsonpath={.spec.clusterIP}"
        ])
        .await,
        "10.96.0.10"
    );
    drop(dir);
}
