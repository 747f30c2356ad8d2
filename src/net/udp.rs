//! UDP in the pod network: datagram sockets bound on a pod's IP (and its own
//! loopback) or on a cluster address (kube-dns on 10.96.0.10:53), delivered in
//! memory; a Service's ClusterIP spreads datagrams over its endpoints as
//! kube-proxy does, and conntrack makes the answers come back from the ClusterIP;
//! addresses outside the cluster go through a host UDP socket when egress is
//! allowed. Like a real network, a datagram nobody is bound for, or one that finds
//! the receiver's queue full, is dropped.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Egress, NetError, Network, addr, services};

/// Datagrams queued per socket before more are dropped (its receive buffer).
const QUEUE: usize = 512;
/// Ephemeral ports for sockets bound to port 0.
const EPHEMERAL: (u32, u32) = (32768, 60999);
/// How long a Service's UDP "connection" (client ↔ endpoint) is remembered.
const CONNTRACK: Duration = Duration::from_secs(120);
/// The largest datagram.
pub const MAX_DATAGRAM: usize = 65_507;

/// A received datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The payload.
    pub data: Vec<u8>,
    /// Who sent it (a Service's ClusterIP for answers through a Service).
    pub from: SocketAddr,
}

/// Where a bound socket receives: its pod's (or the cluster's) scope and address.
/// Loopback addresses are per pod, so the scope is part of the key.
type Key = (IpAddr, SocketAddr);

/// The bound sockets of one network, and the Services' UDP conntrack.
#[derive(Default)]
pub(crate) struct Table {
    bound: Mutex<HashMap<Key, mpsc::Sender<Datagram>>>,
    /// (endpoint, client) → the Service address the client sent to.
    conntrack: Mutex<HashMap<(SocketAddr, SocketAddr), (SocketAddr, Instant)>>,
    /// Flows NetworkPolicies admitted (sender, receiver), so replies pass.
    admitted: Mutex<HashMap<(SocketAddr, SocketAddr), Instant>>,
    next_port: AtomicU32,
}

impl Table {
    fn ephemeral(&self, scope: IpAddr, ip: IpAddr) -> Option<u16> {
        let bound = self.bound.lock().ok()?;
        let span = EPHEMERAL.1 - EPHEMERAL.0 + 1;
        (0..span).find_map(|_| {
            let n = self.next_port.fetch_add(1, Ordering::Relaxed) % span;
            let port = u16::try_from(EPHEMERAL.0 + n).ok()?;
            (!bound.contains_key(&(scope, SocketAddr::new(ip, port)))).then_some(port)
        })
    }
}

/// A bound UDP socket. Dropping it releases its address.
pub struct Socket {
    net: Network,
    /// The pod it belongs to (`None`: the cluster's own, e.g. kube-dns).
    pod: Option<IpAddr>,
    local: SocketAddr,
    keys: Vec<Key>,
    tx: mpsc::Sender<Datagram>,
    rx: tokio::sync::Mutex<mpsc::Receiver<Datagram>>,
    /// The host socket egress goes through, made on first use; its receive task.
    host: OnceLock<(Arc<tokio::net::UdpSocket>, tokio::task::AbortHandle)>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let Ok(mut bound) = self.net.inner.udp.bound.lock() {
            for k in &self.keys {
                bound.remove(k);
            }
        }
        if let Some((_, task)) = self.host.get() {
            task.abort();
        }
    }
}

impl Network {
    /// Bind a UDP socket at `addr` for `pod` (`None`: for the cluster itself, on
    /// any address). A pod binds its IP, loopback, or the unspecified address
    /// (both); port 0 picks a free one.
    pub(crate) fn bind_udp(
        &self,
        pod: Option<IpAddr>,
        addr: SocketAddr,
    ) -> Result<Socket, NetError> {
        let (scope, ips): (IpAddr, Vec<IpAddr>) = match pod {
            None => (addr.ip(), vec![addr.ip()]),
            Some(own) if addr.ip().is_unspecified() => (own, vec![own, Ipv4Addr::LOCALHOST.into()]),
            Some(own) if addr.ip() == own || addr.ip().is_loopback() => (own, vec![addr.ip()]),
            Some(_) => return Err(NetError::AddrNotAvailable),
        };
        let table = &self.inner.udp;
        let port = match addr.port() {
            0 => table.ephemeral(scope, ips[0]).ok_or(NetError::AddrInUse)?,
            p => p,
        };
        let keys: Vec<Key> = ips
            .iter()
            .map(|ip| (scope, SocketAddr::new(*ip, port)))
            .collect();
        let (tx, rx) = mpsc::channel(QUEUE);
        {
            let mut bound = table.bound.lock().map_err(|_| NetError::AddrInUse)?;
            if keys.iter().any(|k| bound.contains_key(k)) {
                return Err(NetError::AddrInUse);
            }
            for k in &keys {
                bound.insert(*k, tx.clone());
            }
        }
        Ok(Socket {
            net: self.clone(),
            pod,
            local: SocketAddr::new(ips[0], port),
            keys,
            tx,
            rx: tokio::sync::Mutex::new(rx),
            host: OnceLock::new(),
        })
    }

    /// Hand `data` from `from` (in scope `scope`) to whoever is bound at `to`,
    /// through a Service's ClusterIP when `to` is one. Dropped quietly when nobody
    /// is (as a datagram is); `Err` only when egress is refused.
    fn deliver(
        &self,
        pod: Option<IpAddr>,
        scope: IpAddr,
        from: SocketAddr,
        to: SocketAddr,
        data: &[u8],
    ) -> Result<bool, NetError> {
        let table = &self.inner.udp;
        let now = Instant::now();
        let sender = from;
        // An answer from an endpoint to a Service's client comes from the Service.
        let from = match table.conntrack.lock() {
            Ok(mut ct) => match ct.get_mut(&(from, to)) {
                Some((service, at)) if now.duration_since(*at) < CONNTRACK => {
                    *at = now;
                    *service
                }
                _ => from,
            },
            Err(_) => from,
        };
        let own = |to: SocketAddr| {
            table
                .bound
                .lock()
                .is_ok_and(|b| b.contains_key(&(to.ip(), to)))
        };
        let to = match self.inner.services.pick_udp(from.ip(), to) {
            // The cluster's own socket on a Service address (kube-dns) answers itself.
            _ if own(to) => to,
            services::Pick::Backend(b) => {
                if let Ok(mut ct) = table.conntrack.lock() {
                    ct.retain(|_, (_, at)| now.duration_since(*at) < CONNTRACK);
                    ct.insert((b, from), (to, now));
                }
                b
            }
            services::Pick::NoEndpoints => return Ok(false),
            services::Pick::NotAService => to,
        };
        if !to.ip().is_loopback() && !self.admits(pod, sender, to, now) {
            return Ok(false);
        }
        let key = if to.ip().is_loopback() {
            (scope, to)
        } else {
            (to.ip(), to)
        };
        let sender = table.bound.lock().ok().and_then(|b| b.get(&key).cloned());
        match sender {
            Some(tx) => Ok(tx
                .try_send(Datagram {
                    data: data.to_vec(),
                    from,
                })
                .is_ok()),
            None if to.ip().is_loopback() || addr::in_cluster(to.ip()) => Ok(false),
            None => Err(NetError::Unreachable),
        }
    }
}

impl Network {
    /// Whether NetworkPolicies let a datagram from `sender` (of `pod`) to `to` (an
    /// endpoint) pass: a reply on an admitted flow always does, as conntrack lets it.
    fn admits(
        &self,
        pod: Option<IpAddr>,
        sender: SocketAddr,
        to: SocketAddr,
        now: Instant,
    ) -> bool {
        let table = &self.inner.udp;
        let fresh = |at: &Instant| now.duration_since(*at) < CONNTRACK;
        if let Ok(admitted) = table.admitted.lock()
            && admitted.get(&(to, sender)).is_some_and(fresh)
        {
            return true;
        }
        if !self.policy_allows(pod, to, super::policy::Protocol::Udp) {
            return false;
        }
        if let Ok(mut admitted) = table.admitted.lock() {
            if admitted.len() > 4096 {
                admitted.retain(|_, at| fresh(at));
            }
            admitted.insert((sender, to), now);
        }
        true
    }
}

impl Socket {
    /// The address it is bound to (the pod IP for the unspecified address).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next datagram, waiting for one (cancel-safe).
    pub async fn recv(&self) -> Option<Datagram> {
        self.rx.lock().await.recv().await
    }

    /// The next datagram if one is queued (and nobody else is receiving).
    pub fn try_recv(&self) -> Option<Datagram> {
        self.rx.try_lock().ok()?.try_recv().ok()
    }

    /// Send `data` to `to`: inside the cluster in memory (dropped if nobody is
    /// bound there), outside through the host when egress allows.
    pub fn send(&self, data: &[u8], to: SocketAddr) -> Result<(), NetError> {
        if data.len() > MAX_DATAGRAM {
            return Err(NetError::Io(std::io::Error::other("datagram too large")));
        }
        let scope = self.pod.unwrap_or(self.local.ip());
        let from_ip = if to.ip().is_loopback() {
            to.ip()
        } else {
            self.pod.unwrap_or(self.local.ip())
        };
        let from = SocketAddr::new(from_ip, self.local.port());
        match self.net.deliver(self.pod, scope, from, to, data) {
            Err(NetError::Unreachable) => self.egress(data, to),
            other => other.map(|_| ()),
        }
    }

    fn egress(&self, data: &[u8], to: SocketAddr) -> Result<(), NetError> {
        if self.net.inner.egress == Egress::Deny || self.pod.is_none() {
            return Err(NetError::Denied);
        }
        let (host, _) = match self.host.get() {
            Some(h) => h,
            None => {
                let std = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
                std.set_nonblocking(true)?;
                let host = Arc::new(tokio::net::UdpSocket::from_std(std)?);
                let (reader, tx) = (host.clone(), self.tx.clone());
                let task = tokio::spawn(async move {
                    let mut buf = vec![0u8; MAX_DATAGRAM];
                    while let Ok((n, from)) = reader.recv_from(&mut buf).await {
                        let datagram = Datagram {
                            data: buf[..n].to_vec(),
                            from,
                        };
                        if tx.try_send(datagram).is_err() && tx.is_closed() {
                            return;
                        }
                    }
                });
                let _ = self.host.set((host, task.abort_handle()));
                self.host.get().ok_or(NetError::Denied)?
            }
        };
        match host.try_send_to(data, to) {
            Ok(_) => Ok(()),
            // A full host send buffer drops the datagram, as UDP may.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::PodInfo;

    fn info(name: &str) -> PodInfo {
        PodInfo {
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[tokio::test]
    async fn pods_exchange_datagrams_and_loopback_stays_inside_a_pod() {
        let net = Network::new(Egress::Deny);
        let (a, b): (IpAddr, IpAddr) =
            ("10.244.0.2".parse().unwrap(), "10.244.0.3".parse().unwrap());
        let _pa = net.attach(a, info("a"));
        let _pb = net.attach(b, info("b"));
        let server = net
            .bind_udp(Some(b), "0.0.0.0:53".parse().unwrap())
            .unwrap();
        let client = net.bind_udp(Some(a), "0.0.0.0:0".parse().unwrap()).unwrap();
        client.send(b"ping", SocketAddr::new(b, 53)).unwrap();
        let got = server.recv().await.unwrap();
        assert_eq!(got.data, b"ping");
        assert_eq!(got.from.ip(), a);
        server.send(b"pong", got.from).unwrap();
        assert_eq!(client.recv().await.unwrap().data, b"pong");
        // a's loopback does not reach b's socket bound on the unspecified address.
        client.send(b"x", "127.0.0.1:53".parse().unwrap()).unwrap();
        assert!(server.try_recv().is_none());
        // The address is taken until the socket goes.
        assert!(matches!(
            net.bind_udp(Some(b), SocketAddr::new(b, 53)),
            Err(NetError::AddrInUse)
        ));
        drop(server);
        assert!(net.bind_udp(Some(b), SocketAddr::new(b, 53)).is_ok());
        // Outside the cluster with egress denied.
        assert!(matches!(
            client.send(b"x", "192.0.2.1:53".parse().unwrap()),
            Err(NetError::Denied)
        ));
    }

    #[tokio::test]
    async fn a_udp_service_spreads_datagrams_and_answers_come_from_its_cluster_ip() {
        use k8s_openapi::api::core::v1::Service;
        use k8s_openapi::api::discovery::v1::EndpointSlice;
        let net = Network::new(Egress::Deny);
        let ips: Vec<IpAddr> = ["10.244.0.2", "10.244.0.3", "10.244.0.4"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let _pods: Vec<_> = ips.iter().map(|ip| net.attach(*ip, info("p"))).collect();
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "dns", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.50", "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "tcp", "port": 53, "protocol": "TCP"}]}
        }))
        .unwrap();
        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "dns-x", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "dns"}},
            "addressType": "IPv4",
            "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"}],
            "endpoints": [{"addresses": ["10.244.0.3"]}, {"addresses": ["10.244.0.4"]}]
        }))
        .unwrap();
        net.services().rebuild(&[Arc::new(svc)], &[Arc::new(slice)]);
        let servers: Vec<Socket> = ips[1..]
            .iter()
            .map(|ip| net.bind_udp(Some(*ip), SocketAddr::new(*ip, 5353)).unwrap())
            .collect();
        let client = net
            .bind_udp(Some(ips[0]), "0.0.0.0:0".parse().unwrap())
            .unwrap();
        let vip: SocketAddr = "10.96.0.50:53".parse().unwrap();
        for _ in 0..2 {
            client.send(b"q", vip).unwrap();
        }
        for server in &servers {
            let q = server.recv().await.unwrap();
            assert_eq!(q.from, client.local_addr());
            server.send(b"a", q.from).unwrap();
            let answer = client.recv().await.unwrap();
            assert_eq!((answer.data.as_slice(), answer.from), (&b"a"[..], vip));
        }
        // The TCP port of the same number is not the UDP one's.
        assert_eq!(
            net.services()
                .pick_udp(ips[0], "10.96.0.50:54".parse().unwrap()),
            services::Pick::NotAService
        );
    }
}
