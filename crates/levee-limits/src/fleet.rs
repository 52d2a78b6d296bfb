//! What the edges of a fleet share, as plain data: the counts a limiter
//! sends ([`CounterDelta`]), the totals it learns back ([`CounterTotal`]),
//! and decisions ([`Decision`]: blocks, the adaptive defense's rules,
//! pinned modes), each with the edge it came from and its expiry. The edge
//! produces and applies them; the fleet engine carries them through Redis.

use serde::{Deserialize, Serialize};

/// `count` more events for `key` in window `window` of a limiter named
/// `scope` (`site/route/kind`), whose windows are `window_ms` long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterDelta {
    pub scope: String,
    pub site: String,
    pub window_ms: u64,
    pub key: u128,
    pub window: u64,
    pub count: u32,
}

/// What the rest of the fleet counted for a key in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterTotal {
    pub site: String,
    pub scope: String,
    pub key: u128,
    pub window: u64,
    pub others: u32,
}

/// A decision one edge made that every edge applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The edge that made it (`[fleet] name`).
    pub origin: String,
    /// Unix ms after which it no longer applies.
    pub expires_unix_ms: u64,
    /// Unix ms when it was made.
    pub made_unix_ms: u64,
    pub what: What,
}

/// The decision itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum What {
    /// Refuse this address or prefix at accept (and in the packet filter).
    Block { cidr: String, why: String },
    /// Lift a block.
    Unblock { cidr: String },
    /// An adaptive-defense rule of a site: requests whose feature `dim`
    /// hashes to `key` (`levee_detect` hashes are stable across processes).
    Rule {
        site: String,
        dim: String,
        key: u64,
        value: String,
        action: String,
    },
    /// An operator's pin of a site's mode (`None`: back to automatic).
    Pin { site: String, mode: Option<String> },
}

impl Decision {
    /// The decision's slot in the fleet's snapshot: a later decision with
    /// the same id replaces it (an unblock replaces its block).
    pub fn id(&self) -> String {
        match &self.what {
            What::Block { cidr, .. } | What::Unblock { cidr } => format!("block:{cidr}"),
            What::Rule { site, dim, key, .. } => format!("rule:{site}:{dim}:{key:016x}"),
            What::Pin { site, .. } => format!("pin:{site}"),
        }
    }

    /// Whether it still applies at `now_unix_ms`.
    pub fn live(&self, now_unix_ms: u64) -> bool {
        self.expires_unix_ms > now_unix_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_round_trip_and_an_unblock_replaces_its_block() {
        let b = Decision {
            origin: "a".into(),
            expires_unix_ms: 10,
            made_unix_ms: 1,
            what: What::Block {
                cidr: "192.0.2.7/32".into(),
                why: "admin".into(),
            },
        };
        let text = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<Decision>(&text).unwrap(), b);
        let u = Decision {
            what: What::Unblock {
                cidr: "192.0.2.7/32".into(),
            },
            ..b.clone()
        };
        assert_eq!(u.id(), b.id());
        assert!(b.live(9) && !b.live(10));
        // A field the format does not know is refused, not ignored.
        assert!(serde_json::from_str::<Decision>(
            &text.replace("\"origin\"", "\"x\":1,\"origin\"")
        )
        .is_err());
    }
}
