//! Sigma correlation rules: `event_count`, `value_count`, `temporal` and
//! `temporal_ordered`, with `group-by` and `timespan`, evaluated over events
//! given in time order. Memory is bounded: at most `MAX_GROUPS` groups per
//! correlation (the least recently seen is forgotten) and, per group, only
//! the events inside the timespan.

use serde_norway::Value;
use std::collections::{HashMap, HashSet, VecDeque};

/// Groups tracked per correlation at most.
pub const MAX_GROUPS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
}

impl Op {
    fn holds(self, x: u64, n: u64) -> bool {
        match self {
            Op::Gt => x > n,
            Op::Gte => x >= n,
            Op::Lt => x < n,
            Op::Lte => x <= n,
            Op::Eq => x == n,
        }
    }
}

/// A loaded correlation rule.
#[derive(Debug, Clone)]
pub struct Correlation {
    pub file: String,
    pub title: String,
    pub id: String,
    pub level: String,
    pub author: String,
    pub tags: Vec<String>,
    pub kind: Kind,
    /// Names (or ids) of the rules it correlates, in order.
    pub rules: Vec<String>,
    pub group_by: Vec<String>,
    pub timespan_ms: i64,
    pub condition: Option<(Op, u64)>,
    /// `value_count`: the field whose distinct values are counted.
    pub field: Option<String>,
    /// Whether the correlated rules also report their own matches.
    pub generate: bool,
}

/// `5m`, `30s`, `1h`, `2d` → ms.
pub fn parse_timespan(s: &str) -> Option<i64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok()?;
    let mult = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        "ms" => 1,
        _ => return None,
    };
    n.checked_mul(mult).filter(|x| *x > 0)
}

/// Read a correlation document (the caller has seen its `correlation` key).
pub fn from_doc(doc: &Value, file: &str, title: &str) -> Result<Correlation, String> {
    let c = doc.get("correlation").ok_or("no correlation section")?;
    let kind = match c.get("type").and_then(Value::as_str) {
        Some("event_count") => Kind::EventCount,
        Some("value_count") => Kind::ValueCount,
        Some("temporal") => Kind::Temporal,
        Some("temporal_ordered") => Kind::TemporalOrdered,
        Some(t) => return Err(format!("correlation.type {t:?} is not supported")),
        None => return Err("correlation.type is missing".into()),
    };
    if c.get("aliases").is_some() {
        return Err("correlation.aliases are not supported".into());
    }
    let strs = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::Sequence(s)) => s
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    let rules = strs(c.get("rules"));
    if rules.is_empty() {
        return Err("correlation.rules is empty".into());
    }
    let timespan_ms = c
        .get("timespan")
        .or_else(|| c.get("timeframe"))
        .and_then(Value::as_str)
        .and_then(parse_timespan)
        .ok_or("correlation.timespan is missing or not like 5m, 30s, 1h")?;
    let mut condition = None;
    let mut field = None;
    if let Some(Value::Mapping(m)) = c.get("condition") {
        for (k, v) in m {
            let k = k.as_str().unwrap_or("");
            if k == "field" {
                field = v.as_str().map(str::to_string);
                continue;
            }
            let op = match k {
                "gt" => Op::Gt,
                "gte" => Op::Gte,
                "lt" => Op::Lt,
                "lte" => Op::Lte,
                "eq" => Op::Eq,
                other => return Err(format!("correlation.condition {other:?} is not supported")),
            };
            let n = v
                .as_u64()
                .ok_or("correlation.condition needs a whole number")?;
            condition = Some((op, n));
        }
    }
    if matches!(kind, Kind::EventCount | Kind::ValueCount) && condition.is_none() {
        return Err("event_count and value_count need a condition (gte: N, ...)".into());
    }
    if kind == Kind::ValueCount && field.is_none() {
        return Err("value_count needs condition.field".into());
    }
    let text = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Ok(Correlation {
        file: file.to_string(),
        title: title.to_string(),
        id: text("id"),
        level: text("level"),
        author: text("author"),
        tags: strs(doc.get("tags")),
        kind,
        rules,
        group_by: strs(c.get("group-by")),
        timespan_ms,
        condition,
        field,
        generate: c.get("generate").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// A correlation that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The group-by values, in order.
    pub group: Vec<String>,
    pub first_ms: i64,
    pub last_ms: i64,
    /// Events (or distinct values) counted.
    pub count: u64,
}

#[derive(Debug, Default)]
struct Group {
    /// (time, rule index, value) of the events inside the timespan.
    events: VecDeque<(i64, usize, String)>,
    /// temporal_ordered: chain start time per completed prefix.
    chain: Vec<Option<i64>>,
    last_seen: i64,
}

/// Evaluates one correlation over events in time order.
#[derive(Debug)]
pub struct Engine {
    pub c: Correlation,
    groups: HashMap<Vec<String>, Group>,
    pub hits: Vec<Hit>,
}

impl Engine {
    pub fn new(c: Correlation) -> Engine {
        Engine {
            c,
            groups: HashMap::new(),
            hits: Vec::new(),
        }
    }

    /// An event at `ts` matched the correlated rule number `rule` (index
    /// into `c.rules`); `group` are its group-by values; `value` the
    /// value_count field's value.
    pub fn push(&mut self, ts: i64, rule: usize, group: Vec<String>, value: String) {
        if !self.groups.contains_key(&group) && self.groups.len() >= MAX_GROUPS {
            if let Some(k) = self
                .groups
                .iter()
                .min_by_key(|(_, g)| g.last_seen)
                .map(|(k, _)| k.clone())
            {
                self.groups.remove(&k);
            }
        }
        let span = self.c.timespan_ms;
        let n_rules = self.c.rules.len();
        let g = self.groups.entry(group.clone()).or_default();
        g.last_seen = ts;
        while g.events.front().is_some_and(|(t, _, _)| ts - *t > span) {
            g.events.pop_front();
        }
        g.events.push_back((ts, rule, value));
        let first = g.events.front().map_or(ts, |e| e.0);
        let fired = match self.c.kind {
            Kind::EventCount => {
                let n = g.events.len() as u64;
                self.c
                    .condition
                    .filter(|(op, x)| op.holds(n, *x))
                    .map(|_| n)
            }
            Kind::ValueCount => {
                let distinct: HashSet<&str> = g.events.iter().map(|e| e.2.as_str()).collect();
                let n = distinct.len() as u64;
                self.c
                    .condition
                    .filter(|(op, x)| op.holds(n, *x))
                    .map(|_| n)
            }
            Kind::Temporal => {
                let seen: HashSet<usize> = g.events.iter().map(|e| e.1).collect();
                let n = seen.len() as u64;
                let all = seen.len() == n_rules;
                let ok = match self.c.condition {
                    Some((op, x)) => op.holds(n, x),
                    None => all,
                };
                ok.then_some(g.events.len() as u64)
            }
            Kind::TemporalOrdered => {
                if g.chain.len() != n_rules {
                    g.chain = vec![None; n_rules];
                }
                if rule == 0 {
                    g.chain[0] = Some(ts);
                } else if let Some(start) = g.chain[rule - 1].filter(|s| ts - *s <= span) {
                    g.chain[rule] = Some(start);
                }
                match g.chain[n_rules - 1] {
                    Some(start) if ts - start <= span => Some(g.events.len() as u64),
                    _ => None,
                }
            }
        };
        if let Some(count) = fired {
            let first = if self.c.kind == Kind::TemporalOrdered {
                g.chain[n_rules - 1].unwrap_or(first)
            } else {
                first
            };
            self.hits.push(Hit {
                group,
                first_ms: first,
                last_ms: ts,
                count,
            });
            // Start afresh: one hit per burst, not one per further event.
            g.events.clear();
            g.chain.iter_mut().for_each(|c| *c = None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corr(y: &str) -> Correlation {
        let doc: Value = serde_norway::from_str(y).unwrap();
        from_doc(&doc, "t.yml", "t").unwrap()
    }

    #[test]
    fn event_count_respects_group_by_and_the_timespan_edge() {
        let c = corr("correlation:\n  type: event_count\n  rules: [fail]\n  group-by: [c-ip]\n  timespan: 10s\n  condition: {gte: 3}\n");
        let mut e = Engine::new(c);
        // Two clients interleaved: neither reaches 3 on its own.
        for (t, ip) in [(0, "a"), (1000, "b"), (2000, "a"), (3000, "b")] {
            e.push(t, 0, vec![ip.into()], String::new());
        }
        assert!(e.hits.is_empty());
        // The third for "a" exactly at the edge (10 s after its first): inside.
        e.push(10_000, 0, vec!["a".into()], String::new());
        assert_eq!(e.hits.len(), 1);
        assert_eq!(e.hits[0].group, vec!["a".to_string()]);
        assert_eq!((e.hits[0].first_ms, e.hits[0].last_ms), (0, 10_000));
        // "b": its first event slides out of the window just past the edge.
        e.push(11_001, 0, vec!["b".into()], String::new());
        assert_eq!(e.hits.len(), 1);
    }

    #[test]
    fn value_count_counts_distinct_values() {
        let c = corr("correlation:\n  type: value_count\n  rules: [probe]\n  group-by: [c-ip]\n  timespan: 1m\n  condition: {gte: 3, field: cs-uri-stem}\n");
        let mut e = Engine::new(c);
        for p in ["/a", "/a", "/b", "/a"] {
            e.push(0, 0, vec!["x".into()], p.into());
        }
        assert!(e.hits.is_empty());
        e.push(1, 0, vec!["x".into()], "/c".into());
        assert_eq!(e.hits[0].count, 3);
    }

    #[test]
    fn temporal_needs_all_rules_and_ordered_needs_the_order() {
        let y = |t: &str| {
            format!("correlation:\n  type: {t}\n  rules: [recon, exploit]\n  group-by: [c-ip]\n  timespan: 5m\n")
        };
        let mut any = Engine::new(corr(&y("temporal")));
        any.push(0, 1, vec!["x".into()], String::new());
        any.push(1000, 0, vec!["x".into()], String::new());
        assert_eq!(any.hits.len(), 1, "any order");
        let mut ord = Engine::new(corr(&y("temporal_ordered")));
        ord.push(0, 1, vec!["x".into()], String::new());
        ord.push(1000, 0, vec!["x".into()], String::new());
        assert!(ord.hits.is_empty(), "exploit before recon is not the order");
        ord.push(2000, 1, vec!["x".into()], String::new());
        assert_eq!(ord.hits.len(), 1);
        assert_eq!(ord.hits[0].first_ms, 1000);
        // Too far apart: no hit.
        let mut far = Engine::new(corr(&y("temporal_ordered")));
        far.push(0, 0, vec!["y".into()], String::new());
        far.push(300_001, 1, vec!["y".into()], String::new());
        assert!(far.hits.is_empty());
    }

    #[test]
    fn bad_correlations_say_why() {
        let bad = |y: &str| {
            let doc: Value = serde_norway::from_str(y).unwrap();
            from_doc(&doc, "f", "t").unwrap_err()
        };
        assert!(
            bad("correlation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n")
                .contains("condition")
        );
        assert!(bad("correlation:\n  type: nope\n  rules: [a]\n  timespan: 5m\n").contains("nope"));
        assert!(
            bad("correlation:\n  type: temporal\n  rules: [a]\n  timespan: soon\n")
                .contains("timespan")
        );
        assert!(bad("correlation:\n  type: value_count\n  rules: [a]\n  timespan: 5m\n  condition: {gte: 2}\n").contains("field"));
        assert_eq!(parse_timespan("90s"), Some(90_000));
        assert_eq!(parse_timespan("0s"), None);
    }

    #[test]
    fn groups_are_bounded() {
        let c = corr("correlation:\n  type: event_count\n  rules: [a]\n  group-by: [c-ip]\n  timespan: 1h\n  condition: {gte: 2}\n");
        let mut e = Engine::new(c);
        for i in 0..(MAX_GROUPS + 10) {
            e.push(i as i64, 0, vec![i.to_string()], String::new());
        }
        assert!(e.groups.len() <= MAX_GROUPS);
    }
}
