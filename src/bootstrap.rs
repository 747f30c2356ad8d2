//! What a fresh cluster has: the four namespaces, the `kubernetes` Service and its
//! Endpoints, and a Node for this machine. Created through the API like any client.

use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Service};
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

fn memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or(8 << 30, |kib| kib * 1024)
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

    let nodes: Api<Node> = Api::all(client);
    let name = node_name();
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mem_ki = memory_bytes() / 1024;
    let now = crate::api::clock::now();
    ensure(
        &nodes,
        json!({
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "wasm32",
                "node-role.kubernetes.io/control-plane": "", "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "wasm32"
            }},
            "spec": {"podCIDR": "10.244.0.0/16", "podCIDRs": ["10.244.0.0/16"]},
            "status": {
                "capacity": {"cpu": cpus.to_string(), "memory": format!("{mem_ki}Ki"), "pods": "1000", "ephemeral-storage": "100Gi"},
                "allocatable": {"cpu": cpus.to_string(), "memory": format!("{mem_ki}Ki"), "pods": "1000", "ephemeral-storage": "100Gi"},
                "conditions": [
                    {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available", "lastHeartbeatTime": now, "lastTransitionTime": now},
                    {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "kubelet has no disk pressure", "lastHeartbeatTime": now, "lastTransitionTime": now},
                    {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "message": "kubelet has sufficient PID available", "lastHeartbeatTime": now, "lastTransitionTime": now},
                    {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}
                ],
                "addresses": [{"type": "InternalIP", "address": api_host}, {"type": "Hostname", "address": name}],
                "nodeInfo": {
                    "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "minke",
                    "containerRuntimeVersion": format!("wasmtime://minke-{}", env!("CARGO_PKG_VERSION")),
                    "kubeletVersion": format!("v1.{}.0-minke", crate::apiserver::KUBE_MINOR), "kubeProxyVersion": "",
                    "operatingSystem": "linux", "architecture": "wasm32"
                }
            }
        }),
    )
    .await?;
    Ok(())
}
