//! ControllerRevisions: the recorded history of a controller's pod templates, as
//! DaemonSets (and StatefulSets) keep it, so `kubectl rollout history|undo` can list
//! and restore earlier templates.
//!
//! A revision is named `<owner>-<hash>`, labelled with the template's labels plus a
//! hash label, controller-owned by its owner, and carries `revision` (numbers only
//! grow: reusing an old revision on rollback gives it the next number) and `data`,
//! the patch that restores the template (`{"spec":{"template":{…,"$patch":"replace"}}}`,
//! keys sorted as Go's encoder writes them, which `kubectl rollout undo` compares byte
//! for byte). The helpers here are generic over the owner kind; the owner decides
//! what the hash covers and which revisions are still live.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Map, Value, json};

use super::pods;

/// The label DaemonSets put on their revisions and pods (`apps.DefaultDaemonSetUniqueLabelKey`).
pub const HASH_LABEL: &str = "controller-revision-hash";

/// Revisions kept by default (`revisionHistoryLimit`).
pub const DEFAULT_LIMIT: i32 = 10;

/// History failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("controller revisions: {0}")]
    Api(#[from] kube::Error),
    /// A revision of that name exists and records another template: the owner
    /// must bump its collision count and try again.
    #[error("controller revision {0} exists with different data")]
    Collision(String),
}

impl Error {
    /// Whether the name was taken by a different template.
    pub fn is_collision(&self) -> bool {
        matches!(self, Error::Collision(_))
    }
}

/// Result of history operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// FNV-1a (32 bit) over `bytes` and the decimal collision count, written with
/// Kubernetes' safe alphabet (`rand.SafeEncodeString`): the short hash that names
/// ReplicaSets and ControllerRevisions.
pub fn hash(bytes: &[u8], collisions: i32) -> String {
    const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes.iter().chain(collisions.to_string().as_bytes()) {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_string()
        .bytes()
        .map(|c| SAFE[usize::from(c) % SAFE.len()] as char)
        .collect()
}

/// The hash of a pod template (as `controller.ComputeHash`): over its encoding and
/// the collision count.
pub fn template_hash(template: &PodTemplateSpec, collisions: i32) -> String {
    hash(
        &serde_json::to_vec(template).unwrap_or_default(),
        collisions,
    )
}

/// The data a DaemonSet-style revision records: a strategic merge patch that puts
/// `template` back whole. The template is written as Go's typed encoder writes it
/// (`metadata.creationTimestamp: null`, `resources: {}` on containers) with keys
/// sorted, so kubectl's own computation of it gives the same bytes.
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(obj) = t.as_object_mut() {
        let meta = obj.entry("metadata").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.entry("creationTimestamp").or_insert(Value::Null);
        }
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            for list in ["initContainers", "containers", "ephemeralContainers"] {
                for c in spec
                    .get_mut(list)
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object_mut)
                {
                    c.entry("resources").or_insert_with(|| json!({}));
                }
            }
        }
        obj.insert("$patch".into(), json!("replace"));
    }
    sorted(json!({"spec": {"template": t}}))
}

/// `v` with every object's keys in byte order (Go encodes maps that way).
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<String, Value>>(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Whether `rev` records exactly `data`.
pub fn records(rev: &ControllerRevision, data: &Value) -> bool {
    &rev.data.0 == data
}

/// The revision number (0 when unset).
pub fn number(rev: &ControllerRevision) -> i64 {
    rev.revision.unwrap_or(0)
}

/// The highest revision number among `revs` (0 for none).
pub fn max_revision(revs: &[ControllerRevision]) -> i64 {
    revs.iter().map(number).max().unwrap_or(0)
}

/// Oldest first: by revision, then creation time, then name.
pub fn sort_by_revision(revs: &mut [ControllerRevision]) {
    revs.sort_by(|a, b| {
        (number(a), created(a), a.name_any()).cmp(&(number(b), created(b), b.name_any()))
    });
}

fn created(rev: &ControllerRevision) -> Option<jiff::Timestamp> {
    rev.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// The revision of `owner` recording `data`: named `<owner>-<hash>` (the owner part
/// cut to 223 bytes so the name fits 253), labelled `labels` plus
/// `hash_label=hash`, annotated `annotations`, controller-owned by `owner`.
pub fn new_revision<K: Resource<DynamicType = ()>>(
    owner: &K,
    data: Value,
    hash_label: &str,
    hash: &str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    revision: i64,
) -> ControllerRevision {
    let mut labels = labels;
    labels.insert(hash_label.to_string(), hash.to_string());
    let owner_name = owner.meta().name.clone().unwrap_or_default();
    let prefix: String = owner_name.chars().take(223).collect();
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}-{hash}")),
            namespace: owner.meta().namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![pods::owner_ref(owner)]),
            ..ObjectMeta::default()
        },
        data: RawExtension(data),
        revision: Some(revision),
    }
}

/// Which of `old` to delete so at most `limit` remain: the oldest first, never one
/// `live` keeps (say, one whose pods still run).
pub fn to_truncate(
    old: &[ControllerRevision],
    limit: i32,
    live: impl Fn(&ControllerRevision) -> bool,
) -> Vec<&ControllerRevision> {
    let keep = usize::try_from(limit).unwrap_or(0);
    let mut excess = old.len().saturating_sub(keep);
    let mut ordered: Vec<&ControllerRevision> = old.iter().collect();
    ordered.sort_by(|a, b| {
        (number(a), created(a), a.name_any()).cmp(&(number(b), created(b), b.name_any()))
    });
    let mut out = Vec::new();
    for rev in ordered {
        if excess == 0 {
            break;
        }
        if live(rev) {
            continue;
        }
        out.push(rev);
        excess -= 1;
    }
    out
}

/// The ControllerRevisions of one owner in one namespace.
pub struct History {
    api: Api<ControllerRevision>,
}

impl History {
    /// The history kept in `namespace`.
    pub fn new(client: kube::Client, namespace: &str) -> History {
        History {
            api: Api::namespaced(client, namespace),
        }
    }

    /// The revisions `owner` controls: its own that still match `selector`, plus
    /// orphans that match (adopted); its own that stopped matching are released.
    pub async fn claim<K>(
        &self,
        owner: &K,
        selector: &LabelSelector,
    ) -> Result<Vec<ControllerRevision>>
    where
        K: Resource<DynamicType = ()>,
    {
        let uid = owner.meta().uid.clone().unwrap_or_default();
        let mut owned = Vec::new();
        for rev in self.api.list(&ListParams::default()).await?.items {
            let matches = pods::selects(Some(selector), rev.metadata.labels.as_ref());
            match pods::controller_of(&rev.metadata) {
                Some(r) if r.uid == uid => {
                    if matches {
                        owned.push(rev);
                    } else {
                        pods::release(&self.api, &rev, &uid).await;
                    }
                }
                Some(_) => {}
                None if matches
                    && rev.metadata.deletion_timestamp.is_none()
                    && owner.meta().deletion_timestamp.is_none()
                    && pods::adopt(&self.api, &rev, owner).await =>
                {
                    owned.push(rev);
                }
                None => {}
            }
        }
        Ok(owned)
    }

    /// Create `rev`. When its name is taken by a revision recording the same data,
    /// that one is returned; by other data, [`Error::Collision`].
    pub async fn create(&self, rev: &ControllerRevision) -> Result<ControllerRevision> {
        match self.api.create(&PostParams::default(), rev).await {
            Ok(created) => Ok(created),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let name = rev.name_any();
                let existing = self.api.get(&name).await?;
                if records(&existing, &rev.data.0) {
                    Ok(existing)
                } else {
                    Err(Error::Collision(name))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Give `rev` revision number `n` (a template rolled back to becomes newest).
    pub async fn renumber(&self, rev: &ControllerRevision, n: i64) -> Result<ControllerRevision> {
        if number(rev) == n {
            return Ok(rev.clone());
        }
        let patch = json!({"revision": n});
        Ok(self
            .api
            .patch(
                &rev.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?)
    }

    /// Delete `rev` (gone already counts as done).
    pub async fn delete(&self, rev: &ControllerRevision) -> Result<()> {
        match self
            .api
            .delete(&rev.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(name: &str, n: i64, hash: &str) -> ControllerRevision {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {HASH_LABEL: hash},
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "data": {},
            "revision": n,
        }))
        .expect("revision")
    }

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "agent"}},
            "spec": {"containers": [{"name": "agent", "image": image}]}
        }))
        .expect("template")
    }

    #[test]
    fn hashes_are_stable_safe_and_change_with_content_and_collisions() {
        let h = hash(b"abc", 0);
        assert_eq!(h, hash(b"abc", 0));
        assert!(
            h.bytes()
                .all(|c| b"bcdfghjklmnpqrstvwxz2456789".contains(&c)),
            "{h}"
        );
        assert_ne!(h, hash(b"abd", 0));
        assert_ne!(h, hash(b"abc", 1), "a collision count changes it");
        assert_ne!(
            template_hash(&template("a"), 0),
            template_hash(&template("b"), 0)
        );
    }

    #[test]
    fn the_patch_replaces_the_template_with_sorted_keys_as_go_writes_them() {
        let data = template_patch(&template("minke/echo"));
        assert_eq!(
            serde_json::to_string(&data).expect("json"),
            r#"{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"app":"agent"}},"spec":{"containers":[{"image":"minke/echo","name":"agent","resources":{}}]}}}}"#
        );
        assert_eq!(data, template_patch(&template("minke/echo")));
        assert_ne!(data, template_patch(&template("minke/echo:v2")));
    }

    #[test]
    fn truncation_deletes_the_oldest_beyond_the_limit_and_spares_live_ones() {
        let old = vec![rev("d-c", 3, "c"), rev("d-a", 1, "a"), rev("d-b", 2, "b")];
        let names =
            |v: Vec<&ControllerRevision>| v.iter().map(|r| r.name_any()).collect::<Vec<_>>();
        assert_eq!(names(to_truncate(&old, 1, |_| false)), ["d-a", "d-b"]);
        assert_eq!(names(to_truncate(&old, 3, |_| false)), Vec::<String>::new());
        let live =
            |r: &ControllerRevision| r.labels().get(HASH_LABEL).map(String::as_str) == Some("a");
        assert_eq!(names(to_truncate(&old, 1, live)), ["d-b", "d-c"]);
        assert_eq!(names(to_truncate(&old, 0, |_| false)).len(), 3);
    }

    #[test]
    fn revisions_sort_by_number_and_the_highest_is_found() {
        let mut revs = vec![rev("x", 5, "x"), rev("y", 2, "y")];
        sort_by_revision(&mut revs);
        assert_eq!(revs[0].name_any(), "y");
        assert_eq!(max_revision(&revs), 5);
        assert_eq!(max_revision(&[]), 0);
    }

    #[test]
    fn a_new_revision_is_named_labelled_and_owned() {
        let ds: k8s_openapi::api::apps::v1::DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "default", "uid": "u1"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {}}
        }))
        .expect("ds");
        let labels = BTreeMap::from([("app".to_string(), "agent".to_string())]);
        let r = new_revision(
            &ds,
            json!({}),
            HASH_LABEL,
            "abc",
            labels,
            BTreeMap::new(),
            3,
        );
        assert_eq!(r.name_any(), "agent-abc");
        assert_eq!(r.labels().get(HASH_LABEL).map(String::as_str), Some("abc"));
        assert_eq!(r.labels().get("app").map(String::as_str), Some("agent"));
        let owner = pods::controller_of(&r.metadata).expect("controller");
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("DaemonSet", "u1")
        );
        assert_eq!(r.revision, Some(3));
    }
}
