//! Keeps the zone current: watches Namespaces, Services, EndpointSlices and Pods
//! through the API server (an ordinary API client, like every controller), keeps the
//! part of each object DNS needs, and rebuilds and publishes the zone snapshot after
//! every batch of relevant changes. A burst of events costs one rebuild.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use futures::{FutureExt, Stream, StreamExt, stream};
use hickory_proto::rr::Name;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::records::{self, Objects, PodAddresses};
use super::zone::Zone;

/// The objects of one kind as DNS sees them, keyed by namespace and name. Applies
/// watch events and says whether the DNS view changed.
struct View<T> {
    items: HashMap<(String, String), T>,
    /// Objects of a relist in progress (swapped in at `InitDone`).
    relist: Option<HashMap<(String, String), T>>,
    synced: bool,
}

impl<T: PartialEq> View<T> {
    fn new() -> Self {
        View {
            items: HashMap::new(),
            relist: None,
            synced: false,
        }
    }

    /// Apply `event`, keeping `project(obj)` (nothing when it returns `None`); true
    /// when what DNS sees changed.
    fn apply<K: Resource>(&mut self, event: Event<K>, project: impl Fn(&K) -> Option<T>) -> bool {
        match event {
            Event::Apply(obj) => {
                let key = key(&obj);
                match project(&obj) {
                    Some(view) => {
                        let changed = self.items.get(&key) != Some(&view);
                        self.items.insert(key, view);
                        changed
                    }
                    None => self.items.remove(&key).is_some(),
                }
            }
            Event::Delete(obj) => self.items.remove(&key(&obj)).is_some(),
            Event::Init => {
                self.relist = Some(HashMap::new());
                false
            }
            Event::InitApply(obj) => {
                if let (Some(relist), Some(view)) = (&mut self.relist, project(&obj)) {
                    relist.insert(key(&obj), view);
                }
                false
            }
            Event::InitDone => {
                if let Some(relist) = self.relist.take() {
                    self.items = relist;
                }
                self.synced = true;
                true
            }
        }
    }
}

fn key<K: Resource>(obj: &K) -> (String, String) {
    (
        obj.meta().namespace.clone().unwrap_or_default(),
        obj.meta().name.clone().unwrap_or_default(),
    )
}

/// What a pod contributes: its addresses while it runs (none once it has stopped).
fn pod_addresses(pod: &Pod) -> Option<PodAddresses> {
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let mut ips: Vec<IpAddr> = status
        .pod_ips
        .iter()
        .flatten()
        .filter_map(|p| p.ip.parse().ok())
        .collect();
    if ips.is_empty() {
        ips.extend(
            status
                .pod_ip
                .as_deref()
                .and_then(|ip| ip.parse::<IpAddr>().ok()),
        );
    }
    (!ips.is_empty()).then(|| PodAddresses {
        namespace: pod.namespace().unwrap_or_default(),
        ips,
    })
}

/// One watch event of any of the four kinds (boxed: a Pod is large).
enum Change {
    Namespace(Box<Event<Namespace>>),
    Service(Box<Event<Service>>),
    Slice(Box<Event<EndpointSlice>>),
    Pod(Box<Event<Pod>>),
}

fn watch_all<K, F>(client: &kube::Client, wrap: F) -> stream::BoxStream<'static, Change>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    F: Fn(Box<Event<K>>) -> Change + Send + 'static,
{
    let events: std::pin::Pin<Box<dyn Stream<Item = Result<Event<K>, watcher::Error>> + Send>> =
        Box::pin(
            watcher(Api::<K>::all(client.clone()), watcher::Config::default()).default_backoff(),
        );
    events
        .filter_map(|e| async move {
            match e {
                Ok(e) => Some(e),
                Err(error) => {
                    tracing::debug!(%error, "dns watch");
                    None
                }
            }
        })
        .map(move |e| wrap(Box::new(e)))
        .boxed()
}

/// Watch the cluster and publish a new zone snapshot (for `origin`) after every change,
/// until the streams end (the cluster's shutdown stops the task).
pub(crate) async fn run(client: kube::Client, origin: Name, publish: watch::Sender<Arc<Zone>>) {
    let mut changes = stream::select_all([
        watch_all(&client, Change::Namespace),
        watch_all(&client, Change::Service),
        watch_all(&client, Change::Slice),
        watch_all(&client, Change::Pod),
    ]);
    let mut namespaces = View::<()>::new();
    let mut services = View::<Service>::new();
    let mut slices = View::<EndpointSlice>::new();
    let mut pods = View::<PodAddresses>::new();
    // Serials only grow, also across restarts of the process (secondaries compare them).
    let mut serial = u32::try_from(jiff::Timestamp::now().as_second()).unwrap_or(1);
    while let Some(first) = changes.next().await {
        let mut dirty = false;
        let mut next = Some(first);
        while let Some(change) = next {
            dirty |= match change {
                Change::Namespace(e) => namespaces.apply(*e, |_| Some(())),
                Change::Service(e) => services.apply(*e, |s| Some(strip(s.clone()))),
                Change::Slice(e) => slices.apply(*e, |s| Some(strip(s.clone()))),
                Change::Pod(e) => pods.apply(*e, pod_addresses),
            };
            // Take what is already queued before rebuilding.
            next = changes.next().now_or_never().flatten();
        }
        let synced = namespaces.synced && services.synced && slices.synced && pods.synced;
        if !(dirty && synced) {
            continue;
        }
        serial = serial.wrapping_add(1);
        let zone = rebuild(&origin, &namespaces, &services, &slices, &pods, serial);
        publish.send_replace(Arc::new(zone));
    }
}

/// Metadata DNS never reads; dropping it keeps unrelated updates (status, managed
/// fields, annotations) from counting as changes.
fn strip<K: Resource>(mut obj: K) -> K {
    let meta = obj.meta_mut();
    meta.resource_version = None;
    meta.managed_fields = None;
    meta.annotations = None;
    meta.generation = None;
    obj
}

fn rebuild(
    origin: &Name,
    namespaces: &View<()>,
    services: &View<Service>,
    slices: &View<EndpointSlice>,
    pods: &View<PodAddresses>,
    serial: u32,
) -> Zone {
    let names: Vec<String> = namespaces.items.keys().map(|(_, n)| n.clone()).collect();
    let services: Vec<&Service> = services.items.values().collect();
    let slices: Vec<&EndpointSlice> = slices.items.values().collect();
    let pods: Vec<&PodAddresses> = pods.items.values().collect();
    let started = std::time::Instant::now();
    let zone = records::build(
        origin,
        Objects {
            namespaces: &names,
            services: &services,
            slices: &slices,
            pods: &pods,
        },
        serial,
    );
    tracing::debug!(serial, took = ?started.elapsed(), services = services.len(), pods = pods.len(), "dns zone rebuilt");
    zone
}
