//! A pod's volumes: set up (and kept current) under the pod's dir, and turned into
//! the preopened dirs of each container.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Container, Pod, Volume};
use kube::api::Api;

use super::error::{Cause, Error, Result};
use super::projection::Sources;
use super::{atomic, host, subpath};
use crate::events::{Involved, Kind, Recorder};

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
#[derive(Debug)]
pub struct Volumes {
    /// `POD_DIR/.volumes`: one dir per volume that lives with the pod.
    root: PathBuf,
    /// `POD_DIR/.volume-subpaths`: per-container dirs for subPath files.
    subpaths: PathBuf,
    volumes: Vec<Volume>,
    pod: Pod,
    /// The canonical dir hostPath volumes must stay under; `None` allows none.
    host_path_root: Option<PathBuf>,
    /// hostPath and persistentVolumeClaim dirs, resolved once at setup.
    resolved: Mutex<BTreeMap<String, PathBuf>>,
    /// The last FailedMount message recorded, so a retry loop does not repeat it.
    last_failure: Mutex<Option<String>>,
}

/// Whether a volume's content is the kubelet's projection (always mounted
/// read-only, whatever the mount says).
fn projected(v: &Volume) -> bool {
    v.config_map.is_some()
        || v.secret.is_some()
        || v.downward_api.is_some()
        || v.projected.is_some()
}

/// Whether a volume shows pod metadata (so the pod is re-read on every sync).
fn shows_pod(v: &Volume) -> bool {
    v.downward_api.is_some()
        || v.projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
            .any(|s| s.downward_api.is_some())
}

/// The name of a volume's source (`nfs`, `csi`, …) for the unsupported message.
fn kind(v: &Volume) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| {
            j.as_object()
                .and_then(|o| o.keys().find(|k| *k != "name").cloned())
        })
        .unwrap_or_else(|| "this type of".into())
}

impl Volumes {
    /// Volumes of `pod` under `pod_dir`; hostPath volumes only under the canonical
    /// `host_path_root`.
    pub fn new(pod: &Pod, pod_dir: &Path, host_path_root: Option<&Path>) -> Volumes {
        Volumes {
            // Container names cannot start with '.', so these never meet a log dir.
            root: pod_dir.join(".volumes"),
            subpaths: pod_dir.join(".volume-subpaths"),
            volumes: pod
                .spec
                .as_ref()
                .and_then(|s| s.volumes.clone())
                .unwrap_or_default(),
            pod: pod.clone(),
            host_path_root: host_path_root.map(Path::to_path_buf),
            resolved: Mutex::new(BTreeMap::new()),
            last_failure: Mutex::new(None),
        }
    }

    /// The pod as it is now (its labels and annotations change while it runs).
    async fn current_pod(&self, client: &kube::Client) -> Pod {
        let (Some(ns), Some(name)) = (
            self.pod.metadata.namespace.as_deref(),
            self.pod.metadata.name.as_deref(),
        ) else {
            return self.pod.clone();
        };
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        match api.get_opt(name).await {
            Ok(Some(p)) if p.metadata.uid == self.pod.metadata.uid => p,
            Ok(_) => self.pod.clone(),
            Err(e) => {
                tracing::debug!(pod = %name, error = %e, "reading the pod for its downward API volumes");
                self.pod.clone()
            }
        }
    }

    /// Set every volume up, or bring its content up to date: projections are
    /// rewritten when their sources changed; hostPath and claim dirs are resolved
    /// once. Every volume is tried; the first failure is returned.
    pub async fn sync(&self, client: &kube::Client) -> Result<()> {
        let namespace = self.pod.metadata.namespace.clone().unwrap_or_default();
        let pod = if self.volumes.iter().any(shows_pod) {
            self.current_pod(client).await
        } else {
            self.pod.clone()
        };
        let mut src = Sources {
            client,
            namespace: &namespace,
            pod: &pod,
            allocatable: None,
        };
        let mut first = None;
        for v in &self.volumes {
            if let Err(e) = self.sync_one(client, &mut src, v).await {
                tracing::debug!(volume = %v.name, error = %e, "volume not set up");
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e),
            None => {
                if let Ok(mut last) = self.last_failure.lock() {
                    *last = None;
                }
                Ok(())
            }
        }
    }

    async fn sync_one(
        &self,
        client: &kube::Client,
        src: &mut Sources<'_>,
        v: &Volume,
    ) -> Result<()> {
        let dir = self.root.join(&v.name);
        let setup = |cause: Cause| Error::SetUp {
            volume: v.name.clone(),
            cause,
        };
        let payload = if let Some(cm) = &v.config_map {
            src.config_map(&cm.name, cm.items.as_ref(), cm.default_mode, cm.optional)
                .await
        } else if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            src.secret(&name, s.items.as_ref(), s.default_mode, s.optional)
                .await
        } else if let Some(d) = &v.downward_api {
            src.downward_api(d.items.as_ref(), d.default_mode).await
        } else if let Some(p) = &v.projected {
            src.projected(p).await
        } else {
            return self.sync_dir(client, src.namespace, v).await;
        };
        atomic::write(&dir, &payload.map_err(setup)?).map_err(setup)
    }

    /// emptyDir, hostPath and persistentVolumeClaim: a dir, no content of ours.
    async fn sync_dir(&self, client: &kube::Client, namespace: &str, v: &Volume) -> Result<()> {
        let setup = |cause: Cause| Error::SetUp {
            volume: v.name.clone(),
            cause,
        };
        if v.empty_dir.is_some() {
            return std::fs::create_dir_all(self.root.join(&v.name))
                .map_err(|e| setup(Cause::io(e)));
        }
        if self.resolved(&v.name).is_some() {
            return Ok(());
        }
        let dir = if let Some(hp) = &v.host_path {
            let kind = hp.type_.as_deref().unwrap_or_default();
            host::host_path(&hp.path, kind, self.host_path_root.as_deref()).map_err(setup)?
        } else if let Some(claim) = &v.persistent_volume_claim {
            host::claim(client, namespace, &v.name, claim).await?
        } else {
            return Err(setup(Cause::Unsupported(kind(v))));
        };
        if let Ok(mut r) = self.resolved.lock() {
            r.insert(v.name.clone(), dir);
        }
        Ok(())
    }

    fn resolved(&self, volume: &str) -> Option<PathBuf> {
        self.resolved.lock().ok()?.get(volume).cloned()
    }

    /// Record a `FailedMount` warning for a setup failure, once per distinct
    /// message while the pod keeps retrying.
    pub async fn report_failure(&self, recorder: &Recorder, e: &Error) {
        let message = e.to_string();
        let repeated = self
            .last_failure
            .lock()
            .map(|mut last| last.replace(message.clone()).as_deref() == Some(message.as_str()))
            .unwrap_or(false);
        if !repeated && let Some(about) = Involved::of(&self.pod) {
            recorder
                .record(&about, Kind::Warning, "FailedMount", message)
                .await;
        }
    }

    /// Where a set-up volume lives on the host.
    fn host_dir(&self, v: &Volume) -> Result<PathBuf> {
        if v.host_path.is_some() || v.persistent_volume_claim.is_some() {
            self.resolved(&v.name).ok_or_else(|| Error::SetUp {
                volume: v.name.clone(),
                cause: Cause::Io("the volume is not set up".into()),
            })
        } else {
            Ok(self.root.join(&v.name))
        }
    }

    /// The preopened dirs of one container, from its `volumeMounts`; `env` is the
    /// container's environment, for `subPathExpr`. Projected volumes and claims
    /// marked `readOnly` are always read-only, as in Kubernetes.
    pub fn mounts(&self, c: &Container, env: &[(String, String)]) -> Result<Vec<Mount>> {
        let mut out: Vec<Mount> = Vec::new();
        // subPath files, grouped by the guest dir that holds them.
        let mut files: BTreeMap<PathBuf, Mount> = BTreeMap::new();
        for m in c.volume_mounts.iter().flatten() {
            let v = self
                .volumes
                .iter()
                .find(|v| v.name == m.name)
                .ok_or_else(|| Error::UnknownVolume(m.name.clone()))?;
            let claim_read_only = v
                .persistent_volume_claim
                .as_ref()
                .is_some_and(|p| p.read_only == Some(true));
            let read_only = projected(v) || claim_read_only || m.read_only == Some(true);
            let base = self.host_dir(v)?;
            let sub = match m.sub_path_expr.as_deref().filter(|s| !s.is_empty()) {
                Some(expr) => subpath::expand(expr, env)?,
                None => m.sub_path.clone().unwrap_or_default(),
            };
            let host = if sub.is_empty() {
                base
            } else {
                subpath::validate(&sub)?;
                subpath::resolve(&base, &sub).map_err(|e| {
                    // As the kubelet, keep host details out of the user's message.
                    tracing::warn!(container = %c.name, mount = %m.name, error = %e, "preparing a subPath");
                    Error::SubPath(format!(
                        "failed to prepare subPath for volumeMount \"{}\" of container \"{}\"",
                        m.name, c.name
                    ))
                })?
            };
            if host.is_dir() {
                out.push(Mount {
                    host,
                    guest: m.mount_path.clone(),
                    read_only,
                });
                continue;
            }
            let guest = Path::new(&m.mount_path);
            let (Some(parent), Some(name)) = (guest.parent(), guest.file_name()) else {
                return Err(Error::SubPath(format!(
                    "cannot mount the file of volumeMount \"{}\" at {}",
                    m.name, m.mount_path
                )));
            };
            let next = files.len();
            let group = files.entry(parent.to_path_buf()).or_insert_with(|| Mount {
                host: self.subpaths.join(&c.name).join(next.to_string()),
                guest: parent.display().to_string(),
                read_only: false,
            });
            let copied = subpath::link_file(&host, &group.host, &name.to_string_lossy())
                .map_err(|e| {
                    tracing::warn!(container = %c.name, mount = %m.name, error = %e, "offering a subPath file");
                    Error::SubPath(format!(
                        "failed to prepare subPath for volumeMount \"{}\" of container \"{}\"",
                        m.name, c.name
                    ))
                })?;
            // One preopen serves all files of a guest dir: read-only if any is.
            group.read_only |= read_only || copied;
        }
        for (parent, group) in files {
            if let Some(clash) = out.iter().find(|m| Path::new(&m.guest) == parent) {
                return Err(Error::SubPath(format!(
                    "a file mounted in {} needs that dir to itself, but it is the mountPath of another volume ({})",
                    parent.display(),
                    clash.guest
                )));
            }
            out.push(group);
        }
        Ok(out)
    }
}
