//! Events the kubelet (and, until the scheduler lands, its binder) records about a
//! pod, worded as Kubernetes words them so `kubectl describe pod` reads the same.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Expected progress.
    Normal,
    /// Something went wrong.
    Warning,
}

/// Who reports events: a component (`kubelet`, `default-scheduler`) on a node.
#[derive(Clone)]
pub struct Recorder {
    /// API client.
    pub client: kube::Client,
    /// Reporting component.
    pub component: &'static str,
    /// Node it runs on.
    pub node: String,
}

impl Recorder {
    /// Record one event about `pod` (optionally about one of its containers).
    /// Failures are logged, never fatal.
    pub async fn record(
        &self,
        pod: &Pod,
        container: Option<&str>,
        kind: Kind,
        reason: &str,
        message: String,
    ) {
        let at = jiff::Timestamp::now();
        self.record_at(pod, container, kind, reason, message, at)
            .await;
    }

    /// Record an event named for the instant `at` (events list in name order, so
    /// an event stamped before another step lists before that step's events even
    /// when it is written after them).
    pub async fn record_at(
        &self,
        pod: &Pod,
        container: Option<&str>,
        kind: Kind,
        reason: &str,
        message: String,
        at: jiff::Timestamp,
    ) {
        let (client, component, node) = (&self.client, self.component, self.node.as_str());
        let (Some(ns), Some(name)) = (
            pod.metadata.namespace.as_deref(),
            pod.metadata.name.as_deref(),
        ) else {
            return;
        };
        let now = crate::api::clock::now();
        let mut involved = json!({"kind": "Pod", "namespace": ns, "name": name, "uid": pod.metadata.uid, "apiVersion": "v1"});
        if let Some(c) = container {
            involved["fieldPath"] = json!(format!("spec.containers{{{c}}}"));
        }
        let event = json!({
            // Named as the kubelet's recorder names events: `<object>.<unix nanos in hex>`.
            "metadata": {"name": format!("{name}.{:x}", at.as_nanosecond()), "namespace": ns},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": match kind { Kind::Normal => "Normal", Kind::Warning => "Warning" },
            "source": {"component": component, "host": node},
            "reportingComponent": component,
            "reportingInstance": node,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        let Ok(event) = serde_json::from_value::<Event>(event) else {
            return;
        };
        let api: Api<Event> = Api::namespaced(client.clone(), ns);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(pod = %name, reason, error = %e, "recording an event");
        }
    }
}
