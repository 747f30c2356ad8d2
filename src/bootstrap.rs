//! What a fresh cluster has: the four namespaces, the `kubernetes` Service and its
//! Endpoints, and the default StorageClass `standard` (minke's local-path
//! provisioner, binding when the first pod is scheduled, as kind's). Created
//! through the API like any client; an object a user deleted comes back at the
//! next start, as the addon manager of kind and minikube does.

use k8s_openapi::api::core::v1::{Endpoints, Namespace, Service};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, PostParams};
use serde_json::json;

/// Create `obj` unless it exists.
async fn ensure<K>(api: &Api<K>, obj: serde_json::Value) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let typed: K = serde_json::from_value(obj).map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &typed).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// This machine's node name: the hostname when it is a valid name, else `minke`.
pub(crate) fn node_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_lowercase())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
        .unwrap_or_else(|| "minke".into())
}

/// Create the objects every cluster starts with; refresh the API endpoint address.
pub(crate) async fn run(
    client: kube::Client,
    api_host: &str,
    api_port: u16,
) -> Result<(), kube::Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ensure(&namespaces, json!({"metadata": {"name": ns}})).await?;
    }
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    ensure(
        &services,
        json!({
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port}], "sessionAffinity": "None"}
        }),
    )
    .await?;
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let ep = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": api_host}], "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}]}]
    });
    ensure(&endpoints, ep.clone()).await?;
    let patch = kube::api::Patch::Merge(json!({"subsets": ep["subsets"]}));
    endpoints
        .patch("kubernetes", &kube::api::PatchParams::default(), &patch)
        .await?;

    let classes: Api<StorageClass> = Api::all(client.clone());
    ensure(
        &classes,
        json!({
            "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": crate::controllers::volumes::provisioner::NAME,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
        }),
    )
    .await?;

    Ok(())
}
