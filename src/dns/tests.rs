//! Unit tests of the public surface: wire answers (`Dns::answer`) and pod-style
//! lookups (`Dns::lookup_ip`), against a fixed zone and a fake upstream server.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;
use tokio::net::UdpSocket;

use super::records::{self, Objects, PodAddresses};
use super::{Config, Dns, Upstream};

/// A nameserver that knows `example.test.` (A 192.0.2.1) and nothing else, counting
/// the questions it gets.
async fn fake_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            count.fetch_add(1, Ordering::SeqCst);
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
            reply.metadata.recursion_available = true;
            reply.add_queries(query.queries.clone());
            let q = &query.queries[0];
            if q.name() == &Name::from_ascii("example.test.").unwrap() {
                if q.query_type() == RecordType::A {
                    reply.add_answer(Record::from_rdata(
                        q.name().clone(),
                        60,
                        RData::A(A("192.0.2.1".parse().unwrap())),
                    ));
                }
            } else {
                reply.metadata.response_code = ResponseCode::NXDomain;
            }
            let _ = socket.send_to(&reply.to_vec().unwrap(), from).await;
        }
    });
    (addr, asked)
}

fn objects() -> (Vec<Service>, Vec<EndpointSlice>, Vec<PodAddresses>) {
    let services = vec![
        json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.96.100.10", "ports": [{"name": "http", "port": 80}]}}),
        json!({"metadata": {"name": "db", "namespace": "data"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}),
        json!({"metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "example.test"}}),
    ];
    let endpoints: Vec<_> = (0..100)
        .map(|i| json!({"addresses": [format!("10.244.1.{i}")], "hostname": format!("db-{i}")}))
        .collect();
    let slices = vec![json!({"metadata": {"name": "db-1", "namespace": "data",
            "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": endpoints})];
    let pods = vec![PodAddresses {
        namespace: "default".into(),
        ips: vec!["10.244.0.10".parse().unwrap()],
    }];
    (
        services
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect(),
        slices
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect(),
        pods,
    )
}

/// A DNS serving the fixture zone, forwarding to `upstream` when given (egress allowed).
fn dns(upstream: Option<SocketAddr>) -> Dns {
    let (dns, publish) = Dns::new(Config {
        domain: "cluster.local".into(),
        egress: upstream.is_some(),
        upstream: Upstream::servers(upstream.into_iter().collect()),
    })
    .expect("dns");
    let (services, slices, pods) = objects();
    let namespaces = vec!["default".to_string(), "data".to_string()];
    let zone = records::build(
        &dns.inner.domain,
        Objects {
            namespaces: &namespaces,
            services: &services.iter().collect::<Vec<_>>(),
            slices: &slices.iter().collect::<Vec<_>>(),
            pods: &pods.iter().collect::<Vec<_>>(),
        },
        2,
    );
    publish.send_replace(Arc::new(zone));
    dns
}

fn query(name: &str, rtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 4242;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

async fn ask(dns: &Dns, name: &str, rtype: RecordType) -> Message {
    let bytes = dns
        .answer(&query(name, rtype, false))
        .await
        .expect("an answer");
    Message::from_vec(&bytes).expect("a DNS message")
}

fn ips(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_service_name_answers_its_cluster_ip_authoritatively_in_any_case() {
    let dns = dns(None);
    let m = ask(&dns, "WEB.default.SVC.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.id, 4242);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(ips(&m), ["10.96.100.10".parse::<IpAddr>().unwrap()]);
    assert_eq!(m.answers[0].ttl, 5);
}

#[tokio::test]
async fn nodata_and_nxdomain_carry_the_soa() {
    let dns = dns(None);
    let nodata = ask(&dns, "web.default.svc.cluster.local.", RecordType::AAAA).await;
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(nodata.authorities[0].record_type(), RecordType::SOA);
    let nx = ask(&dns, "nope.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(nx.authorities[0].record_type(), RecordType::SOA);
    let soa = ask(&dns, "cluster.local.", RecordType::SOA).await;
    assert_eq!(soa.answers.len(), 1);
}

#[tokio::test]
async fn a_big_answer_is_truncated_over_udp_and_whole_over_tcp_or_with_edns() {
    let dns = dns(None);
    let udp = ask(&dns, "_pg._tcp.db.data.svc.cluster.local.", RecordType::SRV).await;
    assert!(udp.metadata.truncation);
    let tcp = dns
        .answer_tcp(&query(
            "_pg._tcp.db.data.svc.cluster.local.",
            RecordType::SRV,
            false,
        ))
        .await
        .expect("answer");
    let tcp = Message::from_vec(&tcp).unwrap();
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 100);
    assert_eq!(tcp.additionals.len(), 100);
    let edns = dns
        .answer(&query(
            "db-7.db.data.svc.cluster.local.",
            RecordType::A,
            true,
        ))
        .await
        .expect("answer");
    let edns = Message::from_vec(&edns).unwrap();
    assert!(edns.edns.is_some());
    assert_eq!(ips(&edns), ["10.244.1.7".parse::<IpAddr>().unwrap()]);
}

#[tokio::test]
async fn garbage_gets_formerr_or_nothing() {
    let dns = dns(None);
    assert_eq!(dns.answer(&[1, 2, 3]).await, None);
    let mut header_only = query("web.default.svc.cluster.local.", RecordType::A, false);
    header_only.truncate(14);
    let formerr = dns.answer(&header_only).await.expect("FORMERR");
    assert_eq!(formerr[3] & 0x0f, 1);
    let mut response = query("web.default.svc.cluster.local.", RecordType::A, false);
    response[2] |= 0x80;
    assert_eq!(dns.answer(&response).await, None);
}

#[tokio::test]
async fn outside_names_are_nxdomain_without_egress_and_forwarded_with_it() {
    let denied = dns(None);
    let m = ask(&denied, "example.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(!m.metadata.authoritative);
    let ext = ask(&denied, "ext.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(ext.answers.len(), 1);
    assert_eq!(ext.answers[0].record_type(), RecordType::CNAME);

    let (upstream, _) = fake_upstream().await;
    let allowed = dns(Some(upstream));
    let m = ask(&allowed, "example.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(ips(&m), ["192.0.2.1".parse::<IpAddr>().unwrap()]);
    let ext = ask(&allowed, "ext.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(ext.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(ips(&ext), ["192.0.2.1".parse::<IpAddr>().unwrap()]);
}

#[tokio::test]
async fn lookup_ip_applies_the_pod_search_list() {
    let (upstream, asked) = fake_upstream().await;
    let dns = dns(Some(upstream));
    let web: IpAddr = "10.96.100.10".parse().unwrap();
    assert_eq!(dns.lookup_ip("web", "default").await.unwrap(), [web]);
    assert_eq!(dns.lookup_ip("web.default", "data").await.unwrap(), [web]);
    assert_eq!(
        dns.lookup_ip("web.default.svc", "data").await.unwrap(),
        [web]
    );
    assert_eq!(
        dns.lookup_ip("web.default.svc.cluster.local.", "data")
            .await
            .unwrap(),
        [web]
    );
    assert_eq!(
        dns.lookup_ip("10-244-0-10.default.pod", "data")
            .await
            .unwrap(),
        ["10.244.0.10".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(dns.lookup_ip("db-3.db", "data").await.unwrap().len(), 1);
    // Cluster names never leave the process.
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    // Outside names go upstream after the search list, and ExternalNames are followed.
    let example: IpAddr = "192.0.2.1".parse().unwrap();
    assert_eq!(
        dns.lookup_ip("example.test", "default").await.unwrap(),
        [example]
    );
    assert_eq!(dns.lookup_ip("ext", "default").await.unwrap(), [example]);
    assert!(asked.load(Ordering::SeqCst) > 0);
    let missing = dns
        .lookup_ip("web", "data")
        .await
        .expect_err("no web in data");
    assert!(missing.is_not_found(), "{missing}");
}

#[tokio::test]
async fn lookup_ip_without_egress_stays_in_the_cluster() {
    let dns = dns(None);
    let err = dns
        .lookup_ip("example.test", "default")
        .await
        .expect_err("denied");
    assert!(err.is_not_found(), "{err}");
    assert_eq!(
        dns.lookup_ip("192.0.2.7", "default").await.unwrap(),
        ["192.0.2.7".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(
        dns.lookup_ip("localhost", "default").await.unwrap().len(),
        2
    );
    assert!(
        dns.lookup_ip("bad..name", "default")
            .await
            .unwrap_err()
            .is_not_found()
    );
}
