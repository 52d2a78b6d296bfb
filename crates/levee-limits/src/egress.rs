//! Egress on personal-data routes, per client, in fixed memory: the bytes
//! and records each client was served from routes tagged `personal` or
//! `export`, over a sliding window (the current window plus the previous
//! one weighted by how much of it is still within one window of now), and
//! the client that takes an outlier share of them.
//!
//! At most `capacity` clients are tracked (space-saving by bytes: a new
//! client replaces the lightest and inherits its counts as its possible
//! over-count), so memory is the same for ten clients or ten million. An
//! outlier is judged on the *guaranteed* part of a client's counts (count
//! minus possible over-count), so an eviction never raises a false alarm.
//! IPv6 clients are counted by their /64.
//!
//! An outlier is a client over `min_bytes` or `min_records` in the window
//! that also holds at least `share` of the site's total of that measure.
//! With few other visitors (a bulk download at night), the share is high
//! and the volume decides; with many, both must hold. Each client is
//! reported at most once per window.
//!
//! Pure: time is a parameter.

use std::collections::HashMap;
use std::net::IpAddr;

/// When a client's egress is an outlier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EgressParams {
    pub window_ms: u64,
    pub min_bytes: u64,
    pub min_records: u64,
    /// Share of the window's total (0–1).
    pub share: f64,
    /// Clients tracked at most.
    pub capacity: usize,
}

/// One client's egress in the window, as estimated now.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientEgress {
    /// The address last seen for this client (an IPv6 /64 is one client).
    pub client: IpAddr,
    pub bytes: u64,
    pub records: u64,
    /// Possible over-count of `bytes` (from evictions); 0 when exact.
    pub bytes_error: u64,
    pub share_bytes: f64,
    pub share_records: f64,
}

/// A client found taking an outlier share.
#[derive(Debug, Clone, PartialEq)]
pub struct Outlier {
    pub who: ClientEgress,
    pub total_bytes: u64,
    pub total_records: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    bytes: u64,
    records: u64,
}

#[derive(Debug, Clone)]
struct Slot {
    last: IpAddr,
    cur: Counts,
    prev: Counts,
    /// Possible over-count inherited at eviction (current-window units).
    err: Counts,
    /// The window in which it was last reported.
    reported: Option<u64>,
}

/// The per-site egress table.
#[derive(Debug)]
pub struct Egress {
    p: EgressParams,
    /// Index of the current window (`now / window_ms`).
    window: u64,
    cur: Counts,
    prev: Counts,
    slots: HashMap<IpAddr, Slot>,
}

impl Egress {
    pub fn new(p: EgressParams) -> Egress {
        Egress {
            p: EgressParams {
                window_ms: p.window_ms.max(1),
                capacity: p.capacity.max(1),
                ..p
            },
            window: 0,
            cur: Counts::default(),
            prev: Counts::default(),
            slots: HashMap::new(),
        }
    }

    pub fn params(&self) -> EgressParams {
        self.p
    }

    /// Clients tracked now (at most `capacity`).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Move the windows on to `now_ms`.
    fn roll(&mut self, now_ms: u64) {
        let w = now_ms / self.p.window_ms;
        if w == self.window {
            return;
        }
        let adjacent = w == self.window + 1;
        self.window = w;
        self.prev = if adjacent {
            self.cur
        } else {
            Counts::default()
        };
        self.cur = Counts::default();
        self.slots.retain(|_, s| {
            s.prev = if adjacent { s.cur } else { Counts::default() };
            s.cur = Counts::default();
            s.err = Counts::default();
            s.prev.bytes > 0 || s.prev.records > 0
        });
    }

    /// The weight of the previous window at `now_ms`.
    fn weight(&self, now_ms: u64) -> f64 {
        let into = (now_ms % self.p.window_ms) as f64 / self.p.window_ms as f64;
        1.0 - into
    }

    fn estimate(c: Counts, prev: Counts, w: f64) -> (u64, u64) {
        (
            c.bytes + (prev.bytes as f64 * w) as u64,
            c.records + (prev.records as f64 * w) as u64,
        )
    }

    /// Count `bytes` served to `client`, and a record if `record`. Returns
    /// the client when this makes it an outlier (once per window).
    pub fn add(
        &mut self,
        now_ms: u64,
        client: IpAddr,
        bytes: u64,
        record: bool,
    ) -> Option<Outlier> {
        self.roll(now_ms);
        let n = Counts {
            bytes,
            records: u64::from(record),
        };
        self.cur.bytes = self.cur.bytes.saturating_add(n.bytes);
        self.cur.records = self.cur.records.saturating_add(n.records);
        let key = crate::mark_key(client);
        if !self.slots.contains_key(&key) {
            let mut err = Counts::default();
            if self.slots.len() >= self.p.capacity {
                // Evict the lightest by current bytes; the newcomer inherits
                // its counts as a possible over-count.
                let victim = self
                    .slots
                    .iter()
                    .min_by_key(|(_, s)| (s.cur.bytes, s.cur.records))
                    .map(|(k, s)| (*k, s.cur));
                if let Some((k, c)) = victim {
                    self.slots.remove(&k);
                    err = c;
                }
            }
            self.slots.insert(
                key,
                Slot {
                    last: client,
                    cur: err,
                    prev: Counts::default(),
                    err,
                    reported: None,
                },
            );
        }
        let w = self.weight(now_ms);
        let (tb, tr) = Self::estimate(self.cur, self.prev, w);
        let window = self.window;
        let p = self.p;
        let slot = self.slots.get_mut(&key)?;
        slot.last = client;
        slot.cur.bytes = slot.cur.bytes.saturating_add(n.bytes);
        slot.cur.records = slot.cur.records.saturating_add(n.records);
        if slot.reported == Some(window) {
            return None;
        }
        let (b, r) = Self::estimate(slot.cur, slot.prev, w);
        let (gb, gr) = (b - slot.err.bytes.min(b), r - slot.err.records.min(r));
        let share = |x: u64, t: u64| if t == 0 { 0.0 } else { x as f64 / t as f64 };
        let over_bytes = gb >= p.min_bytes && share(gb, tb) >= p.share;
        let over_records = gr >= p.min_records && share(gr, tr) >= p.share;
        if !(over_bytes || over_records) {
            return None;
        }
        slot.reported = Some(window);
        Some(Outlier {
            who: ClientEgress {
                client: slot.last,
                bytes: b,
                records: r,
                bytes_error: slot.err.bytes,
                share_bytes: share(b, tb),
                share_records: share(r, tr),
            },
            total_bytes: tb,
            total_records: tr,
        })
    }

    /// The window's totals at `now_ms`: (bytes, records).
    pub fn totals(&self, now_ms: u64) -> (u64, u64) {
        let (cur, prev) = self.counts_at(now_ms);
        Self::estimate(cur, prev, self.weight(now_ms))
    }

    fn counts_at(&self, now_ms: u64) -> (Counts, Counts) {
        let w = now_ms / self.p.window_ms;
        if w == self.window {
            (self.cur, self.prev)
        } else if w == self.window + 1 {
            (Counts::default(), self.cur)
        } else {
            (Counts::default(), Counts::default())
        }
    }

    /// The `n` heaviest clients by bytes at `now_ms`, heaviest first.
    pub fn top(&self, now_ms: u64, n: usize) -> Vec<ClientEgress> {
        let w = self.weight(now_ms);
        let (tb, tr) = self.totals(now_ms);
        let shift = now_ms / self.p.window_ms;
        let mut v: Vec<ClientEgress> = self
            .slots
            .values()
            .map(|s| {
                let (cur, prev) = if shift == self.window {
                    (s.cur, s.prev)
                } else if shift == self.window + 1 {
                    (Counts::default(), s.cur)
                } else {
                    (Counts::default(), Counts::default())
                };
                let (b, r) = Self::estimate(cur, prev, w);
                ClientEgress {
                    client: s.last,
                    bytes: b,
                    records: r,
                    bytes_error: if shift == self.window { s.err.bytes } else { 0 },
                    share_bytes: if tb == 0 { 0.0 } else { b as f64 / tb as f64 },
                    share_records: if tr == 0 { 0.0 } else { r as f64 / tr as f64 },
                }
            })
            .filter(|c| c.bytes > 0 || c.records > 0)
            .collect();
        v.sort_by(|a, b| {
            b.bytes
                .cmp(&a.bytes)
                .then(b.records.cmp(&a.records))
                .then(a.client.cmp(&b.client))
        });
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: EgressParams = EgressParams {
        window_ms: 600_000,
        min_bytes: 1_000_000,
        min_records: 100,
        share: 0.2,
        capacity: 64,
    };

    fn ip(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn one_client_walking_a_personal_route_is_reported_once() {
        let mut e = Egress::new(P);
        // Fifty ordinary visitors, a few pages each.
        for i in 0..50 {
            for _ in 0..3 {
                assert!(e.add(1000, ip(i), 5_000, true).is_none());
            }
        }
        let mut found = Vec::new();
        for k in 0..400u64 {
            if let Some(o) = e.add(2000 + k, ip(999), 5_000, true) {
                found.push((k, o));
            }
        }
        assert_eq!(found.len(), 1, "reported once per window");
        let (k, o) = &found[0];
        assert_eq!(o.who.client, ip(999));
        assert!(o.who.records >= 100 && *k < 200, "{k} {o:?}");
        assert!(o.who.share_records >= 0.2);
        assert_eq!(e.top(3000, 1)[0].client, ip(999));
    }

    #[test]
    fn a_lone_night_download_is_reported_by_volume() {
        let mut e = Egress::new(P);
        // One client, few records, large bodies: 3 × 400 kB.
        assert!(e.add(10, ip(1), 400_000, true).is_none());
        assert!(e.add(20, ip(1), 400_000, true).is_none());
        let o = e.add(30, ip(1), 400_000, true).expect("1.2 MB alone");
        assert_eq!(o.total_bytes, 1_200_000);
        assert!((o.who.share_bytes - 1.0).abs() < 1e-9);
    }

    #[test]
    fn many_even_clients_are_not_outliers_and_memory_stays_bounded() {
        let mut e = Egress::new(P);
        for round in 0..20u64 {
            for i in 0..10_000u32 {
                assert!(
                    e.add(round * 10 + 1, ip(i), 20_000, true).is_none(),
                    "client {i} round {round}"
                );
            }
        }
        assert!(e.len() <= P.capacity);
    }

    #[test]
    fn windows_slide_and_forget() {
        let mut e = Egress::new(P);
        e.add(0, ip(1), 1000, true);
        // Half into the next window: half the previous one still counts.
        assert_eq!(e.totals(P.window_ms + P.window_ms / 2), (500, 0));
        // Two windows later, nothing.
        e.add(3 * P.window_ms, ip(2), 10, false);
        assert_eq!(e.totals(3 * P.window_ms), (10, 0));
        assert_eq!(e.len(), 1);
        // A reported client may be reported again in a later window.
        let mut e = Egress::new(P);
        assert!(e.add(0, ip(1), 2_000_000, true).is_some());
        assert!(e.add(1, ip(1), 2_000_000, true).is_none());
        assert!(e.add(P.window_ms + 1, ip(1), 2_000_000, true).is_some());
    }

    #[test]
    fn an_ipv6_64_is_one_client_and_an_eviction_raises_no_false_alarm() {
        let mut e = Egress::new(EgressParams { capacity: 2, ..P });
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        e.add(0, a, 10, true);
        e.add(0, b, 10, true);
        assert_eq!(e.len(), 1);
        assert_eq!(e.top(0, 5)[0].client, b);
        // A heavy client and a churn of newcomers: each newcomer inherits
        // the lightest count as error, so none is reported.
        let mut e = Egress::new(EgressParams { capacity: 2, ..P });
        e.add(0, ip(1), 900_000, true);
        e.add(0, ip(2), 900_000, true);
        for i in 3..100 {
            assert!(e.add(0, ip(i), 1, false).is_none(), "newcomer {i}");
        }
    }
}
