//! A container's environment as the kubelet builds it: `env` (values, and `valueFrom`
//! ConfigMap/Secret keys and pod fields), `envFrom`, and `$(VAR)` expansion in
//! command and args.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::api::Api;

/// Why a container's configuration cannot be built; reported as the waiting reason
/// `CreateContainerConfigError` with this message, as the kubelet does.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A referenced ConfigMap or Secret does not exist.
    #[error("{kind} \"{name}\" not found")]
    Missing {
        /// `configmap` or `secret`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A referenced key does not exist.
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    MissingKey {
        /// `ConfigMap` or `Secret`.
        kind: &'static str,
        /// Namespace.
        namespace: String,
        /// Object name.
        name: String,
        /// The key.
        key: String,
    },
    /// A resourceFieldRef names something the container does not have.
    #[error("{0}")]
    Resource(String),
    /// The API could not be read.
    #[error("reading the API: {0}")]
    Api(String),
}

/// The allocatable resources of the pod's node (what an unset limit means).
async fn allocatable(client: &kube::Client, pod: &Pod) -> BTreeMap<String, String> {
    let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
        return BTreeMap::new();
    };
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    nodes
        .get_opt(&node)
        .await
        .ok()
        .flatten()
        .and_then(|n| n.status?.allocatable)
        .map(|a| a.into_iter().map(|(k, q)| (k, q.0)).collect())
        .unwrap_or_default()
}

/// Reads ConfigMaps and Secrets of one namespace, each at most once per container.
struct Sources {
    client: kube::Client,
    namespace: String,
    config_maps: BTreeMap<String, Option<BTreeMap<String, String>>>,
    secrets: BTreeMap<String, Option<BTreeMap<String, String>>>,
}

impl Sources {
    async fn config_map(&mut self, name: &str) -> Result<Option<&BTreeMap<String, String>>, Error> {
        if !self.config_maps.contains_key(name) {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
            let got = api
                .get_opt(name)
                .await
                .map_err(|e| Error::Api(e.to_string()))?;
            self.config_maps
                .insert(name.to_string(), got.map(|c| c.data.unwrap_or_default()));
        }
        Ok(self.config_maps.get(name).and_then(Option::as_ref))
    }

    async fn secret(&mut self, name: &str) -> Result<Option<&BTreeMap<String, String>>, Error> {
        if !self.secrets.contains_key(name) {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
            let got = api
                .get_opt(name)
                .await
                .map_err(|e| Error::Api(e.to_string()))?;
            let decoded = got.map(|s| {
                let mut m: BTreeMap<String, String> = s
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                    .collect();
                // stringData is folded into data by the API server; accept it anyway.
                m.extend(s.string_data.unwrap_or_default());
                m
            });
            self.secrets.insert(name.to_string(), decoded);
        }
        Ok(self.secrets.get(name).and_then(Option::as_ref))
    }
}

/// The value of a `fieldRef` path.
fn field(pod: &Pod, path: &str) -> String {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => "127.0.0.1".into(),
        "status.podIP" => pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default(),
        p => {
            // metadata.labels['k'] / metadata.annotations['k']
            let pick = |prefix: &str, map: Option<&BTreeMap<String, String>>| {
                p.strip_prefix(prefix)
                    .and_then(|r| r.strip_suffix("']"))
                    .and_then(|k| map.and_then(|m| m.get(k)).cloned())
            };
            pick("metadata.labels['", meta.labels.as_ref())
                .or_else(|| pick("metadata.annotations['", meta.annotations.as_ref()))
                .unwrap_or_default()
        }
    }
}

/// Expand `$(VAR)` with the variables defined so far; `$$` is a literal `$`, and an
/// undefined reference stays as written, as Kubernetes does.
pub fn expand(s: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(').and_then(|a| a.split_once(')')) {
            let (name, tail) = inner;
            match vars.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&format!("$({name})")),
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// One key of a ConfigMap or Secret (`kind`), or nothing when the reference is
/// optional; a missing object or key is the kubelet's error otherwise.
fn pick_key(
    data: Option<&BTreeMap<String, String>>,
    kind: &'static str,
    namespace: &str,
    name: &str,
    key: &str,
    optional: bool,
) -> Result<Option<String>, Error> {
    match data.map(|m| m.get(key)) {
        Some(Some(v)) => Ok(Some(v.clone())),
        _ if optional => Ok(None),
        Some(None) => Err(Error::MissingKey {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            key: key.into(),
        }),
        None => Err(Error::Missing {
            kind: if kind == "ConfigMap" {
                "configmap"
            } else {
                "secret"
            },
            name: name.into(),
        }),
    }
}

/// Build the container's environment (in Kubernetes' order: envFrom, then env).
pub async fn build(
    client: &kube::Client,
    pod: &Pod,
    c: &Container,
) -> Result<Vec<(String, String)>, Error> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let mut src = Sources {
        client: client.clone(),
        namespace: namespace.clone(),
        config_maps: BTreeMap::new(),
        secrets: BTreeMap::new(),
    };
    let mut vars: Vec<(String, String)> = Vec::new();
    for from in c.env_from.clone().unwrap_or_default() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match src.config_map(&r.name).await? {
                Some(m) => vars.extend(m.iter().map(|(k, v)| (format!("{prefix}{k}"), v.clone()))),
                None if r.optional == Some(true) => {}
                None => {
                    return Err(Error::Missing {
                        kind: "configmap",
                        name: r.name.clone(),
                    });
                }
            }
        }
        if let Some(r) = &from.secret_ref {
            match src.secret(&r.name).await? {
                Some(m) => vars.extend(m.iter().map(|(k, v)| (format!("{prefix}{k}"), v.clone()))),
                None if r.optional == Some(true) => {}
                None => {
                    return Err(Error::Missing {
                        kind: "secret",
                        name: r.name.clone(),
                    });
                }
            }
        }
    }
    for e in c.env.clone().unwrap_or_default() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => Some(expand(v, &vars)),
            (None, Some(from)) => {
                if let Some(k) = &from.config_map_key_ref {
                    let data = src.config_map(&k.name).await?;
                    pick_key(
                        data,
                        "ConfigMap",
                        &namespace,
                        &k.name,
                        &k.key,
                        k.optional == Some(true),
                    )?
                } else if let Some(k) = &from.secret_key_ref {
                    let data = src.secret(&k.name).await?;
                    pick_key(
                        data,
                        "Secret",
                        &namespace,
                        &k.name,
                        &k.key,
                        k.optional == Some(true),
                    )?
                } else if let Some(r) = &from.resource_field_ref {
                    // In env, the container defaults to the one being configured.
                    let mut sel = r.clone();
                    if sel.container_name.as_deref().unwrap_or("").is_empty() {
                        sel.container_name = Some(c.name.clone());
                    }
                    let node = allocatable(client, pod).await;
                    Some(super::volumes::resource(pod, &sel, &node).map_err(Error::Resource)?)
                } else {
                    from.field_ref.as_ref().map(|f| field(pod, &f.field_path))
                }
            }
            (None, None) => Some(String::new()),
        };
        if let Some(v) = value {
            vars.retain(|(k, _)| *k != e.name);
            vars.push((e.name, v));
        }
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn references_expand_escapes_stay_and_unknown_names_are_kept() {
        let v = vars(&[("GREETING", "hi"), ("NAME", "web")]);
        assert_eq!(expand("$(GREETING), $(NAME)!", &v), "hi, web!");
        assert_eq!(expand("cost: $$(GREETING)", &v), "cost: $(GREETING)");
        assert_eq!(expand("$(MISSING) and $", &v), "$(MISSING) and $");
    }

    #[test]
    fn pod_fields_resolve_by_path() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": []}
        }))
        .expect("pod");
        assert_eq!(field(&pod, "metadata.name"), "p");
        assert_eq!(field(&pod, "spec.nodeName"), "n1");
        assert_eq!(field(&pod, "metadata.labels['app']"), "web");
    }
}
