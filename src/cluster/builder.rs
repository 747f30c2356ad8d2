//! The options half of [`ClusterBuilder`]: what can be set before a cluster starts,
//! and the defaults (`start` and the wiring live in the parent module).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{controllers, store};

/// Where the cluster keeps its state.
#[derive(Debug, Clone)]
pub(super) enum Storage {
    Memory,
    Dir(PathBuf),
}

/// Builds a [`Cluster`](super::Cluster).
///
/// Defaults: state in memory; listen on `127.0.0.1:0` (an ephemeral port); no
/// kubeconfig written; watch history of 100 000 events; bookmarks every 60 s;
/// image pull back-off from 10 s (doubling to 5 min); no hostPath volumes allowed
/// (pods using one stay ContainerCreating with a `FailedMount` event); the garbage
/// collector runs; the CronJob controller reads the system clock; cluster DNS serves
/// `cluster.local` in-process only (no host listener) and forwards other names to
/// the host's `/etc/resolv.conf` nameservers (pod egress allowed); no Ingress
/// listener (Ingresses are accepted but not served). Images are stored
/// under `DATA/images`, and volumes the local-path provisioner makes for claims
/// (class `standard`, the default) under `DATA/volumes`; an in-memory cluster keeps
/// both in its temporary dir.
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    pub(super) storage: Storage,
    pub(super) listen: SocketAddr,
    pub(super) kubeconfig: Option<PathBuf>,
    pub(super) context: String,
    pub(super) watch_history: usize,
    pub(super) bookmark_interval: Duration,
    pub(super) image_pull_backoff: Duration,
    pub(super) restart_backoff: Duration,
    pub(super) host_path_root: Option<PathBuf>,
    pub(super) nodes: usize,
    pub(super) node_capacity: Option<crate::kubelet::node::Capacity>,
    pub(super) garbage_collector: bool,
    pub(super) cronjob_clock: crate::controllers::cronjob::Clock,
    pub(super) autoscaler_sync_period: Duration,
    pub(super) pod_egress: crate::net::Egress,
    pub(super) node_address: std::net::IpAddr,
    pub(super) dns_listen: Option<SocketAddr>,
    pub(super) dns_upstream: Option<Vec<SocketAddr>>,
    pub(super) ingress_listen: Option<SocketAddr>,
    pub(super) ingress_tls_listen: Option<SocketAddr>,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        ClusterBuilder {
            storage: Storage::Memory,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig: None,
            context: "minke".into(),
            watch_history: store::Options::default().history,
            bookmark_interval: Duration::from_secs(60),
            image_pull_backoff: crate::kubelet::pull::FIRST_BACKOFF,
            restart_backoff: crate::kubelet::worker::FIRST_BACKOFF,
            host_path_root: None,
            nodes: 1,
            node_capacity: None,
            garbage_collector: true,
            cronjob_clock: crate::controllers::cronjob::Clock::system(),
            autoscaler_sync_period: controllers::autoscaler::SYNC_PERIOD,
            pod_egress: crate::net::Egress::Allow,
            node_address: std::net::IpAddr::from([127, 0, 0, 1]),
            dns_listen: None,
            dns_upstream: None,
            ingress_listen: None,
            ingress_tls_listen: None,
        }
    }
}

impl ClusterBuilder {
    /// Keep state in memory only (the default).
    #[must_use]
    pub fn in_memory(mut self) -> Self {
        self.storage = Storage::Memory;
        self
    }

    /// Keep state (store, CA, token) under `dir`; a second cluster on the same dir fails.
    #[must_use]
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.storage = Storage::Dir(dir.into());
        self
    }

    /// Listen address; port 0 picks a free port.
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Merge a context into the kubeconfig at `path` once the API is up.
    #[must_use]
    pub fn kubeconfig(mut self, path: impl Into<PathBuf>) -> Self {
        self.kubeconfig = Some(path.into());
        self
    }

    /// Name of the kubeconfig context, cluster and user (default `minke`).
    #[must_use]
    pub fn context(mut self, name: impl Into<String>) -> Self {
        self.context = name.into();
        self
    }

    /// How many past events watchers can resume from (older resourceVersions get 410).
    #[must_use]
    pub fn watch_history(mut self, events: usize) -> Self {
        self.watch_history = events;
        self
    }

    /// How often watches with `allowWatchBookmarks` receive a bookmark.
    #[must_use]
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.bookmark_interval = every;
        self
    }

    /// The first back-off after a failed image pull (default 10 s, as the kubelet's);
    /// it doubles up to 5 min. Tests shorten it.
    #[must_use]
    pub fn image_pull_backoff(mut self, first: Duration) -> Self {
        self.image_pull_backoff = first;
        self
    }

    /// The first back-off before a container that exited is restarted (default
    /// 10 s, as the kubelet's); it doubles up to 5 min. Tests shorten it.
    #[must_use]
    pub fn restart_backoff(mut self, first: Duration) -> Self {
        self.restart_backoff = first;
        self
    }

    /// Allow `hostPath` volumes under `dir` (which must exist), and nowhere else:
    /// paths are checked after resolving symlinks and `..`. Default: none allowed.
    #[must_use]
    pub fn host_path_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.host_path_root = Some(dir.into());
        self
    }

    /// Run `n` virtual nodes (1 to 16), each with its own kubelet, capacity and
    /// block of pod IPs: the first is named for this machine, the others
    /// `NAME-m02`, `NAME-m03`, … Default 1.
    #[must_use]
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    /// What each node offers (default: this machine's CPUs and memory, 1 000 pods).
    #[must_use]
    pub fn node_capacity(mut self, capacity: crate::kubelet::node::Capacity) -> Self {
        self.node_capacity = Some(capacity);
        self
    }

    /// Run the garbage collector (default true). Off, as with Kubernetes'
    /// `--enable-garbage-collector=false`, nothing deletes dependents of deleted owners
    /// and deletes add no `orphan`/`foregroundDeletion` finalizers that nothing would
    /// remove.
    #[must_use]
    pub fn garbage_collector(mut self, enabled: bool) -> Self {
        self.garbage_collector = enabled;
        self
    }

    /// The clock the CronJob controller schedules by (default: the system clock).
    /// Tests hand in a [`Clock`](crate::controllers::cronjob::Clock) they keep a clone
    /// of and [`advance`](crate::controllers::cronjob::Clock::advance) it past a
    /// schedule point instead of waiting; nothing else in the cluster reads it.
    #[must_use]
    pub fn cronjob_clock(mut self, clock: crate::controllers::cronjob::Clock) -> Self {
        self.cronjob_clock = clock;
        self
    }

    /// How often the horizontal pod autoscaler looks at each HPA (default 15 s, as
    /// Kubernetes' `--horizontal-pod-autoscaler-sync-period`).
    #[must_use]
    pub fn autoscaler_sync_period(mut self, every: Duration) -> Self {
        self.autoscaler_sync_period = every;
        self
    }

    /// Whether pods may reach addresses outside the cluster (allowed by default,
    /// as in Kubernetes).
    pub fn pod_egress(mut self, egress: crate::net::Egress) -> Self {
        self.pod_egress = egress;
        self
    }

    /// The host address NodePorts and LoadBalancer ports listen on (default
    /// 127.0.0.1). Any 127.x.y.z works on Linux, so parallel clusters can each
    /// take their own.
    pub fn node_address(mut self, ip: std::net::IpAddr) -> Self {
        self.node_address = ip;
        self
    }

    /// Serve cluster DNS on the host at `addr`, UDP and TCP on the same port (port 0
    /// picks a free one; [`Cluster::dns_addr`](super::Cluster::dns_addr) tells which). Default: no host listener.
    #[must_use]
    pub fn dns_listen(mut self, addr: SocketAddr) -> Self {
        self.dns_listen = Some(addr);
        self
    }

    /// The nameservers DNS forwards names outside the cluster to (default: the
    /// host's `/etc/resolv.conf` ones).
    #[must_use]
    pub fn dns_upstream(mut self, servers: Vec<SocketAddr>) -> Self {
        self.dns_upstream = Some(servers);
        self
    }

    /// Serve Ingresses over plain HTTP on the host at `addr` (port 0 picks a free
    /// one; [`Cluster::ingress_addr`](super::Cluster::ingress_addr) tells which); `None` (the default): no HTTP
    /// listener.
    #[must_use]
    pub fn ingress_listen(mut self, addr: Option<SocketAddr>) -> Self {
        self.ingress_listen = addr;
        self
    }

    /// Serve Ingresses over HTTPS (certificates from their `spec.tls` Secrets,
    /// chosen by SNI) on the host at `addr` (port 0 picks a free one;
    /// [`Cluster::ingress_tls_addr`](super::Cluster::ingress_tls_addr) tells which); `None` (the default): no HTTPS
    /// listener.
    #[must_use]
    pub fn ingress_tls_listen(mut self, addr: Option<SocketAddr>) -> Self {
        self.ingress_tls_listen = addr;
        self
    }
}
