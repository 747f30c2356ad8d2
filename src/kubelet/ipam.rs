//! Pod IPs for this node's pods, from the pod CIDR 10.244.0.0/16: the lowest free
//! address, held while the pod's worker runs. (The virtual network of the
//! networking issue routes to these; until then they are what `status.podIP`,
//! `kubectl get pod -o wide` and `fieldRef: status.podIP` show.)

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

/// The first and last assignable addresses (.0.1 is the node's gateway).
const FIRST: u32 = u32::from_be_bytes([10, 244, 0, 2]);
const LAST: u32 = u32::from_be_bytes([10, 244, 255, 254]);

/// Addresses in use.
#[derive(Debug, Default)]
pub struct PodIps(Mutex<BTreeSet<u32>>);

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
        if let Ok(mut used) = self.ips.0.lock() {
            used.remove(&self.ip);
        }
    }
}

impl PodIps {
    /// Hold the lowest free address; `None` when all 65 533 are taken.
    pub fn allocate(self: &Arc<Self>) -> Option<Lease> {
        let mut used = self.0.lock().ok()?;
        let ip = (FIRST..=LAST).find(|ip| !used.contains(ip))?;
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
        let ips = Arc::new(PodIps::default());
        let a = ips.allocate().expect("a");
        let b = ips.allocate().expect("b");
        assert_eq!(
            (a.ip().to_string(), b.ip().to_string()),
            ("10.244.0.2".into(), "10.244.0.3".into())
        );
        drop(a);
        assert_eq!(ips.allocate().expect("c").ip().to_string(), "10.244.0.2");
    }
}
