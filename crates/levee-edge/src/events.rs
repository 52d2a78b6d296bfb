//! Events: every mode change, derived rule, automatic block and shed
//! summary, numbered, kept in a bounded ring for `GET /events?since=N` and
//! written as one JSON line each to standard error (the raw material of
//! incident reports).

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// At most this many events are kept for the admin API.
pub(crate) const CAPACITY: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct Events {
    inner: Mutex<Ring>,
    /// Write events to standard error too.
    pub echo: bool,
}

#[derive(Debug, Default)]
struct Ring {
    next: u64,
    items: VecDeque<(u64, String)>,
}

impl Events {
    pub(crate) fn new(echo: bool) -> Self {
        Events {
            inner: Mutex::default(),
            echo,
        }
    }

    /// Record an event: `kind`, the site it concerns, and its fields (a JSON object).
    pub(crate) fn push(&self, kind: &str, site: &str, mut fields: serde_json::Value) -> u64 {
        let mut r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        r.next += 1;
        let seq = r.next;
        if let Some(o) = fields.as_object_mut() {
            o.insert("seq".into(), seq.into());
            o.insert("ts_ms".into(), crate::clock::unix_ms().into());
            o.insert("event".into(), kind.into());
            o.insert("site".into(), site.into());
        }
        let line = fields.to_string();
        if r.items.len() >= CAPACITY {
            r.items.pop_front();
        }
        r.items.push_back((seq, line.clone()));
        drop(r);
        // Outside the lock: a slow or full stderr never stalls other pushers.
        if self.echo {
            eprintln!("{line}");
        }
        seq
    }

    /// Events after `since` (at most `limit`), and the last sequence number.
    pub(crate) fn since(&self, since: u64, limit: usize) -> (Vec<String>, u64) {
        let r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let out = r
            .items
            .iter()
            .filter(|(s, _)| *s > since)
            .take(limit)
            .map(|(_, l)| l.clone())
            .collect();
        (out, r.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_bounded_and_filtered() {
        let e = Events::new(false);
        for i in 0..(CAPACITY + 10) {
            e.push("shed", "s", serde_json::json!({ "n": i }));
        }
        let (all, last) = e.since(0, usize::MAX);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(last, (CAPACITY + 10) as u64);
        let (tail, _) = e.since(last - 2, 10);
        assert_eq!(tail.len(), 2);
        let v: serde_json::Value = serde_json::from_str(&tail[1]).unwrap();
        assert_eq!(v["seq"], last);
        assert_eq!(v["event"], "shed");
        assert_eq!(v["site"], "s");
    }
}
