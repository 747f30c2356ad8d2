//! What a fresh cluster has: the four namespaces, the `kubernetes` Service with its
//! Endpoints and EndpointSlice (the API server's address, refreshed at every start
//! as kube-apiserver's endpoint reconciler does), the `kube-dns` Service, and the
//! default StorageClass `standard` (minke's local-path provisioner, binding when
//! the first pod is scheduled, as kind's), and the default IngressClass `minke`
//! (the built-in Ingress proxy, `src/net/ingress`). Created through the API like any client;
//! an object a user deleted comes back at the next start, as the addon manager of
//! kind and minikube does.
//!
//! `kube-dns` has the ClusterIP, ports and labels of kubeadm's and k3s's CoreDNS
//! Service but no selector: minke answers DNS in-process (`src/dns`), so no pods
//! back it and no controller writes its endpoints.

use k8s_openapi::api::core::v1::{Endpoints, Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::IngressClass;
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

/// The ClusterIP of `kube-dns` (the tenth address of the service range, as kubeadm
/// and k3s give it).
pub(crate) const DNS_CLUSTER_IP: &str = "10.96.0.10";

/// Create `kube-dns` in `kube-system`. A data dir where a user Service already took
/// its address keeps working without it (with a warning), rather than not starting.
async fn kube_dns(client: &kube::Client) -> Result<(), kube::Error> {
    let services: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    let svc = json!({
        "metadata": {
            "name": "kube-dns",
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"},
            "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
        },
        "spec": {
            "type": "ClusterIP", "clusterIP": DNS_CLUSTER_IP, "clusterIPs": [DNS_CLUSTER_IP],
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
            ],
            "sessionAffinity": "None",
        }
    });
    match ensure(&services, svc).await {
        Err(kube::Error::Api(s)) if s.code == 422 => {
            tracing::warn!(message = %s.message, "kube-dns Service not created");
            Ok(())
        }
        other => other,
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
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [api_host], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}]
    });
    ensure(&slices, slice.clone()).await?;
    let patch =
        kube::api::Patch::Merge(json!({"endpoints": slice["endpoints"], "ports": slice["ports"]}));
    slices
        .patch("kubernetes", &kube::api::PatchParams::default(), &patch)
        .await?;
    kube_dns(&client).await?;

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

    let ingress_classes: Api<IngressClass> = Api::all(client.clone());
    ensure(
        &ingress_classes,
        json!({
            "metadata": {
                "name": crate::net::ingress::CLASS,
                "annotations": {(crate::net::ingress::controller::DEFAULT_CLASS_ANNOTATION): "true"},
            },
            "spec": {"controller": crate::net::ingress::CONTROLLER},
        }),
    )
    .await?;

    Ok(())
}
