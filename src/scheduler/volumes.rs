//! The VolumeBinding plugin: a pod is placed only where its claims can be
//! served, and claims that wait for their first consumer are bound for the node
//! it goes to, before the pod is bound — as kube-scheduler does.
//!
//! - PreFilter ([`prefilter`]): every claim must exist and not be Lost or being
//!   deleted, and a claim that binds immediately must already be bound
//!   (`pod has unbound immediate PersistentVolumeClaims`).
//! - Filter ([`filter`]): a bound volume's node affinity must admit the node; a
//!   waiting claim needs a matching Available volume reachable from the node or
//!   a class that can provision there (and, once a node was selected for it,
//!   that node).
//! - Reserve ([`Volumes::assume`]): the chosen volumes and the selected node are
//!   assumed in the cache, so the next pod does not take the same volume.
//! - PreBind ([`bind_volumes`]): the volumes' `claimRef`s and the claims'
//!   `volume.kubernetes.io/selected-node` are written, then the claims are
//!   awaited until the PV controller (and the provisioner) bound them.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Resource;
use kube::api::{Api, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;

use super::fit::{NodeInfo, Reason};
use crate::controllers::volumes::binding::volume_bound_to;
use crate::controllers::volumes::matching::{
    self, BIND_COMPLETED, SELECTED_NODE, claim_class, claim_phase, claim_volume, has_annotation,
};

/// How long PreBind waits for the claims to be bound (`bindTimeoutSeconds`).
pub const BIND_TIMEOUT: Duration = Duration::from_secs(600);

/// `namespace/name`, or `name` for cluster-scoped objects.
fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    match &meta.namespace {
        Some(ns) => format!("{ns}/{}", meta.name.as_deref().unwrap_or_default()),
        None => meta.name.clone().unwrap_or_default(),
    }
}

/// A watch's view of one kind, replaced whole when a relist completes.
#[derive(Debug)]
struct Cache<K> {
    objects: HashMap<String, K>,
    relist: Option<HashMap<String, K>>,
    synced: bool,
}

impl<K> Default for Cache<K> {
    fn default() -> Self {
        Cache {
            objects: HashMap::new(),
            relist: None,
            synced: false,
        }
    }
}

impl<K: Resource + Clone> Cache<K> {
    /// Apply a watch event; the key of the object that changed, if one did.
    fn apply(&mut self, event: watcher::Event<K>) -> Option<String> {
        match event {
            watcher::Event::Init => {
                self.relist = Some(HashMap::new());
                None
            }
            watcher::Event::InitApply(o) => {
                self.relist.get_or_insert_default().insert(key_of(&o), o);
                None
            }
            watcher::Event::InitDone => {
                self.objects = self.relist.take().unwrap_or_default();
                self.synced = true;
                Some(String::new())
            }
            watcher::Event::Apply(o) => {
                let key = key_of(&o);
                self.objects.insert(key.clone(), o);
                Some(key)
            }
            watcher::Event::Delete(o) => {
                let key = key_of(&o);
                self.objects.remove(&key);
                Some(key)
            }
        }
    }
}

/// What changed in the scheduler's view of storage.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// A claim (`namespace/name`), or every claim after a relist (`""`).
    Claim(String),
    /// A volume or a class: any pod with claims may fit now.
    Storage,
}

/// The scheduler's view of claims, volumes and classes, plus what bindings in
/// flight assume (the assume cache): an assumed object shadows the watched one
/// until the watch brings a different version of it.
#[derive(Debug, Default)]
pub struct Volumes {
    claims: Cache<PersistentVolumeClaim>,
    volumes: Cache<PersistentVolume>,
    classes: Cache<StorageClass>,
    assumed_claims: HashMap<String, PersistentVolumeClaim>,
    assumed_volumes: HashMap<String, PersistentVolume>,
}

impl Volumes {
    /// Every watch has listed once; scheduling waits for it, as kube-scheduler
    /// waits for its informers.
    pub fn synced(&self) -> bool {
        self.claims.synced && self.volumes.synced && self.classes.synced
    }

    /// A claim watch event.
    pub fn on_claim(&mut self, event: watcher::Event<PersistentVolumeClaim>) -> Option<Change> {
        let key = self.claims.apply(event)?;
        drop_stale(&mut self.assumed_claims, &self.claims.objects, &key);
        Some(Change::Claim(key))
    }

    /// A volume watch event.
    pub fn on_volume(&mut self, event: watcher::Event<PersistentVolume>) -> Option<Change> {
        let key = self.volumes.apply(event)?;
        drop_stale(&mut self.assumed_volumes, &self.volumes.objects, &key);
        Some(Change::Storage)
    }

    /// A class watch event.
    pub fn on_class(&mut self, event: watcher::Event<StorageClass>) -> Option<Change> {
        self.classes.apply(event).map(|_| Change::Storage)
    }

    fn claim(&self, ns: &str, name: &str) -> Option<&PersistentVolumeClaim> {
        let key = format!("{ns}/{name}");
        self.assumed_claims
            .get(&key)
            .or_else(|| self.claims.objects.get(&key))
    }

    fn volume(&self, name: &str) -> Option<&PersistentVolume> {
        self.assumed_volumes
            .get(name)
            .or_else(|| self.volumes.objects.get(name))
    }

    fn class(&self, name: &str) -> Option<&StorageClass> {
        self.classes.objects.get(name)
    }

    fn volumes_of_class<'a>(
        &'a self,
        class: &'a str,
    ) -> impl Iterator<Item = &'a PersistentVolume> {
        self.volumes
            .objects
            .keys()
            .filter_map(|name| self.volume(name))
            .filter(move |pv| matching::volume_class(pv) == class)
    }

    /// Reserve: assume the plan's bindings for `node`, returning the writes
    /// PreBind makes.
    pub fn assume(&mut self, plan: &Plan, node: &str) -> Writes {
        let mut writes = Writes::default();
        for (pvc, pv) in &plan.static_bindings {
            if let Some(next) = volume_bound_to(pv, pvc) {
                self.assumed_volumes.insert(key_of(&next), next.clone());
                writes.volumes.push(next);
            }
            writes.claims.push(key_of(pvc));
        }
        for pvc in &plan.provisions {
            let mut next = pvc.clone();
            next.metadata
                .annotations
                .get_or_insert_default()
                .insert(SELECTED_NODE.into(), node.into());
            self.assumed_claims.insert(key_of(&next), next.clone());
            writes.claims.push(key_of(&next));
            writes.annotated.push(next);
        }
        writes.node = node.into();
        writes
    }

    /// Unreserve: forget what a binding that failed assumed.
    pub fn forget(&mut self, writes: &Writes) {
        for pv in &writes.volumes {
            self.assumed_volumes.remove(&key_of(pv));
        }
        for pvc in &writes.annotated {
            self.assumed_claims.remove(&key_of(pvc));
        }
    }
}

/// Drop an assumed object once the watch holds another version of it (or lost it).
fn drop_stale<K: Resource>(
    assumed: &mut HashMap<String, K>,
    watched: &HashMap<String, K>,
    key: &str,
) {
    let keys: Vec<String> = if key.is_empty() {
        assumed.keys().cloned().collect()
    } else {
        vec![key.to_string()]
    };
    for k in keys {
        let stale = match (assumed.get(&k), watched.get(&k)) {
            (Some(a), Some(w)) => a.meta().resource_version != w.meta().resource_version,
            (Some(_), None) => true,
            _ => false,
        };
        if stale {
            assumed.remove(&k);
        }
    }
}

/// The claims a pod's volumes name.
pub fn claim_names(pod: &Pod) -> Vec<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.as_str())
        .collect()
}

/// A pod's claims, sorted as the plugin sorts them.
#[derive(Debug, Clone, Default)]
pub struct PodClaims {
    /// Claims bound to a volume.
    bound: Vec<PersistentVolumeClaim>,
    /// Claims that wait for this pod to be scheduled.
    delayed: Vec<PersistentVolumeClaim>,
}

/// `isPVCFullyBound`: named volume present and the binding completed.
fn fully_bound(v: &Volumes, pvc: &PersistentVolumeClaim) -> bool {
    let name = claim_volume(pvc);
    !name.is_empty() && v.volume(name).is_some() && has_annotation(&pvc.metadata, BIND_COMPLETED)
}

/// PreFilter: `Ok(None)` for a pod without claims; `Err` is the message the pod
/// is unschedulable with on every node.
pub fn prefilter(v: &Volumes, pod: &Pod) -> Result<Option<PodClaims>, String> {
    let names = claim_names(pod);
    if names.is_empty() {
        return Ok(None);
    }
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let mut claims = PodClaims::default();
    let mut unbound_immediate = false;
    for name in names {
        let pvc = v
            .claim(ns, name)
            .ok_or_else(|| format!("persistentvolumeclaim \"{name}\" not found"))?;
        if claim_phase(pvc) == "Lost" {
            return Err(format!(
                "persistentvolumeclaim \"{name}\" bound to non-existent persistentvolume \"{}\"",
                claim_volume(pvc)
            ));
        }
        if pvc.metadata.deletion_timestamp.is_some() {
            return Err(format!("persistentvolumeclaim \"{name}\" is being deleted"));
        }
        if fully_bound(v, pvc) {
            claims.bound.push(pvc.clone());
            continue;
        }
        let class = Some(claim_class(pvc))
            .filter(|c| !c.is_empty())
            .and_then(|c| v.class(c));
        // A claim naming its volume is bound by the PV controller, as an immediate one.
        if matching::waits_for_first_consumer(class) && claim_volume(pvc).is_empty() {
            claims.delayed.push(pvc.clone());
        } else {
            unbound_immediate = true;
        }
    }
    if unbound_immediate {
        return Err("pod has unbound immediate PersistentVolumeClaims".into());
    }
    // Smaller requests pick their volumes first, so they take the smaller volumes.
    claims.delayed.sort_by_key(matching::requested);
    Ok(Some(claims))
}

/// What binding a pod's claims for one node takes.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Waiting claims and the Available volumes chosen for them.
    static_bindings: Vec<(PersistentVolumeClaim, PersistentVolume)>,
    /// Waiting claims for their class's provisioner, on this node.
    provisions: Vec<PersistentVolumeClaim>,
}

/// `MatchTopologySelectorTerms`: no terms admit every node; otherwise one term's
/// label expressions must all hold.
fn topology_allows(class: &StorageClass, node: &NodeInfo) -> bool {
    let terms = class.allowed_topologies.as_deref().unwrap_or_default();
    terms.is_empty()
        || terms.iter().any(|t| {
            t.match_label_expressions.iter().flatten().all(|e| {
                node.labels
                    .get(&e.key)
                    .is_some_and(|v| e.values.contains(v))
            })
        })
}

/// Whether the claim's class can provision a volume on `node`.
fn can_provision(v: &Volumes, pvc: &PersistentVolumeClaim, node: &NodeInfo) -> bool {
    v.class(claim_class(pvc)).is_some_and(|class| {
        !class.provisioner.is_empty()
            && class.provisioner != "kubernetes.io/no-provisioner"
            && topology_allows(class, node)
    })
}

/// Filter: whether `node` can serve the pod's claims, and how.
pub fn filter(v: &Volumes, claims: &PodClaims, node: &NodeInfo) -> Result<Plan, Vec<Reason>> {
    let mut conflict = false;
    let mut missing = false;
    for pvc in &claims.bound {
        match v.volume(claim_volume(pvc)) {
            None => missing = true,
            Some(pv) if !matching::node_affinity_allows(pv, node) => conflict = true,
            Some(_) => {}
        }
    }
    let mut plan = Plan::default();
    let mut satisfied = true;
    let mut chosen = HashSet::new();
    for pvc in &claims.delayed {
        match pvc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SELECTED_NODE))
        {
            // Already promised to a node: only that node will do.
            Some(selected) if *selected != node.name => satisfied = false,
            Some(_) => {
                if can_provision(v, pvc, node) {
                    plan.provisions.push(pvc.clone());
                } else {
                    satisfied = false;
                }
            }
            None => {
                let class = claim_class(pvc);
                match matching::find_matching(
                    pvc,
                    v.volumes_of_class(class),
                    Some(node),
                    &chosen,
                    true,
                ) {
                    Some(pv) => {
                        chosen.insert(pv.metadata.name.clone().unwrap_or_default());
                        plan.static_bindings.push((pvc.clone(), pv.clone()));
                    }
                    None if can_provision(v, pvc, node) => plan.provisions.push(pvc.clone()),
                    None => satisfied = false,
                }
            }
        }
    }
    let mut reasons = Vec::new();
    if conflict {
        reasons.push(Reason::VolumeNodeConflict);
    }
    if !satisfied {
        reasons.push(Reason::VolumeBindConflict);
    }
    if missing {
        reasons.push(Reason::VolumeMissing);
    }
    if reasons.is_empty() {
        Ok(plan)
    } else {
        Err(reasons)
    }
}

/// What PreBind writes for one pod: volumes pre-bound to claims, claims given
/// the selected node, and the claims to wait for.
#[derive(Debug, Clone, Default)]
pub struct Writes {
    node: String,
    volumes: Vec<PersistentVolume>,
    annotated: Vec<PersistentVolumeClaim>,
    claims: Vec<String>,
}

impl Writes {
    /// Nothing to write or wait for.
    pub fn is_empty(&self) -> bool {
        self.claims.is_empty()
    }
}

/// PreBind: write the bindings, then wait until every claim is bound (at most
/// `timeout`) or the pod is deleted. The error is the FailedScheduling message.
pub async fn bind_volumes(
    client: &kube::Client,
    pod: &Pod,
    writes: &Writes,
    timeout: Duration,
) -> Result<(), String> {
    let fail =
        |e: String| format!("running PreBind plugin \"VolumeBinding\": binding volumes: {e}");
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    for pv in &writes.volumes {
        let name = pv.metadata.name.as_deref().unwrap_or_default();
        pvs.replace(name, &PostParams::default(), pv)
            .await
            .map_err(|e| fail(e.to_string()))?;
    }
    for pvc in &writes.annotated {
        let ns = pvc.metadata.namespace.as_deref().unwrap_or_default();
        let name = pvc.metadata.name.as_deref().unwrap_or_default();
        Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
            .replace(name, &PostParams::default(), pvc)
            .await
            .map_err(|e| fail(e.to_string()))?;
    }
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
    let node = writes.node.clone();
    let provisioned: HashSet<String> = writes.annotated.iter().map(key_of).collect();
    let all_bound = async {
        for key in &writes.claims {
            let name = key.rsplit('/').next().unwrap_or_default();
            // The provisioner drops the selected node when it cannot provision
            // there: the scheduler must choose again.
            let reset = |c: &PersistentVolumeClaim| {
                provisioned.contains(key) && selected_node(c) != Some(node.as_str())
            };
            let settled = |c: Option<&PersistentVolumeClaim>| {
                c.is_none_or(|c| {
                    // Fully bound, and its status says so (the kubelet mounts
                    // only a claim whose phase is Bound).
                    let bound = has_annotation(&c.metadata, BIND_COMPLETED)
                        && !claim_volume(c).is_empty()
                        && claim_phase(c) == "Bound";
                    bound || reset(c)
                })
            };
            let seen = await_condition(claims.clone(), name, settled)
                .await
                .map_err(|e| e.to_string())?;
            match seen {
                None => return Err(format!("persistentvolumeclaim \"{name}\" not found")),
                Some(c) if !has_annotation(&c.metadata, BIND_COMPLETED) => {
                    return Err(format!("selectedNode annotation reset for PVC \"{name}\""));
                }
                Some(_) => {}
            }
        }
        Ok(())
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let gone = await_condition(pods, &pod_name, conditions::is_deleted(&uid));
    let outcome = tokio::time::timeout(timeout, async {
        tokio::select! {
            r = all_bound => r,
            _ = gone => Err("pod does not exist any more".into()),
        }
    })
    .await;
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(fail(e)),
        Err(_) => Err(fail("context deadline exceeded".into())),
    }
}

fn selected_node(pvc: &PersistentVolumeClaim) -> Option<&str> {
    pvc.metadata
        .annotations
        .as_ref()?
        .get(SELECTED_NODE)
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn node(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            labels: [("kubernetes.io/hostname".to_string(), name.to_string())].into(),
            ..NodeInfo::default()
        }
    }

    fn cache(objects: Vec<Value>) -> Volumes {
        let mut v = Volumes::default();
        for o in objects {
            match o["kind"].as_str() {
                Some("PersistentVolumeClaim") => {
                    v.on_claim(watcher::Event::Apply(
                        serde_json::from_value(o).expect("pvc"),
                    ));
                }
                Some("PersistentVolume") => {
                    v.on_volume(watcher::Event::Apply(
                        serde_json::from_value(o).expect("pv"),
                    ));
                }
                _ => {
                    v.on_class(watcher::Event::Apply(
                        serde_json::from_value(o).expect("sc"),
                    ));
                }
            }
        }
        v
    }

    fn class(name: &str, mode: &str) -> Value {
        json!({"kind": "StorageClass", "metadata": {"name": name}, "provisioner": "minke.dev/local-path",
               "volumeBindingMode": mode})
    }

    fn claim(name: &str, class: &str, extra: Value) -> Value {
        let mut c = json!({"kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "resourceVersion": "1"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                     "storageClassName": class},
            "status": {"phase": "Pending"}});
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                c.insert(k.clone(), v.clone());
            }
        }
        c
    }

    fn pod(claims: &[&str]) -> Pod {
        let volumes: Vec<Value> = claims
            .iter()
            .map(|c| json!({"name": c, "persistentVolumeClaim": {"claimName": c}}))
            .collect();
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c"}], "volumes": volumes}}))
        .expect("pod")
    }

    #[test]
    fn missing_deleted_and_unbound_immediate_claims_fail_before_any_node() {
        let v = cache(vec![
            class("standard", "WaitForFirstConsumer"),
            class("fast", "Immediate"),
            claim("now", "fast", json!({})),
            claim("later", "standard", json!({})),
            claim(
                "going",
                "standard",
                json!({"metadata": {"name": "going", "namespace": "default",
                "deletionTimestamp": "2024-01-01T00:00:00Z"}}),
            ),
        ]);
        assert!(prefilter(&v, &pod(&[])).expect("ok").is_none());
        assert_eq!(
            prefilter(&v, &pod(&["nope"])).unwrap_err(),
            "persistentvolumeclaim \"nope\" not found"
        );
        assert_eq!(
            prefilter(&v, &pod(&["going"])).unwrap_err(),
            "persistentvolumeclaim \"going\" is being deleted"
        );
        assert_eq!(
            prefilter(&v, &pod(&["later", "now"])).unwrap_err(),
            "pod has unbound immediate PersistentVolumeClaims"
        );
        let waiting = prefilter(&v, &pod(&["later"]))
            .expect("ok")
            .expect("claims");
        assert_eq!(waiting.delayed.len(), 1);
    }

    #[test]
    fn a_waiting_claim_takes_a_reachable_volume_or_is_provisioned_on_the_node() {
        let local = |name: &str, host: &str, size: &str| {
            json!({"kind": "PersistentVolume", "metadata": {"name": name, "resourceVersion": "1"},
                "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                         "local": {"path": "/mnt"},
                         "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}}},
                "status": {"phase": "Available"}})
        };
        let mut static_class = class("local", "WaitForFirstConsumer");
        static_class["provisioner"] = json!("kubernetes.io/no-provisioner");
        let mut v = cache(vec![
            static_class,
            class("standard", "WaitForFirstConsumer"),
            local("disk-a", "a", "5Gi"),
            claim("data", "local", json!({})),
            claim("scratch", "standard", json!({})),
        ]);
        let claims = prefilter(&v, &pod(&["data", "scratch"]))
            .expect("ok")
            .expect("claims");
        assert_eq!(
            filter(&v, &claims, &node("b")).unwrap_err(),
            [Reason::VolumeBindConflict]
        );
        let plan = filter(&v, &claims, &node("a")).expect("fits a");
        assert_eq!(plan.static_bindings.len(), 1);
        assert_eq!(plan.provisions.len(), 1);
        let writes = v.assume(&plan, "a");
        assert_eq!(writes.claims, ["default/data", "default/scratch"]);
        let claimed = &writes.volumes[0];
        assert_eq!(
            claimed
                .spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref())
                .and_then(|r| r.uid.as_deref()),
            Some("uid-data")
        );
        // The assumed volume is no longer free for another pod's claim.
        v.on_claim(watcher::Event::Apply(
            serde_json::from_value(claim("other", "local", json!({}))).expect("pvc"),
        ));
        let other = prefilter(&v, &pod(&["other"]))
            .expect("ok")
            .expect("claims");
        assert!(filter(&v, &other, &node("a")).is_err());
        v.forget(&writes);
        assert!(
            filter(&v, &other, &node("a")).is_ok(),
            "released when the binding fails"
        );
    }

    #[test]
    fn a_claim_promised_to_a_node_and_bound_volumes_pin_the_pod() {
        let pinned = json!({"kind": "PersistentVolume", "metadata": {"name": "pv-b", "resourceVersion": "1"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                     "hostPath": {"path": "/v"},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In", "values": ["b"]}]}]}}},
            "status": {"phase": "Bound"}});
        let v = cache(vec![
            class("standard", "WaitForFirstConsumer"),
            pinned,
            claim(
                "bound",
                "standard",
                json!({
                "metadata": {"name": "bound", "namespace": "default", "annotations": {BIND_COMPLETED: "yes"}},
                "spec": {"volumeName": "pv-b", "storageClassName": "standard"}, "status": {"phase": "Bound"}}),
            ),
            claim(
                "promised",
                "standard",
                json!({
                "metadata": {"name": "promised", "namespace": "default", "annotations": {SELECTED_NODE: "c"}}}),
            ),
            claim(
                "orphan",
                "standard",
                json!({
                "metadata": {"name": "orphan", "namespace": "default", "annotations": {BIND_COMPLETED: "yes"}},
                "spec": {"volumeName": "gone", "storageClassName": "standard"}, "status": {"phase": "Bound"}}),
            ),
        ]);
        let bound = prefilter(&v, &pod(&["bound"]))
            .expect("ok")
            .expect("claims");
        assert_eq!(
            filter(&v, &bound, &node("a")).unwrap_err(),
            [Reason::VolumeNodeConflict]
        );
        assert!(filter(&v, &bound, &node("b")).is_ok());
        assert_eq!(
            Reason::VolumeNodeConflict.to_string(),
            "node(s) had volume node affinity conflict"
        );
        let promised = prefilter(&v, &pod(&["promised"]))
            .expect("ok")
            .expect("claims");
        assert_eq!(
            filter(&v, &promised, &node("a")).unwrap_err(),
            [Reason::VolumeBindConflict]
        );
        assert_eq!(
            filter(&v, &promised, &node("c"))
                .expect("c")
                .provisions
                .len(),
            1
        );
        // A claim bound to a volume that is gone counts as unbound (not fully bound).
        assert!(prefilter(&v, &pod(&["orphan"])).is_err());
    }
}
