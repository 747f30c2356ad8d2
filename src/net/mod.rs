//! The virtual pod network of one cluster — the CNI plugin's and kube-proxy's roles,
//! in process. Pods attach with their IP ([`Network::attach`]); they listen and
//! connect over in-memory streams ([`tcp`]) and exchange datagrams ([`udp`]);
//! connections to a Service's ClusterIP are balanced over its ready endpoints
//! ([`services`]); NetworkPolicies judge each new connection and datagram
//! ([`policy`]); addresses outside the cluster reach the host's network when egress
//! is allowed. Every cluster owns its
//! own `Network`, so two clusters in one process with the same pod IPs never meet.
//!
//! What guests see of it: [`sockets`] implements `wasi:sockets` on top of it, and
//! [`http`] routes outgoing `wasi:http` requests through it.

pub mod addr;
pub(crate) mod backend_tls;
pub mod bridge;
pub mod cluster_dns;
pub mod http;
pub mod ingress;
pub mod ipam;
pub mod policy;
pub mod services;
pub mod sockets;
mod stream;
pub mod tcp;
pub mod udp;
mod watch;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

pub use stream::{Conn, Stream};
pub use tcp::Listener;

/// Why a network operation failed, as a socket would say it.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Nothing listens there (or a Service has no ready endpoint).
    #[error("connection refused")]
    Refused,
    /// No pod or Service has that address.
    #[error("host unreachable")]
    Unreachable,
    /// The cluster's policy forbids it (egress off).
    #[error("permission denied")]
    Denied,
    /// Someone already listens on that address and port.
    #[error("address in use")]
    AddrInUse,
    /// The address is not one the pod may bind.
    #[error("address not available")]
    AddrNotAvailable,
    /// An error from the host's network (egress).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Whether pods may reach addresses outside the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Egress {
    /// Allowed, as in Kubernetes.
    #[default]
    Allow,
    /// Only cluster addresses are reachable.
    Deny,
}

impl std::str::FromStr for Egress {
    type Err = String;
    fn from_str(s: &str) -> Result<Egress, String> {
        match s {
            "allow" => Ok(Egress::Allow),
            "deny" => Ok(Egress::Deny),
            other => Err(format!("--pod-egress must be allow or deny, not {other:?}")),
        }
    }
}

/// Name resolution as a pod sees it (the cluster DNS, with its search path).
pub trait Resolve: Send + Sync {
    /// The addresses `name` resolves to for a pod in `namespace`.
    fn lookup<'a>(
        &'a self,
        name: &'a str,
        namespace: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, LookupError>> + Send + 'a>>;
}

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The name does not exist (NXDOMAIN) or has no address.
    #[error("name not found")]
    NotFound,
    /// The resolver could not answer (upstream failure, timeout).
    #[error("temporary failure in name resolution")]
    Temporary,
}

/// A pod as the network knows it.
#[derive(Debug, Clone, Default)]
pub struct PodInfo {
    /// Namespace of the pod.
    pub namespace: String,
    /// Name of the pod.
    pub name: String,
}

/// One cluster's network (cheap to clone).
#[derive(Clone)]
pub struct Network {
    inner: Arc<Inner>,
}

struct Inner {
    egress: Egress,
    /// The address host-side connections (NodePorts, port-forward, probes) come from.
    node_ip: IpAddr,
    /// Attached pods, with the attachment that owns each address.
    pods: Mutex<HashMap<IpAddr, (u64, PodInfo)>>,
    next_attachment: std::sync::atomic::AtomicU64,
    listeners: tcp::Table,
    udp: udp::Table,
    services: services::Table,
    policies: policy::Table,
    resolver: OnceLock<Arc<dyn Resolve>>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("egress", &self.inner.egress)
            .finish_non_exhaustive()
    }
}

impl Network {
    /// An empty network.
    pub fn new(egress: Egress) -> Network {
        Network {
            inner: Arc::new(Inner {
                egress,
                node_ip: addr::NODE_GATEWAY,
                pods: Mutex::default(),
                next_attachment: std::sync::atomic::AtomicU64::new(1),
                listeners: tcp::Table::default(),
                udp: udp::Table::default(),
                services: services::Table::default(),
                policies: policy::Table::default(),
                resolver: OnceLock::new(),
            }),
        }
    }

    /// Whether pods may reach the outside.
    pub fn egress(&self) -> Egress {
        self.inner.egress
    }

    /// Use `resolver` for names (set once, when the cluster DNS starts).
    pub fn set_resolver(&self, resolver: Arc<dyn Resolve>) {
        let _ = self.inner.resolver.set(resolver);
    }

    /// Resolve `name` for a pod in `namespace`: IP literals as they are, the rest
    /// through the cluster DNS (or the host's resolver before it is set, when
    /// egress is allowed).
    pub async fn resolve(&self, name: &str, namespace: &str) -> Result<Vec<IpAddr>, LookupError> {
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if let Some(r) = self.inner.resolver.get() {
            return r.lookup(name, namespace).await;
        }
        if self.inner.egress == Egress::Deny {
            return Err(LookupError::NotFound);
        }
        match tokio::net::lookup_host((name, 0)).await {
            Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect()),
            Err(_) => Err(LookupError::NotFound),
        }
    }

    /// The Services table (the kube-proxy role), kept by [`services::run`].
    pub fn services(&self) -> &services::Table {
        &self.inner.services
    }

    /// Attach a pod: its IP becomes reachable (connections to ports nothing
    /// listens on are refused rather than unreachable). Dropping every clone of
    /// the handle detaches it and closes its listeners.
    pub fn attach(&self, ip: IpAddr, info: PodInfo) -> PodNet {
        let id = self
            .inner
            .next_attachment
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut pods) = self.inner.pods.lock() {
            pods.insert(ip, (id, info.clone()));
        }
        PodNet {
            attachment: Arc::new(Attachment {
                net: self.clone(),
                ip,
                id,
                info,
            }),
        }
    }

    /// Forget attachment `id` of `ip` (unless the address went to a newer pod).
    /// Its listeners close themselves as they are dropped.
    fn detach(&self, ip: IpAddr, id: u64) {
        if let Ok(mut pods) = self.inner.pods.lock()
            && pods.get(&ip).is_some_and(|(owner, _)| *owner == id)
        {
            pods.remove(&ip);
        }
    }

    fn is_pod(&self, ip: IpAddr) -> bool {
        self.inner
            .pods
            .lock()
            .map(|p| p.contains_key(&ip))
            .unwrap_or(false)
    }

    /// Listen at `addr` on behalf of the cluster itself (e.g. the DNS server on
    /// the kube-dns ClusterIP), not of a pod.
    pub fn listen_virtual(&self, addr: SocketAddr) -> Result<Listener, NetError> {
        self.inner.listeners.listen(self, addr.ip(), addr, None)
    }

    /// Connect from the node (host bridges, port-forward, probes) to `dst`.
    pub async fn connect_from_node(&self, dst: SocketAddr) -> Result<Conn, NetError> {
        self.connect(self.inner.node_ip, None, dst).await
    }

    /// Connect from `src` to `dst`: a pod's own loopback, a pod IP, a Service's
    /// ClusterIP (balanced), or the outside when egress allows it.
    async fn connect(
        &self,
        src: IpAddr,
        pod: Option<IpAddr>,
        dst: SocketAddr,
    ) -> Result<Conn, NetError> {
        let local = SocketAddr::new(src, self.inner.listeners.ephemeral_port());
        if dst.ip().is_loopback() {
            let own = pod.ok_or(NetError::Refused)?;
            return self.inner.listeners.connect(own, dst, local, true);
        }
        // The cluster's own listener on a Service address (kube-dns) answers itself.
        let dst = match self.inner.services.pick(src, dst) {
            _ if self.inner.listeners.has(dst) => dst,
            services::Pick::Backend(b) => b,
            services::Pick::NoEndpoints => return Err(NetError::Refused),
            services::Pick::NotAService => dst,
        };
        self.policy_check(pod, dst, policy::Protocol::Tcp).await?;
        if self.inner.listeners.has(dst) || addr::in_cluster(dst.ip()) {
            return match self.inner.listeners.connect(dst.ip(), dst, local, false) {
                Err(NetError::Refused)
                    if !self.is_pod(dst.ip()) && !self.inner.listeners.has_host(dst.ip()) =>
                {
                    Err(NetError::Unreachable)
                }
                other => other,
            };
        }
        if self.inner.egress == Egress::Deny {
            return Err(NetError::Denied);
        }
        let stream = tokio::net::TcpStream::connect(dst).await?;
        let local = stream.local_addr()?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream: Box::new(stream),
            local,
            peer: dst,
        })
    }
}

/// What a pod holds of the network: its address, and the right to listen on it.
#[derive(Clone)]
pub struct PodNet {
    attachment: Arc<Attachment>,
}

struct Attachment {
    net: Network,
    ip: IpAddr,
    id: u64,
    info: PodInfo,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.net.detach(self.ip, self.id);
    }
}

impl std::fmt::Debug for PodNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodNet")
            .field("ip", &self.attachment.ip)
            .finish_non_exhaustive()
    }
}

impl PodNet {
    /// The pod's IP.
    pub fn ip(&self) -> IpAddr {
        self.attachment.ip
    }

    /// The pod's namespace (its DNS search path starts there).
    pub fn namespace(&self) -> &str {
        &self.attachment.info.namespace
    }

    /// The network the pod is attached to.
    pub fn network(&self) -> &Network {
        &self.attachment.net
    }

    /// Listen at `addr`: the pod IP or the unspecified address (pod IP and
    /// loopback), or loopback only; port 0 picks a free one.
    pub fn listen(&self, addr: SocketAddr) -> Result<Listener, NetError> {
        let ip = self.attachment.ip;
        let loopback_only = addr.ip().is_loopback();
        if !(addr.ip().is_unspecified() || loopback_only || addr.ip() == ip) {
            return Err(NetError::AddrNotAvailable);
        }
        let at = SocketAddr::new(if loopback_only { addr.ip() } else { ip }, addr.port());
        self.attachment.net.inner.listeners.listen(
            &self.attachment.net,
            ip,
            at,
            Some(loopback_only),
        )
    }

    /// Connect to `dst` from this pod.
    pub async fn connect(&self, dst: SocketAddr) -> Result<Conn, NetError> {
        let ip = self.attachment.ip;
        let src = if dst.ip().is_loopback() { dst.ip() } else { ip };
        self.attachment.net.connect(src, Some(ip), dst).await
    }

    /// Bind a UDP socket at `addr`: the pod IP, loopback, or the unspecified
    /// address (both); port 0 picks a free one.
    pub fn bind_udp(&self, addr: SocketAddr) -> Result<udp::Socket, NetError> {
        self.attachment.net.bind_udp(Some(self.attachment.ip), addr)
    }

    /// Resolve `name` as this pod would (its namespace first in the search path).
    pub async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        self.attachment
            .net
            .resolve(name, &self.attachment.info.namespace)
            .await
    }
}
