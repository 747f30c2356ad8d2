//! Whether a pod fits a node, and how well: the default scheduler's filter plugins
//! (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodeResourcesFit;
//! VolumeBinding's reasons come from [`super::volumes`]) in their order, the least-allocated score, and the `FailedScheduling` message
//! worded as kube-scheduler words it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KQuantity;

use crate::api::quantity::Quantity;

/// CPU (millicores), memory and ephemeral storage (bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Millicores.
    pub cpu: i128,
    /// Bytes.
    pub memory: i128,
    /// Bytes.
    pub storage: i128,
}

impl Resources {
    fn from_map(map: Option<&BTreeMap<String, KQuantity>>) -> Resources {
        let get = |k: &str| {
            map.and_then(|m| m.get(k))
                .and_then(|q| Quantity::parse(&q.0))
        };
        Resources {
            cpu: get("cpu").map_or(0, |q| q.ceil_millis()),
            memory: get("memory").map_or(0, |q| q.ceil_units()),
            storage: get("ephemeral-storage").map_or(0, |q| q.ceil_units()),
        }
    }

    fn max(self, o: Resources) -> Resources {
        Resources {
            cpu: self.cpu.max(o.cpu),
            memory: self.memory.max(o.memory),
            storage: self.storage.max(o.storage),
        }
    }
}

impl std::ops::Add for Resources {
    type Output = Resources;
    fn add(self, o: Resources) -> Resources {
        Resources {
            cpu: self.cpu + o.cpu,
            memory: self.memory + o.memory,
            storage: self.storage + o.storage,
        }
    }
}

impl std::ops::Sub for Resources {
    type Output = Resources;
    fn sub(self, o: Resources) -> Resources {
        Resources {
            cpu: self.cpu - o.cpu,
            memory: self.memory - o.memory,
            storage: self.storage - o.storage,
        }
    }
}

/// What a pod asks for: the larger of its containers' sum and any one init
/// container, plus the pod overhead (as the scheduler computes it).
pub fn requests(spec: &PodSpec) -> Resources {
    let of = |r: &Option<k8s_openapi::api::core::v1::ResourceRequirements>| {
        Resources::from_map(r.as_ref().and_then(|r| r.requests.as_ref()))
    };
    let sum = spec
        .containers
        .iter()
        .fold(Resources::default(), |acc, c| acc + of(&c.resources));
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .fold(Resources::default(), |acc, c| acc.max(of(&c.resources)));
    sum.max(init) + Resources::from_map(spec.overhead.as_ref())
}

/// A node as the scheduler sees it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its taints.
    pub taints: Vec<Taint>,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// `status.allocatable`.
    pub allocatable: Resources,
    /// `status.allocatable.pods`.
    pub max_pods: i128,
    /// What the pods bound here request.
    pub requested: Resources,
    /// How many pods are bound here.
    pub pods: i128,
}

impl NodeInfo {
    /// The scheduler's view of `node` with nothing bound yet. A node that is not
    /// Ready carries the `node.kubernetes.io/not-ready` taint, as the node
    /// lifecycle controller would add it.
    pub fn of(node: &Node) -> NodeInfo {
        let spec = node.spec.clone().unwrap_or_default();
        let status = node.status.clone().unwrap_or_default();
        let mut taints = spec.taints.unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if !ready && !taints.iter().any(|t| t.key == NOT_READY) {
            taints.push(Taint {
                key: NOT_READY.into(),
                effect: "NoSchedule".into(),
                ..Taint::default()
            });
        }
        let allocatable = status.allocatable.as_ref();
        NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            taints,
            unschedulable: spec.unschedulable.unwrap_or(false),
            allocatable: Resources::from_map(allocatable),
            max_pods: allocatable
                .and_then(|a| a.get("pods"))
                .and_then(|q| Quantity::parse(&q.0))
                .map_or(110, |q| q.ceil_units()),
            requested: Resources::default(),
            pods: 0,
        }
    }
}

const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// Why a node was filtered out, worded as the plugin that refused it words it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// NodeUnschedulable: the node is cordoned.
    Unschedulable,
    /// TaintToleration: a taint the pod does not tolerate.
    Taint {
        /// Taint key.
        key: String,
        /// Taint value.
        value: String,
    },
    /// NodeAffinity: nodeSelector or required node affinity.
    Affinity,
    /// NodeResourcesFit: the node holds its maximum of pods.
    TooManyPods,
    /// NodeResourcesFit: not enough of a resource left.
    Insufficient(&'static str),
    /// VolumeBinding: a bound volume's node affinity excludes the node.
    VolumeNodeConflict,
    /// VolumeBinding: a waiting claim has no volume to take nor a provisioner
    /// for the node.
    VolumeBindConflict,
    /// VolumeBinding: a claim is bound to a volume that does not exist.
    VolumeMissing,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Unschedulable => f.write_str("node(s) were unschedulable"),
            Reason::Taint { key, value } => {
                write!(f, "node(s) had untolerated taint {{{key}: {value}}}")
            }
            Reason::Affinity => f.write_str("node(s) didn't match Pod's node affinity/selector"),
            Reason::TooManyPods => f.write_str("Too many pods"),
            Reason::Insufficient(r) => write!(f, "Insufficient {r}"),
            Reason::VolumeNodeConflict => f.write_str("node(s) had volume node affinity conflict"),
            Reason::VolumeBindConflict => {
                f.write_str("node(s) didn't find available persistent volumes to bind")
            }
            Reason::VolumeMissing => f.write_str(
                "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)",
            ),
        }
    }
}

impl Reason {
    /// Whether evicting lower-priority pods could make room (only resources can).
    fn preemption_may_help(&self) -> bool {
        matches!(self, Reason::TooManyPods | Reason::Insufficient(_))
    }
}

/// Run the filters for `pod` (asking `req`) on `node`: the reasons of the first
/// filter that refuses it, or none when it fits.
pub fn filter(pod: &PodSpec, req: Resources, node: &NodeInfo) -> Vec<Reason> {
    if node.unschedulable && !tolerates_unschedulable(pod) {
        return vec![Reason::Unschedulable];
    }
    if let Some(t) = untolerated(&node.taints, pod.tolerations.as_deref(), |t| {
        t.effect == "NoSchedule" || t.effect == "NoExecute"
    }) {
        return vec![Reason::Taint {
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
        }];
    }
    if !matches_affinity(pod, node) {
        return vec![Reason::Affinity];
    }
    let mut out = Vec::new();
    if node.pods + 1 > node.max_pods {
        out.push(Reason::TooManyPods);
    }
    let free = node.allocatable - node.requested;
    if req.cpu > 0 && req.cpu > free.cpu {
        out.push(Reason::Insufficient("cpu"));
    }
    if req.memory > 0 && req.memory > free.memory {
        out.push(Reason::Insufficient("memory"));
    }
    if req.storage > 0 && req.storage > free.storage {
        out.push(Reason::Insufficient("ephemeral-storage"));
    }
    out
}

fn tolerates_unschedulable(pod: &PodSpec) -> bool {
    let cordon = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        effect: "NoSchedule".into(),
        ..Taint::default()
    };
    pod.tolerations
        .iter()
        .flatten()
        .any(|t| tolerates(t, &cordon))
}

/// The first of `taints` that `applies` selects and no toleration tolerates (as
/// Kubernetes' `FindMatchingUntoleratedTaint`).
pub fn untolerated<'a>(
    taints: &'a [Taint],
    tolerations: Option<&[Toleration]>,
    applies: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    let tolerations = tolerations.unwrap_or_default();
    taints
        .iter()
        .filter(|t| applies(t))
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
}

/// Whether a toleration matches a taint (empty key with Exists matches all).
pub fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    let effect_ok = tol
        .effect
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == taint.effect);
    let key_ok =
        tol.key.as_deref().is_none_or(str::is_empty) || tol.key.as_deref() == Some(&taint.key);
    let value_ok = match tol.operator.as_deref() {
        Some("Exists") => true,
        _ => {
            tol.key.as_deref().is_some_and(|k| !k.is_empty())
                && tol.value.as_deref().unwrap_or_default()
                    == taint.value.as_deref().unwrap_or_default()
        }
    };
    effect_ok && key_ok && value_ok
}

/// The NodeAffinity filter: the pod's nodeSelector and its required node affinity
/// (terms ORed, expressions and fields within a term ANDed) both hold on `node`.
pub fn matches_affinity(pod: &PodSpec, node: &NodeInfo) -> bool {
    let selector_ok = pod
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| node.labels.get(k) == Some(v));
    let required = pod
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    // Terms are ORed; an empty list of terms matches nothing.
    let affinity_ok =
        required.is_none_or(|r| r.node_selector_terms.iter().any(|t| term_matches(t, node)));
    selector_ok && affinity_ok
}

/// A node selector term: every expression on labels and fields must hold; a term
/// with neither matches no node.
pub fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    let exprs = term.match_expressions.iter().flatten();
    let fields = term.match_fields.iter().flatten();
    if exprs.clone().next().is_none() && fields.clone().next().is_none() {
        return false;
    }
    exprs
        .clone()
        .all(|e| requirement(e, node.labels.get(&e.key).map(String::as_str)))
        && fields.clone().all(|e| {
            let value = (e.key == "metadata.name").then_some(node.name.as_str());
            requirement(e, value)
        })
}

fn requirement(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(number),
                values.first().and_then(|s| number(s)),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// The least-allocated score (0–100): the share of CPU and memory left once the
/// pod is placed, averaged. Requests of 0 count as the scheduler's defaults
/// (100m, 200Mi) so empty pods still spread.
pub fn score(req: Resources, node: &NodeInfo) -> i128 {
    let req = Resources {
        cpu: if req.cpu == 0 { 100 } else { req.cpu },
        memory: if req.memory == 0 {
            200 << 20
        } else {
            req.memory
        },
        storage: 0,
    };
    let left = |alloc: i128, used: i128| {
        if alloc <= 0 {
            0
        } else {
            ((alloc - used).max(0) * 100) / alloc
        }
    };
    (left(node.allocatable.cpu, node.requested.cpu + req.cpu)
        + left(node.allocatable.memory, node.requested.memory + req.memory))
        / 2
}

/// The message of a pod no node fits, as kube-scheduler (1.29+) words it, e.g.
/// `0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are
/// available: 1 No preemption victims found for incoming pod..`
pub fn fit_error(nodes: usize, per_node: &[Vec<Reason>]) -> String {
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let (mut may_help, mut not_helpful) = (0usize, 0usize);
    for rs in per_node {
        for r in rs {
            *reasons.entry(r.to_string()).or_default() += 1;
        }
        if rs.iter().all(Reason::preemption_may_help) && !rs.is_empty() {
            may_help += 1;
        } else {
            not_helpful += 1;
        }
    }
    let histogram = |items: Vec<String>| {
        let mut items = items;
        items.sort();
        items.join(", ")
    };
    let main = histogram(reasons.iter().map(|(r, n)| format!("{n} {r}")).collect());
    let mut preemption = Vec::new();
    if not_helpful > 0 {
        preemption.push(format!(
            "{not_helpful} Preemption is not helpful for scheduling"
        ));
    }
    if may_help > 0 {
        preemption.push(format!(
            "{may_help} No preemption victims found for incoming pod"
        ));
    }
    let preemption = histogram(preemption);
    if nodes == 0 {
        return "no nodes available to schedule pods".into();
    }
    format!(
        "0/{nodes} nodes are available: {main}. preemption: 0/{nodes} nodes are available: {preemption}.."
    )
}

/// The message of a pod a PreFilter plugin refused outright (the same answer for
/// every node, so no per-node histogram), e.g. `0/1 nodes are available: pod has
/// unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are
/// available: 1 Preemption is not helpful for scheduling..`
pub fn prefilter_error(nodes: usize, message: &str) -> String {
    if nodes == 0 {
        return "no nodes available to schedule pods".into();
    }
    format!(
        "0/{nodes} nodes are available: {message}. preemption: 0/{nodes} nodes are available: {nodes} Preemption is not helpful for scheduling.."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).expect("pod spec")
    }

    fn node(v: serde_json::Value) -> NodeInfo {
        NodeInfo::of(&serde_json::from_value(v).expect("node"))
    }

    fn ready(name: &str, cpu: &str, memory: &str) -> NodeInfo {
        node(json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "disk": "ssd"}},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "3"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
    }

    #[test]
    fn requests_take_the_larger_of_containers_and_any_init_container() {
        let spec = pod(json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "250m"}}}
            ],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1", "memory": "1Mi"}}}]
        }));
        let r = requests(&spec);
        assert_eq!((r.cpu, r.memory), (1000, 64 << 20));
    }

    #[test]
    fn resources_taints_selectors_and_cordons_refuse_with_the_plugins_words() {
        let n = ready("n1", "2", "1Gi");
        let big = pod(json!({"containers": [{"name": "c"}]}));
        let req = Resources {
            cpu: 3000,
            memory: 2 << 30,
            storage: 0,
        };
        let reasons = filter(&big, req, &n);
        assert_eq!(
            reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["Insufficient cpu", "Insufficient memory"]
        );
        let picky = pod(json!({"containers": [{"name": "c"}], "nodeSelector": {"disk": "hdd"}}));
        assert_eq!(filter(&picky, Resources::default(), &n), [Reason::Affinity]);
        let mut tainted = n.clone();
        tainted.taints.push(Taint {
            key: "dedicated".into(),
            value: Some("gpu".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        });
        assert_eq!(
            filter(&big, Resources::default(), &tainted)[0].to_string(),
            "node(s) had untolerated taint {dedicated: gpu}"
        );
        let tolerant = pod(json!({"containers": [{"name": "c"}],
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}));
        assert!(filter(&tolerant, Resources::default(), &tainted).is_empty());
        let mut cordoned = n.clone();
        cordoned.unschedulable = true;
        assert_eq!(
            filter(&big, Resources::default(), &cordoned),
            [Reason::Unschedulable]
        );
        let mut full = n;
        full.pods = 3;
        assert_eq!(
            filter(&big, Resources::default(), &full),
            [Reason::TooManyPods]
        );
    }

    #[test]
    fn a_node_that_is_not_ready_is_tainted_not_ready() {
        let n = node(
            json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "1"},
            "conditions": [{"type": "Ready", "status": "False"}]}}),
        );
        let p = pod(json!({"containers": [{"name": "c"}]}));
        assert_eq!(
            filter(&p, Resources::default(), &n)[0].to_string(),
            "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
        );
    }

    #[test]
    fn required_node_affinity_matches_labels_and_the_node_name_field() {
        let n = ready("n2", "1", "1Gi");
        let by_name = |name: &str| {
            pod(
                json!({"containers": [{"name": "c"}], "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [name]}]}
                ]}}}}),
            )
        };
        assert!(filter(&by_name("n2"), Resources::default(), &n).is_empty());
        assert_eq!(
            filter(&by_name("n3"), Resources::default(), &n),
            [Reason::Affinity]
        );
        let exprs = pod(
            json!({"containers": [{"name": "c"}], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]},
                {"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"},
                                      {"key": "disk", "operator": "Exists"}]}
            ]}}}}),
        );
        assert!(
            filter(&exprs, Resources::default(), &n).is_empty(),
            "the second term holds"
        );
    }

    #[test]
    fn the_emptier_node_scores_higher() {
        let mut busy = ready("a", "4", "4Gi");
        busy.requested = Resources {
            cpu: 3000,
            memory: 3 << 30,
            storage: 0,
        };
        let idle = ready("b", "4", "4Gi");
        let req = Resources::default();
        assert!(score(req, &idle) > score(req, &busy));
    }

    #[test]
    fn the_failure_message_is_kube_schedulers() {
        assert_eq!(
            fit_error(1, &[vec![Reason::Insufficient("memory")]]),
            "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.."
        );
        let three = [
            vec![Reason::Taint {
                key: "dedicated".into(),
                value: "gpu".into(),
            }],
            vec![Reason::Affinity],
            vec![Reason::Affinity],
        ];
        assert_eq!(
            prefilter_error(2, "pod has unbound immediate PersistentVolumeClaims"),
            "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.."
        );
        assert_eq!(
            fit_error(
                2,
                &[vec![Reason::VolumeNodeConflict], vec![Reason::Affinity]]
            ),
            "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had volume node affinity conflict. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.."
        );
        assert_eq!(
            fit_error(3, &three),
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."
        );
    }
}
