//! Clients seen before, with when: a fixed array of 16-bit "first seen"
//! stamps (2-second units) indexed by two hashes of the address, so that
//! "first seen at least `min_age` ago" costs two loads whatever the number
//! of clients. Both slots must say so (as in a count-min sketch, a collision
//! can only make a client look newer... or, when both slots collide with older
//! clients, older: about 0.1% of new clients at 2^22 slots and 100,000 clients).
//! Stamps older than `max_age` are cleared by `sweep`.

use std::sync::atomic::{AtomicU16, Ordering};

const UNIT_S: u64 = 2;

#[derive(Debug)]
pub struct SeenSet {
    slots: Vec<AtomicU16>,
    mask: u64,
    seed: u64,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The stamp of `now_s` (never 0, which means empty).
fn stamp(now_s: u64) -> u16 {
    ((now_s / UNIT_S) % 65_535) as u16 + 1
}

/// Age in seconds of a stamp at `now_s` (modular).
fn age(s: u16, now_s: u64) -> u64 {
    let n = u64::from(stamp(now_s));
    let s = u64::from(s);
    ((n + 65_535 - s) % 65_535) * UNIT_S
}

impl SeenSet {
    /// `slots_log2` slots of two bytes each.
    pub fn new(slots_log2: u32, seed: u64) -> Self {
        let n = 1usize << slots_log2.clamp(4, 30);
        SeenSet {
            slots: (0..n).map(|_| AtomicU16::new(0)).collect(),
            mask: n as u64 - 1,
            seed,
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * 2
    }

    fn idx(&self, key: u128) -> [usize; 2] {
        let h = mix((key as u64) ^ mix((key >> 64) as u64 ^ self.seed));
        let h2 = mix(h ^ 0x9e37_79b9_7f4a_7c15);
        [(h & self.mask) as usize, (h2 & self.mask) as usize]
    }

    /// Record `key` at `now_s`; true if it had no stamp (a new client).
    pub fn insert(&self, key: u128, now_s: u64) -> bool {
        let st = stamp(now_s);
        let mut new = false;
        for i in self.idx(key) {
            let s = &self.slots[i];
            if s.load(Ordering::Relaxed) == 0 {
                // Keep the older stamp if another client got there first.
                let _ = s.compare_exchange(0, st, Ordering::Relaxed, Ordering::Relaxed);
                new = true;
            }
        }
        new
    }

    /// First seen at least `min_age_s` ago (and not swept since).
    pub fn returning(&self, key: u128, now_s: u64, min_age_s: u64) -> bool {
        self.idx(key).iter().all(|&i| {
            let s = self.slots[i].load(Ordering::Relaxed);
            s != 0 && age(s, now_s) >= min_age_s
        })
    }

    /// Forget stamps older than `max_age_s` (call at least every few hours).
    pub fn sweep(&self, now_s: u64, max_age_s: u64) {
        for s in &self.slots {
            let v = s.load(Ordering::Relaxed);
            if v != 0 && age(v, now_s) > max_age_s {
                let _ = s.compare_exchange(v, 0, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returning_only_after_min_age_and_until_swept() {
        let s = SeenSet::new(16, 7);
        assert!(s.insert(42, 1000));
        assert!(!s.insert(42, 1001));
        assert!(!s.returning(42, 1004, 10));
        assert!(s.returning(42, 1010, 10));
        // Seen again later: still first seen at 1000.
        s.insert(42, 1500);
        assert!(s.returning(42, 1500, 400));
        s.sweep(1000 + 7200, 3600);
        assert!(!s.returning(42, 1000 + 7200, 10));
        assert!(!s.returning(43, 5000, 0));
        assert_eq!(s.memory_bytes(), 2 << 16);
    }

    #[test]
    fn few_new_clients_look_returning() {
        let s = SeenSet::new(22, 1);
        for k in 0..100_000u128 {
            s.insert(k, 0);
        }
        let fp = (1_000_000..1_100_000u128)
            .filter(|k| s.returning(*k, 100, 10))
            .count();
        assert!(fp < 300, "{fp}");
    }
}
