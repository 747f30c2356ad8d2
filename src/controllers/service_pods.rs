//! What the Endpoints and EndpointSlice controllers share: which Services they
//! manage (those with a selector), which pods back one (scheduled, with an IP, not
//! finished), what a pod contributes (readiness, hostname, ports with named
//! `targetPort`s resolved against its containers), and which Services a pod event
//! wakes — those selecting it now and those it was last placed in, so a pod whose
//! labels stopped matching leaves the endpoints too — and the controller loop
//! itself ([`run`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use tracing::Instrument;

use super::pods;

/// What a Service reconciler needs.
pub(crate) struct Context {
    pub client: kube::Client,
    pub placement: Placement,
}

/// Reconcile failures (retried after a second).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{0}")]
    Api(#[from] kube::Error),
}

/// The label selector of a Service whose endpoints controllers manage: set,
/// non-empty, and not an ExternalName (those get no endpoints).
pub(crate) fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

/// Whether the Service is headless (`clusterIP: None`).
pub(crate) fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// Whether not-ready pods are published as ready (`publishNotReadyAddresses`).
pub(crate) fn publishes_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// The Service's ports (empty for a port-less headless Service).
pub(crate) fn service_ports(svc: &Service) -> &[ServicePort] {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default()
}

/// The pods in the Service's namespace its selector picks that belong in its
/// endpoints (`ShouldPodBeInEndpoints`): bound to a node, with an IP, not finished,
/// and — unless `include_terminating` — not being deleted.
pub(crate) async fn backing_pods(
    client: &kube::Client,
    svc: &Service,
    selector: &BTreeMap<String, String>,
    include_terminating: bool,
) -> Result<Vec<Pod>, kube::Error> {
    let ns = svc.namespace().unwrap_or_default();
    let labels = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mut found: Vec<Pod> = pods
        .list(&ListParams::default().labels(&labels))
        .await?
        .items
        .into_iter()
        .filter(|p| {
            pod_ip(p).is_some()
                && node_name(p).is_some()
                && !pods::is_terminal(p)
                && (include_terminating || p.metadata.deletion_timestamp.is_none())
        })
        .collect();
    found.sort_by_key(|a| a.name_any());
    Ok(found)
}

/// The pod's IP, once it has one.
pub(crate) fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()?
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
}

/// The node the pod runs on, once scheduled.
pub(crate) fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()?
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

/// Ready now (the pod's Ready condition is True).
pub(crate) fn is_ready(pod: &Pod) -> bool {
    pods::is_ready(pod)
}

/// Being deleted.
pub(crate) fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The endpoint hostname: the pod's `spec.hostname` when its `spec.subdomain` names
/// this Service (the DNS name `<hostname>.<svc>.<ns>.svc`).
pub(crate) fn hostname(pod: &Pod, svc: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    let same_ns = pod.namespace() == svc.namespace();
    (same_ns && spec.subdomain.as_deref() == Some(svc.name_any().as_str()))
        .then(|| hostname.to_string())
}

/// A reference to the pod, as endpoints carry it.
pub(crate) fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.namespace(),
        name: Some(pod.name_any()),
        uid: pod.uid(),
        ..ObjectReference::default()
    }
}

/// The pod port a Service port sends to (`FindPort`): a number as is (the Service
/// port itself when unset), a name looked up among the containers' ports of the
/// same protocol; `None` when the pod has no such named port.
pub(crate) fn target_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(0)) => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            // Sidecars (init containers that keep running) count too.
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// Which pods each Service's endpoints were last built from, so that a pod event
/// also wakes the Services it is leaving.
#[derive(Debug, Clone, Default)]
pub(crate) struct Placement(Arc<Mutex<HashMap<String, HashSet<String>>>>);

impl Placement {
    /// Record that `ns/service` now holds exactly `pods` (names).
    pub(crate) fn record<'a>(&self, ns: &str, service: &str, pods: impl Iterator<Item = &'a str>) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(format!("{ns}/{service}"), pods.map(str::to_owned).collect());
        }
    }

    /// Forget `ns/service` (it has no selector any more).
    pub(crate) fn forget(&self, ns: &str, service: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&format!("{ns}/{service}"));
        }
    }

    /// The Services to look at after `pod` changed: those in its namespace whose
    /// selector matches it, and those whose endpoints list it.
    pub(crate) fn services_for(
        &self,
        pod: &Pod,
        services: &Store<Service>,
    ) -> Vec<ObjectRef<Service>> {
        let ns = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let labels = pod.metadata.labels.as_ref();
        let mut wake: Vec<ObjectRef<Service>> = services
            .state()
            .iter()
            .filter(|s| s.namespace().as_deref() == Some(ns.as_str()))
            .filter(|s| {
                selector(s).is_some_and(|sel| {
                    sel.iter()
                        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
                })
            })
            .map(|s| ObjectRef::from_obj(&**s))
            .collect();
        if let Ok(m) = self.0.lock() {
            let prefix = format!("{ns}/");
            for (key, pods) in m.iter() {
                if let Some(svc) = key.strip_prefix(&prefix)
                    && pods.contains(&name)
                {
                    wake.push(ObjectRef::new(svc).within(&ns));
                }
            }
        }
        wake
    }
}

/// A controller over Services that pod changes wake through `placement`.
pub(crate) fn controller(client: &kube::Client, placement: Placement) -> Controller<Service> {
    let controller = Controller::new(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let services = controller.store();
    controller.watches(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        move |pod: Pod| placement.services_for(&pod, &services),
    )
}

/// Run a controller over Services, woken by their pods and by whatever `extend`
/// adds, reconciling each with `sync(service, ctx, namespace, name)` (in a span),
/// until the cluster stops. `what` names it in logs.
pub(crate) async fn run<F, Fut>(
    client: kube::Client,
    what: &'static str,
    extend: impl FnOnce(Controller<Service>) -> Controller<Service>,
    sync: F,
) where
    F: Fn(Arc<Service>, Arc<Context>, String, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let placement = Placement::default();
    let ctx = Arc::new(Context {
        client: client.clone(),
        placement: placement.clone(),
    });
    extend(controller(&client, placement))
        .run(
            move |svc, ctx| {
                let (ns, name) = (svc.namespace().unwrap_or_default(), svc.name_any());
                let span = tracing::debug_span!("reconcile", object = %format!("{ns}/{name}"));
                sync(svc, ctx, ns, name).instrument(span)
            },
            |_, _, _| Action::requeue(Duration::from_secs(1)),
            ctx,
        )
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "{what}");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec}),
        )
        .expect("pod")
    }

    fn svc_port(v: serde_json::Value) -> ServicePort {
        serde_json::from_value(v).expect("port")
    }

    #[test]
    fn named_target_ports_resolve_per_pod_and_protocol() {
        let p = pod(json!({"containers": [{"name": "c", "ports": [
            {"name": "http", "containerPort": 8080},
            {"name": "dns", "containerPort": 5353, "protocol": "UDP"}]}]}));
        let port = |v| target_port(&p, &svc_port(v));
        assert_eq!(port(json!({"port": 80, "targetPort": "http"})), Some(8080));
        assert_eq!(
            port(json!({"port": 53, "targetPort": "dns", "protocol": "UDP"})),
            Some(5353)
        );
        assert_eq!(
            port(json!({"port": 53, "targetPort": "dns", "protocol": "TCP"})),
            None
        );
        assert_eq!(port(json!({"port": 80, "targetPort": "nope"})), None);
        assert_eq!(port(json!({"port": 80, "targetPort": 9000})), Some(9000));
        assert_eq!(port(json!({"port": 80})), Some(80));
    }

    #[test]
    fn hostname_is_published_only_under_the_matching_subdomain() {
        let svc: Service = serde_json::from_value(
            json!({"metadata": {"name": "nginx", "namespace": "default"}, "spec": {}}),
        )
        .expect("svc");
        let named = pod(json!({"hostname": "web-0", "subdomain": "nginx", "containers": []}));
        assert_eq!(hostname(&named, &svc).as_deref(), Some("web-0"));
        let other = pod(json!({"hostname": "web-0", "subdomain": "other", "containers": []}));
        assert_eq!(hostname(&other, &svc), None);
    }

    #[test]
    fn services_without_a_selector_or_of_type_external_name_are_not_managed() {
        let svc = |spec| -> Service {
            serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": spec})).expect("svc")
        };
        assert!(selector(&svc(json!({"selector": {"app": "web"}}))).is_some());
        assert!(selector(&svc(json!({}))).is_none());
        assert!(selector(&svc(json!({"selector": {}}))).is_none());
        assert!(
            selector(&svc(
                json!({"type": "ExternalName", "selector": {"app": "web"}})
            ))
            .is_none()
        );
    }
}
