//! The Service ClusterIP range (`--service-cluster-ip-range`, 10.96.0.0/12 by
//! default) and the addresses taken from it, with the allocator's error texts.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;

use super::bands::Bands;

/// Why an address could not be allocated; the texts are Kubernetes' bitmap
/// allocator's (`ipallocator.ErrFull`, `ErrAllocated`, `ErrNotInRange`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    /// Every address of the range is taken.
    #[error("range is full")]
    Full,
    /// The requested address belongs to another Service.
    #[error("provided IP is already allocated")]
    Allocated,
    /// The requested address lies outside the range.
    #[error("the provided IP ({ip}) is not in the valid range. The range of valid IPs is {range}")]
    NotInRange {
        /// The address asked for.
        ip: Ipv4Addr,
        /// The range, as `10.96.0.0/12`.
        range: String,
    },
}

/// Shorthand for allocation results.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// An IPv4 CIDR whose network and broadcast addresses are never handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpRange {
    network: Ipv4Addr,
    prefix: u8,
    bands: Bands,
}

impl IpRange {
    /// The range `network/prefix` (host bits of `network` are ignored; a prefix
    /// above 32 counts as 32).
    pub(crate) fn new(network: Ipv4Addr, prefix: u8) -> IpRange {
        let prefix = prefix.min(32);
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        let total = 1u64 << (32 - u32::from(prefix));
        let size = u32::try_from(total.saturating_sub(2)).unwrap_or(u32::MAX);
        IpRange {
            network: Ipv4Addr::from(u32::from(network) & mask),
            prefix,
            bands: Bands::new(size, 16, 256, 16),
        }
    }

    /// The first allocatable address (the network address + 1).
    fn first(&self) -> u32 {
        u32::from(self.network) + 1
    }

    /// The offset of `ip` from the first address, if it is allocatable.
    fn offset(&self, ip: Ipv4Addr) -> Option<u32> {
        u32::from(ip)
            .checked_sub(self.first())
            .filter(|o| *o < self.bands.size())
    }

    fn at(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + offset)
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A range and the addresses taken from it.
#[derive(Debug, Clone)]
pub(crate) struct IpPool {
    range: IpRange,
    used: HashSet<Ipv4Addr>,
}

impl IpPool {
    /// Nothing taken yet.
    pub(crate) fn new(range: IpRange) -> IpPool {
        IpPool {
            range,
            used: HashSet::new(),
        }
    }

    /// Note an address a stored Service holds (in the range or not: a range that
    /// shrank across restarts must not hand it out again either).
    pub(crate) fn mark(&mut self, ip: Ipv4Addr) {
        self.used.insert(ip);
    }

    /// Take `ip`.
    pub(crate) fn allocate(&mut self, ip: Ipv4Addr) -> Result<()> {
        if self.range.offset(ip).is_none() {
            return Err(Error::NotInRange {
                ip,
                range: self.range.to_string(),
            });
        }
        if !self.used.insert(ip) {
            return Err(Error::Allocated);
        }
        Ok(())
    }

    /// Take a free address, at random (upper band first).
    pub(crate) fn allocate_next(&mut self) -> Result<Ipv4Addr> {
        let range = self.range;
        let offset = range
            .bands
            .next_free(|o| self.used.contains(&range.at(o)))
            .ok_or(Error::Full)?;
        let ip = range.at(offset);
        self.used.insert(ip);
        Ok(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(cidr: &str) -> IpPool {
        let (net, bits) = cidr.split_once('/').expect("cidr");
        IpPool::new(IpRange::new(
            net.parse().expect("ip"),
            bits.parse().expect("bits"),
        ))
    }

    #[test]
    fn a_requested_address_is_given_once() {
        let mut p = pool("10.96.0.0/12");
        let ip = Ipv4Addr::new(10, 96, 0, 5);
        assert_eq!(p.allocate(ip), Ok(()));
        assert_eq!(p.allocate(ip), Err(Error::Allocated));
        assert_eq!(
            Error::Allocated.to_string(),
            "provided IP is already allocated"
        );
    }

    #[test]
    fn addresses_outside_the_range_are_refused_with_the_range_named() {
        let mut p = pool("10.96.0.0/12");
        let err = p.allocate(Ipv4Addr::new(10, 0, 0, 1)).expect_err("outside");
        assert_eq!(
            err.to_string(),
            "the provided IP (10.0.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
        );
        // The network and broadcast addresses are not allocatable.
        assert!(p.allocate(Ipv4Addr::new(10, 96, 0, 0)).is_err());
        assert!(p.allocate(Ipv4Addr::new(10, 111, 255, 255)).is_err());
        assert!(p.allocate(Ipv4Addr::new(10, 111, 255, 254)).is_ok());
    }

    #[test]
    fn random_addresses_avoid_the_static_band_and_each_other() {
        let mut p = pool("10.96.0.0/12");
        let mut seen = HashSet::new();
        for _ in 0..500 {
            let ip = p.allocate_next().expect("free");
            assert!(
                u32::from(ip) > u32::from(Ipv4Addr::new(10, 96, 1, 0)),
                "{ip}"
            );
            assert!(seen.insert(ip));
        }
    }

    #[test]
    fn a_tiny_range_runs_full() {
        // A /29 has 6 usable addresses and no static band.
        let mut p = pool("192.168.0.8/29");
        p.mark(Ipv4Addr::new(192, 168, 0, 9));
        let mut got: Vec<Ipv4Addr> = (0..5).map(|_| p.allocate_next().expect("free")).collect();
        got.sort();
        assert_eq!(got.first(), Some(&Ipv4Addr::new(192, 168, 0, 10)));
        assert_eq!(got.last(), Some(&Ipv4Addr::new(192, 168, 0, 14)));
        assert_eq!(p.allocate_next(), Err(Error::Full));
        assert_eq!(Error::Full.to_string(), "range is full");
    }

    #[test]
    fn the_range_prints_as_its_cidr() {
        assert_eq!(
            IpRange::new(Ipv4Addr::new(10, 96, 3, 4), 12).to_string(),
            "10.96.0.0/12"
        );
    }
}
