//! Which nodes a DaemonSet runs on, and the pod it puts on one: the scheduler's
//! NodeAffinity predicate (nodeSelector and required node affinity) and its taint
//! check against the template plus the default DaemonSet tolerations, the
//! `matchFields metadata.name` affinity that pins a pod to its node, and the node
//! a pod is meant for.

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Toleration,
};

use crate::scheduler::fit::{self, NodeInfo};

/// Whether a DaemonSet pod belongs on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fit {
    /// A pod should be started there (nothing keeps it off).
    pub should_run: bool,
    /// A pod already there may stay (only an untolerated NoExecute taint, or a
    /// selector or affinity that no longer matches, evicts it).
    pub should_continue: bool,
}

/// The tolerations every DaemonSet pod gets (`AddOrUpdateDaemonPodTolerations`):
/// node problems never evict it, and cordons and pressure never keep it off.
pub fn add_default_tolerations(spec: &mut PodSpec) {
    let mut defaults = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        defaults.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    for (key, effect) in defaults {
        let wanted = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Toleration::default()
        };
        add_or_update(spec, wanted);
    }
}

/// `AddOrUpdateTolerationInPodSpec`: a toleration with the same key, operator,
/// value and effect is replaced in place; otherwise the new one is appended.
fn add_or_update(spec: &mut PodSpec, wanted: Toleration) {
    let list = spec.tolerations.get_or_insert_default();
    let same = |t: &Toleration| {
        t.key == wanted.key
            && t.effect == wanted.effect
            && t.operator.as_deref().unwrap_or("Equal")
                == wanted.operator.as_deref().unwrap_or("Equal")
            && t.value.as_deref().unwrap_or_default() == wanted.value.as_deref().unwrap_or_default()
    };
    match list.iter_mut().find(|t| same(t)) {
        Some(existing) => *existing = wanted,
        None => list.push(wanted),
    }
}

/// `NodeShouldRunDaemonPod`: whether a pod of `template` (its spec, default
/// tolerations added) belongs on `node`. Only the node's own taints count, as in
/// Kubernetes.
pub fn fit(node: &Node, template: &PodSpec) -> Fit {
    let name = node.metadata.name.clone().unwrap_or_default();
    if template
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != name)
    {
        return Fit::default();
    }
    let info = NodeInfo {
        name,
        labels: node.metadata.labels.clone().unwrap_or_default(),
        ..NodeInfo::default()
    };
    if !fit::matches_affinity(template, &info) {
        return Fit::default();
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let tolerations = template.tolerations.as_deref();
    let keeps_off = fit::untolerated(&taints, tolerations, |t| {
        t.effect == "NoSchedule" || t.effect == "NoExecute"
    });
    if keeps_off.is_none() {
        return Fit {
            should_run: true,
            should_continue: true,
        };
    }
    Fit {
        should_run: false,
        should_continue: fit::untolerated(&taints, tolerations, |t| t.effect == "NoExecute")
            .is_none(),
    }
}

/// `ReplaceDaemonSetPodNodeNameNodeAffinity`: the template's affinity with its
/// required node terms replaced by one selecting `node` by name (the template's own
/// terms were checked already); preferred terms and pod (anti-)affinity stay.
pub fn pin(affinity: Option<Affinity>, node: &str) -> Affinity {
    let required = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.to_string()]),
            }]),
            match_expressions: None,
        }],
    };
    let mut affinity = affinity.unwrap_or_default();
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(required);
    affinity
}

/// The node a daemon pod runs on, or (not yet scheduled) the one its
/// `metadata.name` affinity pins it to (`GetTargetNodeName`).
pub fn target(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n.to_string());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| match r.values.as_deref() {
            Some([one]) => Some(one.clone()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).expect("node")
    }

    fn spec(v: serde_json::Value) -> PodSpec {
        let mut s: PodSpec = serde_json::from_value(v).expect("spec");
        add_default_tolerations(&mut s);
        s
    }

    const RUN: Fit = Fit {
        should_run: true,
        should_continue: true,
    };

    #[test]
    fn a_plain_template_runs_on_every_node_even_cordoned_or_not_ready() {
        let s = spec(json!({"containers": [{"name": "c"}]}));
        let n = node(
            json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true,
            "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                       {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]}}),
        );
        assert_eq!(fit(&n, &s), RUN);
    }

    #[test]
    fn selectors_and_required_affinity_decide_eligibility() {
        let picky = spec(json!({"containers": [{"name": "c"}], "nodeSelector": {"role": "edge"}}));
        let plain = node(json!({"metadata": {"name": "n1"}}));
        let edge = node(json!({"metadata": {"name": "n2", "labels": {"role": "edge"}}}));
        assert_eq!(fit(&plain, &picky), Fit::default());
        assert_eq!(fit(&edge, &picky), RUN);
        let by_name = spec(
            json!({"containers": [{"name": "c"}], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}}}}),
        );
        assert_eq!(fit(&plain, &by_name), Fit::default());
        assert_eq!(fit(&edge, &by_name), RUN);
        let named = spec(json!({"containers": [{"name": "c"}], "nodeName": "n1"}));
        assert_eq!(fit(&edge, &named), Fit::default());
    }

    #[test]
    fn no_schedule_taints_keep_new_pods_off_and_no_execute_ones_evict() {
        let s = spec(json!({"containers": [{"name": "c"}]}));
        let no_schedule = node(json!({"metadata": {"name": "n"}, "spec": {"taints": [
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}}));
        assert_eq!(
            fit(&no_schedule, &s),
            Fit {
                should_run: false,
                should_continue: true
            }
        );
        let no_execute = node(json!({"metadata": {"name": "n"}, "spec": {"taints": [
            {"key": "dedicated", "value": "gpu", "effect": "NoExecute"}]}}));
        assert_eq!(fit(&no_execute, &s), Fit::default());
        let tolerant = spec(json!({"containers": [{"name": "c"}], "tolerations": [
            {"key": "dedicated", "operator": "Exists"}]}));
        assert_eq!(fit(&no_execute, &tolerant), RUN);
    }

    #[test]
    fn default_tolerations_are_added_once_and_replace_equal_ones() {
        let mut s: PodSpec = serde_json::from_value(json!({"containers": [{"name": "c"}],
            "hostNetwork": true,
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 30}]}))
        .expect("spec");
        add_default_tolerations(&mut s);
        add_default_tolerations(&mut s);
        let t = s.tolerations.expect("tolerations");
        assert_eq!(t.len(), 7, "{t:?}");
        assert_eq!(t[0].toleration_seconds, None, "replaced by the default");
        assert_eq!(
            t[6].key.as_deref(),
            Some("node.kubernetes.io/network-unavailable")
        );
    }

    #[test]
    fn pinning_replaces_required_terms_and_keeps_the_rest() {
        let a: Affinity = serde_json::from_value(json!({"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "role", "operator": "In", "values": ["edge"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [{"key": "z", "operator": "Exists"}]}}]}}))
        .expect("affinity");
        let pinned = pin(Some(a), "n2");
        let na = pinned.node_affinity.expect("node affinity");
        assert!(
            na.preferred_during_scheduling_ignored_during_execution
                .is_some()
        );
        let pod = Pod {
            spec: Some(PodSpec {
                affinity: Some(Affinity {
                    node_affinity: Some(na),
                    ..Affinity::default()
                }),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        assert_eq!(target(&pod).as_deref(), Some("n2"));
        let bound = Pod {
            spec: Some(PodSpec {
                node_name: Some("n3".into()),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        assert_eq!(target(&bound).as_deref(), Some("n3"));
        assert_eq!(target(&Pod::default()), None);
    }
}
