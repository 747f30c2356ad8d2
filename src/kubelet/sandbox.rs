//! Pod sandboxes: what the kubelet knows about each pod it runs beyond its status —
//! every container's prepared run (component, env, mounts, limits) so `exec` can
//! start a fresh instance in the same sandbox, the HTTP servers on its ports, and
//! every container's resource [`Usage`] for metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::runtime::{Compiled, Context, Usage};
use super::serve::HttpServer;

/// A container ready to run (or running): what a new instance of it gets.
#[derive(Clone)]
pub struct Prepared {
    /// The container's own component.
    pub compiled: Compiled,
    /// The program name of the container's image (`minke/hello` → `hello`).
    pub program: String,
    /// Its argv, env, volumes, working dir, limits and usage account.
    pub ctx: Context,
}

/// One pod's sandbox.
#[derive(Default)]
pub struct Sandbox {
    /// Namespace of the pod.
    pub namespace: String,
    /// Name of the pod.
    pub name: String,
    /// Labels of the pod (metrics carry them).
    pub labels: std::collections::BTreeMap<String, String>,
    prepared: Mutex<HashMap<String, Prepared>>,
    servers: Mutex<HashMap<u16, Arc<HttpServer>>>,
    /// The pod's place in the network, and the listeners serving its ports there.
    net: Mutex<Option<crate::net::PodNet>>,
    listeners: Mutex<Listeners>,
    usage: Mutex<Vec<(String, Arc<Usage>)>>,
}

impl Sandbox {
    /// A sandbox for a pod.
    pub fn new(pod: &k8s_openapi::api::core::v1::Pod) -> Sandbox {
        Sandbox {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            ..Sandbox::default()
        }
    }

    /// Record that `container` is ready to run as `p`.
    pub fn prepare(&self, container: &str, p: Prepared) {
        if let Ok(mut m) = self.prepared.lock() {
            m.insert(container.to_string(), p);
        }
    }

    /// The prepared run of a container, once it has one.
    pub fn prepared(&self, container: &str) -> Option<Prepared> {
        self.prepared.lock().ok()?.get(container).cloned()
    }

    /// Give the pod its place in the network (its ports are served there).
    pub fn attach(&self, net: crate::net::PodNet) {
        if let Ok(mut n) = self.net.lock() {
            *n = Some(net);
        }
    }

    /// Serve HTTP on `ports` of the pod with `server`: through the kubelet (pod
    /// proxy) and on the pod's IP in the network.
    pub fn serve(&self, ports: &[u16], server: &Arc<HttpServer>) {
        if let Ok(mut m) = self.servers.lock() {
            for p in ports {
                m.insert(*p, server.clone());
            }
        }
        let net = self.net.lock().ok().and_then(|n| n.clone());
        let (Some(net), Ok(mut listeners)) = (net, self.listeners.lock()) else {
            return;
        };
        for p in ports {
            let at = std::net::SocketAddr::from(([0, 0, 0, 0], *p));
            match net.listen(at) {
                Ok(l) => {
                    let task = tokio::spawn(super::serve::listen(l, server.clone()));
                    if let Some(old) = listeners.0.insert(*p, task.abort_handle()) {
                        old.abort();
                    }
                }
                Err(e) => tracing::warn!(pod = %self.name, port = p, error = %e, "cannot listen"),
            }
        }
    }

    /// Stop routing to `server`.
    pub fn unserve(&self, server: &Arc<HttpServer>) {
        let mut gone = Vec::new();
        if let Ok(mut m) = self.servers.lock() {
            m.retain(|p, s| {
                let keep = !Arc::ptr_eq(s, server);
                if !keep {
                    gone.push(*p);
                }
                keep
            });
        }
        if let Ok(mut listeners) = self.listeners.lock() {
            for p in gone {
                if let Some(task) = listeners.0.remove(&p) {
                    task.abort();
                }
            }
        }
    }

    /// Connect to `port` on the pod's own loopback, as a process inside the
    /// pod would (port forwarding reaches ports bound to localhost too).
    pub async fn connect_loopback(
        &self,
        port: u16,
    ) -> Result<crate::net::Conn, crate::net::NetError> {
        let net = self.net.lock().ok().and_then(|n| n.clone());
        let net = net.ok_or(crate::net::NetError::Unreachable)?;
        net.connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .await
    }

    /// What serves `port` of the pod, if anything.
    pub fn server(&self, port: u16) -> Option<Arc<HttpServer>> {
        self.servers.lock().ok()?.get(&port).cloned()
    }

    /// The usage account of a container (created on first use; kept across restarts).
    pub fn usage(&self, container: &str) -> Arc<Usage> {
        let Ok(mut all) = self.usage.lock() else {
            return Arc::default();
        };
        if let Some((_, u)) = all.iter().find(|(n, _)| n == container) {
            return u.clone();
        }
        let u = Arc::new(Usage::default());
        all.push((container.to_string(), u.clone()));
        u
    }

    /// Every container's usage account, in the order they were created.
    pub fn usages(&self) -> Vec<(String, Arc<Usage>)> {
        self.usage.lock().map(|u| u.clone()).unwrap_or_default()
    }
}

/// The tasks serving a pod's ports in the network, stopped when dropped.
#[derive(Default)]
struct Listeners(HashMap<u16, tokio::task::AbortHandle>);

impl Drop for Listeners {
    fn drop(&mut self) {
        for (_, task) in self.0.drain() {
            task.abort();
        }
    }
}

/// Every sandbox of a kubelet, by pod uid.
#[derive(Default)]
pub struct Sandboxes(Mutex<HashMap<String, Arc<Sandbox>>>);

impl Sandboxes {
    /// Register a pod's sandbox; it is removed when the returned guard drops.
    pub fn open(self: &Arc<Self>, uid: &str, sandbox: Arc<Sandbox>) -> Registered {
        if let Ok(mut m) = self.0.lock() {
            m.insert(uid.to_string(), sandbox);
        }
        Registered {
            all: self.clone(),
            uid: uid.to_string(),
        }
    }

    /// The sandbox of the pod with this uid.
    pub fn get(&self, uid: &str) -> Option<Arc<Sandbox>> {
        self.0.lock().ok()?.get(uid).cloned()
    }

    /// All sandboxes with their pods' uids.
    pub fn all_with_uids(&self) -> Vec<(String, Arc<Sandbox>)> {
        self.0
            .lock()
            .map(|m| m.iter().map(|(u, s)| (u.clone(), s.clone())).collect())
            .unwrap_or_default()
    }
}

/// Removes a sandbox from its kubelet when the pod's worker ends.
pub struct Registered {
    all: Arc<Sandboxes>,
    uid: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut m) = self.all.0.lock() {
            m.remove(&self.uid);
        }
    }
}
