//! Which records the cluster's objects make, following the Kubernetes DNS
//! specification and CoreDNS's kubernetes plugin:
//!
//! - `<svc>.<ns>.svc.<zone>`: A/AAAA of a Service's ClusterIPs; for a headless Service
//!   (`clusterIP: None`) the addresses of its ready endpoints (all of them with
//!   `publishNotReadyAddresses`); a CNAME to `spec.externalName` for ExternalName;
//! - `_<port>._<proto>.<svc>.<ns>.svc.<zone>` SRV for named ports: the Service's ports
//!   pointing at the Service name, or (headless) the EndpointSlice's ports, one record
//!   per endpoint pointing at `<hostname>.<svc>.<ns>.svc.<zone>`;
//! - `<hostname>.<svc>.<ns>.svc.<zone>` for every endpoint, the hostname being the
//!   endpoint's `hostname` (StatefulSet pods: `web-0`) or its dashed IP;
//! - `<a-b-c-d>.<ns>.pod.<zone>` for running pods (CoreDNS's `pods verified`: only
//!   addresses a pod in that namespace has);
//! - PTR for ClusterIPs and endpoint addresses, `dns-version.<zone>` TXT, and the
//!   `ns.dns.<zone>` address of the `kube-system/kube-dns` Service.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hickory_proto::rr::rdata::{CNAME, SRV, TXT};
use hickory_proto::rr::{Name, RData, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::zone::{Zone, ZoneBuilder};

/// The version of the Kubernetes DNS schema served (`dns-version.<zone>` TXT).
pub(crate) const SCHEMA_VERSION: &str = "1.1.0";

/// The label tying an EndpointSlice to its Service.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What DNS needs of a pod: its namespace and addresses (empty once it has stopped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodAddresses {
    /// The pod's namespace.
    pub namespace: String,
    /// `status.podIPs`, or `status.podIP`.
    pub ips: Vec<IpAddr>,
}

/// The objects a zone is built from.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Objects<'a> {
    pub namespaces: &'a [String],
    pub services: &'a [&'a Service],
    pub slices: &'a [&'a EndpointSlice],
    pub pods: &'a [&'a PodAddresses],
}

/// Build the zone `origin` (e.g. `cluster.local.`) from `objects`.
pub(crate) fn build(origin: &Name, objects: Objects<'_>, serial: u32) -> Zone {
    let mut zone = ZoneBuilder::new(origin.clone());
    let svc = child(origin, "svc");
    let pod = child(origin, "pod");
    for parent in [&svc, &pod].into_iter().flatten() {
        zone.touch(parent);
    }
    if let Some(version) = child(origin, "dns-version") {
        zone.add(&version, RData::TXT(TXT::new(vec![SCHEMA_VERSION.into()])));
    }
    for ns in objects.namespaces {
        for parent in [&svc, &pod].into_iter().flatten() {
            if let Some(name) = child(parent, ns) {
                zone.touch(&name);
            }
        }
    }
    if let Some(svc) = &svc {
        let mut slices: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
        for slice in objects.slices {
            let (Some(ns), Some(service)) = (
                slice.metadata.namespace.as_deref(),
                slice
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL)),
            ) else {
                continue;
            };
            slices.entry((ns, service)).or_default().push(slice);
        }
        for service in objects.services {
            let (Some(ns), Some(name)) = (
                service.metadata.namespace.as_deref(),
                service.metadata.name.as_deref(),
            ) else {
                continue;
            };
            let Some(base) = child(svc, ns).and_then(|n| child(&n, name)) else {
                tracing::debug!(service = %format!("{ns}/{name}"), "no DNS name for this service");
                continue;
            };
            let endpoints = slices.get(&(ns, name)).map(Vec::as_slice).unwrap_or(&[]);
            add_service(&mut zone, service, &base, endpoints);
        }
    }
    if let Some(pod) = &pod {
        for p in objects.pods {
            for ip in &p.ips {
                if let Some(name) = child(pod, &p.namespace).and_then(|n| child(&n, &dashed(*ip))) {
                    zone.add_address(&name, *ip);
                }
            }
        }
    }
    if let Some(kube_dns) = objects.services.iter().find(|s| {
        s.metadata.namespace.as_deref() == Some("kube-system")
            && s.metadata.name.as_deref() == Some("kube-dns")
    }) && let Some(ns) = child(origin, "dns").and_then(|d| child(&d, "ns"))
    {
        for ip in cluster_ips(kube_dns) {
            zone.add_address(&ns, ip);
        }
    }
    zone.build(serial)
}

/// The records of one Service named `base` (`<svc>.<ns>.svc.<zone>.`).
fn add_service(zone: &mut ZoneBuilder, service: &Service, base: &Name, slices: &[&EndpointSlice]) {
    let spec = service.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
        let target = spec
            .and_then(|s| s.external_name.as_deref())
            .and_then(|t| Name::from_ascii(t).ok())
            .map(|mut t| {
                t.set_fqdn(true);
                t
            });
        match target {
            Some(target) => zone.add(base, RData::CNAME(CNAME(target))),
            None => {
                tracing::debug!(service = %base, "ExternalName service without a valid externalName")
            }
        }
        return;
    }
    let headless = spec.and_then(|s| s.cluster_ip.as_deref()) == Some("None");
    let ips = cluster_ips(service);
    for ip in &ips {
        zone.add_address(base, *ip);
        zone.add_ptr(*ip, base);
    }
    if !ips.is_empty() {
        let targets = [(base.clone(), None)];
        for port in spec.and_then(|s| s.ports.as_ref()).into_iter().flatten() {
            if let Ok(port_number) = u16::try_from(port.port) {
                add_srv(
                    zone,
                    base,
                    port.name.as_deref(),
                    port.protocol.as_deref(),
                    port_number,
                    &targets,
                );
            }
        }
    }
    let publish_not_ready = spec
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    for slice in slices {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue;
        }
        let mut targets: Vec<(Name, Option<IpAddr>)> = Vec::new();
        for endpoint in slice.endpoints.iter().flatten() {
            // A nil `ready` means ready (the API's documented default).
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            if !(ready || publish_not_ready) {
                continue;
            }
            for ip in endpoint
                .addresses
                .iter()
                .filter_map(|a| a.parse::<IpAddr>().ok())
            {
                let label = endpoint.hostname.clone().unwrap_or_else(|| dashed(ip));
                let Some(host) = child(base, &label) else {
                    continue;
                };
                zone.add_address(&host, ip);
                zone.add_ptr(ip, &host);
                if headless {
                    zone.add_address(base, ip);
                }
                targets.push((host, Some(ip)));
            }
        }
        if !headless || targets.is_empty() {
            continue;
        }
        for port in slice.ports.iter().flatten() {
            if let Some(number) = port.port.and_then(|p| u16::try_from(p).ok()) {
                add_srv(
                    zone,
                    base,
                    port.name.as_deref(),
                    port.protocol.as_deref(),
                    number,
                    &targets,
                );
            }
        }
    }
}

/// `_<port>._<proto>.<base>` SRV records, one per target, with the targets' addresses
/// as additionals. Unnamed ports have none. Weights share 100 as CoreDNS does.
fn add_srv(
    zone: &mut ZoneBuilder,
    base: &Name,
    port_name: Option<&str>,
    protocol: Option<&str>,
    port: u16,
    targets: &[(Name, Option<IpAddr>)],
) {
    let Some(port_name) = port_name.filter(|n| !n.is_empty()) else {
        return;
    };
    let protocol = protocol.unwrap_or("TCP").to_ascii_lowercase();
    let Some(owner) =
        child(base, &format!("_{protocol}")).and_then(|p| child(&p, &format!("_{port_name}")))
    else {
        return;
    };
    let count = u16::try_from(targets.len()).unwrap_or(u16::MAX).max(1);
    let weight = (100 / count).max(1);
    for (target, _) in targets {
        let additionals = [RecordType::A, RecordType::AAAA]
            .into_iter()
            .flat_map(|t| zone.records(target, t))
            .collect();
        zone.add_with(
            &owner,
            RData::SRV(SRV::new(0, weight, port, target.clone())),
            Some(additionals),
        );
    }
}

/// A Service's ClusterIPs (`spec.clusterIPs`, else `spec.clusterIP`), without `None`.
fn cluster_ips(service: &Service) -> Vec<IpAddr> {
    let Some(spec) = &service.spec else {
        return Vec::new();
    };
    let listed = spec.cluster_ips.clone().unwrap_or_default();
    let listed = if listed.is_empty() {
        spec.cluster_ip.iter().cloned().collect()
    } else {
        listed
    };
    listed.iter().filter_map(|ip| ip.parse().ok()).collect()
}

/// `label.parent`, or `None` when `label` is not a valid DNS label.
fn child(parent: &Name, label: &str) -> Option<Name> {
    if label.is_empty() || label.contains('.') {
        return None;
    }
    parent.prepend_label(label.to_ascii_lowercase()).ok()
}

/// An address as a DNS label: `10-244-0-5`, or IPv6 with `-` for `:` (as CoreDNS).
pub(crate) fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::LowerName;
    use serde_json::json;

    fn service(v: serde_json::Value) -> Service {
        serde_json::from_value(v).expect("service")
    }

    fn slice(v: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(v).expect("slice")
    }

    fn q<'z>(zone: &'z Zone, name: &str, t: RecordType) -> super::super::zone::Answer<'z> {
        zone.lookup(&LowerName::new(&Name::from_ascii(name).expect("name")), t)
            .expect("in zone")
    }

    fn fixture() -> Zone {
        let web = service(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.96.100.10", "ports": [{"name": "http", "port": 80}, {"port": 81}]}}));
        let headless = service(
            json!({"metadata": {"name": "nginx", "namespace": "default"},
            "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 80}]}}),
        );
        let ext = service(json!({"metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}}));
        let dns = service(
            json!({"metadata": {"name": "kube-dns", "namespace": "kube-system"},
            "spec": {"clusterIP": "10.96.0.10"}}),
        );
        let eps = slice(
            json!({"metadata": {"name": "nginx-abc", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "nginx"}},
            "addressType": "IPv4",
            "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.244.0.10"], "hostname": "web-0", "conditions": {"ready": true}},
                {"addresses": ["10.244.0.11"], "hostname": "web-1"},
                {"addresses": ["10.244.0.12"], "conditions": {"ready": true}},
                {"addresses": ["10.244.0.13"], "hostname": "web-3", "conditions": {"ready": false}}
            ]}),
        );
        let pod = PodAddresses {
            namespace: "default".into(),
            ips: vec!["10.244.0.10".parse().unwrap()],
        };
        let namespaces = vec!["default".to_string(), "empty".to_string()];
        build(
            &Name::from_ascii("cluster.local.").unwrap(),
            Objects {
                namespaces: &namespaces,
                services: &[&web, &headless, &ext, &dns],
                slices: &[&eps],
                pods: &[&pod],
            },
            1,
        )
    }

    #[test]
    fn a_clusterip_service_has_its_address_and_srv_for_named_ports_only() {
        let zone = fixture();
        let a = q(&zone, "web.default.svc.cluster.local.", RecordType::A);
        assert_eq!(
            a.addresses().collect::<Vec<_>>(),
            ["10.96.100.10".parse::<IpAddr>().unwrap()]
        );
        let srv = q(
            &zone,
            "_http._tcp.web.default.svc.cluster.local.",
            RecordType::SRV,
        );
        assert_eq!(srv.answers.len(), 1);
        assert_eq!(srv.additionals.len(), 1);
        let text = srv.answers[0].data.to_string();
        assert!(text.contains("80 web.default.svc.cluster.local."), "{text}");
        let ptr = zone
            .lookup(
                &LowerName::new(&Name::from_ascii("10.100.96.10.in-addr.arpa.").unwrap()),
                RecordType::PTR,
            )
            .expect("ptr");
        assert_eq!(ptr.answers.len(), 1);
    }

    #[test]
    fn a_headless_service_answers_its_ready_endpoints_and_their_hostnames() {
        let zone = fixture();
        let a = q(&zone, "nginx.default.svc.cluster.local.", RecordType::A);
        let mut ips: Vec<String> = a.addresses().map(|i| i.to_string()).collect();
        ips.sort();
        assert_eq!(ips, ["10.244.0.10", "10.244.0.11", "10.244.0.12"]);
        let srv = q(
            &zone,
            "_web._tcp.nginx.default.svc.cluster.local.",
            RecordType::SRV,
        );
        let targets: Vec<String> = srv.answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(targets.len(), 3, "{targets:?}");
        assert!(targets.iter().all(|t| t.contains(" 8080 ")), "{targets:?}");
        assert!(
            targets
                .iter()
                .any(|t| t.ends_with("10-244-0-12.nginx.default.svc.cluster.local."))
        );
        let pet = q(
            &zone,
            "web-0.nginx.default.svc.cluster.local.",
            RecordType::A,
        );
        assert_eq!(pet.addresses().next(), Some("10.244.0.10".parse().unwrap()));
        let not_ready = q(
            &zone,
            "web-3.nginx.default.svc.cluster.local.",
            RecordType::A,
        );
        assert_eq!(not_ready.code, ResponseCode::NXDomain);
    }

    #[test]
    fn external_names_pods_namespaces_and_the_schema_version_exist() {
        let zone = fixture();
        let ext = q(&zone, "ext.default.svc.cluster.local.", RecordType::A);
        assert_eq!(
            ext.external,
            Some(&Name::from_ascii("example.com.").unwrap())
        );
        let pod = q(
            &zone,
            "10-244-0-10.default.pod.cluster.local.",
            RecordType::A,
        );
        assert_eq!(pod.addresses().count(), 1);
        let other_ns = q(
            &zone,
            "10-244-0-10.kube-system.pod.cluster.local.",
            RecordType::A,
        );
        assert_eq!(other_ns.code, ResponseCode::NXDomain);
        let empty = q(&zone, "empty.svc.cluster.local.", RecordType::A);
        assert_eq!(empty.code, ResponseCode::NoError);
        let missing = q(&zone, "missing.svc.cluster.local.", RecordType::A);
        assert_eq!(missing.code, ResponseCode::NXDomain);
        let version = q(&zone, "dns-version.cluster.local.", RecordType::TXT);
        assert_eq!(version.answers.len(), 1);
        let ns = q(&zone, "ns.dns.cluster.local.", RecordType::A);
        assert_eq!(ns.addresses().next(), Some("10.96.0.10".parse().unwrap()));
    }

    #[test]
    fn a_headless_service_without_ready_endpoints_does_not_exist() {
        let lonely = service(
            json!({"metadata": {"name": "lonely", "namespace": "default"},
            "spec": {"clusterIP": "None"}}),
        );
        let zone = build(
            &Name::from_ascii("cluster.local.").unwrap(),
            Objects {
                services: &[&lonely],
                ..Objects::default()
            },
            1,
        );
        let a = q(&zone, "lonely.default.svc.cluster.local.", RecordType::A);
        assert_eq!(a.code, ResponseCode::NXDomain);
    }

    #[test]
    fn ipv6_addresses_get_dashed_labels() {
        assert_eq!(dashed("10.244.0.5".parse().unwrap()), "10-244-0-5");
        assert_eq!(dashed("fd00::1".parse().unwrap()), "fd00--1");
    }
}
