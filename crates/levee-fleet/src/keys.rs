//! The key scheme, versioned under one prefix, with Redis Cluster hash
//! tags: everything a round reads or writes together shares a slot.
//!
//! - `levee:v1:{fleet}:secret` — the challenge secret's fingerprint
//! - `levee:v1:{fleet}:edges` — hash: edge name → heartbeat (JSON)
//! - `levee:v1:{fleet}:decisions` — hash: decision id → decision (the snapshot)
//! - `levee:v1:{fleet}:log` — stream of decisions (the deltas), capped
//! - `levee:v1:{SITE}:rl:SCOPE:KEY:WINDOW` — one limiter's count for one
//!   client (or prefix, or the site) in one window, expiring after two
//!   windows plus jitter

/// Every key starts with this; a new layout gets a new version.
pub(crate) const PREFIX: &str = "levee:v1:";

pub(crate) fn secret() -> String {
    format!("{PREFIX}{{fleet}}:secret")
}

pub(crate) fn edges() -> String {
    format!("{PREFIX}{{fleet}}:edges")
}

pub(crate) fn decisions() -> String {
    format!("{PREFIX}{{fleet}}:decisions")
}

pub(crate) fn log() -> String {
    format!("{PREFIX}{{fleet}}:log")
}

/// A site's hash tag: its name when that is plain, else its bytes in hex
/// (a name with braces would otherwise change the slot).
fn tag(site: &str) -> String {
    if !site.is_empty()
        && site
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        format!("s.{site}")
    } else {
        let hex: String = site.bytes().map(|b| format!("{b:02x}")).collect();
        format!("x.{hex}")
    }
}

pub(crate) fn counter(site: &str, scope: &str, key: u128, window: u64) -> String {
    format!("{PREFIX}{{{}}}:rl:{scope}:{key:x}:{window}", tag(site))
}

/// A counter's time to live: two windows (the sliding window reads the
/// previous one) plus up to one second of jitter, so keys made together do
/// not all expire in the same instant.
pub(crate) fn ttl_ms(window_ms: u64, key: u128) -> u64 {
    2 * window_ms + (key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) % 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_versioned_and_tagged() {
        assert_eq!(decisions(), "levee:v1:{fleet}:decisions");
        assert_eq!(
            counter("shop", "site/ip", 0x7f000001, 9),
            "levee:v1:{s.shop}:rl:site/ip:7f000001:9"
        );
        // A name that would break the tag is hex.
        assert!(counter("a}b", "x", 1, 1).starts_with("levee:v1:{x.617d62}:"));
        let t = ttl_ms(1000, 5);
        assert!((2000..3000).contains(&t));
    }
}
