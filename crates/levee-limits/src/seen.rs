//! Clients seen before, with when: a fixed array of 16-bit slots indexed by
//! two hashes of the client's key, so that "a returning client" costs two
//! loads whatever the number of clients. A slot holds a 15-bit "first seen"
//! stamp (4-second units, 36 hours before it wraps) and a *confirmed* bit,
//! set when the client is seen again at least `min_age` after its first
//! visit: returning means real history (two visits, `min_age` apart), not
//! one sighting some seconds ago. Both slots must say so (as in a count-min
//! sketch, a collision can only make a client look newer... or, when both
//! slots collide with older confirmed clients, older: about 0.1% of new
//! clients at 2^22 slots and 100,000 clients). Callers key IPv6 clients by
//! their /64 (one subscriber), so rotating addresses inside a /64 neither
//! fills the table nor earns history. Stamps older than `max_age` are cleared
//! by `sweep`.

use std::sync::atomic::{AtomicU16, Ordering};

const UNIT_S: u64 = 4;
/// The confirmed bit; the other 15 bits are the first-seen stamp.
const CONFIRMED: u16 = 0x8000;
const STAMPS: u64 = 0x7fff;

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
    ((now_s / UNIT_S) % STAMPS) as u16 + 1
}

/// Age in seconds of a slot's first-seen stamp at `now_s` (modular).
fn age(slot: u16, now_s: u64) -> u64 {
    let n = u64::from(stamp(now_s));
    let s = u64::from(slot & !CONFIRMED);
    ((n + STAMPS - s) % STAMPS) * UNIT_S
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

    /// Record a visit of `key` at `now_s`: a first visit stamps it, a visit
    /// at least `min_age_s` after the first confirms it. True if it had no
    /// stamp (a new client).
    pub fn insert(&self, key: u128, now_s: u64, min_age_s: u64) -> bool {
        self.insert_capped(key, now_s, min_age_s, true)
    }

    /// As `insert`, but a client with no stamp is stamped only if `may_add`
    /// (the caller's cap on new clients per interval: a flood of fresh
    /// addresses cannot fill the table fast); known clients are still
    /// confirmed. True if it had no stamp.
    pub fn insert_capped(&self, key: u128, now_s: u64, min_age_s: u64, may_add: bool) -> bool {
        let st = stamp(now_s);
        let mut new = false;
        for i in self.idx(key) {
            let s = &self.slots[i];
            let v = s.load(Ordering::Relaxed);
            if v == 0 && !may_add {
                new = true;
            } else if v == 0 {
                // Keep the older stamp if another client got there first.
                let _ = s.compare_exchange(0, st, Ordering::Relaxed, Ordering::Relaxed);
                new = true;
            } else if v & CONFIRMED == 0 && age(v, now_s) >= min_age_s {
                let _ = s.compare_exchange(v, v | CONFIRMED, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
        new
    }

    /// Seen twice, at least `min_age_s` apart (and not swept since).
    pub fn returning(&self, key: u128, now_s: u64, min_age_s: u64) -> bool {
        self.idx(key).iter().all(|&i| {
            let s = self.slots[i].load(Ordering::Relaxed);
            s & CONFIRMED != 0 && age(s, now_s) >= min_age_s
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
    fn returning_needs_two_visits_apart_and_lasts_until_swept() {
        let s = SeenSet::new(16, 7);
        assert!(s.insert(42, 1000, 60));
        assert!(!s.insert(42, 1001, 60));
        // One sighting long ago is not history (review finding 10).
        assert!(!s.returning(42, 2000, 60));
        // A visit too soon after the first does not confirm either.
        s.insert(42, 1030, 60);
        assert!(!s.returning(42, 2000, 60));
        // A second visit at least `min_age` later does.
        s.insert(42, 1100, 60);
        assert!(s.returning(42, 1100, 60));
        assert!(s.returning(42, 5000, 60));
        s.sweep(1000 + 7200, 3600);
        assert!(!s.returning(42, 1000 + 7200, 10));
        assert!(!s.returning(43, 5000, 0));
        assert_eq!(s.memory_bytes(), 2 << 16);
    }

    #[test]
    fn a_capped_insert_stamps_no_new_client_but_confirms_known_ones() {
        let s = SeenSet::new(16, 3);
        assert!(s.insert_capped(7, 1000, 60, false));
        s.insert_capped(7, 1100, 60, true);
        // The first capped visit left no stamp: this is a first visit.
        assert!(!s.returning(7, 1100, 60));
        s.insert(8, 1000, 60);
        s.insert_capped(8, 1100, 60, false);
        assert!(s.returning(8, 1100, 60));
    }

    #[test]
    fn few_new_clients_look_returning() {
        let s = SeenSet::new(22, 1);
        for k in 0..100_000u128 {
            s.insert(k, 0, 10);
            s.insert(k, 20, 10);
        }
        let fp = (1_000_000..1_100_000u128)
            .filter(|k| s.returning(*k, 100, 10))
            .count();
        assert!(fp < 300, "{fp}");
    }
}
