//! The payloads of `configMap`, `secret`, `downwardAPI` and `projected` volumes
//! (`MakePayload`, `CollectData` and `collectData` in the kubelet), read from the
//! API and from the pod as it is now.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Node, Pod, ProjectedVolumeSource, Secret,
};
use kube::api::Api;

use super::atomic::{self, DEFAULT_MODE, File, Payload};
use super::downward;
use super::error::Cause;

/// Where payloads come from: the pod's namespace, the pod as it is now (labels
/// and annotations change while it runs) and, read once when needed, the node's
/// allocatable resources.
pub(super) struct Sources<'a> {
    pub client: &'a kube::Client,
    pub namespace: &'a str,
    pub pod: &'a Pod,
    pub allocatable: Option<BTreeMap<String, String>>,
}

fn mode(m: Option<i32>, default: Option<i32>) -> u32 {
    m.or(default)
        .and_then(|m| u32::try_from(m).ok())
        .map_or(DEFAULT_MODE, |m| m & 0o7777)
}

/// Keys → files: all of them, or the listed `items` (a missing key is an error
/// unless the source is optional).
fn make_payload(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: Option<i32>,
    optional: bool,
    missing: impl Fn(&str) -> String,
) -> Result<Payload, Cause> {
    let Some(items) = items.filter(|i| !i.is_empty()) else {
        return Ok(data
            .into_iter()
            .map(|(k, bytes)| {
                let mode = mode(None, default_mode);
                (k, File { bytes, mode })
            })
            .collect());
    };
    let mut out = Payload::new();
    for item in items {
        match data.get(&item.key) {
            Some(bytes) => {
                out.insert(
                    item.path.clone(),
                    File {
                        bytes: bytes.clone(),
                        mode: mode(item.mode, default_mode),
                    },
                );
            }
            None if optional => {}
            None => return Err(Cause::MissingKey(missing(&item.key))),
        }
    }
    Ok(out)
}

impl Sources<'_> {
    /// A ConfigMap's data and binaryData; `None` when it does not exist.
    async fn config_map_data(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, Cause> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), self.namespace);
        let Some(cm) = api
            .get_opt(name)
            .await
            .map_err(|e| Cause::Api(e.to_string()))?
        else {
            return Ok(None);
        };
        let mut data: BTreeMap<String, Vec<u8>> = cm
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, s)| (k, s.into_bytes()))
            .collect();
        data.extend(
            cm.binary_data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, b)| (k, b.0)),
        );
        Ok(Some(data))
    }

    /// A Secret's data; `None` when it does not exist.
    async fn secret_data(&self, name: &str) -> Result<Option<BTreeMap<String, Vec<u8>>>, Cause> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), self.namespace);
        let Some(s) = api
            .get_opt(name)
            .await
            .map_err(|e| Cause::Api(e.to_string()))?
        else {
            return Ok(None);
        };
        let mut data: BTreeMap<String, Vec<u8>> = s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, b)| (k, b.0))
            .collect();
        // stringData is folded into data by the API server; accept it anyway.
        data.extend(
            s.string_data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes())),
        );
        Ok(Some(data))
    }

    /// The payload of a configMap (volume or projected source).
    pub async fn config_map(
        &self,
        name: &str,
        items: Option<&Vec<KeyToPath>>,
        default_mode: Option<i32>,
        optional: Option<bool>,
    ) -> Result<Payload, Cause> {
        let optional = optional == Some(true);
        match self.config_map_data(name).await? {
            Some(data) => make_payload(data, items, default_mode, optional, |k| {
                format!("configmap references non-existent config key: {k}")
            }),
            None if optional => Ok(Payload::new()),
            None => Err(Cause::NotFound {
                kind: "configmap",
                name: name.to_string(),
            }),
        }
    }

    /// The payload of a secret (volume or projected source).
    pub async fn secret(
        &self,
        name: &str,
        items: Option<&Vec<KeyToPath>>,
        default_mode: Option<i32>,
        optional: Option<bool>,
    ) -> Result<Payload, Cause> {
        let optional = optional == Some(true);
        match self.secret_data(name).await? {
            Some(data) => make_payload(data, items, default_mode, optional, |k| {
                format!("references non-existent secret key: {k}")
            }),
            None if optional => Ok(Payload::new()),
            None => Err(Cause::NotFound {
                kind: "secret",
                name: name.to_string(),
            }),
        }
    }

    /// The node's allocatable resources (unset limits resolve to them).
    async fn allocatable(&mut self) -> Result<&BTreeMap<String, String>, Cause> {
        if self.allocatable.is_none() {
            let node = self
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            let api: Api<Node> = Api::all(self.client.clone());
            let got = api
                .get_opt(&node)
                .await
                .map_err(|e| Cause::Api(e.to_string()))?;
            let alloc = got
                .and_then(|n| n.status)
                .and_then(|s| s.allocatable)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, q)| (k, q.0))
                .collect();
            self.allocatable = Some(alloc);
        }
        Ok(self.allocatable.get_or_insert_default())
    }

    /// The payload of a downwardAPI volume or projected source; every failing
    /// item is reported (an aggregate), as `CollectData` does.
    pub async fn downward_api(
        &mut self,
        items: Option<&Vec<DownwardAPIVolumeFile>>,
        default_mode: Option<i32>,
    ) -> Result<Payload, Cause> {
        let mut out = Payload::new();
        let mut errors = Vec::new();
        for item in items.into_iter().flatten() {
            let value = if let Some(f) = &item.field_ref {
                downward::field(self.pod, &f.field_path)
            } else if let Some(r) = &item.resource_field_ref {
                let pod = self.pod;
                let alloc = self.allocatable().await?;
                downward::resource(pod, r, alloc)
            } else {
                Ok(String::new())
            };
            match value {
                Ok(v) => {
                    out.insert(
                        atomic::clean(&item.path),
                        File {
                            bytes: v.into_bytes(),
                            mode: mode(item.mode, default_mode),
                        },
                    );
                }
                Err(e) => errors.push(Cause::Field(e)),
            }
        }
        match Cause::aggregate(errors) {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The payload of a projected volume: its sources merged in order, each
    /// failing source reported. A `serviceAccountToken` source writes nothing: this
    /// API server accepts only the admin token, which must never reach a guest.
    pub async fn projected(&mut self, p: &ProjectedVolumeSource) -> Result<Payload, Cause> {
        let mut out = Payload::new();
        let mut errors = Vec::new();
        let default_mode = p.default_mode;
        for source in p.sources.iter().flatten() {
            let got = if let Some(cm) = &source.config_map {
                self.config_map(&cm.name, cm.items.as_ref(), default_mode, cm.optional)
                    .await
            } else if let Some(s) = &source.secret {
                self.secret(&s.name, s.items.as_ref(), default_mode, s.optional)
                    .await
            } else if let Some(d) = &source.downward_api {
                self.downward_api(d.items.as_ref(), default_mode).await
            } else {
                if let Some(t) = &source.service_account_token {
                    tracing::debug!(path = %t.path, "serviceAccountToken projections are not written (no per-pod tokens yet)");
                }
                Ok(Payload::new())
            };
            match got {
                Ok(files) => out.extend(files),
                Err(e) => errors.push(e),
            }
        }
        match Cause::aggregate(errors) {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}
