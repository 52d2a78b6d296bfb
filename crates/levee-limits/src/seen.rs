//! Clients seen before: a fixed-size bitset of hashed addresses in two
//! generations (the older is dropped at each rotation), so "seen within the
//! last one to two rotation periods" costs one bit per slot, whatever the
//! number of clients. False positives grow with the number of distinct
//! clients per generation (about 2% at 2^22 bits and 100,000 clients).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub struct SeenSet {
    gens: [Vec<AtomicU64>; 2],
    current: AtomicU64,
    seed: u64,
    mask: u64,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SeenSet {
    /// `bits_log2` bits per generation (memory: 2 × 2^bits_log2 / 8 bytes).
    pub fn new(bits_log2: u32, seed: u64) -> Self {
        let words = 1usize << bits_log2.clamp(6, 30).saturating_sub(6);
        let mk = || (0..words).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        SeenSet {
            gens: [mk(), mk()],
            current: AtomicU64::new(0),
            seed,
            mask: (words as u64 * 64) - 1,
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.gens[0].len() * 16
    }

    fn slot(&self, key: u128) -> (usize, u64) {
        let h = mix((key as u64) ^ mix((key >> 64) as u64 ^ self.seed)) & self.mask;
        ((h / 64) as usize, 1u64 << (h % 64))
    }

    /// Whether `key` was seen in either generation.
    pub fn contains(&self, key: u128) -> bool {
        let (w, b) = self.slot(key);
        self.gens
            .iter()
            .any(|g| g[w].load(Ordering::Relaxed) & b != 0)
    }

    /// Record `key`; true if it was not seen before (in either generation).
    pub fn insert(&self, key: u128) -> bool {
        let (w, b) = self.slot(key);
        let cur = (self.current.load(Ordering::Relaxed) & 1) as usize;
        let other = &self.gens[1 - cur][w];
        let was = self.gens[cur][w].fetch_or(b, Ordering::Relaxed) & b != 0;
        !was && other.load(Ordering::Relaxed) & b == 0
    }

    /// Start a new generation, forgetting the oldest.
    pub fn rotate(&self) {
        let next = self.current.load(Ordering::Relaxed).wrapping_add(1);
        for w in &self.gens[(next & 1) as usize] {
            w.store(0, Ordering::Relaxed);
        }
        self.current.store(next, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_for_two_generations() {
        let s = SeenSet::new(16, 7);
        assert!(s.insert(42));
        assert!(!s.insert(42));
        assert!(s.contains(42));
        s.rotate();
        assert!(s.contains(42));
        s.rotate();
        assert!(!s.contains(42));
        assert_eq!(s.memory_bytes(), 2 * (1 << 16) / 8);
    }

    #[test]
    fn false_positives_are_rare() {
        let s = SeenSet::new(22, 1);
        for k in 0..100_000u128 {
            s.insert(k);
        }
        let fp = (1_000_000..1_100_000u128)
            .filter(|k| s.contains(*k))
            .count();
        assert!(fp < 4_000, "{fp}");
    }
}
