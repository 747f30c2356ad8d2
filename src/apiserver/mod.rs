//! The API server: routing, discovery, CRUD/list/watch handlers, subresources,
//! admission, and the HTTPS listener with authentication.
//!
//! [`ApiServer::handle`] serves one already-authenticated request; [`serve`] puts it
//! behind TLS and bearer-token authentication, and the in-process client
//! ([`InProcess`]) calls it directly without sockets.

mod admission;
mod crd;
pub(crate) mod discovery;
mod handlers;
mod inprocess;
mod metrics;
pub mod nodes;
mod objects;
mod openapi;
mod request;
mod response;
mod serve;
mod services;
mod spdy;
mod table;
mod websocket;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::error::ApiError;
use crate::api::registry::Registry;
use crate::store::Store;

pub use discovery::KUBE_MINOR;
pub use handlers::pod::log_path;
pub use inprocess::InProcess;
pub use response::Body;
pub use serve::{Listener, Tls, serve};

/// Tunables of the API server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `host:port` clients reach the server at (for discovery's serverAddress).
    pub advertise: String,
    /// How often watches that allow bookmarks get one (default 60 s).
    pub bookmark_interval: Duration,
    /// Service ClusterIP range as (base, prefix length) (default 10.96.0.0/12).
    pub service_cidr: (std::net::Ipv4Addr, u8),
    /// Where the kubelet writes container logs (served by `pods/log`).
    pub logs_dir: Option<std::path::PathBuf>,
    /// Whether deletes add the garbage collector's `orphan` and `foregroundDeletion`
    /// finalizers (default true; kube-apiserver's `--enable-garbage-collector`, off
    /// only when no garbage collector runs to remove them).
    pub garbage_collection: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            advertise: "127.0.0.1:6443".into(),
            bookmark_interval: Duration::from_secs(60),
            service_cidr: (std::net::Ipv4Addr::new(10, 96, 0, 0), 12),
            logs_dir: None,
            garbage_collection: true,
        }
    }
}

/// State every request handler shares.
pub(crate) struct Shared {
    pub store: Store,
    pub registry: Arc<Registry>,
    pub settings: Settings,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
    pub openapi: openapi::Cache,
    /// Serializes Service creates and updates so ClusterIPs and NodePorts are
    /// allocated once (held from reading the allocations to storing the object).
    pub allocations: tokio::sync::Mutex<()>,
    /// Serializes quota-charged writes per namespace (check and store as one step).
    pub quota_locks: admission::QuotaLocks,
    /// The kubelets, for exec and metrics.
    pub nodes: Arc<nodes::Nodes>,
    /// The pod network, for the Service proxy (set once the network exists).
    pub network: std::sync::OnceLock<crate::net::Network>,
}

/// The API server; cheap to clone.
#[derive(Clone)]
pub struct ApiServer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("advertise", &self.shared.settings.advertise)
            .finish()
    }
}

impl ApiServer {
    /// A server over `store`; long-lived streams stop when `shutdown` is cancelled and
    /// are tracked by `tasks`.
    pub fn new(
        store: Store,
        registry: Arc<Registry>,
        settings: Settings,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> Result<ApiServer, ApiError> {
        let shared = Arc::new(Shared {
            store,
            registry,
            settings,
            shutdown,
            tasks,
            openapi: openapi::Cache::default(),
            allocations: tokio::sync::Mutex::new(()),
            quota_locks: admission::QuotaLocks::default(),
            nodes: Arc::default(),
            network: std::sync::OnceLock::new(),
        });
        crd::register_existing(&shared)?;
        Ok(ApiServer { shared })
    }

    /// The node agents (kubelets) this server streams exec and metrics from.
    pub fn nodes(&self) -> &nodes::Nodes {
        &self.shared.nodes
    }

    /// Reach Services through `network` (the Service proxy); set once.
    pub fn attach_network(&self, network: crate::net::Network) {
        let _ = self.shared.network.set(network);
    }

    /// The store behind this server.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Serve one authenticated request whose body has been read.
    pub async fn handle(&self, req: Request<Bytes>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let span =
            tracing::debug_span!("request", method = %parts.method, path = %parts.uri.path());
        let _enter = span.enter();
        let result = self.dispatch(&parts, body).await;
        match result {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(code = e.code, reason = e.reason, message = %e.message, "request failed");
                response::error(&e)
            }
        }
    }

    async fn dispatch(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
    ) -> Result<Response<Body>, ApiError> {
        let query = request::Query::parse(parts.uri.query());
        let route = request::route(parts.uri.path()).ok_or_else(ApiError::path_not_found)?;
        let s = &self.shared;
        if !matches!(route, request::Route::Resource(_))
            && parts.method != Method::GET
            && parts.method != Method::HEAD
        {
            return Err(ApiError::method_not_allowed());
        }
        match route {
            request::Route::Version => Ok(response::json(200, &discovery::version())),
            request::Route::Health(_) => Ok(response::text(200, "ok")),
            request::Route::LegacyVersions => {
                Ok(response::json(200, &discovery::legacy_versions(s)))
            }
            request::Route::GroupList => Ok(response::json(200, &discovery::group_list(s))),
            request::Route::Group(g) => discovery::group(s, &g).map(|v| response::json(200, &v)),
            request::Route::ResourceList { group, version } => {
                discovery::resource_list(s, &group, &version).map(|v| response::json(200, &v))
            }
            request::Route::OpenApiV2 => {
                let accept = parts
                    .headers
                    .get(http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/json");
                if accept.contains(crate::api::openapi::v2proto::ACCEPT)
                    || accept.contains(crate::api::openapi::v2proto::CONTENT_TYPE)
                {
                    let body = s
                        .openapi
                        .v2_proto(&s.registry)
                        .map_err(ApiError::internal)?;
                    return Ok(response::bytes(
                        200,
                        crate::api::openapi::v2proto::CONTENT_TYPE,
                        body,
                    ));
                }
                if !accept.contains("json") && !accept.contains("*/*") {
                    return Err(ApiError::not_acceptable(
                        "only application/json and the gnostic protobuf are served for /openapi/v2",
                    ));
                }
                Ok(response::json(200, &s.openapi.v2(&s.registry)))
            }
            request::Route::OpenApiV3Index => {
                Ok(response::json(200, &s.openapi.v3_index(&s.registry)))
            }
            request::Route::OpenApiV3 { group, version } => s
                .openapi
                .v3(&s.registry, &group, &version)
                .map(|v| response::json(200, &v))
                .ok_or_else(ApiError::path_not_found),
            request::Route::Resource(target) if target.group == metrics::GROUP => {
                metrics::handle(s, &target, &query)
            }
            request::Route::Resource(target) => {
                handlers::resource(s, parts, target, query, body).await
            }
        }
    }
}
