//! The policies in force and the pods and namespaces they select by, as the data
//! path reads them: [`run`] keeps them current from watches, and
//! [`Network::policy_check`] asks them about each new connection.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock, RwLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use super::rules::{Connection, End, NamedPort, PodRef, Policies, Protocol};
use crate::net::watch::reflect;
use crate::net::{NetError, Network, PodInfo};

/// The NetworkPolicies of one cluster, compiled, with read access to its pods and
/// namespaces (for their labels and named ports).
#[derive(Default)]
pub struct Table {
    policies: RwLock<Arc<Policies>>,
    objects: OnceLock<(Store<Pod>, Store<Namespace>)>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").finish_non_exhaustive()
    }
}

/// A pod's labels, namespace labels and named ports, looked up for one verdict.
struct Facts {
    namespace: String,
    labels: BTreeMap<String, String>,
    namespace_labels: BTreeMap<String, String>,
    ports: Vec<NamedPort>,
}

impl Facts {
    fn as_ref(&self) -> PodRef<'_> {
        PodRef {
            namespace: &self.namespace,
            labels: &self.labels,
            namespace_labels: &self.namespace_labels,
            ports: &self.ports,
        }
    }
}

impl Table {
    /// Replace the policies with `policies`.
    pub fn set_policies(&self, policies: &[Arc<NetworkPolicy>]) {
        let compiled = Policies::new(policies.iter().map(AsRef::as_ref));
        if let Ok(mut p) = self.policies.write() {
            *p = Arc::new(compiled);
        }
    }

    fn policies(&self) -> Arc<Policies> {
        self.policies.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// What the policies need to know of the pod `info` (unknown labels are none).
    fn facts(&self, info: &PodInfo) -> Facts {
        let (pod, ns) = match self.objects.get() {
            Some((pods, namespaces)) => (
                pods.get(&ObjectRef::new(&info.name).within(&info.namespace)),
                namespaces.get(&ObjectRef::new(&info.namespace)),
            ),
            None => (None, None),
        };
        let ports = pod
            .as_ref()
            .and_then(|p| p.spec.as_ref())
            .map(|s| {
                s.containers
                    .iter()
                    .flat_map(|c| c.ports.iter().flatten())
                    .filter_map(|p| {
                        Some(NamedPort {
                            name: p.name.clone()?,
                            port: u16::try_from(p.container_port).ok()?,
                            protocol: Protocol::parse(p.protocol.as_deref())?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Facts {
            namespace: info.namespace.clone(),
            labels: pod
                .and_then(|p| p.metadata.labels.clone())
                .unwrap_or_default(),
            namespace_labels: ns
                .and_then(|n| n.metadata.labels.clone())
                .unwrap_or_default(),
            ports,
        }
    }

    /// Whether the policies allow `src` (a pod, or `None` for the node) to reach
    /// `dst` (a pod when `dst_pod` says which).
    fn allows(
        &self,
        src: Option<(IpAddr, &PodInfo)>,
        dst: SocketAddr,
        dst_pod: Option<&PodInfo>,
        protocol: Protocol,
    ) -> bool {
        // The node's own connections (probes, NodePorts, port-forward, Ingress)
        // are never filtered, as Kubernetes promises for traffic from the node.
        let Some((src_ip, src_pod)) = src else {
            return true;
        };
        let policies = self.policies();
        if policies.is_empty() {
            return true;
        }
        let src_facts = self.facts(src_pod);
        let dst_facts = dst_pod.map(|p| self.facts(p));
        policies.allows(&Connection {
            src: End {
                ip: src_ip,
                pod: Some(src_facts.as_ref()),
            },
            dst: End {
                ip: dst.ip(),
                pod: dst_facts.as_ref().map(Facts::as_ref),
            },
            port: dst.port(),
            protocol,
        })
    }
}

/// How long a refused connection attempt hangs before it fails: long enough to
/// look like a dropped SYN (and for a guest to have written its request, so that
/// it reports the timeout rather than a broken pipe), far shorter than the minute
/// of retransmissions a real drop costs.
const DROPPED_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// What a guest sees of a connection its policies refuse: the error of a connect
/// whose packets were dropped (a timeout).
fn dropped() -> NetError {
    NetError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "connection timed out (dropped by a NetworkPolicy)",
    ))
}

impl Network {
    /// Whether NetworkPolicies let the pod at `src` (`None`: the node) open a
    /// connection (or send a datagram) to `dst` — an endpoint, after Service
    /// translation.
    pub(crate) fn policy_allows(
        &self,
        src: Option<IpAddr>,
        dst: SocketAddr,
        protocol: Protocol,
    ) -> bool {
        let Some(src) = src else { return true };
        let table = &self.inner.policies;
        if table.policies().is_empty() {
            return true;
        }
        let Ok((src_pod, dst_pod)) = self.inner.pods.lock().map(|pods| {
            let info = |ip: IpAddr| pods.get(&ip).map(|(_, info)| info.clone());
            (info(src), info(dst.ip()))
        }) else {
            return false;
        };
        let allowed = table.allows(
            src_pod.as_ref().map(|p| (src, p)),
            dst,
            dst_pod.as_ref(),
            protocol,
        );
        if !allowed {
            tracing::debug!(%src, %dst, ?protocol, "dropped by a NetworkPolicy");
        }
        allowed
    }

    /// The connect path's hook: `Ok` when [`policy_allows`](Self::policy_allows)
    /// the connection, else a timeout after [`DROPPED_AFTER`]. Traffic of an
    /// admitted connection (replies included) is never checked again.
    pub(crate) async fn policy_check(
        &self,
        src: Option<IpAddr>,
        dst: SocketAddr,
        protocol: Protocol,
    ) -> Result<(), NetError> {
        if self.policy_allows(src, dst, protocol) {
            return Ok(());
        }
        tokio::time::sleep(DROPPED_AFTER).await;
        Err(dropped())
    }
}

/// Keep `net`'s policy table current from the cluster's NetworkPolicies, Pods and
/// Namespaces until the task is dropped.
pub async fn run(client: kube::Client, net: Network) {
    let all = watcher::Config::default;
    let (policies, policy_ticks) = reflect(Api::<NetworkPolicy>::all(client.clone()), all());
    let (pods, pod_ticks) = reflect(Api::<Pod>::all(client.clone()), all());
    let (namespaces, ns_ticks) = reflect(Api::<Namespace>::all(client), all());
    let table = &net.inner.policies;
    if table.objects.set((pods, namespaces)).is_err() {
        tracing::warn!("the NetworkPolicy table is already kept by another task");
        return;
    }
    // Pods and namespaces are only read at verdict time; their ticks just keep
    // the stores current.
    let mut events = futures::stream::select_all([
        policy_ticks.map(|()| true).boxed(),
        pod_ticks.map(|()| false).boxed(),
        ns_ticks.map(|()| false).boxed(),
    ]);
    while let Some(policy_changed) = events.next().await {
        if policy_changed {
            table.set_policies(&policies.state());
        }
    }
}
