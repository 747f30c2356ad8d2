//! `Cluster` and `ClusterBuilder`: configuration, wiring, start and graceful shutdown
//! of everything one minke runs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), minke::Error> {
//! let cluster = minke::Cluster::builder().in_memory().start().await?;
//! let client = cluster.client();
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::registry::Registry;
use crate::apiserver::{ApiServer, InProcess, Listener, Settings, Tls};
use crate::store::{self, Store};
use crate::{bootstrap, controllers, dns, kubeconfig, pki};

mod builder;

pub use builder::ClusterBuilder;
use builder::Storage;

/// Why a cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store could not be opened (e.g. the data dir is locked).
    #[error(transparent)]
    Store(#[from] store::Error),
    /// Credentials could not be loaded or generated.
    #[error(transparent)]
    Pki(#[from] pki::Error),
    /// The kubeconfig could not be written.
    #[error(transparent)]
    Kubeconfig(#[from] kubeconfig::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Creating the built-in objects failed.
    #[error("bootstrapping the cluster objects: {0}")]
    Bootstrap(String),
    /// Cluster DNS could not start (e.g. its host listener could not bind).
    #[error(transparent)]
    Dns(#[from] dns::Error),
    /// The Ingress proxy could not start (e.g. its host listener could not bind).
    #[error(transparent)]
    Ingress(#[from] crate::net::ingress::Error),
}

impl ClusterBuilder {
    /// Open the store, bind the port, start the API server and controllers, create the
    /// built-in objects, and write the kubeconfig.
    pub async fn start(self) -> Result<Cluster, Error> {
        let started = Instant::now();
        if !(1..=crate::net::ipam::MAX_NODES).contains(&self.nodes) {
            return Err(Error::Bootstrap(format!(
                "--nodes must be between 1 and {}, not {}",
                crate::net::ipam::MAX_NODES,
                self.nodes
            )));
        }
        let host_path_root =
            match &self.host_path_root {
                Some(dir) => Some(dir.canonicalize().map_err(|e| {
                    Error::Bootstrap(format!("host path root {}: {e}", dir.display()))
                })?),
                None => None,
            };
        let options = store::Options {
            history: self.watch_history,
            ..store::Options::default()
        };
        let store = match &self.storage {
            Storage::Memory => Store::in_memory(options)?,
            Storage::Dir(d) => Store::open(d, options)?,
        };
        let socket = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| Error::Listen {
                addr: self.listen,
                source,
            })?;
        let addr = socket.local_addr().map_err(|source| Error::Listen {
            addr: self.listen,
            source,
        })?;
        let host = addr.ip().to_string();
        let pki_dir = match &self.storage {
            Storage::Dir(d) => Some(d.join("pki")),
            Storage::Memory => None,
        };
        let creds = pki::load(pki_dir.as_deref(), std::slice::from_ref(&host))?;

        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let registry = Arc::new(Registry::builtin());
        let logs = match &self.storage {
            Storage::Dir(d) => Logs::Kept(d.join("pods")),
            Storage::Memory => Logs::temporary()
                .map_err(|e| Error::Bootstrap(format!("creating the log dir: {e}")))?,
        };
        let settings = Settings {
            advertise: addr.to_string(),
            bookmark_interval: self.bookmark_interval,
            logs_dir: Some(logs.path().to_path_buf()),
            garbage_collection: self.garbage_collector,
            ..Settings::default()
        };
        let api = ApiServer::new(
            store,
            registry.clone(),
            settings,
            shutdown.clone(),
            tasks.clone(),
        )
        .map_err(|e| Error::Bootstrap(e.message))?;
        tasks.spawn(crate::apiserver::serve(
            api.clone(),
            Listener { socket, addr },
            Tls {
                config: creds.server_config.clone(),
            },
            creds.token.clone(),
            shutdown.clone(),
            tasks.clone(),
        ));
        let client = InProcess::new(api.clone()).client();
        bootstrap::run(client.clone(), &host, addr.port())
            .await
            .map_err(|e| Error::Bootstrap(e.to_string()))?;
        let dns = dns::Dns::start(
            client.clone(),
            dns::Config {
                domain: dns::CLUSTER_DOMAIN.into(),
                egress: self.pod_egress == crate::net::Egress::Allow,
                upstream: match &self.dns_upstream {
                    Some(servers) => dns::Upstream::servers(servers.clone()),
                    None => dns::Upstream::system(),
                },
            },
            &tasks,
            shutdown.clone(),
        )?;
        let dns_addr = match self.dns_listen {
            Some(listen) => Some(dns.listen(listen, &tasks, shutdown.clone()).await?),
            None => None,
        };
        controllers::spawn(
            "namespace",
            &tasks,
            shutdown.clone(),
            controllers::namespace::run(controllers::namespace::Context {
                client: client.clone(),
                registry: registry.clone(),
            }),
        );
        controllers::spawn(
            "resourcequota",
            &tasks,
            shutdown.clone(),
            controllers::resourcequota::run(controllers::resourcequota::Context {
                client: client.clone(),
                registry: registry.clone(),
            }),
        );
        controllers::spawn(
            "horizontal-pod-autoscaler",
            &tasks,
            shutdown.clone(),
            controllers::autoscaler::run(controllers::autoscaler::Context {
                client: client.clone(),
                registry: registry.clone(),
                period: self.autoscaler_sync_period,
            }),
        );
        if self.garbage_collector {
            controllers::spawn(
                "garbage-collector",
                &tasks,
                shutdown.clone(),
                controllers::garbage::run(controllers::garbage::Context {
                    client: client.clone(),
                    registry,
                }),
            );
        }
        // Compiled code is cached under the data dir; in-memory clusters share one
        // content-addressed cache per user in the system temp dir (keyed by image
        // digest and engine configuration, written by atomic rename, and refused
        // unless only this user can write it).
        let module_cache = match &self.storage {
            Storage::Dir(d) => d.join("cache").join("modules"),
            // SAFETY: geteuid has no preconditions and cannot fail.
            Storage::Memory => std::env::temp_dir()
                .join(format!("minke-module-cache-{}", unsafe { libc::geteuid() })),
        };
        let runtime = Arc::new(
            crate::kubelet::runtime::Runtime::new()
                .map_err(|e| Error::Bootstrap(e.to_string()))?
                .with_disk_cache(&module_cache),
        );
        // An in-memory cluster keeps its images in its temporary dir, removed with it.
        let images = match &self.storage {
            Storage::Dir(d) => images_dir(d),
            Storage::Memory => logs.path().join("images"),
        };
        let capacity = self
            .node_capacity
            .clone()
            .unwrap_or_else(crate::kubelet::node::Capacity::of_host);
        // The pod network: Services' data path, and the host ports they ask for.
        let network = crate::net::Network::new(self.pod_egress);
        network.set_resolver(Arc::new(dns.clone()));
        api.attach_network(network.clone());
        tasks.spawn(with_shutdown(
            shutdown.clone(),
            crate::net::cluster_dns::serve_tcp(network.clone(), dns.clone()),
        ));
        tasks.spawn(with_shutdown(
            shutdown.clone(),
            crate::net::cluster_dns::serve_udp(network.clone(), dns.clone()),
        ));
        tasks.spawn(with_shutdown(
            shutdown.clone(),
            crate::net::services::run(client.clone(), network.clone()),
        ));
        tasks.spawn(with_shutdown(
            shutdown.clone(),
            crate::net::bridge::run(network.clone(), client.clone(), self.node_address),
        ));
        tasks.spawn(with_shutdown(
            shutdown.clone(),
            crate::net::policy::run(client.clone(), network.clone()),
        ));
        let ingress = crate::net::ingress::start(
            crate::net::ingress::Config {
                http: self.ingress_listen,
                https: self.ingress_tls_listen,
                node_address: self.node_address,
            },
            client.clone(),
            network.clone(),
            &tasks,
            shutdown.clone(),
        )
        .await?;
        let base = bootstrap::node_name();
        for index in 0..self.nodes {
            let node = match index {
                0 => base.clone(),
                i => format!("{base}-m{:02}", i + 1),
            };
            let registration = crate::kubelet::node::Registration {
                name: node.clone(),
                capacity: capacity.clone(),
                pod_cidr: crate::net::ipam::node_cidr(index),
                address: host.clone(),
                control_plane: index == 0,
            };
            crate::kubelet::node::register(&client, &registration)
                .await
                .map_err(|e| Error::Bootstrap(format!("registering node {node}: {e}")))?;
            let kubelet = crate::kubelet::Kubelet::new(
                client.clone(),
                runtime.clone(),
                crate::kubelet::Config {
                    node,
                    index,
                    logs_dir: logs.path().to_path_buf(),
                    images: crate::kubelet::images::Store::new(images.clone()),
                    backoff: crate::kubelet::pods::Backoff {
                        image: self.image_pull_backoff,
                        restart: self.restart_backoff,
                    },
                    host_path_root: host_path_root.clone(),
                    network: network.clone(),
                },
            );
            api.nodes().register(
                &kubelet.node,
                Arc::new(crate::kubelet::exec::Agent(Arc::downgrade(&kubelet))),
            );
            controllers::spawn(
                "kubelet",
                &tasks,
                shutdown.clone(),
                crate::kubelet::run(kubelet),
            );
        }
        controllers::spawn(
            "replicaset",
            &tasks,
            shutdown.clone(),
            controllers::replicaset::run::<k8s_openapi::api::apps::v1::ReplicaSet>(client.clone()),
        );
        controllers::spawn(
            "endpoints",
            &tasks,
            shutdown.clone(),
            controllers::endpoints::run(client.clone()),
        );
        controllers::spawn(
            "endpointslice",
            &tasks,
            shutdown.clone(),
            controllers::endpointslice::run(client.clone()),
        );
        controllers::spawn(
            "serviceaccount",
            &tasks,
            shutdown.clone(),
            controllers::serviceaccount::run(client.clone()),
        );
        controllers::spawn(
            "job",
            &tasks,
            shutdown.clone(),
            controllers::job::run(client.clone()),
        );
        controllers::spawn(
            "statefulset",
            &tasks,
            shutdown.clone(),
            controllers::statefulset::run(client.clone()),
        );
        controllers::spawn(
            "deployment",
            &tasks,
            shutdown.clone(),
            controllers::deployment::run(client.clone()),
        );
        controllers::spawn(
            "daemonset",
            &tasks,
            shutdown.clone(),
            controllers::daemonset::run(client.clone()),
        );
        controllers::spawn(
            "cronjob",
            &tasks,
            shutdown.clone(),
            controllers::cronjob::run(client.clone(), self.cronjob_clock.clone()),
        );
        controllers::spawn(
            "replicationcontroller",
            &tasks,
            shutdown.clone(),
            controllers::replicaset::run::<k8s_openapi::api::core::v1::ReplicationController>(
                client.clone(),
            ),
        );
        // Provisioned volumes live beside the images: under the data dir, or in
        // the in-memory cluster's temporary dir (removed with it).
        let volumes = match &self.storage {
            Storage::Dir(d) => d.join("volumes"),
            Storage::Memory => logs.path().join("volumes"),
        };
        controllers::spawn(
            "persistentvolume-binder",
            &tasks,
            shutdown.clone(),
            controllers::volumes::claim::run(client.clone()),
        );
        controllers::spawn(
            "persistentvolume-reclaimer",
            &tasks,
            shutdown.clone(),
            controllers::volumes::volume::run(client.clone()),
        );
        controllers::spawn(
            "local-path-provisioner",
            &tasks,
            shutdown.clone(),
            controllers::volumes::provisioner::run(client.clone(), volumes),
        );
        controllers::spawn(
            "storage-protection",
            &tasks,
            shutdown.clone(),
            controllers::volumes::protection::run(client.clone()),
        );
        controllers::spawn(
            "scheduler",
            &tasks,
            shutdown.clone(),
            crate::scheduler::run(client.clone()),
        );

        let server = format!("https://{}", crate::cluster::url_host(addr));
        if let Some(path) = &self.kubeconfig {
            kubeconfig::merge(path, &self.context, &server, &creds.ca_pem, &creds.token)?;
        }
        let ready_in = started.elapsed();
        tracing::info!(%addr, ?ready_in, "API ready");
        Ok(Cluster {
            released: api.store().release_watch(),
            _logs: logs,
            _cancel_on_drop: shutdown.clone().drop_guard(),
            api,
            addr,
            server,
            creds,
            network,
            dns,
            dns_addr,
            ingress,
            shutdown,
            tasks,
            kubeconfig: self.kubeconfig,
            context: self.context,
            ready_in,
        })
    }
}

/// Where container logs live: under the data dir, or in a private temporary dir
/// removed with an in-memory cluster.
#[derive(Debug)]
enum Logs {
    Kept(PathBuf),
    Temporary(PathBuf),
}

impl Logs {
    fn temporary() -> std::io::Result<Logs> {
        let dir = std::env::temp_dir().join(format!(
            "minke-logs-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Logs::Temporary(dir))
    }

    fn path(&self) -> &Path {
        match self {
            Logs::Kept(p) | Logs::Temporary(p) => p,
        }
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        if let Logs::Temporary(p) = self {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// Run `f` until `shutdown` fires.
async fn with_shutdown(shutdown: CancellationToken, f: impl std::future::Future<Output = ()>) {
    tokio::select! {
        () = f => {}
        () = shutdown.cancelled() => {}
    }
}

/// Where a data dir keeps its images (`minke image` and the kubelet share it).
pub fn images_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("images")
}

/// `host:port` with IPv6 hosts bracketed.
pub(crate) fn url_host(addr: SocketAddr) -> String {
    addr.to_string()
}

/// A running cluster. Dropping it stops everything; [`Cluster::shutdown`] also waits.
pub struct Cluster {
    api: ApiServer,
    addr: SocketAddr,
    server: String,
    creds: pki::Credentials,
    dns: dns::Dns,
    dns_addr: Option<SocketAddr>,
    ingress: crate::net::ingress::Addrs,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    kubeconfig: Option<PathBuf>,
    context: String,
    ready_in: Duration,
    network: crate::net::Network,
    released: store::Released,
    _logs: Logs,
    /// Cancels everything when the cluster is dropped without `shutdown`.
    _cancel_on_drop: tokio_util::sync::DropGuard,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A builder with the defaults documented on [`ClusterBuilder`].
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// The cluster's pod network.
    pub fn network(&self) -> &crate::net::Network {
        &self.network
    }

    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The cluster's DNS: resolve names as a pod would ([`dns::Dns::lookup_ip`]) or
    /// answer wire-format queries ([`dns::Dns::answer`]).
    pub fn dns(&self) -> &dns::Dns {
        &self.dns
    }

    /// Where cluster DNS listens on the host (UDP and TCP), if
    /// [`ClusterBuilder::dns_listen`] asked for it.
    pub fn dns_addr(&self) -> Option<SocketAddr> {
        self.dns_addr
    }

    /// Where the Ingress proxy serves HTTP on the host, if
    /// [`ClusterBuilder::ingress_listen`] asked for it.
    pub fn ingress_addr(&self) -> Option<SocketAddr> {
        self.ingress.http
    }

    /// Where the Ingress proxy serves HTTPS on the host, if
    /// [`ClusterBuilder::ingress_tls_listen`] asked for it.
    pub fn ingress_tls_addr(&self) -> Option<SocketAddr> {
        self.ingress.https
    }

    /// `https://host:port`.
    pub fn server_url(&self) -> &str {
        &self.server
    }

    /// How long `start` took until the API answered.
    pub fn ready_in(&self) -> Duration {
        self.ready_in
    }

    /// The kubeconfig path written at start, if any.
    pub fn kubeconfig_path(&self) -> Option<&Path> {
        self.kubeconfig.as_deref()
    }

    /// A standalone kubeconfig document for this cluster.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig::render(
            &self.context,
            &self.server,
            &self.creds.ca_pem,
            &self.creds.token,
        )
    }

    /// The CA certificate (PEM) that signs the serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.creds.ca_pem
    }

    /// The admin bearer token.
    pub fn token(&self) -> &str {
        &self.creds.token
    }

    /// A `kube::Client` connected in-process (no sockets), default namespace `default`.
    pub fn client(&self) -> kube::Client {
        InProcess::new(self.api.clone()).client()
    }

    /// Stop accepting requests, end watches and controllers, and wait for them.
    pub async fn shutdown(self) {
        let Cluster {
            api,
            shutdown,
            tasks,
            released,
            ..
        } = self;
        shutdown.cancel();
        tasks.close();
        if tokio::time::timeout(Duration::from_secs(10), tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some tasks did not stop within 10 s of shutdown");
        }
        drop(api);
        // Clients handed out by `client()` keep the store open until they are dropped;
        // wait briefly for the last internal ones so the data dir is free on return.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !released.is_released() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if !released.is_released() {
            tracing::warn!(
                "the store is still open after shutdown (a kube::Client from Cluster::client() is still alive)"
            );
        }
    }
}
