//! The node heartbeat: the kubelet renews its Lease in `kube-node-lease` every 10 s,
//! as real kubelets do.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

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
