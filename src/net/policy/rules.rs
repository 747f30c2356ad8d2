//! NetworkPolicy semantics, as pure functions: a policy compiled from its object,
//! and the verdict on one connection given every policy of the cluster.
//!
//! The rules are Kubernetes' own: a pod selected by some policy whose types include
//! `Ingress` is isolated for ingress and accepts only what one of those policies'
//! ingress rules allows (likewise `Egress` for what it sends); policies add up,
//! never subtract; a connection needs both the source's egress and the
//! destination's ingress to allow it.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::controllers::pods::selects;

/// A transport protocol, as NetworkPolicy ports name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP (the default of a policy port).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP (never carried by minke's network, but policies may name it).
    Sctp,
}

impl Protocol {
    /// Parse a policy's or container port's `protocol` (absent means TCP).
    pub fn parse(s: Option<&str>) -> Option<Protocol> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

/// A container port a named policy port can refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPort {
    /// The port's `name`.
    pub name: String,
    /// Its `containerPort`.
    pub port: u16,
    /// Its protocol.
    pub protocol: Protocol,
}

/// What the policies need to know of a pod at one end of a connection.
#[derive(Debug, Clone, Copy)]
pub struct PodRef<'a> {
    /// The pod's namespace.
    pub namespace: &'a str,
    /// The pod's labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Its namespace's labels.
    pub namespace_labels: &'a BTreeMap<String, String>,
    /// Its containers' named ports.
    pub ports: &'a [NamedPort],
}

/// One end of a connection: an address, and the pod behind it if there is one.
#[derive(Debug, Clone, Copy)]
pub struct End<'a> {
    /// The address.
    pub ip: IpAddr,
    /// The pod with that address (`None`: outside the cluster, or a virtual address).
    pub pod: Option<PodRef<'a>>,
}

/// A connection to judge: from `src` to `dst`'s `port` (after Service translation,
/// so `dst` is the endpoint itself).
#[derive(Debug, Clone, Copy)]
pub struct Connection<'a> {
    /// Who opens it.
    pub src: End<'a>,
    /// Who it goes to.
    pub dst: End<'a>,
    /// The destination port.
    pub port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

/// An IP range (`10.0.0.0/8`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: no prefix length"))?;
        let net: IpAddr = ip.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let prefix: u8 = len.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("{s:?}: prefix longer than {max}"));
        }
        Ok(Cidr { net, prefix })
    }
}

impl Cidr {
    /// Whether `ip` is in the range (an IPv4 range never holds an IPv6 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32u32),
            IpAddr::V6(v6) => (u128::from(v6), 128u32),
        };
        let ((net, family), (addr, other)) = (bits(self.net), bits(ip));
        if family != other {
            return false;
        }
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.prefix))
            .unwrap_or(0);
        net & mask == addr & mask
    }
}

/// Who a rule lets in (ingress) or out to (egress).
#[derive(Debug, Clone)]
enum Peer {
    /// Pods chosen by labels: in the policy's namespace when `namespaces` is
    /// `None`, else in every namespace it selects.
    Pods {
        pods: Option<LabelSelector>,
        namespaces: Option<LabelSelector>,
    },
    /// Addresses in `cidr` but not in any of `except`.
    Block { cidr: Cidr, except: Vec<Cidr> },
    /// A peer that can match nothing (e.g. an unparsable CIDR).
    Nothing,
}

/// Which destination ports a rule covers.
#[derive(Debug, Clone)]
enum Port {
    /// Every port of the protocol.
    Any(Protocol),
    /// `port` to `endPort` (the same when no `endPort`).
    Range(Protocol, u16, u16),
    /// A container port of the destination pod, by name.
    Named(Protocol, String),
    /// A port that can match nothing (an unknown protocol, a number out of range).
    Nothing,
}

/// One ingress or egress rule: it matches when a peer and a port match (an empty
/// list matches everything).
#[derive(Debug, Clone, Default)]
struct Rule {
    peers: Vec<Peer>,
    ports: Vec<Port>,
}

/// A NetworkPolicy, compiled.
#[derive(Debug, Clone)]
pub struct Policy {
    namespace: String,
    /// `namespace/name`, for logs.
    pub name: String,
    selector: LabelSelector,
    /// `Some` when the policy's types include Ingress.
    ingress: Option<Vec<Rule>>,
    /// `Some` when the policy's types include Egress.
    egress: Option<Vec<Rule>>,
}

fn peer(p: &NetworkPolicyPeer) -> Peer {
    if let Some(block) = &p.ip_block {
        let cidr = match block.cidr.parse() {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "ipBlock matches nothing");
                return Peer::Nothing;
            }
        };
        let except = block
            .except
            .iter()
            .flatten()
            .filter_map(|e| e.parse().ok())
            .collect();
        return Peer::Block { cidr, except };
    }
    if p.pod_selector.is_none() && p.namespace_selector.is_none() {
        return Peer::Nothing;
    }
    Peer::Pods {
        pods: p.pod_selector.clone(),
        namespaces: p.namespace_selector.clone(),
    }
}

fn port(p: &NetworkPolicyPort) -> Port {
    let Some(protocol) = Protocol::parse(p.protocol.as_deref()) else {
        return Port::Nothing;
    };
    match &p.port {
        None => Port::Any(protocol),
        Some(IntOrString::String(name)) => match name.parse::<u16>() {
            Ok(n) => Port::Range(protocol, n, n),
            Err(_) => Port::Named(protocol, name.clone()),
        },
        Some(IntOrString::Int(n)) => {
            let Ok(from) = u16::try_from(*n) else {
                return Port::Nothing;
            };
            let to = p
                .end_port
                .and_then(|e| u16::try_from(e).ok())
                .unwrap_or(from);
            Port::Range(protocol, from, to)
        }
    }
}

fn rule<'a>(
    peers: impl IntoIterator<Item = &'a NetworkPolicyPeer>,
    ports: impl IntoIterator<Item = &'a NetworkPolicyPort>,
) -> Rule {
    Rule {
        peers: peers.into_iter().map(peer).collect(),
        ports: ports.into_iter().map(port).collect(),
    }
}

impl Policy {
    /// Compile `np`. `policyTypes` defaults as the API server's defaulting does:
    /// Ingress always, Egress when the policy has egress rules.
    pub fn compile(np: &NetworkPolicy) -> Policy {
        let spec = np.spec.clone().unwrap_or_default();
        let types = spec.policy_types.clone().unwrap_or_else(|| {
            let mut t = vec!["Ingress".to_string()];
            if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
                t.push("Egress".into());
            }
            t
        });
        let has = |t: &str| types.iter().any(|x| x == t);
        let namespace = np.metadata.namespace.clone().unwrap_or_default();
        let name = format!(
            "{namespace}/{}",
            np.metadata.name.as_deref().unwrap_or_default()
        );
        Policy {
            name,
            namespace,
            selector: spec.pod_selector.clone().unwrap_or_default(),
            ingress: has("Ingress").then(|| {
                spec.ingress
                    .iter()
                    .flatten()
                    .map(|r| rule(r.from.iter().flatten(), r.ports.iter().flatten()))
                    .collect()
            }),
            egress: has("Egress").then(|| {
                spec.egress
                    .iter()
                    .flatten()
                    .map(|r| rule(r.to.iter().flatten(), r.ports.iter().flatten()))
                    .collect()
            }),
        }
    }

    fn selects(&self, pod: &PodRef<'_>) -> bool {
        pod.namespace == self.namespace && selects(Some(&self.selector), Some(pod.labels))
    }

    fn peer_matches(&self, peer: &Peer, end: &End<'_>) -> bool {
        match peer {
            Peer::Nothing => false,
            Peer::Block { cidr, except } => {
                cidr.contains(end.ip) && !except.iter().any(|e| e.contains(end.ip))
            }
            Peer::Pods { pods, namespaces } => {
                let Some(pod) = &end.pod else { return false };
                let in_namespace = match namespaces {
                    None => pod.namespace == self.namespace,
                    Some(ns) => selects(Some(ns), Some(pod.namespace_labels)),
                };
                in_namespace
                    && pods
                        .as_ref()
                        .is_none_or(|p| selects(Some(p), Some(pod.labels)))
            }
        }
    }
}

fn port_matches(port: &Port, c: &Connection<'_>) -> bool {
    match port {
        Port::Nothing => false,
        Port::Any(p) => *p == c.protocol,
        Port::Range(p, from, to) => *p == c.protocol && (*from..=*to).contains(&c.port),
        Port::Named(p, name) => {
            *p == c.protocol
                && c.dst.pod.is_some_and(|pod| {
                    pod.ports
                        .iter()
                        .any(|n| n.name == *name && n.port == c.port && n.protocol == c.protocol)
                })
        }
    }
}

/// Which way a rule looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

/// Every policy of the cluster, by namespace.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    by_namespace: HashMap<String, Vec<Policy>>,
}

impl Policies {
    /// Compile `policies`.
    pub fn new<'a>(policies: impl IntoIterator<Item = &'a NetworkPolicy>) -> Policies {
        let mut by_namespace: HashMap<String, Vec<Policy>> = HashMap::new();
        for np in policies {
            let p = Policy::compile(np);
            by_namespace.entry(p.namespace.clone()).or_default().push(p);
        }
        Policies { by_namespace }
    }

    /// Whether there are no policies (so everything is allowed).
    pub fn is_empty(&self) -> bool {
        self.by_namespace.is_empty()
    }

    /// Whether `c` may be made: the source's egress and the destination's ingress
    /// both allow it. An end that is no pod (the node, the outside, a virtual
    /// address) is never isolated.
    pub fn allows(&self, c: &Connection<'_>) -> bool {
        let egress = c
            .src
            .pod
            .is_none_or(|pod| self.side_allows(Direction::Egress, &pod, &c.dst, c));
        egress
            && c.dst
                .pod
                .is_none_or(|pod| self.side_allows(Direction::Ingress, &pod, &c.src, c))
    }

    /// Whether `subject` (isolated or not in `dir`) lets `c` through to or from `peer`.
    fn side_allows(
        &self,
        dir: Direction,
        subject: &PodRef<'_>,
        peer: &End<'_>,
        c: &Connection<'_>,
    ) -> bool {
        let mut isolated = false;
        for policy in self
            .by_namespace
            .get(subject.namespace)
            .into_iter()
            .flatten()
        {
            let rules = match dir {
                Direction::Ingress => &policy.ingress,
                Direction::Egress => &policy.egress,
            };
            let Some(rules) = rules else { continue };
            if !policy.selects(subject) {
                continue;
            }
            isolated = true;
            let allowed = rules.iter().any(|r| {
                (r.peers.is_empty() || r.peers.iter().any(|p| policy.peer_matches(p, peer)))
                    && (r.ports.is_empty() || r.ports.iter().any(|p| port_matches(p, c)))
            });
            if allowed {
                return true;
            }
        }
        !isolated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policies(docs: &[serde_json::Value]) -> Policies {
        let nps: Vec<NetworkPolicy> = docs
            .iter()
            .map(|d| serde_json::from_value(d.clone()).expect("policy"))
            .collect();
        Policies::new(&nps)
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    struct Pod {
        ip: IpAddr,
        namespace: &'static str,
        labels: BTreeMap<String, String>,
        ns_labels: BTreeMap<String, String>,
        ports: Vec<NamedPort>,
    }

    fn pod(ip: &str, namespace: &'static str, l: &[(&str, &str)]) -> Pod {
        Pod {
            ip: ip.parse().expect("ip"),
            namespace,
            labels: labels(l),
            ns_labels: labels(&[("kubernetes.io/metadata.name", namespace)]),
            ports: vec![NamedPort {
                name: "http".into(),
                port: 8080,
                protocol: Protocol::Tcp,
            }],
        }
    }

    impl Pod {
        fn end(&self) -> End<'_> {
            End {
                ip: self.ip,
                pod: Some(PodRef {
                    namespace: self.namespace,
                    labels: &self.labels,
                    namespace_labels: &self.ns_labels,
                    ports: &self.ports,
                }),
            }
        }
    }

    fn outside(ip: &str) -> End<'static> {
        End {
            ip: ip.parse().expect("ip"),
            pod: None,
        }
    }

    fn conn<'a>(src: End<'a>, dst: End<'a>, port: u16) -> Connection<'a> {
        Connection {
            src,
            dst,
            port,
            protocol: Protocol::Tcp,
        }
    }

    fn np(name: &str, ns: &str, spec: serde_json::Value) -> serde_json::Value {
        json!({"metadata": {"name": name, "namespace": ns}, "spec": spec})
    }

    #[test]
    fn without_policies_everything_is_allowed() {
        let (a, b) = (
            pod("10.244.0.2", "default", &[]),
            pod("10.244.0.3", "default", &[]),
        );
        let p = policies(&[]);
        assert!(p.is_empty());
        assert!(p.allows(&conn(a.end(), b.end(), 80)));
    }

    #[test]
    fn deny_all_ingress_isolates_only_the_selected_pods_and_their_namespace() {
        let web = pod("10.244.0.2", "default", &[("app", "web")]);
        let db = pod("10.244.0.3", "default", &[("app", "db")]);
        let other = pod("10.244.0.4", "other", &[("app", "web")]);
        let p = policies(&[np(
            "deny",
            "default",
            json!({"podSelector": {"matchLabels": {"app": "web"}}}),
        )]);
        assert!(!p.allows(&conn(db.end(), web.end(), 8080)));
        assert!(!p.allows(&conn(outside("192.0.2.1"), web.end(), 8080)));
        // Not selected: db, and web of another namespace.
        assert!(p.allows(&conn(web.end(), db.end(), 5432)));
        assert!(p.allows(&conn(web.end(), other.end(), 8080)));
        // Ingress-only: web itself still sends.
        assert!(p.allows(&conn(web.end(), outside("192.0.2.1"), 443)));
    }

    #[test]
    fn a_pod_selector_peer_admits_only_labelled_pods_of_the_policy_namespace() {
        let web = pod("10.244.0.2", "default", &[("app", "web")]);
        let yes = pod("10.244.0.3", "default", &[("access", "true")]);
        let no = pod("10.244.0.4", "default", &[("access", "false")]);
        let elsewhere = pod("10.244.0.5", "other", &[("access", "true")]);
        let p = policies(&[np(
            "access",
            "default",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"access": "true"}}}]}]
            }),
        )]);
        assert!(p.allows(&conn(yes.end(), web.end(), 8080)));
        assert!(!p.allows(&conn(no.end(), web.end(), 8080)));
        assert!(!p.allows(&conn(elsewhere.end(), web.end(), 8080)));
    }

    #[test]
    fn namespace_and_pod_selectors_combine_in_one_peer_and_add_up_in_two() {
        let web = pod("10.244.0.2", "default", &[("app", "web")]);
        let mut mon = pod("10.244.0.3", "mon", &[("role", "scraper")]);
        mon.ns_labels.insert("team".into(), "ops".into());
        let mut mon_other = pod("10.244.0.4", "mon", &[("role", "other")]);
        mon_other.ns_labels.insert("team".into(), "ops".into());
        let local_scraper = pod("10.244.0.5", "default", &[("role", "scraper")]);
        let combined = np(
            "combined",
            "default",
            json!({
                "podSelector": {},
                "ingress": [{"from": [{
                    "namespaceSelector": {"matchLabels": {"team": "ops"}},
                    "podSelector": {"matchLabels": {"role": "scraper"}}
                }]}]
            }),
        );
        let p = policies(&[combined]);
        assert!(p.allows(&conn(mon.end(), web.end(), 8080)));
        assert!(!p.allows(&conn(mon_other.end(), web.end(), 8080)));
        assert!(!p.allows(&conn(local_scraper.end(), web.end(), 8080)));

        // Two peers (an OR): every pod of `ops` namespaces, or scrapers here.
        let either = np(
            "either",
            "default",
            json!({
                "podSelector": {},
                "ingress": [{"from": [
                    {"namespaceSelector": {"matchLabels": {"team": "ops"}}},
                    {"podSelector": {"matchLabels": {"role": "scraper"}}}
                ]}]
            }),
        );
        let p = policies(&[either]);
        assert!(p.allows(&conn(mon_other.end(), web.end(), 8080)));
        assert!(p.allows(&conn(local_scraper.end(), web.end(), 8080)));
        // By the namespace's name label, as users write it.
        let by_name = np(
            "by-name",
            "default",
            json!({
                "podSelector": {},
                "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["mon"]}
                ]}}]}]
            }),
        );
        let p = policies(&[by_name]);
        assert!(p.allows(&conn(mon.end(), web.end(), 8080)));
        assert!(!p.allows(&conn(local_scraper.end(), web.end(), 8080)));
    }

    #[test]
    fn ports_match_by_number_range_name_and_protocol() {
        let web = pod("10.244.0.2", "default", &[("app", "web")]);
        let client = pod("10.244.0.3", "default", &[]);
        let p = policies(&[np(
            "ports",
            "default",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"ports": [
                    {"port": "http"},
                    {"port": 9000, "endPort": 9010},
                    {"port": 53, "protocol": "UDP"}
                ]}]
            }),
        )]);
        assert!(p.allows(&conn(client.end(), web.end(), 8080)), "named port");
        assert!(p.allows(&conn(client.end(), web.end(), 9000)));
        assert!(p.allows(&conn(client.end(), web.end(), 9010)));
        assert!(!p.allows(&conn(client.end(), web.end(), 9011)));
        assert!(!p.allows(&conn(client.end(), web.end(), 53)), "UDP only");
        let mut udp = conn(client.end(), web.end(), 53);
        udp.protocol = Protocol::Udp;
        assert!(p.allows(&udp));
        // A name the destination pod does not have matches nothing.
        let p = policies(&[np(
            "named",
            "default",
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": "metrics"}]}]}),
        )]);
        assert!(!p.allows(&conn(client.end(), web.end(), 8080)));
    }

    #[test]
    fn ip_blocks_honour_their_exceptions() {
        let web = pod("10.244.0.2", "default", &[("app", "web")]);
        let p = policies(&[np(
            "egress",
            "default",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}}]}]
            }),
        )]);
        assert!(p.allows(&conn(web.end(), outside("192.0.2.7"), 443)));
        assert!(!p.allows(&conn(web.end(), outside("192.0.2.200"), 443)));
        assert!(!p.allows(&conn(web.end(), outside("198.51.100.1"), 443)));
        assert!(!p.allows(&conn(web.end(), outside("2001:db8::1"), 443)));
        // Egress-only: web still accepts anything.
        assert!(p.allows(&conn(outside("198.51.100.1"), web.end(), 8080)));
    }

    #[test]
    fn policy_types_default_from_the_rules_present() {
        let web = pod("10.244.0.2", "default", &[("app", "web")]);
        let db = pod("10.244.0.3", "default", &[("app", "db")]);
        // Egress rules without policyTypes: isolated both ways; only db:5432 out,
        // nothing in.
        let p = policies(&[np(
            "both",
            "default",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}], "ports": [{"port": 5432}]}]
            }),
        )]);
        assert!(p.allows(&conn(web.end(), db.end(), 5432)));
        assert!(!p.allows(&conn(web.end(), db.end(), 6379)));
        assert!(!p.allows(&conn(db.end(), web.end(), 8080)));
        // `egress: []` with the Egress type: nothing out; `ingress: [{}]`: all in.
        let p = policies(&[np(
            "types",
            "default",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{}],
                "egress": []
            }),
        )]);
        assert!(!p.allows(&conn(web.end(), db.end(), 5432)));
        assert!(p.allows(&conn(db.end(), web.end(), 8080)));
    }

    #[test]
    fn egress_of_the_source_and_ingress_of_the_destination_must_both_allow() {
        let a = pod("10.244.0.2", "default", &[("app", "a")]);
        let b = pod("10.244.0.3", "default", &[("app", "b")]);
        let egress_ok = np(
            "a-out",
            "default",
            json!({
                "podSelector": {"matchLabels": {"app": "a"}},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]
            }),
        );
        let deny_b = np(
            "b-in",
            "default",
            json!({"podSelector": {"matchLabels": {"app": "b"}}, "policyTypes": ["Ingress"]}),
        );
        assert!(policies(std::slice::from_ref(&egress_ok)).allows(&conn(a.end(), b.end(), 80)));
        assert!(!policies(&[egress_ok, deny_b]).allows(&conn(a.end(), b.end(), 80)));
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let c: Cidr = "10.0.0.0/8".parse().expect("cidr");
        assert!(c.contains("10.255.0.1".parse().expect("ip")));
        assert!(!c.contains("11.0.0.1".parse().expect("ip")));
        let all: Cidr = "0.0.0.0/0".parse().expect("cidr");
        assert!(all.contains("203.0.113.9".parse().expect("ip")));
        let v6: Cidr = "2001:db8::/32".parse().expect("cidr");
        assert!(v6.contains("2001:db8:1::1".parse().expect("ip")));
        assert!(!v6.contains("10.0.0.1".parse().expect("ip")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("10.0.0.0".parse::<Cidr>().is_err());
    }
}
