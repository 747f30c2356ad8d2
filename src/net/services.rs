//! Services as the data path sees them — kube-proxy's role: each ClusterIP port
//! maps to its ready endpoints (from EndpointSlices), connections are spread
//! round-robin or pinned per client with `sessionAffinity: ClientIP`, and each
//! NodePort maps back to its ClusterIP port. [`run`] keeps the table current from
//! watches of Services and EndpointSlices; [`Table::changes`] tells the host
//! bridges when to bind or release ports.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

/// How long a ClientIP affinity lasts unless the Service says otherwise (3 hours).
const DEFAULT_AFFINITY: Duration = Duration::from_secs(10_800);

/// One port of one Service.
#[derive(Debug)]
pub struct ServicePort {
    /// `namespace/name:port-name`, for logs.
    pub name: String,
    /// Ready endpoints (pod IP and target port).
    pub backends: Vec<SocketAddr>,
    next: AtomicUsize,
    affinity: Option<Duration>,
    pinned: Mutex<HashMap<IpAddr, (SocketAddr, Instant)>>,
}

impl ServicePort {
    fn new(name: String, backends: Vec<SocketAddr>, affinity: Option<Duration>) -> ServicePort {
        ServicePort {
            name,
            backends,
            next: AtomicUsize::new(0),
            affinity,
            pinned: Mutex::default(),
        }
    }

    /// The backend for a connection from `client`.
    fn choose(&self, client: IpAddr) -> Option<SocketAddr> {
        if self.backends.is_empty() {
            return None;
        }
        let Some(ttl) = self.affinity else {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            return self.backends.get(i % self.backends.len()).copied();
        };
        let mut pinned = self.pinned.lock().ok()?;
        let now = Instant::now();
        if let Some((b, at)) = pinned.get_mut(&client)
            && now.duration_since(*at) < ttl
            && self.backends.contains(b)
        {
            *at = now;
            return Some(*b);
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let b = *self.backends.get(i % self.backends.len())?;
        pinned.insert(client, (b, now));
        Some(b)
    }
}

/// A port the node exposes on the host for a Service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    /// The port on the node address.
    pub port: u16,
    /// The ClusterIP port it leads to.
    pub target: SocketAddr,
    /// `namespace/name` of the Service.
    pub service: String,
    /// Whether it is the Service's LoadBalancer port (else a NodePort).
    pub load_balancer: bool,
}

/// Where a connection to an address goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Pick {
    /// To this endpoint.
    Backend(SocketAddr),
    /// The address is a Service port with no ready endpoint.
    NoEndpoints,
    /// The address is no Service's (connect to it as it is).
    NotAService,
}

#[derive(Default)]
struct State {
    ports: HashMap<SocketAddr, Arc<ServicePort>>,
    udp_ports: HashMap<SocketAddr, Arc<ServicePort>>,
    host_ports: Vec<HostPort>,
}

/// Every Service port of the cluster (TCP, and UDP apart).
pub struct Table {
    state: RwLock<State>,
    changes: watch::Sender<Vec<HostPort>>,
}

impl Default for Table {
    fn default() -> Table {
        Table {
            state: RwLock::default(),
            changes: watch::channel(Vec::new()).0,
        }
    }
}

impl Table {
    /// Where a connection from `client` to `dst` goes.
    pub fn pick(&self, client: IpAddr, dst: SocketAddr) -> Pick {
        let Ok(state) = self.state.read() else {
            return Pick::NotAService;
        };
        match state.ports.get(&dst) {
            Some(port) => port.choose(client).map_or(Pick::NoEndpoints, Pick::Backend),
            None => Pick::NotAService,
        }
    }

    /// Where a datagram from `client` to `dst` goes (a Service's UDP port).
    pub fn pick_udp(&self, client: IpAddr, dst: SocketAddr) -> Pick {
        let Ok(state) = self.state.read() else {
            return Pick::NotAService;
        };
        match state.udp_ports.get(&dst) {
            Some(port) => port.choose(client).map_or(Pick::NoEndpoints, Pick::Backend),
            None => Pick::NotAService,
        }
    }

    /// The ClusterIP port a host port leads to.
    pub fn host_port(&self, port: u16) -> Option<HostPort> {
        let state = self.state.read().ok()?;
        state.host_ports.iter().find(|h| h.port == port).cloned()
    }

    /// The host ports wanted now, updated whenever they change.
    pub fn changes(&self) -> watch::Receiver<Vec<HostPort>> {
        self.changes.subscribe()
    }

    /// Replace the table with what `services` and `slices` say.
    pub fn rebuild(&self, services: &[Arc<Service>], slices: &[Arc<EndpointSlice>]) {
        let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
        for s in slices {
            let ns = s.metadata.namespace.clone().unwrap_or_default();
            let labels = s.metadata.labels.as_ref();
            if let Some(svc) = labels.and_then(|l| l.get("kubernetes.io/service-name")) {
                by_service.entry((ns, svc.clone())).or_default().push(s);
            }
        }
        let (old, old_udp) = self
            .state
            .read()
            .map(|s| (s.ports.clone(), s.udp_ports.clone()))
            .unwrap_or_default();
        let mut next = State::default();
        for svc in services {
            let ns = svc.metadata.namespace.clone().unwrap_or_default();
            let name = svc.metadata.name.clone().unwrap_or_default();
            let Some(spec) = &svc.spec else { continue };
            let Some(vip) = spec
                .cluster_ip
                .as_deref()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
                spec.session_affinity_config
                    .as_ref()
                    .and_then(|c| c.client_ip.as_ref())
                    .and_then(|c| c.timeout_seconds)
                    .and_then(|t| u64::try_from(t).ok())
                    .map_or(DEFAULT_AFFINITY, Duration::from_secs)
            });
            let slices = by_service
                .get(&(ns.clone(), name.clone()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let lb = spec.type_.as_deref() == Some("LoadBalancer");
            for p in spec.ports.iter().flatten() {
                let udp = match p.protocol.as_deref().unwrap_or("TCP") {
                    "TCP" => false,
                    "UDP" => true,
                    _ => continue,
                };
                let Ok(port) = u16::try_from(p.port) else {
                    continue;
                };
                let at = SocketAddr::new(vip, port);
                let backends = backends(slices, p.name.as_deref().unwrap_or(""));
                let label = format!("{ns}/{name}:{}", p.name.as_deref().unwrap_or(""));
                // Keep the round-robin position and pins while the backends stay.
                let (old, ports) = if udp {
                    (&old_udp, &mut next.udp_ports)
                } else {
                    (&old, &mut next.ports)
                };
                let entry = match old.get(&at) {
                    Some(o) if o.backends == backends && o.affinity == affinity => o.clone(),
                    _ => Arc::new(ServicePort::new(label, backends, affinity)),
                };
                ports.insert(at, entry);
                // The host bridges carry TCP only.
                if udp {
                    continue;
                }
                let service = format!("{ns}/{name}");
                if let Some(np) = p.node_port.and_then(|n| u16::try_from(n).ok()) {
                    next.host_ports.push(HostPort {
                        port: np,
                        target: at,
                        service: service.clone(),
                        load_balancer: false,
                    });
                }
                if lb {
                    next.host_ports.push(HostPort {
                        port,
                        target: at,
                        service,
                        load_balancer: true,
                    });
                }
            }
        }
        next.host_ports.sort();
        let host_ports = next.host_ports.clone();
        if let Ok(mut state) = self.state.write() {
            *state = next;
        }
        self.changes.send_if_modified(|wanted| {
            let changed = *wanted != host_ports;
            *wanted = host_ports;
            changed
        });
    }
}

/// The endpoints of the slice port named `port_name`: the ready ones, or — as
/// kube-proxy does when none is ready — the serving ones that are terminating.
fn backends(slices: &[&EndpointSlice], port_name: &str) -> Vec<SocketAddr> {
    let mut ready = Vec::new();
    let mut terminating = Vec::new();
    for s in slices {
        let Some(port) = s
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or("") == port_name)
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for e in s.endpoints.iter().flatten() {
            let c = e.conditions.as_ref();
            let is = |f: Option<bool>, default: bool| f.unwrap_or(default);
            let (r, serving, term) = (
                is(c.and_then(|c| c.ready), true),
                is(c.and_then(|c| c.serving), true),
                is(c.and_then(|c| c.terminating), false),
            );
            for a in &e.addresses {
                let Ok(ip) = a.parse::<IpAddr>() else {
                    continue;
                };
                if r {
                    ready.push(SocketAddr::new(ip, port));
                } else if serving && term {
                    terminating.push(SocketAddr::new(ip, port));
                }
            }
        }
    }
    let mut out = if ready.is_empty() { terminating } else { ready };
    out.sort();
    out.dedup();
    out
}

/// Keep `net`'s Services table current from the cluster's Services and
/// EndpointSlices until the task is dropped.
pub async fn run(client: kube::Client, net: super::Network) {
    let (services, svc_writer) = reflector::store::<Service>();
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();
    let svc_events = reflector::reflector(
        svc_writer,
        watcher(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects()
    .map(|_| ());
    let slice_events = reflector::reflector(
        slice_writer,
        watcher(
            Api::<EndpointSlice>::all(client),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects()
    .map(|_| ());
    let mut events = futures::stream::select(svc_events.boxed(), slice_events.boxed());
    while events.next().await.is_some() {
        // Let a burst of changes land before rebuilding once.
        while let Some(Some(())) = futures::FutureExt::now_or_never(events.next()) {}
        rebuild_from(net.services(), &services, &slices);
    }
}

fn rebuild_from(table: &Table, services: &Store<Service>, slices: &Store<EndpointSlice>) {
    table.rebuild(&services.state(), &slices.state());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(v: serde_json::Value) -> Arc<Service> {
        Arc::new(serde_json::from_value(v).expect("service"))
    }

    fn slice(v: serde_json::Value) -> Arc<EndpointSlice> {
        Arc::new(serde_json::from_value(v).expect("slice"))
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    fn web() -> Vec<Arc<EndpointSlice>> {
        vec![slice(json!({
            "metadata": {"name": "web-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.244.0.2"], "conditions": {"ready": true}},
                {"addresses": ["10.244.0.3"], "conditions": {"ready": true}},
                {"addresses": ["10.244.0.4"], "conditions": {"ready": false}}
            ]
        }))]
    }

    #[test]
    fn connections_spread_over_ready_endpoints_and_node_ports_map_back() {
        let t = Table::default();
        let svc = service(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"}]}
        }));
        t.rebuild(&[svc], &web());
        let client = "10.244.0.9".parse().expect("ip");
        let picks: Vec<_> = (0..4)
            .map(|_| t.pick(client, addr("10.96.0.20:80")))
            .collect();
        assert_eq!(
            picks,
            [
                Pick::Backend(addr("10.244.0.2:8080")),
                Pick::Backend(addr("10.244.0.3:8080")),
                Pick::Backend(addr("10.244.0.2:8080")),
                Pick::Backend(addr("10.244.0.3:8080")),
            ]
        );
        assert_eq!(t.pick(client, addr("10.96.0.21:80")), Pick::NotAService);
        let hp = t.host_port(30080).expect("node port");
        assert_eq!(hp.target, addr("10.96.0.20:80"));
        assert_eq!(*t.changes().borrow(), vec![hp]);
    }

    #[test]
    fn client_ip_affinity_pins_and_no_ready_endpoint_refuses() {
        let t = Table::default();
        let svc = service(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.20", "sessionAffinity": "ClientIP", "ports": [{"name": "http", "port": 80}]}
        }));
        t.rebuild(std::slice::from_ref(&svc), &web());
        let client = "10.244.0.9".parse().expect("ip");
        let first = t.pick(client, addr("10.96.0.20:80"));
        for _ in 0..5 {
            assert_eq!(t.pick(client, addr("10.96.0.20:80")), first);
        }
        t.rebuild(&[svc], &[]);
        assert_eq!(t.pick(client, addr("10.96.0.20:80")), Pick::NoEndpoints);
    }
}
