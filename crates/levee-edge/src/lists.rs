//! Block and allow lists: static ones from the configuration, expiring
//! blocks added through the admin API. A blocked client is refused at accept.
//! Every change is also kept, numbered, in a bounded log that followers
//! (the packet filter, other edges) read with `GET /blocks/changes?since=N`.
//! `filter_view` gathers every block decision (static lists, admin API,
//! automatic blocks, the adaptive defense's block rules on client prefixes)
//! for the packet filter, which the binary feeds from it.

use levee_config::Cidr;
use levee_limits::NetSet;
use serde::Serialize;
use std::collections::VecDeque;
use std::net::IpAddr;

/// One change to the dynamic block list.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Change {
    pub seq: u64,
    /// `add`, `remove` or `expire`.
    pub op: &'static str,
    pub cidr: String,
    /// Unix ms, for `add`.
    pub expires_unix_ms: Option<u64>,
}

const CHANGES: usize = 10_000;

/// Blocks from outside sources, at most (the bouncer holds fewer).
const SOURCED: usize = 200_000;

/// The lists an edge consults at accept.
#[derive(Debug)]
pub(crate) struct Lists {
    static_block: NetSet,
    allow: NetSet,
    dynamic: NetSet,
    /// Blocks an outside source asked for (CrowdSec), kept apart so that a
    /// source lifting its own never lifts an operator's or the defense's.
    sourced: NetSet,
    changes: VecDeque<Change>,
    next_seq: u64,
}

fn bits_addr(bits: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(bits.into())
    } else {
        IpAddr::V4((bits as u32).into())
    }
}

/// A set's entries as `(address, prefix length, monotonic expiry ms)`.
fn nets(set: &NetSet) -> Vec<(IpAddr, u8, u64)> {
    set.entries()
        .into_iter()
        .map(|(b, v6, l, e)| (bits_addr(b, v6), l, e))
        .collect()
}

fn cidr_text(bits: u128, v6: bool, len: u8) -> String {
    format!("{}/{len}", bits_addr(bits, v6))
}

/// Everything the edge wants dropped (or never dropped) at the packet level.
#[derive(Debug, Default, Clone)]
pub struct FilterView {
    /// Address or prefix, and the time left (`None`: until the configuration changes).
    pub blocks: Vec<(IpAddr, u8, Option<std::time::Duration>)>,
    pub allow: Vec<(IpAddr, u8)>,
}

/// What `filter_view` depends on: while `seq` and `generation` stay the
/// same and no site has a `block` rule on a prefix, the view is unchanged
/// (so a follower can skip rebuilding it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewKey {
    pub seq: u64,
    pub generation: u64,
    pub prefix_rules: bool,
}

impl Lists {
    pub(crate) fn new(cfg: &levee_config::Lists) -> Lists {
        let mut l = Lists {
            static_block: NetSet::new(usize::MAX),
            allow: NetSet::new(usize::MAX),
            dynamic: NetSet::new(cfg.max_dynamic as usize),
            sourced: NetSet::new(SOURCED),
            changes: VecDeque::new(),
            next_seq: 1,
        };
        l.reconfigure(cfg);
        l
    }

    /// Replace the static lists (reload); dynamic blocks stay.
    pub(crate) fn reconfigure(&mut self, cfg: &levee_config::Lists) {
        self.static_block = NetSet::new(usize::MAX);
        self.allow = NetSet::new(usize::MAX);
        for c in &cfg.block {
            self.static_block.insert(c.addr(), c.prefix_len(), u64::MAX);
        }
        for c in &cfg.allow {
            self.allow.insert(c.addr(), c.prefix_len(), u64::MAX);
        }
    }

    /// Refuse `ip` at `now_ms`?
    pub(crate) fn blocked(&self, ip: IpAddr, now_ms: u64) -> bool {
        if self.static_block.is_empty() && self.dynamic.is_empty() && self.sourced.is_empty() {
            return false;
        }
        (self.static_block.contains(ip, now_ms)
            || self.dynamic.contains(ip, now_ms)
            || self.sourced.contains(ip, now_ms))
            && !self.allow.contains(ip, now_ms)
    }

    fn log(&mut self, op: &'static str, cidr: String, expires_unix_ms: Option<u64>) {
        if self.changes.len() == CHANGES {
            self.changes.pop_front();
        }
        self.changes.push_back(Change {
            seq: self.next_seq,
            op,
            cidr,
            expires_unix_ms,
        });
        self.next_seq += 1;
    }

    /// Add `c` to the operator's and defense's set, or the sources' one,
    /// and log the change.
    fn add(&mut self, sourced: bool, c: Cidr, expires_ms: u64, expires_unix_ms: u64) -> bool {
        let set = if sourced {
            &mut self.sourced
        } else {
            &mut self.dynamic
        };
        let ok = set.insert(c.addr(), c.prefix_len(), expires_ms);
        if ok {
            self.log("add", c.to_string(), Some(expires_unix_ms));
        }
        ok
    }

    fn lift(&mut self, sourced: bool, c: Cidr) -> bool {
        let set = if sourced {
            &mut self.sourced
        } else {
            &mut self.dynamic
        };
        let ok = set.remove(c.addr(), c.prefix_len());
        if ok {
            self.log("remove", c.to_string(), None);
        }
        ok
    }

    /// Block `c` until `expires_ms` (monotonic ms); `false` if the list is full.
    pub(crate) fn block(&mut self, c: Cidr, expires_ms: u64, expires_unix_ms: u64) -> bool {
        self.add(false, c, expires_ms, expires_unix_ms)
    }

    pub(crate) fn unblock(&mut self, c: Cidr) -> bool {
        self.lift(false, c)
    }

    /// Block `c` on an outside source's decision until `expires_ms`.
    pub(crate) fn block_sourced(&mut self, c: Cidr, expires_ms: u64, expires_unix_ms: u64) -> bool {
        self.add(true, c, expires_ms, expires_unix_ms)
    }

    /// Lift an outside source's block (never another's).
    pub(crate) fn unblock_sourced(&mut self, c: Cidr) -> bool {
        self.lift(true, c)
    }

    /// Outside sources' blocks as `(address, prefix length, monotonic expiry ms)`.
    pub(crate) fn sourced_nets(&self) -> Vec<(IpAddr, u8, u64)> {
        nets(&self.sourced)
    }

    /// Drop expired dynamic blocks (and log them).
    pub(crate) fn expire(&mut self, now_ms: u64) {
        for (bits, v6, len) in self.sourced.expire(now_ms) {
            self.log("expire", cidr_text(bits, v6, len), None);
        }
        for (bits, v6, len) in self.dynamic.expire(now_ms) {
            self.log("expire", cidr_text(bits, v6, len), None);
        }
    }

    /// Dynamic blocks as `(cidr, monotonic expiry ms)`.
    pub(crate) fn dynamic(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .dynamic_nets()
            .into_iter()
            .map(|(ip, l, e)| (format!("{ip}/{l}"), e))
            .collect();
        v.sort();
        v
    }

    /// Changes so far (grows with every add, remove and expiry).
    pub(crate) fn seq(&self) -> u64 {
        self.next_seq
    }

    /// Dynamic blocks as `(address, prefix length, monotonic expiry ms)`.
    pub(crate) fn dynamic_nets(&self) -> Vec<(IpAddr, u8, u64)> {
        nets(&self.dynamic)
    }

    /// Changes with `seq > since`, and the next sequence number.
    pub(crate) fn changes_since(&self, since: u64) -> (Vec<Change>, u64) {
        (
            self.changes
                .iter()
                .filter(|c| c.seq > since)
                .cloned()
                .collect(),
            self.next_seq,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An outside source's blocks are its own: lifting one leaves an
    /// operator's block on the same prefix, and the allow list still wins.
    #[test]
    fn sourced_blocks_are_kept_apart() {
        let cfg = levee_config::Lists {
            allow: vec!["192.0.2.9/32".parse().unwrap()],
            ..Default::default()
        };
        let mut l = Lists::new(&cfg);
        let c: Cidr = "192.0.2.0/24".parse().unwrap();
        assert!(l.block(c, 1000, 1000));
        assert!(l.block_sourced(c, 500, 500));
        assert!(l.unblock_sourced(c));
        assert!(
            l.blocked("192.0.2.7".parse().unwrap(), 600),
            "the operator's block stays"
        );
        assert!(l.block_sourced("198.51.100.0/24".parse().unwrap(), 500, 500));
        assert!(l.blocked("198.51.100.1".parse().unwrap(), 10));
        assert!(!l.blocked("192.0.2.9".parse().unwrap(), 10));
        l.expire(501);
        assert!(!l.blocked("198.51.100.1".parse().unwrap(), 502));
        assert!(l.sourced_nets().is_empty());
    }

    #[test]
    fn allow_overrides_block_and_changes_are_logged() {
        let cfg = levee_config::Lists {
            block: vec!["10.0.0.0/8".parse().unwrap()],
            allow: vec!["10.9.0.0/16".parse().unwrap()],
            max_dynamic: 2,
            ..Default::default()
        };
        let mut l = Lists::new(&cfg);
        assert!(l.blocked("10.1.1.1".parse().unwrap(), 0));
        assert!(!l.blocked("10.9.1.1".parse().unwrap(), 0));
        assert!(l.block("192.0.2.0/24".parse().unwrap(), 100, 5000));
        assert!(l.blocked("192.0.2.7".parse().unwrap(), 50));
        l.expire(100);
        assert!(!l.blocked("192.0.2.7".parse().unwrap(), 101));
        let (changes, next) = l.changes_since(0);
        assert_eq!(
            changes.iter().map(|c| c.op).collect::<Vec<_>>(),
            vec!["add", "expire"]
        );
        assert_eq!(changes[1].cidr, "192.0.2.0/24");
        assert_eq!(next, 3);
        assert!(l.changes_since(2).0.is_empty());
    }
}
