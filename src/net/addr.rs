//! The cluster's address plan: pods in 10.244.0.0/16 (each node a /20 of it, see
//! [`crate::net::ipam`]), Services in 10.96.0.0/12 (`kubernetes` at 10.96.0.1,
//! `kube-dns` at 10.96.0.10), and the node's gateway address host-side connections
//! come from.

use std::net::{IpAddr, Ipv4Addr};

/// The pod CIDR, 10.244.0.0/16.
pub const POD_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 244, 0, 0), 16);
/// The service CIDR, 10.96.0.0/12.
pub const SERVICE_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 96, 0, 0), 12);
/// The `kube-dns` Service's ClusterIP.
pub const DNS_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// Where connections from the node itself (NodePorts, port-forward, probes) come
/// from: the first node's gateway.
pub const NODE_GATEWAY: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 244, 0, 1));

/// Whether `ip` lies in `cidr`.
pub fn contains(cidr: (Ipv4Addr, u8), ip: IpAddr) -> bool {
    let IpAddr::V4(v4) = ip else { return false };
    let mask = u32::MAX.checked_shl(32 - u32::from(cidr.1)).unwrap_or(0);
    u32::from(v4) & mask == u32::from(cidr.0) & mask
}

/// Whether `ip` is a pod or Service address of the cluster.
pub fn in_cluster(ip: IpAddr) -> bool {
    contains(POD_CIDR, ip) || contains(SERVICE_CIDR, ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ranges_are_recognised() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(in_cluster(ip("10.244.3.7")));
        assert!(in_cluster(ip("10.96.0.1")));
        assert!(in_cluster(ip("10.111.255.254")));
        assert!(!in_cluster(ip("10.112.0.1")));
        assert!(!in_cluster(ip("10.245.0.1")));
        assert!(!in_cluster(ip("127.0.0.1")));
        assert!(!in_cluster(ip("::1")));
    }
}
