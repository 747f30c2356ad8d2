//! Events: how the kubelet, the scheduler and the controllers report what they did,
//! worded and aggregated as Kubernetes' event recorder does — the same event about
//! the same object again bumps `count` and `lastTimestamp` of the first one
//! (`kubectl describe` then shows "(x3 over 2m)") instead of piling up objects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Expected progress.
    Normal,
    /// Something went wrong.
    Warning,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Normal => "Normal",
            Kind::Warning => "Warning",
        }
    }
}

/// The object an event is about (`involvedObject`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Involved {
    api_version: String,
    kind: String,
    namespace: String,
    name: String,
    uid: String,
    field_path: Option<String>,
}

impl Involved {
    /// The object itself; `None` when it has no name or namespace yet.
    pub fn of<K>(obj: &K) -> Option<Involved>
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let meta = obj.meta();
        Some(Involved {
            api_version: K::api_version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            namespace: meta.namespace.clone()?,
            name: meta.name.clone()?,
            uid: meta.uid.clone().unwrap_or_default(),
            field_path: None,
        })
    }

    /// Any object, by its coordinates. Events about a cluster-scoped object are
    /// filed in `default`, as Kubernetes' recorder files them.
    pub fn object(
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        uid: &str,
    ) -> Involved {
        Involved {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.unwrap_or("default").into(),
            name: name.into(),
            uid: uid.into(),
            field_path: None,
        }
    }

    /// One container of a pod (`fieldPath: spec.containers{NAME}`).
    pub fn container(mut self, name: &str) -> Involved {
        self.field_path = Some(format!("spec.containers{{{name}}}"));
        self
    }
}

/// Events already written, by what makes them "the same event" as Kubernetes'
/// aggregation key: object, type, reason and message → (event name, count).
type Seen = HashMap<(Involved, Kind, String, String), (String, i32)>;

/// How many distinct events a recorder remembers for aggregation.
const REMEMBERED: usize = 4096;

/// Who reports events: a component (`kubelet`, `default-scheduler`,
/// `replicaset-controller`) and, for node agents, the node it runs on.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    component: &'static str,
    host: Option<String>,
    seen: Arc<Mutex<Seen>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("component", &self.component)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder for `component`, running on node `host` (`None` for controllers).
    pub fn new(client: kube::Client, component: &'static str, host: Option<String>) -> Recorder {
        Recorder {
            client,
            component,
            host,
            seen: Arc::default(),
        }
    }

    /// Record one event. Failures are logged, never fatal.
    pub async fn record(&self, about: &Involved, kind: Kind, reason: &str, message: String) {
        self.record_at(about, kind, reason, message, jiff::Timestamp::now())
            .await;
    }

    /// Record an event named for the instant `at` (events list in name order, so
    /// an event stamped before another step lists before that step's events even
    /// when it is written after them).
    pub async fn record_at(
        &self,
        about: &Involved,
        kind: Kind,
        reason: &str,
        message: String,
        at: jiff::Timestamp,
    ) {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &about.namespace);
        let key = (about.clone(), kind, reason.to_string(), message.clone());
        let repeat = self.seen.lock().ok().and_then(|s| s.get(&key).cloned());
        let now = crate::api::clock::now();
        if let Some((name, count)) = repeat {
            let patch = json!({"count": count + 1, "lastTimestamp": now});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.remember(key, name, count + 1);
                    return;
                }
                // Gone (expired or deleted): write it afresh.
                Err(e) => tracing::debug!(event = %name, error = %e, "bumping an event"),
            }
        }
        let name = format!("{}.{:x}", about.name, at.as_nanosecond());
        let mut involved = json!({
            "apiVersion": about.api_version, "kind": about.kind,
            "namespace": about.namespace, "name": about.name, "uid": about.uid,
        });
        if let Some(f) = &about.field_path {
            involved["fieldPath"] = json!(f);
        }
        let mut source = json!({"component": self.component});
        if let Some(h) = &self.host {
            source["host"] = json!(h);
        }
        let event = json!({
            // Named as Kubernetes' recorder names events: `<object>.<unix nanos in hex>`.
            "metadata": {"name": name, "namespace": about.namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": kind.as_str(),
            "source": source,
            "reportingComponent": self.component,
            "reportingInstance": self.host.as_deref().unwrap_or(self.component),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        let Ok(event) = serde_json::from_value::<Event>(event) else {
            return;
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => self.remember(key, name, 1),
            Err(e) => {
                tracing::debug!(object = %about.name, reason, error = %e, "recording an event")
            }
        }
    }

    fn remember(&self, key: (Involved, Kind, String, String), name: String, count: i32) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= REMEMBERED && !seen.contains_key(&key) {
                seen.clear();
            }
            seen.insert(key, (name, count));
        }
    }
}
