//! The engine's loop: one round every `sync_every` (counts, decisions,
//! heartbeats), the snapshot on (re)connection, and what a failure does.

use crate::breaker::Breaker;
use crate::store::Conn;
use crate::view::{EdgeSeen, View};
use crate::{keys, FleetError, Joined, Member, Settings};
use levee_limits::fleet::{CounterDelta, CounterTotal, Decision};
use redis::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

/// Local decisions kept while the store is unreachable (oldest dropped first, counted).
const OUTBOX_CAP: usize = 10_000;
/// Decisions sent, and read from the stream, per round at most.
const PER_ROUND: usize = 1000;
/// The decision stream keeps about this many entries.
const LOG_LEN: u64 = 10_000;
/// An edge silent for this long is removed from the edges hash.
const FORGET_EDGE_MS: u64 = 3_600_000;

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct Engine {
    s: Settings,
    m: Arc<dyn Member>,
    conn: Option<Conn>,
    breaker: Breaker,
    started: Instant,
    view: View,
    /// The last decision-stream id read; `None`: load the snapshot first.
    last_id: Option<String>,
    /// What this edge added to each counter key, and when the key expires.
    own: HashMap<String, (u64, u64)>,
    outbox: VecDeque<Decision>,
    secret_ok: bool,
    refused: bool,
    /// Edges to remove from the edges hash (silent for an hour).
    forget: Vec<String>,
}

pub(crate) async fn run(
    s: Settings,
    m: Arc<dyn Member>,
    first: mpsc::Sender<Result<Joined, FleetError>>,
) {
    let mut e = Engine {
        breaker: Breaker::new(s.failures_to_open, s.open_for.as_millis() as u64),
        view: View {
            name: s.name.clone(),
            store: "unreachable",
            breaker: "closed",
            share_of: 1,
            ..View::default()
        },
        s,
        m,
        conn: None,
        started: Instant::now(),
        last_id: None,
        own: HashMap::new(),
        outbox: VecDeque::new(),
        secret_ok: false,
        refused: false,
        forget: Vec::new(),
    };
    let mut first = Some(first);
    let mut tick = tokio::time::interval(e.s.sync_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let r = e.round().await;
        if let Some(tx) = first.take() {
            let _ = tx.send(match r {
                Ok(()) => Ok(Joined::Connected),
                Err(e @ FleetError::SecretMismatch { .. }) => Err(e),
                Err(e) => Ok(Joined::Unreachable(e)),
            });
        }
    }
}

impl Engine {
    fn mono_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    async fn round(&mut self) -> Result<(), FleetError> {
        let now = unix_ms();
        let counts = self.m.take_counts();
        for d in self.m.take_decisions() {
            if self.outbox.len() >= OUTBOX_CAP {
                self.outbox.pop_front();
                self.view.decisions_dropped += 1;
            }
            self.outbox.push_back(d);
        }
        let result = if self.refused {
            Err(FleetError::SecretMismatch {
                key: keys::secret(),
            })
        } else if !self.breaker.allow(self.mono_ms()) {
            Err(FleetError::Store(
                "circuit open after repeated failures; the edge enforces its share of each limit"
                    .into(),
            ))
        } else {
            let t0 = Instant::now();
            let r = self.exchange(counts, now).await;
            match &r {
                Ok(()) => {
                    self.breaker.success();
                    self.view.store = "connected";
                    self.view.degraded = false;
                    self.view.last_sync_unix_ms = Some(now);
                    self.view.round_ms = Some(t0.elapsed().as_millis() as u64);
                    self.view.rounds += 1;
                }
                Err(FleetError::SecretMismatch { .. }) => {
                    self.refused = true;
                    self.conn = None;
                    self.view.store = "refused";
                }
                Err(e) => {
                    self.breaker.failure(self.mono_ms());
                    self.view.store_errors += 1;
                    self.view.store = "unreachable";
                    self.view.last_error = Some(e.to_string());
                    // Reconnect, and reload the snapshot, next time.
                    self.conn = None;
                    self.last_id = None;
                }
            }
            r
        };
        if result.is_err() {
            self.view.degraded = true;
        }
        self.view.breaker = self.breaker.state(self.mono_ms()).label();
        self.m
            .set_edges(self.view.share_of.max(1), self.view.degraded);
        self.m.show(&self.view);
        result
    }

    async fn exchange(&mut self, counts: Vec<CounterDelta>, now: u64) -> Result<(), FleetError> {
        if self.conn.is_none() {
            self.conn = Some(Conn::connect(&self.s).await?);
        }
        if !self.secret_ok {
            self.check_secret().await?;
            self.secret_ok = true;
        }
        if self.last_id.is_none() {
            self.load_snapshot(now).await?;
        }
        self.counters(counts, now).await?;
        self.decisions_and_edges(now).await
    }

    fn conn(&mut self) -> Result<&mut Conn, FleetError> {
        self.conn
            .as_mut()
            .ok_or_else(|| FleetError::Store("not connected".into()))
    }

    async fn check_secret(&mut self) -> Result<(), FleetError> {
        let (key, fp, t) = (
            keys::secret(),
            self.s.secret_fingerprint.clone(),
            self.s.timeout,
        );
        let mut p = redis::pipe();
        p.cmd("SET").arg(&key).arg(&fp).arg("NX").ignore();
        p.cmd("GET").arg(&key);
        let (held,): (Option<String>,) = self.conn()?.run(&p, t, "the secret check").await?;
        match held {
            Some(h) if h == fp => Ok(()),
            Some(_) => Err(FleetError::SecretMismatch { key }),
            None => Err(FleetError::Garbage {
                what: "the secret check",
                detail: "the key vanished between SET and GET".into(),
            }),
        }
    }

    /// Load every live decision (a joining or reconnecting edge), and
    /// where the stream stands, so that the round follows from there.
    async fn load_snapshot(&mut self, now: u64) -> Result<(), FleetError> {
        let t = self.s.timeout;
        let mut p = redis::pipe();
        p.cmd("XREVRANGE")
            .arg(keys::log())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
        p.cmd("HGETALL").arg(keys::decisions());
        let (last, snap): (Value, Value) = self.conn()?.run(&p, t, "the snapshot").await?;
        let last_id = stream_entries(&last)?
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_string(), |(id, _)| id);
        let snap: HashMap<String, String> =
            redis::from_redis_value(snap).map_err(|e| FleetError::Garbage {
                what: "the snapshot",
                detail: e.to_string(),
            })?;
        let mut expired = Vec::new();
        let mut ids: Vec<&String> = snap.keys().collect();
        ids.sort();
        for id in ids {
            match serde_json::from_str::<Decision>(&snap[id]) {
                Ok(d) if !d.live(now) => expired.push(id.clone()),
                Ok(d) => self.apply(&d, now),
                Err(e) => self.refuse(format!("snapshot entry {id}: {e}")),
            }
        }
        if !expired.is_empty() {
            let mut p = redis::pipe();
            p.cmd("HDEL").arg(keys::decisions()).arg(&expired).ignore();
            self.conn()?
                .run::<()>(&p, t, "pruning the snapshot")
                .await?;
        }
        self.last_id = Some(last_id);
        self.view.snapshots_loaded += 1;
        Ok(())
    }

    fn apply(&mut self, d: &Decision, now: u64) {
        if d.origin == self.s.name || !d.live(now) {
            return;
        }
        match self.m.apply_decision(d) {
            Ok(()) => self.view.decisions_applied += 1,
            Err(e) => self.refuse(format!("decision {} from {}: {e}", d.id(), d.origin)),
        }
    }

    fn refuse(&mut self, why: String) {
        self.view.decisions_refused += 1;
        self.view.last_error = Some(why);
    }

    /// Add the local counts, learn the others'. One pipeline per site (its
    /// hash tag), each key once (hot keys are summed locally first).
    async fn counters(&mut self, counts: Vec<CounterDelta>, now: u64) -> Result<(), FleetError> {
        let t = self.s.timeout;
        let mut by_site: BTreeMap<String, Vec<CounterDelta>> = BTreeMap::new();
        for c in counts {
            by_site.entry(c.site.clone()).or_default().push(c);
        }
        let mut totals = Vec::new();
        for (site, ds) in by_site {
            let mut p = redis::pipe();
            let mut names = Vec::with_capacity(ds.len());
            for d in &ds {
                let k = keys::counter(&site, &d.scope, d.key, d.window);
                p.cmd("INCRBY").arg(&k).arg(d.count);
                p.cmd("PEXPIRE")
                    .arg(&k)
                    .arg(keys::ttl_ms(d.window_ms, d.key))
                    .arg("NX")
                    .ignore();
                names.push((k, keys::ttl_ms(d.window_ms, d.key)));
            }
            let got: Vec<i64> = self.conn()?.run(&p, t, "the counters").await?;
            if got.len() != ds.len() {
                return Err(FleetError::Garbage {
                    what: "the counters",
                    detail: format!("{} answers to {} increments", got.len(), ds.len()),
                });
            }
            self.view.counts_sent += ds.len() as u64;
            for ((d, total), (k, ttl)) in ds.iter().zip(got).zip(names) {
                let own = self.own.entry(k).or_insert((0, now + ttl));
                own.0 += u64::from(d.count);
                let others = u64::try_from(total).unwrap_or(0).saturating_sub(own.0);
                totals.push(CounterTotal {
                    site: d.site.clone(),
                    scope: d.scope.clone(),
                    key: d.key,
                    window: d.window,
                    others: u32::try_from(others).unwrap_or(u32::MAX),
                });
            }
        }
        self.own.retain(|_, (_, exp)| *exp > now);
        if !totals.is_empty() {
            self.view.totals_applied += totals.len() as u64;
            self.m.apply_totals(&totals);
        }
        Ok(())
    }

    /// Publish this edge's decisions, read the others' since the last id,
    /// write the heartbeat and read every edge's.
    async fn decisions_and_edges(&mut self, now: u64) -> Result<(), FleetError> {
        let t = self.s.timeout;
        let last = self.last_id.clone().unwrap_or_else(|| "0-0".into());
        let n = self.outbox.len().min(PER_ROUND);
        let mut p = redis::pipe();
        for d in self.outbox.iter().take(n) {
            let json = serde_json::to_string(d).unwrap_or_default();
            p.cmd("HSET")
                .arg(keys::decisions())
                .arg(d.id())
                .arg(&json)
                .ignore();
            p.cmd("XADD")
                .arg(keys::log())
                .arg("MAXLEN")
                .arg("~")
                .arg(LOG_LEN)
                .arg("*")
                .arg("d")
                .arg(&json)
                .ignore();
        }
        if !self.forget.is_empty() {
            p.cmd("HDEL").arg(keys::edges()).arg(&self.forget).ignore();
        }
        let hb = serde_json::json!({"ts": now, "said": self.m.heartbeat()});
        p.cmd("HSET")
            .arg(keys::edges())
            .arg(&self.s.name)
            .arg(hb.to_string())
            .ignore();
        p.cmd("XRANGE")
            .arg(keys::log())
            .arg(format!("({last}"))
            .arg("+")
            .arg("COUNT")
            .arg(PER_ROUND);
        p.cmd("HGETALL").arg(keys::edges());
        let (entries, edges): (Value, Value) = self.conn()?.run(&p, t, "the decisions").await?;
        self.outbox.drain(..n);
        self.view.decisions_sent += n as u64;
        self.forget.clear();
        let entries = stream_entries(&entries)?;
        for (id, fields) in entries {
            match fields.as_deref().map(serde_json::from_str::<Decision>) {
                Some(Ok(d)) => self.apply(&d, now),
                Some(Err(e)) => self.refuse(format!("stream entry {id}: {e}")),
                None => self.refuse(format!("stream entry {id}: no field d")),
            }
            self.last_id = Some(id);
        }
        let edges = parse_edges(edges, now, self.s.edge_ttl.as_millis() as u64)?;
        self.forget = edges
            .iter()
            .filter(|e| now.saturating_sub(e.last_heartbeat_unix_ms) > FORGET_EDGE_MS)
            .map(|e| e.name.clone())
            .collect();
        self.view.share_of = edges.iter().filter(|e| e.live).count().max(1) as u32;
        self.view.edges = edges;
        Ok(())
    }
}

/// `XRANGE`/`XREVRANGE` answers: `(id, the field d)` per entry.
fn stream_entries(v: &Value) -> Result<Vec<(String, Option<String>)>, FleetError> {
    let bad = |detail: &str| FleetError::Garbage {
        what: "the decision stream",
        detail: detail.to_string(),
    };
    let Value::Array(items) = v else {
        return Err(bad("not an array"));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(pair) = item else {
            return Err(bad("an entry is not an array"));
        };
        let [id, Value::Array(fields)] = pair.as_slice() else {
            return Err(bad("an entry is not [id, fields]"));
        };
        let id: String = redis::from_redis_value_ref(id).map_err(|e| bad(&e.to_string()))?;
        if !id.contains('-') || id.len() > 64 {
            return Err(bad("an entry's id is not a stream id"));
        }
        let mut d = None;
        for kv in fields.chunks(2) {
            if let [k, v] = kv {
                let k: String = redis::from_redis_value_ref(k).map_err(|e| bad(&e.to_string()))?;
                if k == "d" {
                    d = Some(redis::from_redis_value_ref(v).map_err(|e| bad(&e.to_string()))?);
                }
            }
        }
        out.push((id, d));
    }
    Ok(out)
}

fn parse_edges(v: Value, now: u64, ttl_ms: u64) -> Result<Vec<EdgeSeen>, FleetError> {
    let map: HashMap<String, String> =
        redis::from_redis_value(v).map_err(|e| FleetError::Garbage {
            what: "the edges",
            detail: e.to_string(),
        })?;
    let mut edges: Vec<EdgeSeen> = map
        .into_iter()
        .map(|(name, hb)| {
            let hb: serde_json::Value = serde_json::from_str(&hb).unwrap_or_default();
            let ts = hb
                .get("ts")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            EdgeSeen {
                live: now.saturating_sub(ts) < ttl_ms,
                name,
                last_heartbeat_unix_ms: ts,
                said: hb.get("said").cloned().unwrap_or_default(),
            }
        })
        .collect();
    edges.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(edges)
}

pub(crate) fn read_answer(bytes: &[u8]) -> usize {
    let Ok(v) = redis::parse_redis_value(bytes) else {
        return 0;
    };
    let mut n = 0;
    if let Ok(entries) = stream_entries(&v) {
        n += entries
            .iter()
            .filter_map(|(_, d)| d.as_deref())
            .filter(|d| serde_json::from_str::<Decision>(d).is_ok())
            .count();
    }
    let _ = parse_edges(v.clone(), 0, 1);
    if let Ok(snap) = redis::from_redis_value::<HashMap<String, String>>(v) {
        n += snap
            .values()
            .filter(|d| serde_json::from_str::<Decision>(d).is_ok())
            .count();
    }
    n
}

/// What `levee fleet status` prints: the edges and the live decisions.
#[derive(Debug, serde::Serialize)]
pub struct FleetReport {
    pub edges: Vec<EdgeSeen>,
    pub decisions: Vec<Decision>,
    /// Snapshot entries that could not be read, with why.
    pub unreadable: Vec<String>,
}

/// Read the fleet's state from the store (for `levee fleet status`).
pub async fn fleet_status(s: &Settings) -> Result<FleetReport, FleetError> {
    let mut c = Conn::connect(s).await?;
    let mut p = redis::pipe();
    p.cmd("HGETALL").arg(keys::edges());
    p.cmd("HGETALL").arg(keys::decisions());
    let (edges, snap): (Value, Value) = c.run(&p, s.timeout, "the fleet's state").await?;
    let now = unix_ms();
    let edges = parse_edges(edges, now, s.edge_ttl.as_millis() as u64)?;
    let snap: HashMap<String, String> =
        redis::from_redis_value(snap).map_err(|e| FleetError::Garbage {
            what: "the snapshot",
            detail: e.to_string(),
        })?;
    let mut decisions = Vec::new();
    let mut unreadable = Vec::new();
    for (id, text) in snap {
        match serde_json::from_str::<Decision>(&text) {
            Ok(d) if d.live(now) => decisions.push(d),
            Ok(_) => {}
            Err(e) => unreadable.push(format!("{id}: {e}")),
        }
    }
    decisions.sort_by(|a, b| {
        a.made_unix_ms
            .cmp(&b.made_unix_ms)
            .then(a.id().cmp(&b.id()))
    });
    unreadable.sort();
    Ok(FleetReport {
        edges,
        decisions,
        unreadable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_stream_answers_are_errors_not_panics() {
        for v in [
            Value::Int(3),
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Array(vec![Value::Nil])]),
            Value::Array(vec![Value::Array(vec![
                Value::BulkString(b"nodash".to_vec()),
                Value::Array(vec![]),
            ])]),
        ] {
            assert!(matches!(
                stream_entries(&v),
                Err(FleetError::Garbage { .. })
            ));
        }
        let ok = Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"1-0".to_vec()),
            Value::Array(vec![
                Value::BulkString(b"d".to_vec()),
                Value::BulkString(b"{}".to_vec()),
            ]),
        ])]);
        assert_eq!(
            stream_entries(&ok).unwrap(),
            vec![("1-0".to_string(), Some("{}".to_string()))]
        );
        assert!(parse_edges(Value::Int(1), 0, 1).is_err());
        // The fuzz target's reader, on a real answer and on garbage.
        let d = r#"{"origin":"a","expires_unix_ms":9,"made_unix_ms":1,"what":{"kind":"unblock","cidr":"192.0.2.1/32"}}"#;
        let answer = format!(
            "*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nd\r\n${}\r\n{d}\r\n",
            d.len()
        );
        assert_eq!(read_answer(answer.as_bytes()), 1);
        assert_eq!(read_answer(b"*-9999999999\r\n\x00"), 0);
    }
}
