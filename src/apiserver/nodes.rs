//! The API server's side of the kubelets: what a node agent answers for the
//! streaming subresources (exec, the pod proxy, port forwarding) and metrics (in a real cluster, the kubelet's own HTTP
//! server the API server dials). Kubelets in this process register here by node
//! name; the API server never reaches into their state otherwise.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;
use tokio::io::DuplexStream;

/// The streams of one `exec`: the client's stdin (if asked), stdout, and stderr
/// (none with a TTY, where it goes to stdout).
#[derive(Debug)]
pub struct ExecIo {
    /// What the client types (end-of-file when it closes stdin).
    pub stdin: Option<DuplexStream>,
    /// The command's stdout.
    pub stdout: DuplexStream,
    /// The command's stderr.
    pub stderr: Option<DuplexStream>,
    /// Whether the client asked for a terminal.
    pub tty: bool,
}

/// Why an exec could not run (the command's own failure is its exit code).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The container is not running in this pod on this node.
    #[error("container not found (\"{0}\")")]
    ContainerNotFound(String),
    /// The command could not be started.
    #[error("{0}")]
    Start(String),
}

/// One container's resource use, for metrics.k8s.io.
#[derive(Debug, Clone)]
pub struct ContainerUsage {
    /// Container name.
    pub name: String,
    /// CPU use in nanocores (a rate over the last window).
    pub nanocores: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
}

/// One pod's resource use.
#[derive(Debug, Clone)]
pub struct PodUsage {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels (metrics objects carry the pod's).
    pub labels: std::collections::BTreeMap<String, String>,
    /// When the sample was taken (RFC 3339).
    pub timestamp: String,
    /// The window the CPU rate was measured over, in seconds.
    pub window_seconds: f64,
    /// Per container.
    pub containers: Vec<ContainerUsage>,
}

/// A node's own resource use.
#[derive(Debug, Clone)]
pub struct NodeUsage {
    /// When the sample was taken (RFC 3339).
    pub timestamp: String,
    /// The window the CPU rate was measured over, in seconds.
    pub window_seconds: f64,
    /// CPU use in nanocores.
    pub nanocores: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
}

/// What a node agent (kubelet) serves the API server.
pub trait NodeAgent: Send + Sync {
    /// Run `command` in a fresh instance in the sandbox of pod `uid`'s `container`;
    /// resolves to the command's exit code.
    fn exec(
        &self,
        uid: &str,
        container: &str,
        command: Vec<String>,
        io: ExecIo,
    ) -> BoxFuture<'static, Result<i32, ExecError>>;

    /// Send an HTTP request to `port` of pod `uid` (the API server's pod proxy).
    fn proxy(
        &self,
        uid: &str,
        port: u16,
        req: http::Request<bytes::Bytes>,
    ) -> BoxFuture<'static, Result<http::Response<bytes::Bytes>, String>>;

    /// Connect to `port` on the loopback of pod `uid`'s network namespace, as
    /// the kubelet's port forwarding does (so ports bound to localhost in the
    /// pod are reachable too). The error is worded for kubectl to print.
    fn port_forward(
        &self,
        uid: &str,
        port: u16,
    ) -> BoxFuture<'static, Result<crate::net::Stream, String>>;

    /// The latest resource use of every running pod.
    fn pod_usage(&self) -> Vec<PodUsage>;

    /// The latest resource use of the node.
    fn node_usage(&self) -> Option<NodeUsage>;
}

/// The node agents of this cluster, by node name.
#[derive(Default)]
pub struct Nodes(RwLock<HashMap<String, Arc<dyn NodeAgent>>>);

impl std::fmt::Debug for Nodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nodes").finish_non_exhaustive()
    }
}

impl Nodes {
    /// Register the agent of `node`.
    pub fn register(&self, node: &str, agent: Arc<dyn NodeAgent>) {
        if let Ok(mut m) = self.0.write() {
            m.insert(node.to_string(), agent);
        }
    }

    /// The agent of `node`, if one runs in this process.
    pub fn get(&self, node: &str) -> Option<Arc<dyn NodeAgent>> {
        self.0.read().ok()?.get(node).cloned()
    }

    /// Every agent with its node name.
    pub fn all(&self) -> Vec<(String, Arc<dyn NodeAgent>)> {
        self.0
            .read()
            .map(|m| m.iter().map(|(n, a)| (n.clone(), a.clone())).collect())
            .unwrap_or_default()
    }
}
