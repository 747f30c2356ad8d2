//! The Endpoints controller, as kube-controller-manager's: for every Service with a
//! selector, an Endpoints object of the same name listing the pods it picks —
//! ready ones in `addresses`, the others in `notReadyAddresses` (all as ready with
//! `publishNotReadyAddresses`), terminating ones left out — with the ports each
//! pod serves, named `targetPort`s resolved per pod and subsets repacked so pods
//! with the same ports share one. Services without a selector are left to their
//! users; the Endpoints of a deleted Service go with it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};

use super::service_pods::{self, Context, Error};

/// The label marking the endpoints of a headless Service.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// Look again even without changes (as the controller's resync).
const RESYNC: Duration = Duration::from_secs(300);

/// Run the controller until the cluster stops.
pub(crate) async fn run(client: kube::Client) {
    let sync = service_pods::run(
        client.clone(),
        "endpoints sync",
        |c| {
            // Endpoints someone else changed or removed are put back.
            c.watches(
                Api::<Endpoints>::all(client.clone()),
                watcher::Config::default(),
                |ep: Endpoints| {
                    Some(ObjectRef::new(&ep.name_any()).within(&ep.namespace().unwrap_or_default()))
                },
            )
        },
        sync,
    );
    tokio::join!(sync, remove_with_services(client.clone()));
}

/// Bring the Endpoints of one Service in line with its pods.
async fn sync(
    svc: Arc<Service>,
    ctx: Arc<Context>,
    ns: String,
    name: String,
) -> Result<Action, Error> {
    let Some(selector) = service_pods::selector(&svc) else {
        ctx.placement.forget(&ns, &name);
        return Ok(Action::await_change());
    };
    let publish = service_pods::publishes_not_ready(&svc);
    let pods = service_pods::backing_pods(&ctx.client, &svc, selector, publish).await?;
    ctx.placement.record(
        &ns,
        &name,
        pods.iter().filter_map(|p| p.metadata.name.as_deref()),
    );
    let want = desired(&svc, &pods);
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &ns);
    match api.get_opt(&name).await? {
        None => {
            api.create(&PostParams::default(), &want).await?;
        }
        Some(current)
            if current.subsets.clone().unwrap_or_default()
                == want.subsets.clone().unwrap_or_default()
                && current.metadata.labels.clone().unwrap_or_default()
                    == want.metadata.labels.clone().unwrap_or_default() => {}
        Some(current) => {
            let mut next = want;
            next.metadata.resource_version = current.metadata.resource_version;
            next.metadata.annotations = current.metadata.annotations;
            api.replace(&name, &PostParams::default(), &next).await?;
        }
    }
    Ok(Action::requeue(RESYNC))
}

/// The Endpoints `svc` should have given the pods that back it.
pub(crate) fn desired(svc: &Service, pods: &[Pod]) -> Endpoints {
    let publish = service_pods::publishes_not_ready(svc);
    let ports = service_pods::service_ports(svc);
    let headless = service_pods::is_headless(svc);
    let mut packer = Packer::default();
    for pod in pods {
        let Some(ip) = service_pods::pod_ip(pod) else {
            continue;
        };
        let address = EndpointAddress {
            ip: ip.to_string(),
            hostname: service_pods::hostname(pod, svc),
            node_name: service_pods::node_name(pod).map(str::to_owned),
            target_ref: Some(service_pods::target_ref(pod)),
        };
        let ready = publish || service_pods::is_ready(pod);
        if ports.is_empty() {
            // A port-less headless Service still lists its pods.
            if headless {
                packer.add(None, &address, ready);
            }
            continue;
        }
        for port in ports {
            // A pod without the named port is left out of that port's endpoints.
            let Some(number) = service_pods::target_port(pod, port) else {
                continue;
            };
            let port = EndpointPort {
                name: port.name.clone(),
                port: number,
                protocol: Some(port.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: port.app_protocol.clone(),
            };
            packer.add(Some(port), &address, ready);
        }
    }
    let mut labels = svc.labels().clone();
    if headless {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    Endpoints {
        metadata: ObjectMeta {
            name: Some(svc.name_any()),
            namespace: svc.namespace(),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        subsets: Some(packer.subsets()),
    }
}

/// A port as a sortable key: name, number, protocol, appProtocol.
type PortKey = (String, i32, String, String);
/// An address as a sortable key (`LessEndpointAddress`: IP as text, then pod UID).
type AddressKey = (String, String);
/// The addresses (with readiness) serving one port.
type Served = BTreeMap<AddressKey, (EndpointAddress, bool)>;
/// The ports one set of addresses serves, and those addresses.
type Subset = (Vec<EndpointPort>, Vec<(EndpointAddress, bool)>);

/// `RepackSubsets`: addresses grouped so that each subset holds the ports that
/// exactly the same addresses (with the same readiness) serve.
#[derive(Default)]
struct Packer {
    /// Per port (`None`: the sentinel for port-less endpoints), its addresses.
    by_port: BTreeMap<Option<PortKey>, (Option<EndpointPort>, Served)>,
}

impl Packer {
    fn add(&mut self, port: Option<EndpointPort>, address: &EndpointAddress, ready: bool) {
        let key = port.as_ref().map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port,
                p.protocol.clone().unwrap_or_default(),
                p.app_protocol.clone().unwrap_or_default(),
            )
        });
        let addr_key = (
            address.ip.clone(),
            address
                .target_ref
                .as_ref()
                .and_then(|r| r.uid.clone())
                .unwrap_or_default(),
        );
        let entry = self
            .by_port
            .entry(key)
            .or_insert_with(|| (port, BTreeMap::new()));
        entry.1.insert(addr_key, (address.clone(), ready));
    }

    fn subsets(self) -> Vec<EndpointSubset> {
        // Invert: the set of (address, readiness) → the ports it serves.
        let mut by_addresses: BTreeMap<BTreeSet<(AddressKey, bool)>, Subset> = BTreeMap::new();
        for (port, addresses) in self.by_port.into_values() {
            let key = addresses
                .iter()
                .map(|(k, (_, ready))| (k.clone(), *ready))
                .collect();
            let entry = by_addresses
                .entry(key)
                .or_insert_with(|| (Vec::new(), addresses.into_values().collect()));
            entry.0.extend(port);
        }
        let mut subsets: Vec<EndpointSubset> = by_addresses
            .into_values()
            .map(|(ports, addresses)| {
                let (ready, not_ready): (Vec<_>, Vec<_>) =
                    addresses.into_iter().partition(|(_, r)| *r);
                let list = |v: Vec<(EndpointAddress, bool)>| {
                    let v: Vec<EndpointAddress> = v.into_iter().map(|(a, _)| a).collect();
                    (!v.is_empty()).then_some(v)
                };
                EndpointSubset {
                    addresses: list(ready),
                    not_ready_addresses: list(not_ready),
                    ports: (!ports.is_empty()).then_some(ports),
                }
            })
            .collect();
        subsets.sort_by_key(first_address);
        subsets
    }
}

fn first_address(s: &EndpointSubset) -> (String, String) {
    s.addresses
        .iter()
        .chain(s.not_ready_addresses.iter())
        .flatten()
        .next()
        .map(|a| {
            (
                a.ip.clone(),
                a.target_ref
                    .as_ref()
                    .and_then(|r| r.name.clone())
                    .unwrap_or_default(),
            )
        })
        .unwrap_or_default()
}

/// Delete the Endpoints of Services that go (Kubernetes deletes them whether or not
/// the controller wrote them); at start, also those left from Services already gone
/// (`checkLeftoverEndpoints`).
async fn remove_with_services(client: kube::Client) {
    let mut first_listing = true;
    let mut events = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    let mut listed: BTreeSet<(String, String)> = BTreeSet::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Delete(svc)) => {
                delete_endpoints(
                    &client,
                    &svc.namespace().unwrap_or_default(),
                    &svc.name_any(),
                )
                .await;
            }
            Ok(watcher::Event::Init) => listed.clear(),
            Ok(watcher::Event::InitApply(svc)) => {
                listed.insert((svc.namespace().unwrap_or_default(), svc.name_any()));
            }
            Ok(watcher::Event::InitDone) if first_listing => {
                first_listing = false;
                let all: Api<Endpoints> = Api::all(client.clone());
                match all.list(&Default::default()).await {
                    Ok(eps) => {
                        for ep in eps {
                            let key = (ep.namespace().unwrap_or_default(), ep.name_any());
                            if !listed.contains(&key) {
                                delete_endpoints(&client, &key.0, &key.1).await;
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "listing endpoints for leftovers"),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "watching services"),
        }
    }
}

/// Delete `ns/name`'s Endpoints unless a Service of that name exists again (it may
/// have been re-created since the event, or since the listing).
async fn delete_endpoints(client: &kube::Client, ns: &str, name: &str) {
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    match services.get_opt(name).await {
        Ok(None) => {}
        Ok(Some(_)) => return,
        Err(e) => {
            tracing::debug!(service = %format!("{ns}/{name}"), error = %e, "checking for the service");
            return;
        }
    }
    let api: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => tracing::debug!(endpoints = %format!("{ns}/{name}"), "deleted with its service"),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => {
            tracing::warn!(endpoints = %format!("{ns}/{name}"), error = %e, "deleting endpoints");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn svc(spec: Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}}, "spec": spec}))
            .expect("svc")
    }

    fn pod(name: &str, ip: &str, ready: bool, port: i32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "node", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .expect("pod")
    }

    #[test]
    fn ready_and_unready_pods_land_in_their_lists() {
        let s = svc(
            json!({"selector": {"app": "web"}, "clusterIP": "10.96.0.20", "ports": [{"port": 80, "targetPort": 8080}]}),
        );
        let ep = desired(
            &s,
            &[
                pod("a", "10.244.0.2", true, 8080),
                pod("b", "10.244.0.3", false, 8080),
            ],
        );
        let subsets = ep.subsets.expect("subsets");
        assert_eq!(subsets.len(), 1);
        let ips = |v: &Option<Vec<EndpointAddress>>| {
            v.iter().flatten().map(|a| a.ip.clone()).collect::<Vec<_>>()
        };
        assert_eq!(ips(&subsets[0].addresses), ["10.244.0.2"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.244.0.3"]);
        let a = &subsets[0].addresses.as_ref().expect("a")[0];
        assert_eq!(a.node_name.as_deref(), Some("node"));
        let r = a.target_ref.as_ref().expect("ref");
        assert_eq!(
            (r.kind.as_deref(), r.name.as_deref(), r.uid.as_deref()),
            (Some("Pod"), Some("a"), Some("uid-a"))
        );
        assert_eq!(subsets[0].ports.as_ref().expect("ports")[0].port, 8080);
        assert_eq!(
            ep.metadata
                .labels
                .expect("labels")
                .get("app")
                .map(String::as_str),
            Some("web")
        );
    }

    #[test]
    fn publish_not_ready_addresses_lists_every_pod_as_ready() {
        let s = svc(
            json!({"selector": {"app": "web"}, "publishNotReadyAddresses": true, "ports": [{"port": 80}]}),
        );
        let ep = desired(&s, &[pod("b", "10.244.0.3", false, 80)]);
        let subsets = ep.subsets.expect("subsets");
        assert!(subsets[0].not_ready_addresses.is_none());
        assert_eq!(subsets[0].addresses.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn pods_with_different_numbers_for_a_named_port_get_their_own_subsets() {
        let s =
            svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}));
        let ep = desired(
            &s,
            &[
                pod("a", "10.244.0.2", true, 8080),
                pod("b", "10.244.0.3", true, 9090),
                pod("c", "10.244.0.4", true, 8080),
            ],
        );
        let subsets = ep.subsets.expect("subsets");
        assert_eq!(subsets.len(), 2);
        assert_eq!(subsets[0].addresses.as_ref().map(Vec::len), Some(2));
        assert_eq!(subsets[0].ports.as_ref().expect("p")[0].port, 8080);
        assert_eq!(subsets[1].ports.as_ref().expect("p")[0].port, 9090);
    }

    #[test]
    fn headless_services_are_labelled_and_list_port_less_pods() {
        let s = svc(json!({"selector": {"app": "web"}, "clusterIP": "None"}));
        let ep = desired(&s, &[pod("a", "10.244.0.2", true, 80)]);
        assert_eq!(
            ep.metadata
                .labels
                .expect("labels")
                .get(HEADLESS_LABEL)
                .map(String::as_str),
            Some("")
        );
        let subsets = ep.subsets.expect("subsets");
        assert!(subsets[0].ports.is_none());
        assert_eq!(subsets[0].addresses.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn no_pods_make_no_subsets() {
        let s = svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
        assert_eq!(desired(&s, &[]).subsets, Some(Vec::new()));
    }
}
