//! The NodePort range (`--service-node-port-range`, 30000-32767) and the ports taken
//! from it, with the allocator's error texts.

use std::collections::HashSet;
use std::fmt;

use super::bands::Bands;

/// Why a port could not be allocated; the texts are Kubernetes' port allocator's
/// (`portallocator.ErrFull`, `ErrAllocated`, `ErrNotInRange`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    /// Every port of the range is taken.
    #[error("range is full")]
    Full,
    /// The requested port belongs to another Service (or another port of this one).
    #[error("provided port is already allocated")]
    Allocated,
    /// The requested port lies outside the range.
    #[error("provided port is not in the valid range. The range of valid ports is {range}")]
    NotInRange {
        /// The range, as `30000-32767`.
        range: String,
    },
}

/// Shorthand for allocation results.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// An inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortRange {
    base: u16,
    last: u16,
    bands: Bands,
}

impl PortRange {
    /// The API server's default NodePort range.
    pub(crate) const DEFAULT: (u16, u16) = (30000, 32767);

    /// Ports `base..=last` (empty when `last < base`).
    pub(crate) fn new(base: u16, last: u16) -> PortRange {
        let size = (u32::from(last) + 1).saturating_sub(u32::from(base));
        PortRange {
            base,
            last,
            bands: Bands::new(size, 16, 128, 32),
        }
    }

    fn contains(&self, port: u16) -> bool {
        (self.base..=self.last).contains(&port)
    }

    fn at(&self, offset: u32) -> u16 {
        u16::try_from(u32::from(self.base) + offset).unwrap_or(u16::MAX)
    }
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange::new(Self::DEFAULT.0, Self::DEFAULT.1)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.base, self.last)
    }
}

/// A range and the ports taken from it.
#[derive(Debug, Clone)]
pub(crate) struct PortPool {
    range: PortRange,
    used: HashSet<u16>,
}

impl PortPool {
    /// Nothing taken yet.
    pub(crate) fn new(range: PortRange) -> PortPool {
        PortPool {
            range,
            used: HashSet::new(),
        }
    }

    /// Note a port a stored Service holds.
    pub(crate) fn mark(&mut self, port: u16) {
        self.used.insert(port);
    }

    /// Take `port`; values that are no port number at all are out of range.
    pub(crate) fn allocate(&mut self, port: i64) -> Result<u16> {
        let port = u16::try_from(port)
            .ok()
            .filter(|p| self.range.contains(*p))
            .ok_or_else(|| Error::NotInRange {
                range: self.range.to_string(),
            })?;
        if !self.used.insert(port) {
            return Err(Error::Allocated);
        }
        Ok(port)
    }

    /// Take a free port, at random (upper band first).
    pub(crate) fn allocate_next(&mut self) -> Result<u16> {
        let range = self.range;
        let offset = range
            .bands
            .next_free(|o| self.used.contains(&range.at(o)))
            .ok_or(Error::Full)?;
        let port = range.at(offset);
        self.used.insert(port);
        Ok(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requested_port_is_given_once() {
        let mut p = PortPool::new(PortRange::default());
        assert_eq!(p.allocate(30080), Ok(30080));
        let err = p.allocate(30080).expect_err("taken");
        assert_eq!(err.to_string(), "provided port is already allocated");
    }

    #[test]
    fn ports_outside_the_range_are_refused_with_the_range_named() {
        let mut p = PortPool::new(PortRange::default());
        for port in [80, 29999, 32768, -1, 70000] {
            assert_eq!(
                p.allocate(port).expect_err("outside").to_string(),
                "provided port is not in the valid range. The range of valid ports is 30000-32767"
            );
        }
    }

    #[test]
    fn random_ports_are_distinct_and_in_range() {
        let mut p = PortPool::new(PortRange::default());
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let port = p.allocate_next().expect("free");
            assert!((30086..=32767).contains(&port), "{port}");
            assert!(seen.insert(port));
        }
    }

    #[test]
    fn a_tiny_range_runs_full() {
        let mut p = PortPool::new(PortRange::new(40000, 40002));
        assert_eq!(p.allocate(40001), Ok(40001));
        let mut rest = [
            p.allocate_next().expect("free"),
            p.allocate_next().expect("free"),
        ];
        rest.sort_unstable();
        assert_eq!(rest, [40000, 40002]);
        assert_eq!(p.allocate_next(), Err(Error::Full));
    }
}
