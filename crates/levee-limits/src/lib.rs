//! Per-client accounting in bounded memory.
//!
//! [`ConnTracker`] counts open connections globally, per client address and
//! per prefix (/24 for IPv4, /64 for IPv6) and refuses one over a cap. Its
//! tables hold an entry only while a connection from that key is open, and a
//! connection is only admitted under the global cap, so the tables can never
//! hold more than `2 × max_connections` entries, whatever the number of
//! distinct sources: memory is bounded by design, not by eviction.
//!
//! [`rate`] adds request-rate accounting in fixed memory: a sliding-window
//! count-min sketch and a bounded table of the heaviest keys.
//!
//! [`egress`] tracks the bytes and records each client is served from
//! personal-data routes, and finds the one taking an outlier share.
//!
//! [`fleet`] is what edges of a fleet share, as data (counts, totals,
//! decisions).
//!
//! Pure logic: no sockets, no clock.

pub mod adaptive;
pub mod egress;
pub mod fleet;
pub mod rate;
pub mod seen;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CapExceeded {
    #[error("global connection cap reached")]
    Global,
    #[error("per-address connection cap reached")]
    PerIp,
    #[error("per-prefix connection cap reached")]
    PerPrefix,
}

impl CapExceeded {
    pub fn label(self) -> &'static str {
        match self {
            CapExceeded::Global => "conn_cap_global",
            CapExceeded::PerIp => "conn_cap_ip",
            CapExceeded::PerPrefix => "conn_cap_prefix",
        }
    }
}

/// The caps; all three can change at run time (configuration reload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnCaps {
    pub global: u32,
    pub per_ip: u32,
    pub per_prefix: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Ip(u128, bool),
    Prefix(u128, bool),
}

/// The /24 (IPv4) or /64 (IPv6) prefix of an address, as `(bits, is_v6)`.
pub fn prefix_of(ip: IpAddr) -> (u128, bool) {
    match canonical(ip) {
        IpAddr::V4(v4) => (u128::from(u32::from(v4) & 0xffff_ff00), false),
        IpAddr::V6(v6) => (u128::from(v6) & !((1u128 << 64) - 1), true),
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn ip_key(ip: IpAddr) -> Key {
    match canonical(ip) {
        IpAddr::V4(v4) => Key::Ip(u128::from(u32::from(v4)), false),
        IpAddr::V6(v6) => Key::Ip(u128::from(v6), true),
    }
}

const SHARDS: usize = 16;

/// Open-connection counters with caps. Share it behind an `Arc`.
#[derive(Debug)]
pub struct ConnTracker {
    global: AtomicU32,
    cap_global: AtomicU32,
    cap_ip: AtomicU32,
    cap_prefix: AtomicU32,
    shards: Vec<Mutex<HashMap<Key, u32>>>,
}

/// An admitted connection; dropping it releases its counts.
#[derive(Debug)]
pub struct ConnPermit {
    tracker: Arc<ConnTracker>,
    ip: IpAddr,
    /// Counted against the global cap only.
    global_only: bool,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        if self.global_only {
            self.tracker.global.fetch_sub(1, Ordering::AcqRel);
        } else {
            self.tracker.release(self.ip);
        }
    }
}

impl ConnPermit {
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl ConnTracker {
    pub fn new(caps: ConnCaps) -> Arc<Self> {
        Arc::new(ConnTracker {
            global: AtomicU32::new(0),
            cap_global: AtomicU32::new(caps.global),
            cap_ip: AtomicU32::new(caps.per_ip),
            cap_prefix: AtomicU32::new(caps.per_prefix),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        })
    }

    /// Change the caps; open connections stay, new ones see the new caps.
    pub fn set_caps(&self, caps: ConnCaps) {
        self.cap_global.store(caps.global, Ordering::Relaxed);
        self.cap_ip.store(caps.per_ip, Ordering::Relaxed);
        self.cap_prefix.store(caps.per_prefix, Ordering::Relaxed);
    }

    /// Open connections, all clients.
    pub fn open(&self) -> u32 {
        self.global.load(Ordering::Relaxed)
    }

    /// Entries held in the per-key tables (for the memory-bound test and metrics).
    pub fn table_entries(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    fn shard(&self, k: &Key) -> &Mutex<HashMap<Key, u32>> {
        let (Key::Ip(v, _) | Key::Prefix(v, _)) = *k;
        // Fold the address bits; the prefix's low byte is zero, so mix higher bits too.
        let h = (v ^ (v >> 8) ^ (v >> 64)) as usize;
        &self.shards[h % SHARDS]
    }

    /// Count a connection from `ip` or say which cap it would cross.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnPermit, CapExceeded> {
        let cap = self.cap_global.load(Ordering::Relaxed);
        if self
            .global
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |g| {
                (g < cap).then_some(g + 1)
            })
            .is_err()
        {
            return Err(CapExceeded::Global);
        }
        let (p, v6) = prefix_of(ip);
        let pk = Key::Prefix(p, v6);
        if !self.incr(pk, self.cap_prefix.load(Ordering::Relaxed)) {
            self.global.fetch_sub(1, Ordering::AcqRel);
            return Err(CapExceeded::PerPrefix);
        }
        if !self.incr(ip_key(ip), self.cap_ip.load(Ordering::Relaxed)) {
            self.decr(pk);
            self.global.fetch_sub(1, Ordering::AcqRel);
            return Err(CapExceeded::PerIp);
        }
        Ok(ConnPermit {
            tracker: Arc::clone(self),
            ip,
            global_only: false,
        })
    }

    /// Count a connection against the global cap only (a trusted proxy,
    /// which carries many clients behind one address).
    pub fn try_acquire_global(self: &Arc<Self>, ip: IpAddr) -> Result<ConnPermit, CapExceeded> {
        let cap = self.cap_global.load(Ordering::Relaxed);
        self.global
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |g| {
                (g < cap).then_some(g + 1)
            })
            .map_err(|_| CapExceeded::Global)?;
        Ok(ConnPermit {
            tracker: Arc::clone(self),
            ip,
            global_only: true,
        })
    }

    fn incr(&self, k: Key, cap: u32) -> bool {
        let mut m = self
            .shard(&k)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let c = m.entry(k).or_insert(0);
        if *c >= cap {
            if *c == 0 {
                m.remove(&k);
            }
            return false;
        }
        *c += 1;
        true
    }

    fn decr(&self, k: Key) {
        let mut m = self
            .shard(&k)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = m.get_mut(&k) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                m.remove(&k);
            }
        }
    }

    fn release(&self, ip: IpAddr) {
        let (p, v6) = prefix_of(ip);
        self.decr(Key::Prefix(p, v6));
        self.decr(ip_key(ip));
        self.global.fetch_sub(1, Ordering::AcqRel);
    }

    /// Open connections from `ip` (for status pages and tests).
    pub fn open_from(&self, ip: IpAddr) -> u32 {
        let k = ip_key(ip);
        let m = self
            .shard(&k)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        m.get(&k).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn caps(g: u32, i: u32, p: u32) -> ConnCaps {
        ConnCaps {
            global: g,
            per_ip: i,
            per_prefix: p,
        }
    }

    #[test]
    fn per_ip_then_prefix_then_global() {
        let t = ConnTracker::new(caps(10, 2, 3));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.1.1".parse().unwrap();
        let p1 = t.try_acquire(a).unwrap();
        let _p2 = t.try_acquire(a).unwrap();
        assert_eq!(t.try_acquire(a).unwrap_err(), CapExceeded::PerIp);
        let _p3 = t.try_acquire(b).unwrap();
        assert_eq!(t.try_acquire(b).unwrap_err(), CapExceeded::PerPrefix);
        drop(p1);
        assert_eq!(t.open_from(a), 1);
        let _p4 = t.try_acquire(b).unwrap();
        let mut others = Vec::new();
        for _ in 0..6 {
            others.push(t.try_acquire(c).ok());
        }
        assert_eq!(t.open(), 5);
        assert_eq!(others.iter().filter(|p| p.is_some()).count(), 2);
    }

    #[test]
    fn a_trusted_proxy_meets_only_the_global_cap() {
        // Review finding 12: everyone behind an L7 proxy shares its address.
        let t = ConnTracker::new(caps(3, 1, 1));
        let lb: IpAddr = "10.0.0.1".parse().unwrap();
        let a = t.try_acquire_global(lb).unwrap();
        let _b = t.try_acquire_global(lb).unwrap();
        let _c = t.try_acquire(lb).unwrap();
        assert_eq!(t.try_acquire_global(lb).unwrap_err(), CapExceeded::Global);
        drop(a);
        assert!(t.try_acquire_global(lb).is_ok());
        assert_eq!(
            t.open_from(lb),
            1,
            "per-address counts hold only the untrusted one"
        );
    }

    #[test]
    fn global_cap_and_ipv6_prefix() {
        let t = ConnTracker::new(caps(2, 10, 10));
        let _a = t.try_acquire("2001:db8::1".parse().unwrap()).unwrap();
        let _b = t.try_acquire("2001:db8::2".parse().unwrap()).unwrap();
        assert_eq!(
            t.try_acquire("192.0.2.1".parse().unwrap()).unwrap_err(),
            CapExceeded::Global
        );
        let t = ConnTracker::new(caps(100, 10, 2));
        let _a = t.try_acquire("2001:db8::1".parse().unwrap()).unwrap();
        let _b = t.try_acquire("2001:db8::ffff:2".parse().unwrap()).unwrap();
        assert_eq!(
            t.try_acquire("2001:db8::3".parse().unwrap()).unwrap_err(),
            CapExceeded::PerPrefix
        );
        assert!(t.try_acquire("2001:db8:0:1::3".parse().unwrap()).is_ok());
        // IPv4-mapped addresses count as their IPv4 address.
        let _m = t.try_acquire("::ffff:192.0.2.9".parse().unwrap()).unwrap();
        assert_eq!(t.open_from("192.0.2.9".parse().unwrap()), 1);
    }

    #[test]
    fn memory_bounded_by_global_cap_under_a_million_sources() {
        let cap = 1000;
        let t = ConnTracker::new(caps(cap, 4, 64));
        let mut held = Vec::new();
        for i in 0..1_000_000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i));
            if let Ok(p) = t.try_acquire(ip) {
                held.push(p);
            }
            if i % 1000 == 0 {
                assert!(t.table_entries() <= 2 * cap as usize);
            }
        }
        assert!(t.table_entries() <= 2 * cap as usize);
        assert_eq!(held.len(), cap as usize);
        drop(held);
        assert_eq!(t.table_entries(), 0);
        assert_eq!(t.open(), 0);
    }

    #[test]
    fn caps_change_at_run_time() {
        let t = ConnTracker::new(caps(10, 1, 10));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let _p = t.try_acquire(a).unwrap();
        assert!(t.try_acquire(a).is_err());
        t.set_caps(caps(10, 2, 10));
        assert!(t.try_acquire(a).is_ok());
    }
}

/// Clients marked abusive by a protocol defense (an HTTP/2 flood, say), in a
/// table of fixed capacity: when full, the least recently marked entry is
/// evicted, in amortised constant time (an order queue with lazy deletion,
/// not a scan). IPv6 clients are marked by their /64, so an attacker
/// rotating addresses cannot churn real marks out. Later defenses read it
/// to treat marked clients more strictly.
#[derive(Debug)]
pub struct Marks {
    cap: usize,
    table: HashMap<IpAddr, Mark>,
    /// Keys in the order they were last marked, with that time; an entry
    /// whose time is no longer the key's `last_ms` is stale and skipped.
    order: std::collections::VecDeque<(IpAddr, u64)>,
}

/// The key a client is marked under: IPv4 as is, IPv6 by its /64.
pub(crate) fn mark_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

/// What is known about a marked client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub count: u32,
    pub last_ms: u64,
    pub reason: &'static str,
}

impl Marks {
    pub fn new(cap: usize) -> Self {
        Marks {
            cap: cap.max(1),
            table: HashMap::new(),
            order: std::collections::VecDeque::new(),
        }
    }

    /// Record that `ip` misbehaved at `now_ms`.
    pub fn mark(&mut self, ip: IpAddr, reason: &'static str, now_ms: u64) {
        let ip = mark_key(ip);
        if !self.table.contains_key(&ip) && self.table.len() >= self.cap {
            while let Some((k, t)) = self.order.pop_front() {
                if self.table.get(&k).is_some_and(|m| m.last_ms == t) {
                    self.table.remove(&k);
                    break;
                }
            }
        }
        let m = self.table.entry(ip).or_insert(Mark {
            count: 0,
            last_ms: now_ms,
            reason,
        });
        m.count = m.count.saturating_add(1);
        m.last_ms = now_ms;
        m.reason = reason;
        self.order.push_back((ip, now_ms));
        // Stale entries (keys marked again since) are bounded: compact now and then.
        if self.order.len() > 4 * self.cap {
            let mut live: Vec<(IpAddr, u64)> =
                self.table.iter().map(|(k, m)| (*k, m.last_ms)).collect();
            live.sort_by_key(|(_, t)| *t);
            self.order = live.into();
        }
    }

    pub fn get(&self, ip: IpAddr) -> Option<Mark> {
        self.table.get(&mark_key(ip)).copied()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

#[cfg(test)]
mod marks_tests {
    use super::*;

    #[test]
    fn bounded_and_evicts_oldest() {
        let mut m = Marks::new(3);
        for i in 0..10u8 {
            m.mark(IpAddr::from([10, 0, 0, i]), "x", u64::from(i));
        }
        assert_eq!(m.len(), 3);
        assert!(m.get(IpAddr::from([10, 0, 0, 9])).is_some());
        assert!(m.get(IpAddr::from([10, 0, 0, 0])).is_none());
        m.mark(IpAddr::from([10, 0, 0, 9]), "y", 20);
        assert_eq!(m.get(IpAddr::from([10, 0, 0, 9])).unwrap().count, 2);
    }

    #[test]
    fn eviction_is_least_recent_and_the_order_stays_bounded() {
        // Review finding 15: eviction was a scan of the whole table.
        let mut m = Marks::new(100);
        for round in 0..50u64 {
            for i in 0..100u8 {
                m.mark(
                    IpAddr::from([10, 0, 1, i]),
                    "x",
                    round * 1000 + u64::from(i),
                );
            }
        }
        assert!(m.order.len() <= 400, "{}", m.order.len());
        // 10.0.1.0 was marked least recently among the 100: a new client evicts it.
        m.mark(IpAddr::from([10, 0, 2, 1]), "x", 1_000_000);
        assert!(m.get(IpAddr::from([10, 0, 1, 0])).is_none());
        assert!(m.get(IpAddr::from([10, 0, 1, 1])).is_some());
        assert_eq!(m.len(), 100);
        // An IPv6 client is one mark per /64, whatever address it uses.
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        m.mark(a, "x", 1_000_001);
        m.mark(b, "x", 1_000_002);
        assert_eq!(m.get(a).unwrap().count, 2);
    }
}

/// A set of networks (CIDR blocks) with optional expiry, looked up by
/// longest prefix among the lengths present: a lookup costs one hash probe
/// per distinct prefix length, not one per entry. Bounded: `cap` entries.
#[derive(Debug, Clone)]
pub struct NetSet {
    cap: usize,
    /// `(bits, is_v6, prefix length)` → expiry in ms (`u64::MAX`: never).
    entries: HashMap<(u128, bool, u8), u64>,
    lengths: Vec<(bool, u8)>,
}

fn masked(ip: IpAddr, len: u8) -> (u128, bool) {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let b = u32::from(v4);
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            (u128::from(b & m), false)
        }
        IpAddr::V6(v6) => {
            let b = u128::from(v6);
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            (b & m, true)
        }
    }
}

impl NetSet {
    pub fn new(cap: usize) -> Self {
        NetSet {
            cap: cap.max(1),
            entries: HashMap::new(),
            lengths: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add `ip/len` until `expires_ms` (`u64::MAX` for ever). `false` if full.
    pub fn insert(&mut self, ip: IpAddr, len: u8, expires_ms: u64) -> bool {
        let (bits, v6) = masked(ip, len);
        let key = (bits, v6, len);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.cap {
            return false;
        }
        self.entries.insert(key, expires_ms);
        if !self.lengths.contains(&(v6, len)) {
            self.lengths.push((v6, len));
            self.lengths.sort_by_key(|l| std::cmp::Reverse(l.1));
        }
        true
    }

    pub fn remove(&mut self, ip: IpAddr, len: u8) -> bool {
        let (bits, v6) = masked(ip, len);
        self.entries.remove(&(bits, v6, len)).is_some()
    }

    /// Whether `ip` is inside an entry that has not expired at `now_ms`.
    pub fn contains(&self, ip: IpAddr, now_ms: u64) -> bool {
        let v6 = canonical(ip).is_ipv6();
        self.lengths
            .iter()
            .filter(|(f, _)| *f == v6)
            .any(|&(_, len)| {
                let (bits, _) = masked(ip, len);
                self.entries
                    .get(&(bits, v6, len))
                    .is_some_and(|&exp| exp > now_ms)
            })
    }

    /// Drop expired entries; returns them as `(network bits, is_v6, length)`.
    pub fn expire(&mut self, now_ms: u64) -> Vec<(u128, bool, u8)> {
        let gone: Vec<(u128, bool, u8)> = self
            .entries
            .iter()
            .filter(|(_, &e)| e <= now_ms)
            .map(|(k, _)| *k)
            .collect();
        for k in &gone {
            self.entries.remove(k);
        }
        gone
    }

    /// Every entry as `(network bits, is_v6, length, expiry)`.
    pub fn entries(&self) -> Vec<(u128, bool, u8, u64)> {
        self.entries
            .iter()
            .map(|(&(b, v, l), &e)| (b, v, l, e))
            .collect()
    }
}

#[cfg(test)]
mod netset_tests {
    use super::*;

    #[test]
    fn longest_prefix_expiry_and_bound() {
        let mut s = NetSet::new(3);
        assert!(s.insert("10.1.2.3".parse().unwrap(), 24, u64::MAX));
        assert!(s.insert("2001:db8::".parse().unwrap(), 32, 1000));
        assert!(s.contains("10.1.2.200".parse().unwrap(), 0));
        assert!(!s.contains("10.1.3.1".parse().unwrap(), 0));
        assert!(s.contains("::ffff:10.1.2.9".parse().unwrap(), 0));
        assert!(s.contains("2001:db8:5::1".parse().unwrap(), 999));
        assert!(!s.contains("2001:db8:5::1".parse().unwrap(), 1000));
        assert!(s.insert("192.0.2.1".parse().unwrap(), 32, 50));
        assert!(!s.insert("192.0.2.2".parse().unwrap(), 32, 50), "full");
        assert_eq!(s.expire(100).len(), 1);
        assert_eq!(s.len(), 2);
        assert!(s.remove("10.1.2.0".parse().unwrap(), 24));
        assert!(!s.contains("10.1.2.200".parse().unwrap(), 0));
    }
}
