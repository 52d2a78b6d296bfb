//! Request-rate accounting in fixed memory.
//!
//! [`RateSketch`] is a count-min sketch over two consecutive time windows:
//! the estimate for a key is its count in the current window plus the
//! previous window's count weighted by how much of it still lies within one
//! window of now (a sliding window). Every counter is allocated up front, so
//! memory is the same for one source or ten million; a count-min sketch only
//! ever over-estimates, by at most `events / width` per row with high
//! probability, so a client below its limit may rarely be counted above it,
//! never the other way round. Size it for the traffic: with `E` events per
//! window in all, the over-count stays around `E / 2^width_log2` (less with the
//! conservative update used here), which must be well below the limit
//! (1 M requests per window and `width_log2 = 16`: about 15). [`TopK`] keeps an exact bounded table of the
//! heaviest keys (space-saving) for reporting and signatures.
//!
//! In a fleet ([`RateLimiter::shared`]), a limiter also holds what the
//! other edges counted for a key (a second sketch, raised from the fleet's
//! totals) and the local counts still to be sent: a key is sent only once
//! its count in the current window reaches `limit / (4 × edges)` (then its
//! whole count so far, and each hit after), so a flood of a million
//! one-request sources costs the store nothing, while a client over the
//! fleet-wide limit is missed by at most that threshold per edge.
//!
//! Pure: time and hash seeds are parameters; the sketch is lock-free.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// A sliding-window count-min sketch.
#[derive(Debug)]
pub struct RateSketch {
    rows: usize,
    mask: usize,
    window_ms: u64,
    seeds: [u64; 4],
    /// `[slot][row][column]`, two slots (windows).
    counters: Vec<AtomicU32>,
    /// The window index each slot currently holds.
    slot_epoch: [AtomicU64; 2],
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl RateSketch {
    /// `width_log2` columns per row (e.g. 16), `rows` (1 to 4) independent hashes.
    pub fn new(width_log2: u32, rows: usize, window_ms: u64, seeds: [u64; 4]) -> Self {
        let width = 1usize << width_log2.clamp(4, 24);
        let rows = rows.clamp(1, 4);
        RateSketch {
            rows,
            mask: width - 1,
            window_ms: window_ms.max(1),
            seeds,
            counters: (0..2 * rows * width).map(|_| AtomicU32::new(0)).collect(),
            slot_epoch: [AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)],
        }
    }

    /// Bytes of counters: fixed at construction.
    pub fn memory_bytes(&self) -> usize {
        self.counters.len() * std::mem::size_of::<AtomicU32>()
    }

    fn index(&self, slot: usize, row: usize, key: u128) -> usize {
        let h = mix((key as u64) ^ mix((key >> 64) as u64 ^ self.seeds[row]));
        (slot * self.rows + row) * (self.mask + 1) + (h as usize & self.mask)
    }

    /// Make `slot` hold window `w`, clearing what it held before.
    fn claim(&self, slot: usize, w: u64) {
        let cur = self.slot_epoch[slot].load(Ordering::Acquire);
        if cur == w {
            return;
        }
        if self.slot_epoch[slot]
            .compare_exchange(cur, w, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let width = self.mask + 1;
            let start = slot * self.rows * width;
            for c in &self.counters[start..start + self.rows * width] {
                c.store(0, Ordering::Relaxed);
            }
        }
    }

    fn read(&self, slot: usize, key: u128) -> u32 {
        (0..self.rows)
            .map(|r| self.counters[self.index(slot, r, key)].load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }

    /// The sliding-window estimate of events for `key` in the last window.
    pub fn estimate(&self, key: u128, now_ms: u64) -> u32 {
        let w = now_ms / self.window_ms;
        let cur_slot = (w % 2) as usize;
        let prev_slot = 1 - cur_slot;
        let cur = if self.slot_epoch[cur_slot].load(Ordering::Acquire) == w {
            self.read(cur_slot, key)
        } else {
            0
        };
        let prev = if w > 0 && self.slot_epoch[prev_slot].load(Ordering::Acquire) == w - 1 {
            self.read(prev_slot, key)
        } else {
            0
        };
        let elapsed = now_ms % self.window_ms;
        let weight = (self.window_ms - elapsed) as f64 / self.window_ms as f64;
        cur.saturating_add((f64::from(prev) * weight) as u32)
    }

    /// Count one event for `key` at `now_ms`; returns the new estimate.
    pub fn hit(&self, key: u128, now_ms: u64) -> u32 {
        let w = now_ms / self.window_ms;
        let slot = (w % 2) as usize;
        self.claim(slot, w);
        // Conservative update: raise each of the key's counters only up to the
        // new minimum, which keeps collisions from inflating heavy rows further.
        let new = self.read(slot, key).saturating_add(1);
        for r in 0..self.rows {
            self.counters[self.index(slot, r, key)].fetch_max(new, Ordering::Relaxed);
        }
        self.estimate(key, now_ms)
    }

    /// The window index of `now_ms` (windows are aligned on multiples of
    /// the window since time 0, so edges on the same clock share them).
    pub fn window_of(&self, now_ms: u64) -> u64 {
        now_ms / self.window_ms
    }

    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// `key`'s count in window `w` alone (0 if the sketch no longer holds it).
    pub fn count_in(&self, key: u128, w: u64) -> u32 {
        let slot = (w % 2) as usize;
        if self.slot_epoch[slot].load(Ordering::Acquire) == w {
            self.read(slot, key)
        } else {
            0
        }
    }

    /// Raise `key`'s count in window `w` to at least `value` (a total learnt
    /// from elsewhere). A window older than the one its slot holds is ignored.
    pub fn raise(&self, key: u128, w: u64, value: u32) {
        let slot = (w % 2) as usize;
        let held = self.slot_epoch[slot].load(Ordering::Acquire);
        if held != u64::MAX && held > w {
            return;
        }
        self.claim(slot, w);
        for r in 0..self.rows {
            self.counters[self.index(slot, r, key)].fetch_max(value, Ordering::Relaxed);
        }
    }

    /// How long until `key`'s estimate falls to `limit` if it stops now (an
    /// upper bound: the rest of this window and the next).
    pub fn retry_after_ms(&self, now_ms: u64) -> u64 {
        self.window_ms - now_ms % self.window_ms + self.window_ms / 2
    }
}

/// What a limiter decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allow,
    /// Over the limit: answer 429 (or challenge) with this Retry-After.
    Limit {
        retry_after_ms: u64,
    },
}

/// A limit of `limit` events per window per key, in fixed memory.
#[derive(Debug)]
pub struct RateLimiter {
    sketch: RateSketch,
    limit: u32,
    fleet: Option<FleetPart>,
}

/// Local counts still to be sent to the fleet, at most this many keys per
/// interval (beyond: counted in [`RateLimiter::dropped`]).
pub const PENDING_CAP: usize = 16_384;

/// A limiter's part in a fleet: the other edges' counts and what is still
/// to be sent.
#[derive(Debug)]
struct FleetPart {
    remote: RateSketch,
    pending: Mutex<HashMap<(u128, u64), u32>>,
    /// A key is sent once its window count reaches this.
    threshold: AtomicU32,
    dropped: AtomicU64,
}

/// A local count to add to the fleet's: `count` more events for `key` in
/// window `window` (of `RateSketch::window_of`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub key: u128,
    pub window: u64,
    pub count: u32,
}

impl RateLimiter {
    pub fn new(limit: u32, window_ms: u64, width_log2: u32, seeds: [u64; 4]) -> Self {
        RateLimiter {
            sketch: RateSketch::new(width_log2, 4, window_ms, seeds),
            limit,
            fleet: None,
        }
    }

    /// The same limiter, taking part in a fleet: checks count what other
    /// edges reported ([`RateLimiter::set_remote`]) and keep what is to be
    /// sent ([`RateLimiter::take_pending`]).
    pub fn shared(mut self) -> Self {
        let (w, seeds) = (self.sketch.mask.trailing_ones(), self.sketch.seeds);
        self.fleet = Some(FleetPart {
            remote: RateSketch::new(w, 4, self.sketch.window_ms, seeds),
            pending: Mutex::new(HashMap::new()),
            threshold: AtomicU32::new(Self::threshold_for(self.limit, 1)),
            dropped: AtomicU64::new(0),
        });
        self
    }

    fn threshold_for(limit: u32, edges: u32) -> u32 {
        (limit / (4 * edges.max(1))).max(1)
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn window_ms(&self) -> u64 {
        self.sketch.window_ms
    }

    /// Count one event: the local estimate plus the fleet's others.
    fn hit(&self, key: u128, now_ms: u64) -> u32 {
        let local = self.sketch.hit(key, now_ms);
        let Some(f) = &self.fleet else {
            return local;
        };
        let w = self.sketch.window_of(now_ms);
        let t = f.threshold.load(Ordering::Relaxed);
        let in_window = self.sketch.count_in(key, w);
        if in_window >= t {
            let add = if in_window == t { t } else { 1 };
            let mut p = f.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let room = p.len() < PENDING_CAP;
            match p.get_mut(&(key, w)) {
                Some(n) => *n = n.saturating_add(add),
                None if room => {
                    // A key first sent after the threshold carries its whole count.
                    p.insert((key, w), in_window.max(add));
                }
                None => {
                    f.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        local.saturating_add(f.remote.estimate(key, now_ms))
    }

    /// Count the request and decide.
    pub fn check(&self, key: u128, now_ms: u64) -> RateDecision {
        self.check_scaled(key, now_ms, 1.0)
    }

    /// Like `check`, with the limit multiplied by `factor` (a tightened mode,
    /// a fleet member's share while the fleet's store is unreachable).
    pub fn check_scaled(&self, key: u128, now_ms: u64, factor: f64) -> RateDecision {
        let limit = if factor == 1.0 {
            self.limit
        } else {
            ((f64::from(self.limit) * factor).round() as u32).max(1)
        };
        if self.hit(key, now_ms) > limit {
            RateDecision::Limit {
                retry_after_ms: self.sketch.retry_after_ms(now_ms),
            }
        } else {
            RateDecision::Allow
        }
    }

    /// The local counts to send since the last call (empty outside a fleet).
    pub fn take_pending(&self) -> Vec<Pending> {
        let Some(f) = &self.fleet else {
            return Vec::new();
        };
        let taken = std::mem::take(&mut *f.pending.lock().unwrap_or_else(PoisonError::into_inner));
        taken
            .into_iter()
            .map(|((key, window), count)| Pending { key, window, count })
            .collect()
    }

    /// What the other edges counted for `key` in `window`, as learnt from
    /// the fleet's total.
    pub fn set_remote(&self, key: u128, window: u64, others: u32) {
        if let Some(f) = &self.fleet {
            f.remote.raise(key, window, others);
        }
    }

    /// Set the number of live edges (for the sending threshold).
    pub fn set_edges(&self, edges: u32) {
        if let Some(f) = &self.fleet {
            f.threshold
                .store(Self::threshold_for(self.limit, edges), Ordering::Relaxed);
        }
    }

    /// Keys not sent because the interval's table was full.
    pub fn dropped(&self) -> u64 {
        self.fleet
            .as_ref()
            .map_or(0, |f| f.dropped.load(Ordering::Relaxed))
    }

    pub fn memory_bytes(&self) -> usize {
        self.sketch.memory_bytes()
            + self
                .fleet
                .as_ref()
                .map_or(0, |f| f.remote.memory_bytes() + PENDING_CAP * 40)
    }

    pub fn sketch(&self) -> &RateSketch {
        &self.sketch
    }
}

/// The heaviest keys, exactly enough for reporting (space-saving algorithm):
/// at most `cap` entries; a new key replaces the lightest and inherits its
/// count as its possible error.
#[derive(Debug)]
pub struct TopK {
    cap: usize,
    entries: HashMap<u128, (u64, u64)>,
}

impl TopK {
    pub fn new(cap: usize) -> Self {
        TopK {
            cap: cap.max(1),
            entries: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Count `n` events for `key`.
    pub fn add(&mut self, key: u128, n: u64) {
        if let Some(e) = self.entries.get_mut(&key) {
            e.0 += n;
            return;
        }
        if self.entries.len() < self.cap {
            self.entries.insert(key, (n, 0));
            return;
        }
        if let Some((&victim, &(count, _))) = self.entries.iter().min_by_key(|(_, v)| v.0) {
            self.entries.remove(&victim);
            self.entries.insert(key, (count + n, count));
        }
    }

    /// The `n` heaviest keys as `(key, count, possible over-count)`, heaviest first.
    pub fn top(&self, n: usize) -> Vec<(u128, u64, u64)> {
        let mut v: Vec<(u128, u64, u64)> = self
            .entries
            .iter()
            .map(|(k, (c, e))| (*k, *c, *e))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEDS: [u64; 4] = [1, 2, 3, 4];

    #[test]
    fn one_heavy_key_is_limited_light_keys_are_not() {
        let l = RateLimiter::new(100, 1000, 14, SEEDS);
        let heavy = 42u128;
        let mut limited = 0;
        for i in 0..300u64 {
            if l.check(heavy, i) != RateDecision::Allow {
                limited += 1;
            }
        }
        assert_eq!(limited, 200);
        // 10,000 other clients, 10 requests each, in the same second: none limited.
        for k in 1000..11_000u128 {
            for i in 0..10u64 {
                assert_eq!(l.check(k, 500 + i), RateDecision::Allow, "key {k}");
            }
        }
    }

    #[test]
    fn sliding_window_forgets_gradually() {
        let s = RateSketch::new(12, 4, 1000, SEEDS);
        for _ in 0..100 {
            s.hit(7, 900);
        }
        assert_eq!(s.estimate(7, 999), 100);
        // Half-way into the next window, half of the previous one still counts.
        assert_eq!(s.estimate(7, 1500), 50);
        assert_eq!(s.estimate(7, 1999), 0);
        // Two windows later, nothing remains (and the slot is reused cleanly).
        s.hit(8, 2100);
        assert_eq!(s.estimate(7, 2100), 0);
    }

    #[test]
    fn never_underestimates() {
        let s = RateSketch::new(8, 4, 1000, SEEDS);
        // Far more keys than columns: collisions only inflate estimates.
        for k in 0..5000u128 {
            for _ in 0..(k % 7) {
                s.hit(k, 10);
            }
        }
        for k in 0..5000u128 {
            assert!(s.estimate(k, 10) >= (k % 7) as u32);
        }
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // the test measures the process itself, through /proc
    fn memory_is_fixed_whatever_the_number_of_sources() {
        let l = RateLimiter::new(100, 1000, 16, SEEDS);
        let before = l.memory_bytes();
        assert_eq!(before, 2 * 4 * 65536 * 4);
        let rss = |_: ()| {
            std::fs::read_to_string("/proc/self/statm")
                .ok()
                .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
                .map_or(0, |p| p * 4096)
        };
        let rss0 = rss(());
        for i in 0..10_000_000u64 {
            let ip = u128::from(0x0a00_0000u64 + i);
            let _ = l.check(ip, i / 10_000);
        }
        let grown = rss(()).saturating_sub(rss0);
        assert_eq!(l.memory_bytes(), before);
        assert!(
            grown < 256 << 20,
            "resident memory grew by {} MiB",
            grown >> 20
        );
    }

    #[test]
    fn a_fleet_limit_counts_the_other_edges() {
        // Two edges, limit 20 per window: a client sends 15 to each.
        let a = RateLimiter::new(20, 1000, 12, SEEDS).shared();
        let b = RateLimiter::new(20, 1000, 12, SEEDS).shared();
        a.set_edges(2);
        b.set_edges(2);
        for i in 0..15 {
            assert_eq!(a.check(9, 1000 + i), RateDecision::Allow);
            assert_eq!(b.check(9, 1000 + i), RateDecision::Allow);
        }
        // Threshold 20 / 8 = 2: sent whole from the second hit, nothing lost.
        let pa = a.take_pending();
        assert_eq!(
            pa,
            vec![Pending {
                key: 9,
                window: 1,
                count: 15
            }]
        );
        assert!(a.take_pending().is_empty());
        let pb = b.take_pending();
        // The store's total is 30; each learns the other's 15.
        a.set_remote(9, 1, 30 - pa[0].count);
        b.set_remote(9, 1, 30 - pb[0].count);
        assert!(matches!(a.check(9, 1100), RateDecision::Limit { .. }));
        assert!(matches!(b.check(9, 1100), RateDecision::Limit { .. }));
        // Another client is untouched, and a light one is never sent.
        assert_eq!(a.check(10, 1100), RateDecision::Allow);
        assert!(a.take_pending().iter().all(|p| p.key == 9));
        // Two windows on, the others' count is forgotten like the local one.
        assert_eq!(a.check(9, 3100), RateDecision::Allow);
        // An older window's total does not overwrite a newer one.
        a.set_remote(9, 1, 500);
        assert_eq!(a.check(9, 3200), RateDecision::Allow);
    }

    #[test]
    fn the_pending_table_is_bounded() {
        let l = RateLimiter::new(1, 1000, 16, SEEDS).shared();
        for k in 0..(PENDING_CAP as u128 + 100) {
            let _ = l.check(k, 5);
        }
        assert_eq!(l.take_pending().len(), PENDING_CAP);
        assert_eq!(l.dropped(), 100);
        // Outside a fleet nothing is kept.
        let solo = RateLimiter::new(1, 1000, 16, SEEDS);
        let _ = solo.check(1, 5);
        assert!(solo.take_pending().is_empty());
    }

    #[test]
    fn top_k_keeps_the_heavy_hitters() {
        let mut t = TopK::new(10);
        for k in 0..1000u128 {
            t.add(k, 1);
        }
        for _ in 0..500 {
            t.add(5000, 1);
            t.add(6000, 2);
        }
        assert!(t.len() <= 10);
        let top = t.top(2);
        assert_eq!(top[0].0, 6000);
        assert_eq!(top[1].0, 5000);
        assert!(top[0].1 >= 1000 && top[0].1 - top[0].2 <= 1000);
    }
}
