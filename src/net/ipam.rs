//! Pod IPs for this node's pods, from the node's block of the cluster's pod CIDR
//! 10.244.0.0/16 (node *i* has 10.244.16*i*.0/20, room for 4 093 pods): the lowest
//! free address, held while the pod's worker runs (the kubelet leases one per pod
//! and attaches the pod to the [`Network`](super::Network) with it). Service
//! ClusterIPs are allocated by the API server (`apiserver::services`).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

/// The cluster's pod CIDR and each node's share of it.
const CLUSTER: u32 = u32::from_be_bytes([10, 244, 0, 0]);
const NODE_PREFIX: u32 = 20;
/// How many nodes' blocks the pod CIDR holds.
pub const MAX_NODES: usize = 1 << (NODE_PREFIX - 16);

/// The pod CIDR of node `index` (e.g. `10.244.16.0/20` for the second node).
pub fn node_cidr(index: usize) -> String {
    let base = CLUSTER + ((index as u32) << (32 - NODE_PREFIX));
    format!("{}/{NODE_PREFIX}", Ipv4Addr::from(base))
}

/// Addresses in use on one node, within its block.
#[derive(Debug)]
pub struct PodIps {
    used: Mutex<BTreeSet<u32>>,
    /// The first and last assignable addresses (.1 is the node's gateway).
    first: u32,
    last: u32,
}

impl PodIps {
    /// The addresses of node `index`'s block.
    pub fn for_node(index: usize) -> PodIps {
        let base = CLUSTER + ((index as u32) << (32 - NODE_PREFIX));
        PodIps {
            used: Mutex::default(),
            first: base + 2,
            last: base + (1 << (32 - NODE_PREFIX)) - 2,
        }
    }
}

/// An address held by a pod; released when dropped.
#[derive(Debug)]
pub struct Lease {
    ips: Arc<PodIps>,
    ip: u32,
}

impl Lease {
    /// The address.
    pub fn ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.ip)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Ok(mut used) = self.ips.used.lock() {
            used.remove(&self.ip);
        }
    }
}

impl PodIps {
    /// Hold the lowest free address; `None` when the block is full.
    pub fn allocate(self: &Arc<Self>) -> Option<Lease> {
        let mut used = self.used.lock().ok()?;
        let ip = (self.first..=self.last).find(|ip| !used.contains(ip))?;
        used.insert(ip);
        Some(Lease {
            ips: self.clone(),
            ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_the_lowest_free_and_come_back_when_released() {
        let ips = Arc::new(PodIps::for_node(0));
        let a = ips.allocate().expect("a");
        let b = ips.allocate().expect("b");
        assert_eq!(
            (a.ip().to_string(), b.ip().to_string()),
            ("10.244.0.2".into(), "10.244.0.3".into())
        );
        drop(a);
        assert_eq!(ips.allocate().expect("c").ip().to_string(), "10.244.0.2");
    }

    #[test]
    fn each_node_has_its_own_block() {
        assert_eq!(node_cidr(0), "10.244.0.0/20");
        assert_eq!(node_cidr(2), "10.244.32.0/20");
        let third = Arc::new(PodIps::for_node(2));
        assert_eq!(
            third.allocate().expect("ip").ip().to_string(),
            "10.244.32.2"
        );
        assert_eq!(third.last, u32::from_be_bytes([10, 244, 47, 254]));
    }
}
