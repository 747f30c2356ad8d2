//! Cluster DNS from the host, with the real `dig` against `--dns-listen` (UDP and
//! TCP) and the real kubectl making the objects: A for a ClusterIP Service, SRV (3
//! records) and StatefulSet-style hostnames for a headless Service with 3 endpoints,
//! CNAME for ExternalName, pod records, PTR, NXDOMAIN vs NODATA, forwarding (or not)
//! of outside names, and answers following Service changes and deletions.
//!
//! The Services carry explicit ClusterIPs and the headless Service's EndpointSlice is
//! made by hand, so these tests need no IP allocator or endpoints controller.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::TestCluster;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

const WAIT: &str = "--timeout=90s";

const OBJECTS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.100.10
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: nginx}
spec:
  clusterIP: None
  ports: [{name: web, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: nginx-abcde
  labels: {kubernetes.io/service-name: nginx}
addressType: IPv4
ports: [{name: web, port: 80, protocol: TCP}]
endpoints:
- {addresses: [10.244.0.20], hostname: web-0, conditions: {ready: true}}
- {addresses: [10.244.0.21], hostname: web-1, conditions: {ready: true}}
- {addresses: [10.244.0.22], hostname: web-2, conditions: {ready: true}}
- {addresses: [10.244.0.23], hostname: web-3, conditions: {ready: false}}
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ExternalName
  externalName: example.test
"#;

/// Run `dig @addr -p PORT ARGS` (one try, 2 s), returning stdout.
async fn dig(addr: SocketAddr, args: &[&str]) -> String {
    let out = tokio::process::Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), "+time=2", "+tries=1"])
        .args(args)
        .output()
        .await
        .expect("dig runs (apt-get install dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dig … +short`, its lines sorted.
async fn short(addr: SocketAddr, args: &[&str]) -> Vec<String> {
    let mut args = args.to_vec();
    args.push("+short");
    let mut lines: Vec<String> = dig(addr, &args).await.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// DNS follows the API through a watch: ask until the answer is `want` (10 s at most).
async fn eventually(addr: SocketAddr, args: &[&str], want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = short(addr, args).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "dig {}: got {got:?}, want {want:?}",
            args.join(" ")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A nameserver on loopback that answers `example.test.` A 192.0.2.1 and NXDOMAIN
/// for anything else: the upstream of a cluster whose pods may reach outside.
async fn fake_upstream() -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
            reply.metadata.recursion_available = true;
            reply.add_queries(query.queries.clone());
            match query.queries.first() {
                Some(q) if q.name() == &Name::from_ascii("example.test.").expect("name") => {
                    if q.query_type() == RecordType::A {
                        reply.add_answer(Record::from_rdata(
                            q.name().clone(),
                            60,
                            RData::A(A([192, 0, 2, 1].into())),
                        ));
                    }
                }
                _ => reply.metadata.response_code = ResponseCode::NXDomain,
            }
            if let Ok(bytes) = reply.to_vec() {
                let _ = socket.send_to(&bytes, from).await;
            }
        }
    });
    addr
}

async fn cluster(upstream: Option<SocketAddr>) -> (TestCluster, SocketAddr) {
    let c = TestCluster::start_with(|b| {
        let b = b.dns_listen("127.0.0.1:0".parse().expect("addr"));
        match upstream {
            Some(server) => b.dns_upstream(vec![server]),
            None => b.pod_egress(minke::net::Egress::Deny),
        }
    })
    .await;
    let addr = c.cluster.dns_addr().expect("DNS listens");
    (c, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_answers_services_headless_endpoints_external_names_and_pods() {
    let (c, dns) = cluster(Some(fake_upstream().await)).await;
    c.ok_stdin(&["apply", "-f", "-"], OBJECTS).await;

    // ClusterIP Service: A over UDP and TCP, SRV for its named port, PTR.
    eventually(dns, &["web.default.svc.cluster.local"], &["10.96.100.10"]).await;
    assert_eq!(
        short(dns, &["+tcp", "WEB.Default.svc.cluster.local"]).await,
        ["10.96.100.10"]
    );
    assert_eq!(
        short(dns, &["SRV", "_http._tcp.web.default.svc.cluster.local"]).await,
        ["0 100 80 web.default.svc.cluster.local."]
    );
    assert_eq!(
        short(dns, &["-x", "10.96.100.10"]).await,
        ["web.default.svc.cluster.local."]
    );
    // The built-in `kubernetes` Service.
    assert_eq!(
        short(dns, &["kubernetes.default.svc.cluster.local"]).await,
        ["10.96.0.1"]
    );

    // Headless Service: its 3 ready endpoints, one SRV each, StatefulSet-style names.
    eventually(
        dns,
        &["nginx.default.svc.cluster.local"],
        &["10.244.0.20", "10.244.0.21", "10.244.0.22"],
    )
    .await;
    assert_eq!(
        short(dns, &["SRV", "_web._tcp.nginx.default.svc.cluster.local"]).await,
        [
            "0 33 80 web-0.nginx.default.svc.cluster.local.",
            "0 33 80 web-1.nginx.default.svc.cluster.local.",
            "0 33 80 web-2.nginx.default.svc.cluster.local."
        ]
    );
    let srv = dig(dns, &["SRV", "_web._tcp.nginx.default.svc.cluster.local"]).await;
    assert!(
        srv.contains("ANSWER: 3, AUTHORITY: 0, ADDITIONAL: 4"),
        "{srv}"
    );
    assert_eq!(
        short(dns, &["web-0.nginx.default.svc.cluster.local"]).await,
        ["10.244.0.20"]
    );
    let not_ready = dig(dns, &["web-3.nginx.default.svc.cluster.local"]).await;
    assert!(not_ready.contains("status: NXDOMAIN"), "{not_ready}");

    // ExternalName: the CNAME, and its target resolved upstream.
    eventually(
        dns,
        &["CNAME", "ext.default.svc.cluster.local"],
        &["example.test."],
    )
    .await;
    assert_eq!(
        short(dns, &["ext.default.svc.cluster.local"]).await,
        ["192.0.2.1", "example.test."]
    );

    // NXDOMAIN for a missing name, NODATA for a missing type: both with the SOA.
    let nx = dig(dns, &["nope.default.svc.cluster.local"]).await;
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    assert!(nx.contains("flags: qr aa rd ra;"), "{nx}");
    let soa: Vec<&str> = nx
        .lines()
        .find(|l| l.contains("\tSOA\t"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let want = [
        "cluster.local.",
        "5",
        "IN",
        "SOA",
        "ns.dns.cluster.local.",
        "hostmaster.cluster.local.",
    ];
    assert_eq!(soa.get(..6), Some(&want[..]), "{nx}");
    let nodata = dig(dns, &["AAAA", "web.default.svc.cluster.local"]).await;
    assert!(nodata.contains("status: NOERROR"), "{nodata}");
    assert!(nodata.contains("ANSWER: 0, AUTHORITY: 1"), "{nodata}");
    let namespace = dig(dns, &["default.svc.cluster.local"]).await;
    assert!(namespace.contains("status: NOERROR"), "{namespace}");
    let missing_ns = dig(dns, &["web.nowhere.svc.cluster.local"]).await;
    assert!(missing_ns.contains("status: NXDOMAIN"), "{missing_ns}");

    // Outside names go to the upstream.
    assert_eq!(short(dns, &["example.test"]).await, ["192.0.2.1"]);
    let outside = dig(dns, &["missing.test"]).await;
    assert!(outside.contains("status: NXDOMAIN"), "{outside}");

    // A running pod's dashed IP under <ns>.pod.cluster.local.
    c.ok(&["run", "spin", "--image=minke/spinner"]).await;
    c.ok(&["wait", "--for=condition=Ready", "pod/spin", WAIT])
        .await;
    let ip = c
        .ok(&["get", "pod", "spin", "-o", "jsonpath={.status.podIP}"])
        .await;
    assert!(!ip.is_empty());
    let name = format!("{}.default.pod.cluster.local", ip.replace('.', "-"));
    eventually(dns, &[&name], &[&ip]).await;
    let other_ns = dig(
        dns,
        &[&format!(
            "{}.kube-system.pod.cluster.local",
            ip.replace('.', "-")
        )],
    )
    .await;
    assert!(other_ns.contains("status: NXDOMAIN"), "{other_ns}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_follow_service_changes_and_deletions() {
    let (c, dns) = cluster(None).await;
    c.ok_stdin(&["apply", "-f", "-"], OBJECTS).await;
    eventually(
        dns,
        &["SRV", "_http._tcp.web.default.svc.cluster.local"],
        &["0 100 80 web.default.svc.cluster.local."],
    )
    .await;

    // A renamed port moves the SRV record.
    c.ok(&[
        "patch",
        "service",
        "web",
        "--type=json",
        "-p",
        r#"[{"op": "replace", "path": "/spec/ports/0/name", "value": "www"}]"#,
    ])
    .await;
    eventually(
        dns,
        &["SRV", "_www._tcp.web.default.svc.cluster.local"],
        &["0 100 80 web.default.svc.cluster.local."],
    )
    .await;
    assert!(
        short(dns, &["SRV", "_http._tcp.web.default.svc.cluster.local"])
            .await
            .is_empty()
    );

    // A new ExternalName target.
    c.ok(&[
        "patch",
        "service",
        "ext",
        "-p",
        r#"{"spec": {"externalName": "other.test"}}"#,
    ])
    .await;
    eventually(
        dns,
        &["CNAME", "ext.default.svc.cluster.local"],
        &["other.test."],
    )
    .await;

    // An endpoint turning unready leaves the headless answer.
    c.ok(&[
        "patch",
        "endpointslice",
        "nginx-abcde",
        "--type=json",
        "-p",
        r#"[{"op": "replace", "path": "/endpoints/0/conditions/ready", "value": false}]"#,
    ])
    .await;
    eventually(
        dns,
        &["nginx.default.svc.cluster.local"],
        &["10.244.0.21", "10.244.0.22"],
    )
    .await;

    // Deleted: NXDOMAIN.
    c.ok(&["delete", "service", "web"]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = dig(dns, &["web.default.svc.cluster.local"]).await;
        if out.contains("status: NXDOMAIN") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still answered after delete:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Without egress, outside names are NXDOMAIN at once and recursion is not offered.
    let outside = dig(dns, &["example.test"]).await;
    assert!(outside.contains("status: NXDOMAIN"), "{outside}");
    assert!(outside.contains("flags: qr rd;"), "{outside}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_ip_resolves_like_a_pod_in_its_namespace() {
    let (c, _) = cluster(Some(fake_upstream().await)).await;
    c.ok_stdin(&["apply", "-f", "-"], OBJECTS).await;
    c.ok(&["create", "namespace", "other"]).await;
    let dns = c.cluster.dns().clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while dns.lookup_ip("web", "default").await.is_err() {
        assert!(Instant::now() < deadline, "web never resolved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let web = ["10.96.100.10".parse::<std::net::IpAddr>().expect("ip")];
    assert_eq!(dns.lookup_ip("web", "default").await.expect("web"), web);
    assert_eq!(
        dns.lookup_ip("web.default", "other")
            .await
            .expect("web.default"),
        web
    );
    assert_eq!(
        dns.lookup_ip("web.default.svc.cluster.local.", "other")
            .await
            .expect("fqdn"),
        web
    );
    let missing = dns
        .lookup_ip("web", "other")
        .await
        .expect_err("not in other");
    assert!(missing.is_not_found(), "{missing}");
    assert_eq!(
        dns.lookup_ip("web-1.nginx", "default")
            .await
            .expect("pet")
            .len(),
        1
    );
    assert_eq!(
        dns.lookup_ip("ext", "default")
            .await
            .expect("external name"),
        ["192.0.2.1".parse::<std::net::IpAddr>().expect("ip")]
    );
}
