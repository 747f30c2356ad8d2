//! The per-cluster DNS server: its configuration, its start (the zone watch and the
//! optional host listener) and the entry points the rest of minke calls.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_proto::rr::Name;
use hickory_server::net::xfer::Protocol;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::resolve::Error as LookupError;
use super::upstream::Upstream;
use super::zone::{Zone, ZoneBuilder};
use super::{handler, listener, watch};

/// The cluster domain, as every kubelet's `--cluster-domain` default.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Why DNS could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster domain is not a DNS name.
    #[error("invalid cluster domain {domain:?}: {reason}")]
    Domain {
        /// The domain given.
        domain: String,
        /// Why it is not a name.
        reason: String,
    },
    /// The host listener could not bind its address.
    #[error("cannot listen for DNS on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// How a cluster's DNS behaves.
///
/// Defaults: domain `cluster.local`; names outside it forwarded to the host's
/// `/etc/resolv.conf` nameservers (pod egress allowed, as in Kubernetes).
#[derive(Debug, Clone)]
pub struct Config {
    /// The cluster domain.
    pub domain: String,
    /// Forward names outside the cluster upstream; when false they are NXDOMAIN.
    pub egress: bool,
    /// Where forwarded names go.
    pub upstream: Upstream,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domain: CLUSTER_DOMAIN.into(),
            egress: true,
            upstream: Upstream::system(),
        }
    }
}

/// A cluster's DNS server. Cheap to clone; every clone answers from the same zone,
/// which the cluster keeps current while it runs.
#[derive(Clone)]
pub struct Dns {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("domain", &self.inner.domain.to_string())
            .field("upstream", &self.inner.upstream)
            .finish_non_exhaustive()
    }
}

/// What every clone of a [`Dns`] shares.
pub(crate) struct Inner {
    /// The cluster domain, fully qualified.
    pub(super) domain: Name,
    /// The current zone snapshot.
    zone: tokio::sync::watch::Receiver<Arc<Zone>>,
    /// Where names outside the cluster go; `None` when pod egress is denied.
    pub(super) upstream: Option<Upstream>,
    /// Set once the first snapshot built from the cluster's objects is in (or waiting
    /// for it timed out).
    ready: AtomicBool,
}

/// How long the first questions wait for the zone's first full build.
const SYNC_WAIT: Duration = Duration::from_secs(5);

impl Inner {
    /// The current zone snapshot; the first callers wait (up to [`SYNC_WAIT`]) for the
    /// first one built from the cluster, so a fresh cluster never denies its names.
    pub(super) async fn zone(&self) -> Arc<Zone> {
        if !self.ready.load(Ordering::Acquire) {
            let mut first = self.zone.clone();
            let _ = tokio::time::timeout(SYNC_WAIT, first.changed()).await;
            self.ready.store(true, Ordering::Release);
        }
        self.zone.borrow().clone()
    }
}

impl Dns {
    /// Start keeping the zone of the cluster `client` talks to current (a task on
    /// `tasks`, stopped by `shutdown`).
    pub(crate) fn start(
        client: kube::Client,
        config: Config,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Dns, Error> {
        let (dns, publish) = Dns::new(config)?;
        let origin = dns.inner.domain.clone();
        crate::controllers::spawn("dns", tasks, shutdown, watch::run(client, origin, publish));
        Ok(dns)
    }

    /// A server with an empty zone, and the sender that publishes new snapshots.
    pub(super) fn new(
        config: Config,
    ) -> Result<(Dns, tokio::sync::watch::Sender<Arc<Zone>>), Error> {
        let domain = fqdn(&config.domain).map_err(|reason| Error::Domain {
            domain: config.domain.clone(),
            reason,
        })?;
        let (publish, zone) =
            tokio::sync::watch::channel(Arc::new(ZoneBuilder::new(domain.clone()).build(0)));
        let inner = Inner {
            domain,
            zone,
            upstream: config.egress.then_some(config.upstream),
            ready: AtomicBool::new(false),
        };
        Ok((
            Dns {
                inner: Arc::new(inner),
            },
            publish,
        ))
    }

    /// Wait until the zone reflects the cluster's objects (the first full sync of
    /// every watch); immediate once it has.
    pub async fn synced(&self) {
        let mut zone = self.inner.zone.clone();
        // The shared receiver never marks values seen, so a clone sees any snapshot
        // published since the empty initial one as a change.
        let _ = zone.changed().await;
    }

    /// The cluster domain (`cluster.local`).
    pub fn domain(&self) -> String {
        self.inner
            .domain
            .to_string()
            .trim_end_matches('.')
            .to_string()
    }

    /// Whether names outside the cluster are forwarded upstream.
    pub fn egress(&self) -> bool {
        self.inner.upstream.is_some()
    }

    /// Resolve `name` as a pod in `namespace` would with its resolv.conf (`search
    /// <ns>.svc.cluster.local svc.cluster.local cluster.local`, `options ndots:5`): a
    /// name with fewer than five dots tries the search list first, one with a trailing
    /// dot only itself. IPv4 addresses come before IPv6; CNAMEs are followed; IP
    /// literals and `localhost` (every pod's /etc/hosts) resolve to themselves.
    /// Names outside the cluster are asked upstream when egress is allowed.
    pub async fn lookup_ip(&self, name: &str, namespace: &str) -> Result<Vec<IpAddr>, LookupError> {
        self.inner.lookup_ip(name, namespace).await
    }

    /// Answer one DNS message received over UDP (wire format in, wire format out; the
    /// answer is truncated with TC set when it exceeds 512 bytes or the query's EDNS
    /// size). `None` when nothing should be sent back: the message is shorter than a
    /// header, or is itself a response.
    pub async fn answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        handler::answer(&handler::Handler(self.inner.clone()), query, Protocol::Udp).await
    }

    /// As [`Dns::answer`], for a message received over TCP (without the two-byte
    /// length prefix): never truncated.
    pub async fn answer_tcp(&self, query: &[u8]) -> Option<Vec<u8>> {
        handler::answer(&handler::Handler(self.inner.clone()), query, Protocol::Tcp).await
    }

    /// Serve this DNS on the host at `addr` (UDP and TCP, the same port; port 0 picks
    /// a free one) until `shutdown`; returns the bound address.
    pub(crate) async fn listen(
        &self,
        addr: SocketAddr,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<SocketAddr, Error> {
        let (udp, tcp, bound) = listener::bind(addr)
            .await
            .map_err(|source| Error::Listen { addr, source })?;
        listener::serve(
            handler::Handler(self.inner.clone()),
            udp,
            tcp,
            shutdown,
            tasks,
        );
        tracing::info!(addr = %bound, "DNS listening");
        Ok(bound)
    }
}

/// `domain` as a fully qualified name.
fn fqdn(domain: &str) -> Result<Name, String> {
    let mut name = Name::from_ascii(domain.trim_end_matches('.')).map_err(|e| e.to_string())?;
    if name.is_root() || name.num_labels() == 0 {
        return Err("empty".into());
    }
    name.set_fqdn(true);
    Ok(name)
}
