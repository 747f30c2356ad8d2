//! The EndpointSlice controller, as kube-controller-manager's: for every Service
//! with a selector, IPv4 EndpointSlices named `<service>-<suffix>`, owned by the
//! Service, labelled `kubernetes.io/service-name` and managed by
//! `endpointslice-controller.k8s.io`, with one endpoint per pod carrying its
//! `ready` / `serving` / `terminating` conditions, hostname, node and targetRef.
//! Pods that serve the same port numbers share slices of at most 100 endpoints; a
//! Service without endpoints gets one empty placeholder. An endpoint stays in the
//! slice that holds it, so a change rewrites as few slices as it can. Slices of
//! Services without a selector are their users' to write.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::watcher;

use super::endpoints::HEADLESS_LABEL;
use super::pods;
use super::service_pods::{self, Context, Error};

/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming the controller that manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's name in [`MANAGED_BY_LABEL`].
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Most endpoints one slice holds (`--max-endpoints-per-slice`).
const MAX_ENDPOINTS: usize = 100;
/// Look again even without changes (as the controller's resync).
const RESYNC: Duration = Duration::from_secs(300);

/// Run the controller until the cluster stops.
pub(crate) async fn run(client: kube::Client) {
    service_pods::run(
        client.clone(),
        "endpointslice sync",
        |c| {
            // Slices someone else changed or removed are put back.
            c.owns(
                Api::<EndpointSlice>::all(client.clone()),
                watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={CONTROLLER_NAME}")),
            )
        },
        sync,
    )
    .await;
}

/// Bring the slices of one Service in line with its pods.
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
    let pods = service_pods::backing_pods(&ctx.client, &svc, selector, true).await?;
    ctx.placement.record(
        &ns,
        &name,
        pods.iter().filter_map(|p| p.metadata.name.as_deref()),
    );
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &ns);
    let mine = format!("{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={CONTROLLER_NAME}");
    let mut existing = api.list(&ListParams::default().labels(&mine)).await?.items;
    existing.sort_by_key(|a| a.name_any());
    let labels = labels(&svc);
    let owner = pods::owner_ref(&*svc);
    for step in plan(&existing, groups(&svc, &pods)) {
        match step {
            Step::Create(want) => {
                let slice = EndpointSlice {
                    metadata: ObjectMeta {
                        generate_name: Some(format!("{name}-")),
                        namespace: Some(ns.clone()),
                        labels: Some(labels.clone()),
                        owner_references: Some(vec![owner.clone()]),
                        ..ObjectMeta::default()
                    },
                    ..want.into_slice()
                };
                api.create(&PostParams::default(), &slice).await?;
            }
            Step::Update(current, want) => {
                let fresh = want.into_slice();
                let same = current.ports.clone().unwrap_or_default()
                    == fresh.ports.clone().unwrap_or_default()
                    && sorted(current.endpoints.clone()) == sorted(fresh.endpoints.clone())
                    && current.metadata.labels.as_ref() == Some(&labels)
                    && current.metadata.owner_references.as_deref()
                        == Some(std::slice::from_ref(&owner));
                if same {
                    continue;
                }
                let mut slice = current.clone();
                slice.ports = fresh.ports;
                slice.endpoints = fresh.endpoints;
                slice.metadata.labels = Some(labels.clone());
                slice.metadata.owner_references = Some(vec![owner.clone()]);
                api.replace(&current.name_any(), &PostParams::default(), &slice)
                    .await?;
            }
            Step::Delete(current) => {
                match api
                    .delete(&current.name_any(), &DeleteParams::default())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(Action::requeue(RESYNC))
}

/// The labels of a Service's slices: its own (but not the reserved ones), the
/// Service name, the manager, and the headless mark.
fn labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = svc
        .labels()
        .iter()
        .filter(|(k, _)| {
            ![SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL].contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(SERVICE_NAME_LABEL.into(), svc.name_any());
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    if service_pods::is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels
}

/// What one slice should hold.
#[derive(Debug, Clone, PartialEq)]
struct Want {
    ports: Vec<EndpointPort>,
    endpoints: Vec<Endpoint>,
}

impl Want {
    fn into_slice(self) -> EndpointSlice {
        EndpointSlice {
            address_type: "IPv4".into(),
            endpoints: (!self.endpoints.is_empty())
                .then(|| sorted(Some(self.endpoints)).unwrap_or_default()),
            ports: (!self.ports.is_empty()).then_some(self.ports),
            metadata: ObjectMeta::default(),
        }
    }
}

/// A write to make.
#[derive(Debug)]
enum Step<'a> {
    Create(Want),
    /// Rewrite an existing slice (skipped when it already holds this).
    Update(&'a EndpointSlice, Want),
    Delete(&'a EndpointSlice),
}

/// The endpoint each pod contributes, grouped by the ports it serves (a pod whose
/// named `targetPort` resolves to another number lands in another group).
fn groups(svc: &Service, pods: &[Pod]) -> Vec<(Vec<EndpointPort>, Vec<Endpoint>)> {
    let publish = service_pods::publishes_not_ready(svc);
    let mut by_ports: Vec<(Vec<EndpointPort>, Vec<Endpoint>)> = Vec::new();
    for pod in pods {
        let Some(ip) = service_pods::pod_ip(pod) else {
            continue;
        };
        let ports: Vec<EndpointPort> = service_pods::service_ports(svc)
            .iter()
            .filter_map(|p| {
                Some(EndpointPort {
                    name: Some(p.name.clone().unwrap_or_default()),
                    port: Some(service_pods::target_port(pod, p)?),
                    protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: p.app_protocol.clone(),
                })
            })
            .collect();
        let serving = publish || service_pods::is_ready(pod);
        let terminating = service_pods::is_terminating(pod);
        let endpoint = Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(EndpointConditions {
                // Never ready while terminating, unless not-ready ones are published.
                ready: Some(publish || (serving && !terminating)),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname: service_pods::hostname(pod, svc),
            node_name: service_pods::node_name(pod).map(str::to_owned),
            target_ref: Some(service_pods::target_ref(pod)),
            ..Endpoint::default()
        };
        match by_ports.iter_mut().find(|(p, _)| *p == ports) {
            Some((_, eps)) => eps.push(endpoint),
            None => by_ports.push((ports, vec![endpoint])),
        }
    }
    by_ports
}

/// The writes that turn `existing` slices into ones holding `groups`: existing
/// slices keep the endpoints they hold and take new ones while they have room,
/// further endpoints go to new slices (or to emptied slices rewritten), and
/// slices left without endpoints go — but for one empty placeholder when the
/// Service has no endpoints at all.
fn plan(
    existing: &[EndpointSlice],
    groups: Vec<(Vec<EndpointPort>, Vec<Endpoint>)>,
) -> Vec<Step<'_>> {
    let groups = if groups.is_empty() {
        vec![(Vec::new(), Vec::new())]
    } else {
        groups
    };
    let placeholder = groups.len() == 1 && groups[0].1.is_empty();
    let mut free: Vec<&EndpointSlice> = existing.iter().collect();
    let mut kept: Vec<(&EndpointSlice, Want)> = Vec::new();
    let mut new: Vec<Want> = Vec::new();
    for (ports, mut pending) in groups {
        let mut slots: Vec<(&EndpointSlice, Want)> = Vec::new();
        let (same, other): (Vec<&EndpointSlice>, Vec<&EndpointSlice>) = free
            .into_iter()
            .partition(|s| port_keys(s.ports.as_deref().unwrap_or_default()) == port_keys(&ports));
        free = other;
        for slice in same {
            let held: HashSet<&str> = slice
                .endpoints
                .iter()
                .flatten()
                .filter_map(|e| e.addresses.first().map(String::as_str))
                .collect();
            let (stay, rest): (Vec<Endpoint>, Vec<Endpoint>) = pending.into_iter().partition(|e| {
                e.addresses
                    .first()
                    .is_some_and(|a| held.contains(a.as_str()))
            });
            pending = rest;
            slots.push((
                slice,
                Want {
                    ports: ports.clone(),
                    endpoints: stay,
                },
            ));
        }
        for (_, want) in &mut slots {
            let room = MAX_ENDPOINTS
                .saturating_sub(want.endpoints.len())
                .min(pending.len());
            want.endpoints.extend(pending.drain(..room));
        }
        for (slice, want) in slots {
            if want.endpoints.is_empty() && !(placeholder && kept.is_empty()) {
                free.push(slice);
            } else {
                kept.push((slice, want));
            }
        }
        for chunk in pending.chunks(MAX_ENDPOINTS) {
            new.push(Want {
                ports: ports.clone(),
                endpoints: chunk.to_vec(),
            });
        }
        if placeholder && kept.is_empty() && new.is_empty() {
            new.push(Want {
                ports: Vec::new(),
                endpoints: Vec::new(),
            });
        }
    }
    let mut steps: Vec<Step<'_>> = kept.into_iter().map(|(s, w)| Step::Update(s, w)).collect();
    // Rewrite slices that would go rather than delete one and create another.
    for want in new {
        match free.pop() {
            Some(slice) => steps.push(Step::Update(slice, want)),
            None => steps.push(Step::Create(want)),
        }
    }
    steps.extend(free.into_iter().map(Step::Delete));
    steps
}

/// Ports as a comparable set (the order in a slice carries no meaning).
fn port_keys(ports: &[EndpointPort]) -> Vec<(String, i32, String, String)> {
    let mut keys: Vec<_> = ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or_default(),
                p.protocol.clone().unwrap_or_default(),
                p.app_protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    keys.sort();
    keys
}

/// Endpoints ordered by address.
fn sorted(endpoints: Option<Vec<Endpoint>>) -> Option<Vec<Endpoint>> {
    endpoints.map(|mut v| {
        v.sort_by(|a, b| a.addresses.cmp(&b.addresses));
        v
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn svc(spec: Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "default", "uid": "svc-uid", "labels": {"app": "web"}}, "spec": spec}))
            .expect("svc")
    }

    fn pod(name: &str, ip: &str, ready: bool, deleting: bool, port: i32) -> Pod {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": {"nodeName": "node", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        });
        if deleting {
            p["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        }
        serde_json::from_value(p).expect("pod")
    }

    fn slice(name: &str, port: i32, ips: &[&str]) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            address_type: "IPv4".into(),
            ports: Some(vec![EndpointPort {
                name: Some(String::new()),
                port: Some(port),
                protocol: Some("TCP".into()),
                app_protocol: None,
            }]),
            endpoints: Some(
                ips.iter()
                    .map(|ip| Endpoint {
                        addresses: vec![(*ip).into()],
                        ..Endpoint::default()
                    })
                    .collect(),
            ),
        }
    }

    fn conditions(e: &Endpoint) -> (bool, bool, bool) {
        let c = e.conditions.as_ref().expect("conditions");
        (
            c.ready.unwrap_or_default(),
            c.serving.unwrap_or_default(),
            c.terminating.unwrap_or_default(),
        )
    }

    #[test]
    fn conditions_follow_readiness_and_termination() {
        let s =
            svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}));
        let g = groups(
            &s,
            &[
                pod("a", "10.244.0.2", true, false, 8080),
                pod("b", "10.244.0.3", false, false, 8080),
                pod("c", "10.244.0.4", true, true, 8080),
            ],
        );
        assert_eq!(g.len(), 1);
        let eps = &g[0].1;
        assert_eq!(conditions(&eps[0]), (true, true, false));
        assert_eq!(conditions(&eps[1]), (false, false, false));
        assert_eq!(conditions(&eps[2]), (false, true, true));
        assert_eq!(
            eps[0].target_ref.as_ref().and_then(|r| r.name.as_deref()),
            Some("a")
        );
        assert_eq!(eps[0].node_name.as_deref(), Some("node"));
        assert_eq!(g[0].0[0].port, Some(8080));
    }

    #[test]
    fn named_ports_with_different_numbers_make_different_groups() {
        let s = svc(
            json!({"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}),
        );
        let g = groups(
            &s,
            &[
                pod("a", "10.244.0.2", true, false, 8080),
                pod("b", "10.244.0.3", true, false, 9090),
            ],
        );
        assert_eq!(g.len(), 2);
    }

    #[test]
    fn slice_labels_name_the_service_and_the_manager() {
        let l = labels(&svc(json!({"clusterIP": "None"})));
        assert_eq!(l[SERVICE_NAME_LABEL], "web");
        assert_eq!(l[MANAGED_BY_LABEL], CONTROLLER_NAME);
        assert_eq!(l[HEADLESS_LABEL], "");
        assert_eq!(l["app"], "web");
    }

    #[test]
    fn a_service_without_endpoints_gets_one_placeholder() {
        let steps = plan(&[], Vec::new());
        assert!(
            matches!(&steps[..], [Step::Create(w)] if w.endpoints.is_empty() && w.ports.is_empty())
        );
        let old = [
            slice("web-a", 80, &["10.244.0.2"]),
            slice("web-b", 80, &["10.244.0.3"]),
        ];
        let steps = plan(&old, Vec::new());
        assert_eq!(
            steps
                .iter()
                .filter(|s| matches!(s, Step::Delete(_)))
                .count(),
            1
        );
        assert!(
            steps
                .iter()
                .any(|s| matches!(s, Step::Update(_, w) if w.endpoints.is_empty()))
        );
    }

    #[test]
    fn endpoints_stay_in_their_slice_and_new_ones_fill_free_room() {
        let s = svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
        let pods: Vec<Pod> = ["10.244.0.2", "10.244.0.3", "10.244.0.4"]
            .iter()
            .enumerate()
            .map(|(i, ip)| pod(&format!("p{i}"), ip, true, false, 80))
            .collect();
        let old = [
            slice("web-a", 80, &["10.244.0.3"]),
            slice("web-b", 80, &["10.244.0.9"]),
        ];
        let steps = plan(&old, groups(&s, &pods));
        let a = steps.iter().find_map(|s| match s {
            Step::Update(sl, w) if sl.name_any() == "web-a" => Some(w),
            _ => None,
        });
        assert_eq!(a.map(|w| w.endpoints.len()), Some(3));
        assert!(
            steps
                .iter()
                .any(|s| matches!(s, Step::Delete(sl) if sl.name_any() == "web-b"))
        );
        assert!(!steps.iter().any(|s| matches!(s, Step::Create(_))));
    }

    #[test]
    fn large_services_are_cut_into_slices_of_a_hundred() {
        let s = svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
        let pods: Vec<Pod> = (0..250)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    &format!("10.244.{}.{}", i / 200, i % 200 + 1),
                    true,
                    false,
                    80,
                )
            })
            .collect();
        let steps = plan(&[], groups(&s, &pods));
        let sizes: Vec<usize> = steps
            .iter()
            .map(|s| match s {
                Step::Create(w) => w.endpoints.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
    }

    #[test]
    fn a_slice_of_other_ports_is_rewritten_rather_than_replaced() {
        let s = svc(json!({"selector": {"app": "web"}, "ports": [{"port": 81}]}));
        let old = [slice("web-a", 80, &["10.244.0.2"])];
        let steps = plan(&old, groups(&s, &[pod("a", "10.244.0.2", true, false, 81)]));
        assert!(
            matches!(&steps[..], [Step::Update(sl, w)] if sl.name_any() == "web-a" && w.ports[0].port == Some(81))
        );
    }
}
