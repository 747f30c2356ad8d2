//! A DaemonSet's pods: claiming them (adopting matching orphans, releasing what
//! stopped matching) and creating or deleting them with the events Kubernetes'
//! pod control records (`SuccessfulCreate` "Created pod: NAME", `FailedCreate`,
//! `SuccessfulDelete`, `FailedDelete`).

use futures::{StreamExt, stream};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions};

use super::{BURST, Error, PARALLEL, nodes};
use crate::controllers::pods::{self, Naming};
use crate::events::{Involved, Kind, Recorder};

/// The pods the DaemonSet controls: its own that match, plus matching orphans
/// (adopted); its own that stopped matching are released.
pub(super) async fn claim(api: &Api<Pod>, ds: &DaemonSet, uid: &str) -> Result<Vec<Pod>, Error> {
    let mut owned = Vec::new();
    for pod in api.list(&ListParams::default()).await?.items {
        let matches = pods::selects(Some(&ds.spec.selector), pod.metadata.labels.as_ref());
        match pods::controller_of(&pod.metadata) {
            Some(r) if r.uid == uid => {
                if matches {
                    owned.push(pod);
                } else {
                    pods::release(api, &pod, uid).await;
                }
            }
            Some(_) => {}
            None if matches
                && pod.metadata.deletion_timestamp.is_none()
                && pods::adopt(api, &pod, ds).await =>
            {
                owned.push(pod);
            }
            None => {}
        }
    }
    Ok(owned)
}

/// Creates and deletes daemon pods, with the events Kubernetes' pod control records.
pub(super) struct Apply<'a> {
    pub(super) recorder: &'a Recorder,
    pub(super) api: &'a Api<Pod>,
    pub(super) ds: &'a DaemonSet,
    pub(super) about: Option<&'a Involved>,
}

impl Apply<'_> {
    /// A pod from `template` for each of `nodes`; the first failure is returned.
    pub(super) async fn create(
        &self,
        template: &PodTemplateSpec,
        nodes: &[String],
    ) -> Option<String> {
        let prefix = format!("{}-", self.ds.name_any());
        let owner = pods::owner_ref(self.ds);
        let params = PostParams::default();
        let results: Vec<Result<Pod, kube::Error>> =
            stream::iter(nodes.iter().take(BURST).cloned())
                .map(|node: String| {
                    let mut pod =
                        pods::from_template(template, Naming::Generate(&prefix), owner.clone());
                    if let Some(spec) = pod.spec.as_mut() {
                        spec.affinity = Some(nodes::pin(spec.affinity.take(), &node));
                    }
                    let (api, params) = (self.api, &params);
                    async move { api.create(params, &pod).await }
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
        crate::controllers::replicaset::report_creates(self.recorder, self.about, results).await
    }

    /// Delete the named pods (their uid pinned, so a namesake is never hit).
    pub(super) async fn delete(&self, owned: &[Pod], names: &[String]) {
        let victims: Vec<(String, Option<String>)> = names
            .iter()
            .take(BURST)
            .map(|n| {
                let uid = owned
                    .iter()
                    .find(|p| p.metadata.name.as_ref() == Some(n))
                    .and_then(|p| p.metadata.uid.clone());
                (n.clone(), uid)
            })
            .collect();
        let results: Vec<(String, Result<(), kube::Error>)> = stream::iter(victims)
            .map(|(name, uid)| async move {
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid,
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                let result = match self.api.delete(&name, &params).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 404 => return (name, None),
                    Err(e) => Err(e),
                };
                (name, Some(result))
            })
            .buffer_unordered(PARALLEL)
            .filter_map(|(name, r)| async move { r.map(|r| (name, r)) })
            .collect()
            .await;
        let Some(about) = self.about else {
            return;
        };
        for (name, r) in results {
            let (kind, reason, message) = match r {
                Ok(()) => (
                    Kind::Normal,
                    "SuccessfulDelete",
                    format!("Deleted pod: {name}"),
                ),
                Err(e) => (
                    Kind::Warning,
                    "FailedDelete",
                    format!(
                        "Error deleting: {}",
                        crate::controllers::replicaset::api_message(&e)
                    ),
                ),
            };
            self.recorder.record(about, kind, reason, message).await;
        }
    }
}
