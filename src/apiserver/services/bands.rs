//! The allocation order Kubernetes' bitmap allocators use: a range of offsets whose
//! lower band is kept for values users ask for, drawn from by random allocation only
//! when the upper band is full (KEP-3070 for ClusterIPs, KEP-3668 for NodePorts).

use rand::Rng;

/// Offsets `0..size`, of which `0..reserved` form the static band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bands {
    size: u32,
    reserved: u32,
}

impl Bands {
    /// `size` offsets with a static band of `min(max(min, size / step), max)`, or none
    /// when the range holds no more than `min` values (`calculateRangeOffset`).
    pub(crate) fn new(size: u32, min: u32, max: u32, step: u32) -> Bands {
        let reserved = if size <= min {
            0
        } else {
            (size / step).clamp(min, max)
        };
        Bands { size, reserved }
    }

    /// How many offsets the range has.
    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    /// A free offset: scanning forward from a random start through the upper band,
    /// then likewise through the static band; `None` when every offset is used.
    pub(crate) fn next_free(&self, is_used: impl Fn(u32) -> bool) -> Option<u32> {
        let mut rng = rand::rng();
        scan(self.reserved, self.size, &is_used, &mut rng)
            .or_else(|| scan(0, self.reserved, &is_used, &mut rng))
    }
}

/// The first unused offset in `lo..hi`, starting at a random one and wrapping.
fn scan(lo: u32, hi: u32, is_used: &impl Fn(u32) -> bool, rng: &mut impl Rng) -> Option<u32> {
    let n = hi.checked_sub(lo).filter(|n| *n > 0)?;
    let start = rng.random_range(0..n);
    (0..n).map(|i| lo + (start + i) % n).find(|o| !is_used(*o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_static_band_follows_kubernetes_formula() {
        // A /12 service range: 2^20 - 2 addresses, band capped at 256.
        assert_eq!(Bands::new((1 << 20) - 2, 16, 256, 16).reserved, 256);
        // The default NodePort range: 2768 ports / 32 = 86.
        assert_eq!(Bands::new(2768, 16, 128, 32).reserved, 86);
        // Small ranges get the minimum, tiny ones none.
        assert_eq!(Bands::new(100, 16, 256, 16).reserved, 16);
        assert_eq!(Bands::new(14, 16, 256, 16).reserved, 0);
    }

    #[test]
    fn random_allocation_prefers_the_upper_band() {
        let bands = Bands::new(1000, 16, 256, 16);
        for _ in 0..200 {
            let o = bands.next_free(|_| false).expect("free");
            assert!(o >= bands.reserved, "{o} is in the static band");
        }
    }

    #[test]
    fn the_static_band_is_used_once_the_upper_one_is_full() {
        let bands = Bands::new(100, 16, 256, 16);
        let o = bands.next_free(|o| o >= 16 || o != 7).expect("free");
        assert_eq!(o, 7);
        assert_eq!(bands.next_free(|_| true), None);
        assert_eq!(Bands::new(0, 16, 256, 16).next_free(|_| false), None);
    }
}
