//! Pod volumes on the host, mounted into guests as WASI preopened dirs: `configMap`
//! and `secret` projected with the kubelet's atomic `..data` symlink swap (so a
//! change shows up in a running pod at once, whole), and `emptyDir` shared by the
//! pod's containers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Container, KeyToPath, Pod, Secret, Volume};
use kube::api::Api;

/// Why volumes cannot be set up; the container waits (ContainerCreating) and the
/// kubelet retries, as Kubernetes does with FailedMount.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A referenced ConfigMap or Secret does not exist.
    #[error("MountVolume.SetUp failed for volume \"{volume}\" : {kind} \"{name}\" not found")]
    Missing {
        /// The volume.
        volume: String,
        /// `configmap` or `secret`.
        kind: &'static str,
        /// The object's name.
        name: String,
    },
    /// A volume type this kubelet does not serve.
    #[error("volume \"{0}\": {1} volumes are not supported")]
    Unsupported(String, &'static str),
    /// A mount names a volume the pod does not have.
    #[error("volumeMount \"{0}\" names no volume of the pod")]
    UnknownVolume(String),
    /// Host filesystem or API failure.
    #[error("setting up volume \"{0}\": {1}")]
    Io(String, String),
}

/// One preopened dir of a container.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Host directory.
    pub host: PathBuf,
    /// Where the guest sees it.
    pub guest: String,
    /// Whether writes are refused.
    pub read_only: bool,
}

/// The pod's volumes, set up under its directory.
#[derive(Debug, Clone)]
pub struct Volumes {
    root: PathBuf,
    volumes: Vec<Volume>,
    namespace: String,
}

/// The files a configMap/secret volume shows: all keys, or the listed `items`.
fn select(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
) -> BTreeMap<String, Vec<u8>> {
    match items {
        None => data,
        Some(items) => items
            .iter()
            .filter_map(|i| data.get(&i.key).map(|v| (i.path.clone(), v.clone())))
            .collect(),
    }
}

fn io(volume: &str, e: impl std::fmt::Display) -> Error {
    Error::Io(volume.to_string(), e.to_string())
}

/// Write `files` into `dir` the way the kubelet's atomic writer does: a fresh
/// timestamped directory, `..data` switched to it by one rename, and a top-level
/// symlink per entry. Unchanged content is left alone.
fn project(volume: &str, dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<(), Error> {
    let current = dir.join("..data");
    let same = current.exists()
        && files
            .iter()
            .all(|(k, v)| std::fs::read(current.join(k)).is_ok_and(|old| old == *v))
        && std::fs::read_dir(&current)
            .map(|rd| rd.count())
            .unwrap_or(0)
            == files
                .keys()
                .filter_map(|k| k.split('/').next())
                .collect::<std::collections::BTreeSet<_>>()
                .len();
    if same {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| io(volume, e))?;
    let stamp = format!(
        "..{}_{}",
        jiff::Timestamp::now().as_nanosecond(),
        uuid::Uuid::new_v4().simple()
    );
    let fresh = dir.join(&stamp);
    for (path, bytes) in files {
        let target = fresh.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(volume, e))?;
        }
        std::fs::write(&target, bytes).map_err(|e| io(volume, e))?;
    }
    std::fs::create_dir_all(&fresh).map_err(|e| io(volume, e))?;
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp).map_err(|e| io(volume, e))?;
    std::fs::rename(&tmp, &current).map_err(|e| io(volume, e))?;
    let tops: std::collections::BTreeSet<&str> =
        files.keys().filter_map(|k| k.split('/').next()).collect();
    for entry in std::fs::read_dir(dir).map_err(|e| io(volume, e))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") {
            if name != "..data" && name != stamp {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        } else if !tops.contains(name.as_str()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    for top in tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{top}"), &link)
                .map_err(|e| io(volume, e))?;
        }
    }
    Ok(())
}

impl Volumes {
    /// Volumes of `pod` under `pod_dir/.volumes`.
    pub fn new(pod: &Pod, pod_dir: &Path) -> Volumes {
        Volumes {
            // Container names cannot start with '.', so this never meets a log dir.
            root: pod_dir.join(".volumes"),
            volumes: pod
                .spec
                .as_ref()
                .and_then(|s| s.volumes.clone())
                .unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        }
    }

    /// Create every volume's directory and project configMaps and secrets (again).
    pub async fn sync(&self, client: &kube::Client) -> Result<(), Error> {
        for v in &self.volumes {
            let dir = self.root.join(&v.name);
            if let Some(cm) = &v.config_map {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), &self.namespace);
                match api.get_opt(&cm.name).await.map_err(|e| io(&v.name, e))? {
                    Some(obj) => {
                        let mut data: BTreeMap<String, Vec<u8>> = obj
                            .data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, s)| (k, s.into_bytes()))
                            .collect();
                        data.extend(
                            obj.binary_data
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(k, b)| (k, b.0)),
                        );
                        project(&v.name, &dir, &select(data, cm.items.as_ref()))?;
                    }
                    None if cm.optional == Some(true) => project(&v.name, &dir, &BTreeMap::new())?,
                    None => {
                        return Err(Error::Missing {
                            volume: v.name.clone(),
                            kind: "configmap",
                            name: cm.name.clone(),
                        });
                    }
                }
            } else if let Some(sec) = &v.secret {
                let name = sec.secret_name.clone().unwrap_or_default();
                let api: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
                match api.get_opt(&name).await.map_err(|e| io(&v.name, e))? {
                    Some(obj) => {
                        let data: BTreeMap<String, Vec<u8>> = obj
                            .data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, b)| (k, b.0))
                            .collect();
                        project(&v.name, &dir, &select(data, sec.items.as_ref()))?;
                    }
                    None if sec.optional == Some(true) => project(&v.name, &dir, &BTreeMap::new())?,
                    None => {
                        return Err(Error::Missing {
                            volume: v.name.clone(),
                            kind: "secret",
                            name,
                        });
                    }
                }
            } else if v.empty_dir.is_some() {
                std::fs::create_dir_all(&dir).map_err(|e| io(&v.name, e))?;
            } else if v.host_path.is_some() {
                return Err(Error::Unsupported(v.name.clone(), "hostPath"));
            } else if v.persistent_volume_claim.is_some() {
                return Err(Error::Unsupported(v.name.clone(), "persistentVolumeClaim"));
            } else {
                return Err(Error::Unsupported(v.name.clone(), "this type of"));
            }
        }
        Ok(())
    }

    /// The preopened dirs of one container, from its `volumeMounts`. ConfigMap and
    /// secret volumes are always read-only, as in Kubernetes.
    pub fn mounts(&self, c: &Container) -> Result<Vec<Mount>, Error> {
        let mut out = Vec::new();
        for m in c.volume_mounts.clone().unwrap_or_default() {
            let v = self
                .volumes
                .iter()
                .find(|v| v.name == m.name)
                .ok_or_else(|| Error::UnknownVolume(m.name.clone()))?;
            let mut host = self.root.join(&v.name);
            if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                if sub.split('/').any(|p| p == "..") || sub.starts_with('/') {
                    return Err(Error::Io(
                        v.name.clone(),
                        format!("subPath {sub:?} must be a relative path without '..'"),
                    ));
                }
                host = host.join(sub);
                std::fs::create_dir_all(&host).map_err(|e| io(&v.name, e))?;
            }
            let forced = v.config_map.is_some() || v.secret.is_some();
            out.push(Mount {
                host,
                guest: m.mount_path.clone(),
                read_only: forced || m.read_only == Some(true),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn projection_swaps_data_atomically_and_drops_removed_keys() {
        let dir = tempfile::tempdir().expect("tmp");
        let vol = dir.path().join("config");
        project("config", &vol, &files(&[("a", "1"), ("b", "2")])).expect("first");
        assert_eq!(std::fs::read_to_string(vol.join("a")).expect("a"), "1");
        let first = std::fs::read_link(vol.join("..data")).expect("link");
        project("config", &vol, &files(&[("a", "1"), ("b", "2")])).expect("unchanged");
        assert_eq!(
            std::fs::read_link(vol.join("..data")).expect("link"),
            first,
            "unchanged content is not rewritten"
        );
        project("config", &vol, &files(&[("a", "9")])).expect("second");
        assert_eq!(std::fs::read_to_string(vol.join("a")).expect("a"), "9");
        assert!(!vol.join("b").exists(), "a removed key disappears");
        let stamps = std::fs::read_dir(&vol)
            .expect("dir")
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("..") && n != "..data"
            })
            .count();
        assert!(stamps <= 1, "old generations are removed");
    }
}
