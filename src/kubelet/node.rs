//! The kubelet's Node: registration (labels, capacity, allocatable, conditions,
//! addresses, pod CIDR) when the kubelet starts, and the heartbeat — the Lease in
//! `kube-node-lease` renewed every 10 s, as real kubelets do.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// What a node offers to pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    /// CPUs (a quantity: `2`, `1500m`).
    pub cpu: String,
    /// Memory (a quantity: `8Gi`).
    pub memory: String,
    /// How many pods it runs at most.
    pub pods: u32,
}

impl Capacity {
    /// This machine: its CPUs and memory, and 1 000 pods.
    pub fn of_host() -> Capacity {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Capacity {
            cpu: cpus.to_string(),
            memory: format!("{}Ki", memory_bytes() / 1024),
            pods: 1000,
        }
    }
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

/// How a node registers.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Node name.
    pub name: String,
    /// What it offers.
    pub capacity: Capacity,
    /// Its share of the pod CIDR.
    pub pod_cidr: String,
    /// The address it is reached at (`InternalIP`).
    pub address: String,
    /// Whether it carries the control-plane role label (the first node does).
    pub control_plane: bool,
}

/// Create the Node, or bring an existing one's status up to date (a restart may
/// change capacity); its conditions say the kubelet is ready.
pub async fn register(client: &kube::Client, r: &Registration) -> Result<(), kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let now = crate::api::clock::now();
    let mut labels = json!({
        "kubernetes.io/hostname": r.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "wasm32",
        "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "wasm32",
    });
    if r.control_plane {
        labels["node-role.kubernetes.io/control-plane"] = json!("");
    }
    let resources = json!({
        "cpu": r.capacity.cpu, "memory": r.capacity.memory,
        "pods": r.capacity.pods.to_string(), "ephemeral-storage": "100Gi",
    });
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let status = json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [{"type": "InternalIP", "address": r.address}, {"type": "Hostname", "address": r.name}],
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "minke",
            "containerRuntimeVersion": format!("wasmtime://minke-{}", env!("CARGO_PKG_VERSION")),
            "kubeletVersion": format!("v1.{}.0-minke", crate::apiserver::KUBE_MINOR), "kubeProxyVersion": "",
            "operatingSystem": "linux", "architecture": "wasm32"
        }
    });
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": r.name, "labels": labels},
        "spec": {"podCIDR": r.pod_cidr, "podCIDRs": [r.pod_cidr]},
        "status": status,
    }))
    .map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &node).await {
        Ok(_) => return Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e),
    }
    // Already registered (a restart): refresh what this start may have changed.
    let patch: Value = json!({"status": status});
    api.patch_status(&r.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// How often the Lease is renewed; it is valid for four times as long.
const RENEW: Duration = Duration::from_secs(10);

fn micro_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Renew `node`'s Lease forever (the caller stops it at shutdown).
pub async fn heartbeat(client: kube::Client, node: String) {
    let api: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    loop {
        let spec =
            json!({"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": micro_now()});
        let result = match api.get_opt(&node).await {
            Ok(Some(_)) => api
                .patch(
                    &node,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": spec})),
                )
                .await
                .map(|_| ()),
            Ok(None) => match serde_json::from_value::<Lease>(
                json!({"metadata": {"name": node}, "spec": spec}),
            ) {
                Ok(lease) => api.create(&PostParams::default(), &lease).await.map(|_| ()),
                Err(e) => Err(kube::Error::SerdeError(e)),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::debug!(node = %node, error = %e, "renewing the node lease");
        }
        tokio::time::sleep(RENEW).await;
    }
}
