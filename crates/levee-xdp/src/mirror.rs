//! Mirrors a block/allow list kept elsewhere (the edge's) into the filter's
//! maps: given the wanted set, it adds what is missing, updates expiries that
//! moved, and removes what is no longer wanted. Entries it writes are marked
//! (bit 63 of a block's value, 2 in the allow tries), so blocks added by hand
//! with `levee xdp block` are never touched, and a restarted edge adopts (and
//! then corrects) what the previous one left.
//!
//! It does not decide anything: the edge's lists, admin API and adaptive
//! defense do; this only copies, with the expiry converted to the kernel's
//! monotonic clock.

use crate::lists::{Net, OWNER_BIT};
use crate::{Filter, XdpError};
use std::collections::HashMap;
use std::time::Duration;

/// What the edge wants blocked and allowed now.
#[derive(Debug, Default, Clone)]
pub struct Wanted {
    /// Prefix (or address with its full length) and the time left (`None`: no expiry).
    pub blocks: Vec<(Net, Option<Duration>)>,
    pub allow: Vec<Net>,
}

/// What one `apply` changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    /// Entries the kernel refused (a full map); retried on the next apply.
    pub failed: usize,
}

/// An expiry that moved by less than this is not rewritten.
const SLACK_NS: u64 = 2_000_000_000;

/// The mirror's memory of what it wrote.
#[derive(Debug, Default)]
pub struct Mirror {
    blocks: HashMap<Net, u64>,
    allow: HashMap<Net, ()>,
}

impl Mirror {
    /// Start from the marked entries already in the maps (left by an earlier edge).
    pub fn adopt(f: &Filter) -> Result<Mirror, XdpError> {
        let mut m = Mirror::default();
        for b in f.blocks()? {
            if b.mirrored() {
                m.blocks.insert(b.net, b.expires_ns());
            }
        }
        for (net, v) in f.allowed()? {
            if v == 2 {
                m.allow.insert(net, ());
            }
        }
        Ok(m)
    }

    /// Number of blocks the mirror holds in the maps.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Make the maps hold exactly `w` (for the mirror's own entries).
    pub fn apply(&mut self, f: &mut Filter, w: &Wanted, now_ns: u64) -> Applied {
        let mut out = Applied::default();
        let mut want: HashMap<Net, u64> = HashMap::with_capacity(w.blocks.len());
        for (net, left) in &w.blocks {
            let exp = match left {
                None => 0,
                Some(d) => now_ns.saturating_add(d.as_nanos() as u64).max(1) & !OWNER_BIT,
            };
            // The same prefix twice: keep the longer-lived block.
            let e = want.entry(*net).or_insert(exp);
            if *e != 0 && (exp == 0 || exp > *e) {
                *e = exp;
            }
        }
        let gone: Vec<Net> = self
            .blocks
            .keys()
            .filter(|k| !want.contains_key(*k))
            .copied()
            .collect();
        for net in gone {
            // Gone from the map already (swept, or removed by hand) is fine.
            let _ = f.unblock(net.0, net.1);
            self.blocks.remove(&net);
            out.removed += 1;
        }
        for (net, exp) in want {
            let known = self.blocks.get(&net).copied();
            let moved = match known {
                None => true,
                Some(k) => (k == 0) != (exp == 0) || k.abs_diff(exp) > SLACK_NS,
            };
            if !moved {
                continue;
            }
            match f.set_block(net.0, net.1, exp | OWNER_BIT) {
                Ok(()) => {
                    if known.is_some() {
                        out.updated += 1;
                    } else {
                        out.added += 1;
                    }
                    self.blocks.insert(net, exp);
                }
                Err(_) => out.failed += 1,
            }
        }
        let want_allow: HashMap<Net, ()> = w.allow.iter().map(|n| (*n, ())).collect();
        let gone: Vec<Net> = self
            .allow
            .keys()
            .filter(|k| !want_allow.contains_key(*k))
            .copied()
            .collect();
        for net in gone {
            let _ = f.disallow(net.0, net.1);
            self.allow.remove(&net);
            out.removed += 1;
        }
        for net in want_allow.into_keys() {
            if self.allow.contains_key(&net) {
                continue;
            }
            match f.set_allow(net.0, net.1, 2) {
                Ok(()) => {
                    self.allow.insert(net, ());
                    out.added += 1;
                }
                Err(_) => out.failed += 1,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::*;
    use crate::{Config, XDP_DROP, XDP_PASS};

    fn syn_from(f: &Filter, a: [u8; 4]) -> u32 {
        f.test_packet(&ipv4(a, 6, 0, &tcp(0x02))).unwrap()
    }

    #[test]
    fn mirror_adds_updates_removes_and_leaves_manual_blocks() {
        let mut f = match Filter::load(Config::default()) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("skipped: {e}");
                return;
            }
        };
        let now = crate::monotonic_ns();
        // A block added by hand: the mirror must never remove it.
        f.block("192.0.2.200".parse().unwrap(), 32, 0).unwrap();
        let mut m = Mirror::adopt(&f).unwrap();
        assert!(m.is_empty());
        let mut w = Wanted {
            blocks: vec![
                (("198.51.100.7".parse().unwrap(), 32), None),
                (
                    ("203.0.113.0".parse().unwrap(), 24),
                    Some(Duration::from_secs(60)),
                ),
            ],
            allow: vec![("203.0.113.9".parse().unwrap(), 32)],
        };
        let a = m.apply(&mut f, &w, now);
        assert_eq!((a.added, a.removed, a.failed), (3, 0, 0), "{a:?}");
        assert_eq!(syn_from(&f, [198, 51, 100, 7]), XDP_DROP);
        assert_eq!(syn_from(&f, [203, 0, 113, 1]), XDP_DROP);
        assert_eq!(syn_from(&f, [203, 0, 113, 9]), XDP_PASS, "allow wins");
        // Unchanged wants write nothing; a moved expiry is rewritten.
        assert_eq!(m.apply(&mut f, &w, now + 1_000_000), Applied::default());
        w.blocks[1].1 = Some(Duration::from_secs(600));
        assert_eq!(m.apply(&mut f, &w, now).updated, 1);
        // A restarted edge adopts the marked entries, then drops what it no longer wants.
        let mut m2 = Mirror::adopt(&f).unwrap();
        assert_eq!(m2.len(), 2);
        w.blocks.remove(0);
        w.allow.clear();
        let a = m2.apply(&mut f, &w, now);
        assert_eq!((a.added, a.removed), (0, 2), "{a:?}");
        assert_eq!(syn_from(&f, [198, 51, 100, 7]), XDP_PASS);
        assert_eq!(syn_from(&f, [203, 0, 113, 9]), XDP_DROP);
        assert_eq!(
            syn_from(&f, [192, 0, 2, 200]),
            XDP_DROP,
            "manual block kept"
        );
        // Expired entries are swept from the maps.
        let w = Wanted {
            blocks: vec![(
                ("192.0.2.33".parse().unwrap(), 32),
                Some(Duration::from_millis(1)),
            )],
            allow: vec![],
        };
        m2.apply(&mut f, &w, now);
        let swept = f.sweep(now + 10_000_000_000).unwrap();
        assert!(swept >= 1, "{swept}");
        assert!(f
            .blocks()
            .unwrap()
            .iter()
            .all(|b| b.net.0.to_string() != "192.0.2.33"));
    }
}
