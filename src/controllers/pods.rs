//! What the workload controllers ask of pods and owners: whether a pod is active,
//! ready or available, whether labels match a selector, controller
//! ownerReferences (adopting orphans, releasing what stopped matching), and a pod
//! made from a template for an owner.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

/// Not finished (Succeeded/Failed) and not being deleted: counts toward replicas.
pub fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !is_terminal(pod)
}

/// Succeeded or Failed.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// The pod's phase (`""` before the kubelet reports one).
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// When the pod's Ready condition last turned True; `None` while not ready.
pub fn ready_since(pod: &Pod) -> Option<jiff::Timestamp> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(
        c.last_transition_time
            .as_ref()
            .map_or(jiff::Timestamp::UNIX_EPOCH, |t| t.0),
    )
}

/// Ready now.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now`; otherwise how long until it
/// will be (`Err(None)` when it is not ready at all).
pub fn availability(
    pod: &Pod,
    min_ready_seconds: i32,
    now: jiff::Timestamp,
) -> Result<(), Option<std::time::Duration>> {
    let since = ready_since(pod).ok_or(None)?;
    if min_ready_seconds <= 0 {
        return Ok(());
    }
    let until = since + jiff::SignedDuration::from_secs(i64::from(min_ready_seconds));
    if until <= now {
        Ok(())
    } else {
        Err(Some(
            std::time::Duration::try_from(until.duration_since(now)).unwrap_or_default(),
        ))
    }
}

/// Whether `labels` satisfy a `metav1.LabelSelector` (an empty selector matches
/// everything; a missing one nothing, as controllers treat it).
pub fn selects(
    selector: Option<&LabelSelector>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let Some(sel) = selector else {
        return false;
    };
    let get = |k: &str| labels.and_then(|l| l.get(k));
    let by_label = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| get(k) == Some(v));
    let by_expression = sel.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => get(&e.key).is_some(),
            "DoesNotExist" => get(&e.key).is_none(),
            _ => false,
        }
    });
    by_label && by_expression
}

/// The object's controller ownerReference, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// A controller ownerReference to `owner` (blocking its foreground deletion).
pub fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A pod from `template`, named `generate_name` + random suffix (or `name`),
/// controlled by `owner`.
pub fn from_template(template: &PodTemplateSpec, name: Naming<'_>, owner: OwnerReference) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    let (name, generate_name) = match name {
        Naming::Exact(n) => (Some(n.to_string()), None),
        Naming::Generate(prefix) => (None, Some(prefix.to_string())),
    };
    Pod {
        metadata: ObjectMeta {
            name,
            generate_name,
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// How a new pod is named.
#[derive(Debug, Clone, Copy)]
pub enum Naming<'a> {
    /// Exactly this (StatefulSets).
    Exact(&'a str),
    /// This prefix plus a random suffix (ReplicaSets, Jobs, DaemonSets).
    Generate(&'a str),
}

/// Take an orphan that matches: add `owner` as its controller. The patch carries
/// the orphan's uid, so a replacement of the same name is never taken by mistake.
pub async fn adopt<K, O>(api: &Api<K>, orphan: &K, owner: &O) -> bool
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    O: Resource<DynamicType = ()>,
{
    let meta = orphan.meta();
    let mut refs = meta.owner_references.clone().unwrap_or_default();
    refs.push(owner_ref(owner));
    let patch = json!({"metadata": {"ownerReferences": refs, "uid": meta.uid}});
    api.patch(
        &orphan.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .inspect_err(|e| tracing::debug!(object = %orphan.name_any(), error = %e, "adopting"))
    .is_ok()
}

/// Let go of an object that no longer matches its controller's selector.
pub async fn release<K>(api: &Api<K>, owned: &K, owner_uid: &str)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let meta = owned.meta();
    let refs: Vec<_> = meta
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != owner_uid)
        .cloned()
        .collect();
    let patch = json!({"metadata": {"ownerReferences": refs, "uid": meta.uid}});
    if let Err(e) = api
        .patch(
            &owned.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        tracing::debug!(object = %owned.name_any(), error = %e, "releasing");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: serde_json::Value) -> BTreeMap<String, String> {
        serde_json::from_value(v).expect("labels")
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]
        }))
        .expect("selector");
        assert!(selects(Some(&sel), Some(&labels(json!({"app": "web"})))));
        assert!(!selects(
            Some(&sel),
            Some(&labels(json!({"app": "web", "tier": "db"})))
        ));
        assert!(!selects(Some(&sel), None));
        assert!(
            selects(Some(&LabelSelector::default()), None),
            "empty selects all"
        );
        assert!(
            !selects(None, Some(&labels(json!({"app": "web"})))),
            "missing selects none"
        );
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .expect("pod");
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("time");
        assert_eq!(availability(&pod, 0, at("2026-01-01T00:00:00Z")), Ok(()));
        assert_eq!(
            availability(&pod, 10, at("2026-01-01T00:00:04Z")),
            Err(Some(std::time::Duration::from_secs(6)))
        );
        assert_eq!(availability(&pod, 10, at("2026-01-01T00:00:10Z")), Ok(()));
    }
}
