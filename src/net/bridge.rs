//! Host bridges: the ports the node opens on the host for Services — each NodePort,
//! and each LoadBalancer Service's own port (its `status.loadBalancer.ingress` then
//! names the node address) — with every accepted connection carried into the
//! network to the Service's ClusterIP port, and so to one of its endpoints.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tokio::task::JoinHandle;

use super::Network;
use super::services::HostPort;

/// Open and close host ports as the Services table asks, until the task is
/// dropped (its listeners close with it).
pub async fn run(net: Network, client: kube::Client, node_address: IpAddr) {
    let mut wanted = net.services().changes();
    let mut bound: HashMap<HostPort, Bound> = HashMap::new();
    loop {
        let now: Vec<HostPort> = wanted.borrow_and_update().clone();
        bound.retain(|hp, _| now.contains(hp));
        for hp in now {
            if bound.contains_key(&hp) {
                continue;
            }
            let at = SocketAddr::new(node_address, hp.port);
            match tokio::net::TcpListener::bind(at).await {
                Ok(listener) => {
                    tracing::debug!(%at, service = %hp.service, target = %hp.target, "host port open");
                    if hp.load_balancer {
                        publish_ingress(&client, &hp.service, node_address).await;
                    }
                    let task = tokio::spawn(forward(listener, net.clone(), hp.target));
                    bound.insert(hp, Bound(task));
                }
                Err(e) => {
                    tracing::warn!(%at, service = %hp.service, error = %e, "cannot open the host port");
                }
            }
        }
        if wanted.changed().await.is_err() {
            return;
        }
    }
}

/// A bound host port's accept loop, stopped when dropped.
struct Bound(JoinHandle<()>);

impl Drop for Bound {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn forward(listener: tokio::net::TcpListener, net: Network, target: SocketAddr) {
    loop {
        let Ok((mut host, from)) = listener.accept().await else {
            continue;
        };
        let _ = host.set_nodelay(true);
        let net = net.clone();
        tokio::spawn(async move {
            match net.connect_from_node(target).await {
                Ok(mut conn) => {
                    let _ = tokio::io::copy_bidirectional(&mut host, &mut conn.stream).await;
                }
                Err(e) => {
                    tracing::debug!(%from, %target, error = %e, "host connection not carried")
                }
            }
        });
    }
}

/// Set a LoadBalancer Service's ingress to the node address, as a cloud
/// provider's controller would once the balancer exists.
async fn publish_ingress(client: &kube::Client, service: &str, ip: IpAddr) {
    let Some((ns, name)) = service.split_once('/') else {
        return;
    };
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let status =
        json!({"status": {"loadBalancer": {"ingress": [{"ip": ip.to_string(), "ipMode": "VIP"}]}}});
    if let Err(e) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
    {
        tracing::debug!(%service, error = %e, "setting the load balancer ingress");
    }
}
