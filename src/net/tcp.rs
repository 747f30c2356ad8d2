//! TCP inside the network: who listens on which address and port, and connecting
//! to them over in-memory pipes. A listener belongs to a host address (a pod IP,
//! or a virtual address such as the kube-dns ClusterIP); one bound to loopback is
//! reachable only from its own pod.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use super::{Conn, NetError, Network};

/// Bytes buffered in each direction of an in-memory connection.
const PIPE: usize = 256 * 1024;
/// Connections waiting to be accepted before new ones are refused.
const BACKLOG: usize = 128;
/// The ephemeral port range (Linux's default).
const EPHEMERAL: (u32, u32) = (32768, 60999);

struct Entry {
    id: u64,
    loopback_only: bool,
    tx: mpsc::Sender<Conn>,
}

/// Every listener of a network, by host address and port.
#[derive(Default)]
pub(crate) struct Table {
    entries: Mutex<HashMap<(IpAddr, u16), Entry>>,
    next_id: AtomicU64,
    next_port: AtomicU32,
}

impl Table {
    /// A port number for the local end of an outgoing connection.
    pub(crate) fn ephemeral_port(&self) -> u16 {
        let span = EPHEMERAL.1 - EPHEMERAL.0 + 1;
        let n = self.next_port.fetch_add(1, Ordering::Relaxed) % span;
        u16::try_from(EPHEMERAL.0 + n).unwrap_or(u16::MAX)
    }

    /// Listen on `host`'s `at.port()` (0: a free ephemeral port); `loopback_only`
    /// is `None` for virtual hosts.
    pub(crate) fn listen(
        &self,
        net: &Network,
        host: IpAddr,
        at: SocketAddr,
        loopback_only: Option<bool>,
    ) -> Result<Listener, NetError> {
        let mut entries = self.entries.lock().map_err(|_| NetError::AddrInUse)?;
        let port = if at.port() != 0 {
            at.port()
        } else {
            let free = (0..=(EPHEMERAL.1 - EPHEMERAL.0))
                .map(|_| self.ephemeral_port())
                .find(|p| !entries.contains_key(&(host, *p)));
            free.ok_or(NetError::AddrInUse)?
        };
        if entries.contains_key(&(host, port)) {
            return Err(NetError::AddrInUse);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(BACKLOG);
        entries.insert(
            (host, port),
            Entry {
                id,
                loopback_only: loopback_only.unwrap_or(false),
                tx,
            },
        );
        Ok(Listener {
            rx,
            key: (host, port),
            id,
            local: SocketAddr::new(at.ip(), port),
            net: net.clone(),
        })
    }

    fn remove(&self, key: (IpAddr, u16), id: u64) {
        if let Ok(mut entries) = self.entries.lock()
            && entries.get(&key).is_some_and(|e| e.id == id)
        {
            entries.remove(&key);
        }
    }

    /// Whether something listens at `addr`.
    pub(crate) fn has(&self, addr: SocketAddr) -> bool {
        self.entries
            .lock()
            .map(|e| e.contains_key(&(addr.ip(), addr.port())))
            .unwrap_or(false)
    }

    /// Whether anything listens on `host`.
    pub(crate) fn has_host(&self, host: IpAddr) -> bool {
        self.entries
            .lock()
            .map(|e| e.keys().any(|(h, _)| *h == host))
            .unwrap_or(false)
    }

    /// Connect `local` to the listener on `host`'s `dst.port()`; `via_loopback`
    /// when the pod dials its own loopback.
    pub(crate) fn connect(
        &self,
        host: IpAddr,
        dst: SocketAddr,
        local: SocketAddr,
        via_loopback: bool,
    ) -> Result<Conn, NetError> {
        let tx = {
            let entries = self.entries.lock().map_err(|_| NetError::Refused)?;
            let entry = entries.get(&(host, dst.port())).ok_or(NetError::Refused)?;
            if entry.loopback_only && !via_loopback {
                return Err(NetError::Refused);
            }
            entry.tx.clone()
        };
        let (ours, theirs) = tokio::io::duplex(PIPE);
        let accepted = Conn {
            stream: Box::new(theirs),
            local: dst,
            peer: local,
        };
        tx.try_send(accepted).map_err(|_| NetError::Refused)?;
        Ok(Conn {
            stream: Box::new(ours),
            local,
            peer: dst,
        })
    }
}

/// A listening socket of the network; dropping it stops listening.
pub struct Listener {
    rx: mpsc::Receiver<Conn>,
    key: (IpAddr, u16),
    id: u64,
    local: SocketAddr,
    net: Network,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// The address listened on (its port resolved when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next connection (`None` once the listener is closed).
    pub async fn accept(&mut self) -> Option<Conn> {
        self.rx.recv().await
    }

    /// The next connection, if one is waiting.
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Option<Conn>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.net.inner.listeners.remove(self.key, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Egress, PodInfo};
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[tokio::test]
    async fn pods_reach_each_other_and_their_own_loopback_only() {
        let net = Network::new(Egress::Deny);
        let a = net.attach(ip("10.244.0.2"), PodInfo::default());
        let b = net.attach(ip("10.244.0.3"), PodInfo::default());
        let mut open = a
            .listen("0.0.0.0:8080".parse().expect("addr"))
            .expect("listen");
        let mut private = a
            .listen("127.0.0.1:9000".parse().expect("addr"))
            .expect("listen");

        let mut c = b
            .connect("10.244.0.2:8080".parse().expect("addr"))
            .await
            .expect("connect");
        c.stream.write_all(b"ping").await.expect("write");
        let mut s = open.accept().await.expect("accepted");
        assert_eq!(s.peer.ip(), ip("10.244.0.3"));
        assert_eq!(s.local, "10.244.0.2:8080".parse().expect("addr"));
        let mut buf = [0; 4];
        s.stream.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"ping");

        // Loopback: the pod's own listeners, including loopback-only ones.
        a.connect("127.0.0.1:8080".parse().expect("addr"))
            .await
            .expect("own loopback");
        a.connect("127.0.0.1:9000".parse().expect("addr"))
            .await
            .expect("own private");
        assert!(
            private
                .poll_accept(&mut Context::from_waker(std::task::Waker::noop()))
                .is_ready()
        );
        assert!(matches!(
            b.connect("10.244.0.2:9000".parse().expect("addr")).await,
            Err(NetError::Refused)
        ));
        assert!(matches!(
            b.connect("127.0.0.1:8080".parse().expect("addr")).await,
            Err(NetError::Refused)
        ));
        // Nobody at that address; the outside is closed.
        assert!(matches!(
            b.connect("10.244.0.99:80".parse().expect("addr")).await,
            Err(NetError::Unreachable)
        ));
        assert!(matches!(
            b.connect("192.0.2.1:80".parse().expect("addr")).await,
            Err(NetError::Denied)
        ));
        // Binding twice fails; dropping the listener (or the pod) frees the port.
        assert!(matches!(
            a.listen("10.244.0.2:8080".parse().expect("addr")),
            Err(NetError::AddrInUse)
        ));
        drop(open);
        a.listen("10.244.0.2:8080".parse().expect("addr"))
            .expect("free again");
        // A pod gone (with its listeners): its address is unreachable.
        drop(private);
        drop(a);
        assert!(matches!(
            b.connect("10.244.0.2:8080".parse().expect("addr")).await,
            Err(NetError::Unreachable)
        ));
    }

    #[tokio::test]
    async fn two_networks_with_the_same_addresses_do_not_meet() {
        let one = Network::new(Egress::Deny);
        let two = Network::new(Egress::Deny);
        let a1 = one.attach(ip("10.244.0.2"), PodInfo::default());
        let _l = a1
            .listen("0.0.0.0:80".parse().expect("addr"))
            .expect("listen");
        let _a2 = two.attach(ip("10.244.0.2"), PodInfo::default());
        let b2 = two.attach(ip("10.244.0.3"), PodInfo::default());
        assert!(matches!(
            b2.connect("10.244.0.2:80".parse().expect("addr")).await,
            Err(NetError::Refused)
        ));
    }
}
