//! A native Sigma rule engine for web server and proxy logs.
//!
//! What it does: load Sigma rules from YAML text (every rule that cannot be
//! loaded is an error naming the rule and the reason, never dropped
//! silently), and decide whether an event matches, with the Sigma
//! specification's detection semantics: field conditions (a map is AND, a
//! list of maps is OR, a list of values is OR unless `|all`), keyword
//! (full-text) searches, wildcards anchored to the whole value, escapes,
//! case-insensitive matching unless `|cased`, the value modifiers of
//! [`pattern`], and conditions ([`condition`]).
//!
//! What it does not do: read files or logs (the caller passes text and
//! events), or map a log format to fields (the caller's [`Event`] does).
//! Correlation rules ([`correlation`]) are loaded here and evaluated by the
//! caller, which feeds them the matches of the rules they name, in time order.

pub mod condition;
pub mod correlation;
mod fast;
pub mod need;
pub mod pattern;

use condition::Cond;
use fast::LazyFast;
use need::{Clauses, Need};
use pattern::Matcher;
use serde_norway::Value;
use std::borrow::Cow;

/// What a rule is matched against.
pub trait Event {
    /// The value of a field (after the caller's field mapping), if any.
    fn field(&self, name: &str) -> Option<Cow<'_, str>>;
    /// The whole event as text (for keyword searches).
    fn raw(&self) -> &str;
    /// The field's value in lower case (override to compute it once per event).
    fn field_lower(&self, name: &str) -> Option<Cow<'_, str>> {
        self.field(name).map(|v| Cow::Owned(v.to_lowercase()))
    }
    /// The whole event in lower case (override to compute it once per event).
    fn raw_lower(&self) -> Cow<'_, str> {
        Cow::Owned(self.raw().to_lowercase())
    }
}

/// Why a rule could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: rule {title:?}: {reason}")]
pub struct LoadError {
    pub file: String,
    pub title: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSource {
    pub category: Option<String>,
    pub product: Option<String>,
    pub service: Option<String>,
}

#[derive(Debug, Clone)]
struct FieldCond {
    field: String,
    matchers: Vec<Matcher>,
    all: bool,
    negate: bool,
    /// Long lists of values, indexed.
    fast: LazyFast,
}

impl FieldCond {
    fn matches(&self, e: &dyn Event) -> bool {
        let v = e.field(&self.field);
        let v = v.as_deref();
        if let Some(f) = self.fast.get(&self.matchers, self.all) {
            let hit = match v {
                None => false,
                Some(v) if f.cased => f.any(v, v),
                Some(v) => e
                    .field_lower(&self.field)
                    .is_some_and(|l| f.any(v, l.as_ref())),
            };
            return hit != self.negate;
        }
        let lower = if v.is_some() {
            e.field_lower(&self.field)
        } else {
            None
        };
        let lower = lower.as_deref();
        let hit = if self.all {
            self.matchers.iter().all(|m| m.matches_prepared(v, lower))
        } else {
            self.matchers.iter().any(|m| m.matches_prepared(v, lower))
        };
        hit != self.negate
    }
}

#[derive(Debug, Clone)]
enum Search {
    /// OR of AND-groups of field conditions.
    Fields(Vec<Vec<FieldCond>>),
    Keywords {
        matchers: Vec<Matcher>,
        all: bool,
        fast: LazyFast,
    },
}

impl Search {
    fn matches(&self, e: &dyn Event) -> bool {
        match self {
            Search::Fields(groups) => groups.iter().any(|g| g.iter().all(|c| c.matches(e))),
            Search::Keywords {
                matchers,
                all,
                fast,
            } => {
                if let Some(f) = fast.get(matchers, *all) {
                    let raw = e.raw();
                    return if f.cased {
                        f.any(raw, raw)
                    } else {
                        f.any(raw, e.raw_lower().as_ref())
                    };
                }
                let raw = Some(e.raw());
                let lower = e.raw_lower();
                let lower = Some(lower.as_ref());
                if *all {
                    matchers.iter().all(|m| m.matches_prepared(raw, lower))
                } else {
                    matchers.iter().any(|m| m.matches_prepared(raw, lower))
                }
            }
        }
    }
}

/// A loaded rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub file: String,
    pub title: String,
    /// `name`, by which correlation rules refer to it (may be empty).
    pub name: String,
    pub id: String,
    pub status: String,
    pub level: String,
    pub description: String,
    pub author: String,
    pub tags: Vec<String>,
    pub references: Vec<String>,
    pub logsource: LogSource,
    searches: Vec<(String, Search)>,
    conditions: Vec<Cond>,
    /// The conditions, by search position.
    resolved: Vec<condition::Resolved>,
}

impl Rule {
    /// Whether the rule is for web server or proxy logs.
    pub fn is_web(&self) -> bool {
        matches!(
            self.logsource.category.as_deref(),
            Some("webserver" | "proxy")
        )
    }

    /// Whether `e` matches (any of the rule's conditions).
    pub fn matches(&self, e: &dyn Event) -> bool {
        // Each search evaluated at most once (on the stack for most rules).
        let mut small = [None; 16];
        let mut big = Vec::new();
        let cache: &mut [Option<bool>] = if self.searches.len() <= small.len() {
            &mut small[..self.searches.len()]
        } else {
            big.resize(self.searches.len(), None);
            &mut big
        };
        let mut hit =
            |i: usize| -> bool { *cache[i].get_or_insert_with(|| self.searches[i].1.matches(e)) };
        self.resolved.iter().any(|c| c.eval(&mut hit))
    }

    /// What every event the rule matches holds ([`need`]): clauses, each
    /// satisfied by one of its needles, for a prefilter that skips the rule
    /// for an event missing one. `None` when nothing is known (a negation,
    /// a regular expression with no literal, a number or CIDR test): the
    /// rule must always be tried. An empty clause means the rule can match
    /// nothing.
    pub fn needed_clauses(&self) -> Option<Clauses> {
        let search = |id: &str| -> Need {
            match self.searches.iter().find(|(n, _)| n == id) {
                Some((_, s)) => s.need(),
                None => Some(vec![Vec::new()]),
            }
        };
        need::or_need(self.conditions.iter().map(|c| need::cond_need(c, &search)))
            .filter(|c| !c.is_empty())
    }

    /// Literals of which at least one is in every event the rule matches
    /// (in a field's value, or its lower-case form, or the raw line's): the
    /// most selective of [`Rule::needed_clauses`]. `None` when no such set is
    /// known; an empty set means the rule can match nothing.
    pub fn needed_literals(&self) -> Option<Vec<String>> {
        let clauses = self.needed_clauses()?;
        let first = clauses.into_iter().next()?;
        let mut v: Vec<String> = first.into_iter().map(|n| n.text).collect();
        v.sort_unstable();
        v.dedup();
        Some(v)
    }

    /// Field names the rule reads.
    pub fn fields(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .searches
            .iter()
            .filter_map(|(_, s)| match s {
                Search::Fields(g) => Some(g.iter().flatten().map(|c| c.field.as_str())),
                Search::Keywords { .. } => None,
            })
            .flatten()
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

fn scalar(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err("a value must be a string, number, boolean or null".into()),
    }
}

fn values(v: &Value) -> Result<Vec<Option<String>>, String> {
    match v {
        Value::Sequence(s) => s.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

fn field_cond(key: &str, v: &Value) -> Result<FieldCond, String> {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or("").to_string();
    let mut mods: Vec<&str> = parts.collect();
    let negate = mods.contains(&"neq");
    mods.retain(|m| *m != "neq");
    if field.is_empty() {
        return Err(format!("{key:?}: a field name is needed"));
    }
    let vals = values(v)?;
    if vals.is_empty() {
        return Err(format!("{key:?}: an empty list of values"));
    }
    let (matchers, all) = pattern::build(&mods, &vals).map_err(|e| format!("{key:?}: {e}"))?;
    Ok(FieldCond {
        field,
        matchers,
        all,
        negate,
        fast: LazyFast::default(),
    })
}

fn and_group(m: &serde_norway::Mapping) -> Result<Vec<FieldCond>, String> {
    m.iter()
        .map(|(k, v)| {
            let k = k.as_str().ok_or("a field name must be a string")?;
            field_cond(k, v)
        })
        .collect()
}

fn keywords(mods: &[&str], vals: &[Option<String>]) -> Result<Search, String> {
    let mut m: Vec<&str> = mods.to_vec();
    if !m.contains(&"contains") && !m.contains(&"re") {
        m.push("contains");
    }
    let (matchers, all) = pattern::build(&m, vals)?;
    Ok(Search::Keywords {
        matchers,
        all,
        fast: LazyFast::default(),
    })
}

fn search(name: &str, v: &Value) -> Result<Search, String> {
    let ctx = |e: String| format!("detection.{name}: {e}");
    match v {
        Value::Mapping(m) => {
            // `'|all': [...]` (and other modifier-only keys): keywords.
            if m.len() == 1 {
                if let Some(k) = m.keys().next().and_then(Value::as_str) {
                    if let Some(mods) = k.strip_prefix('|') {
                        let mods: Vec<&str> = mods.split('|').collect();
                        let vals = values(&m[k]).map_err(ctx)?;
                        return keywords(&mods, &vals).map_err(ctx);
                    }
                }
            }
            Ok(Search::Fields(vec![and_group(m).map_err(ctx)?]))
        }
        Value::Sequence(s) if s.iter().all(|x| x.is_mapping()) && !s.is_empty() => {
            let groups = s
                .iter()
                .filter_map(Value::as_mapping)
                .map(and_group)
                .collect::<Result<Vec<_>, _>>()
                .map_err(ctx)?;
            Ok(Search::Fields(groups))
        }
        Value::Sequence(s) => {
            let vals = s
                .iter()
                .map(scalar)
                .collect::<Result<Vec<_>, _>>()
                .map_err(ctx)?;
            if vals.is_empty() {
                return Err(ctx("an empty list".into()));
            }
            keywords(&[], &vals).map_err(ctx)
        }
        other => {
            let vals = vec![scalar(other).map_err(ctx)?];
            keywords(&[], &vals).map_err(ctx)
        }
    }
}

fn text(doc: &Value, key: &str) -> String {
    match doc.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn list(doc: &Value, key: &str) -> Vec<String> {
    match doc.get(key) {
        Some(Value::Sequence(s)) => s
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn rule(doc: &Value, file: &str) -> Result<Rule, LoadError> {
    let title = text(doc, "title");
    let err = |reason: String| LoadError {
        file: file.to_string(),
        title: if title.is_empty() {
            "(untitled)".into()
        } else {
            title.clone()
        },
        reason,
    };
    if title.is_empty() {
        return Err(err("no title".into()));
    }
    let Some(Value::Mapping(det)) = doc.get("detection") else {
        return Err(err("no detection section".into()));
    };
    let mut searches = Vec::new();
    let mut conds_text: Vec<String> = Vec::new();
    for (k, v) in det {
        let k = k
            .as_str()
            .ok_or_else(|| err("a detection key is not a string".into()))?;
        if k == "condition" {
            match v {
                Value::String(s) => conds_text.push(s.clone()),
                Value::Sequence(s) => {
                    conds_text.extend(s.iter().filter_map(|x| x.as_str().map(str::to_string)))
                }
                _ => return Err(err("detection.condition must be a string or a list".into())),
            }
            continue;
        }
        if k == "timeframe" {
            return Err(err(
                "'timeframe' (aggregation) is not supported; use a correlation rule".into(),
            ));
        }
        searches.push((k.to_string(), search(k, v).map_err(err)?));
    }
    if conds_text.is_empty() {
        return Err(err("detection.condition is missing".into()));
    }
    let ids: Vec<String> = searches.iter().map(|(n, _)| n.clone()).collect();
    let conditions = conds_text
        .iter()
        .map(|c| {
            condition::parse(c, &ids).map_err(|e| err(format!("detection.condition {c:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ls = doc.get("logsource");
    let lsf = |k: &str| {
        ls.and_then(|l| l.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Ok(Rule {
        file: file.to_string(),
        name: text(doc, "name"),
        id: text(doc, "id"),
        status: text(doc, "status"),
        level: text(doc, "level"),
        description: text(doc, "description"),
        author: text(doc, "author"),
        tags: list(doc, "tags"),
        references: list(doc, "references"),
        logsource: LogSource {
            category: lsf("category"),
            product: lsf("product"),
            service: lsf("service"),
        },
        title,
        resolved: {
            let names: Vec<&str> = searches.iter().map(|(n, _)| n.as_str()).collect();
            conditions.iter().map(|c| c.resolve(&names)).collect()
        },
        searches,
        conditions,
    })
}

/// A document of a rule file.
#[derive(Debug, Clone)]
pub enum Loaded {
    Rule(Box<Rule>),
    Correlation(Box<correlation::Correlation>),
}

/// Load every rule document of a YAML file (documents separated by `---`),
/// correlation rules included.
pub fn load_all(text_in: &str, file: &str) -> Vec<Result<Loaded, LoadError>> {
    let mut out = Vec::new();
    for (i, d) in serde_norway::Deserializer::from_str(text_in).enumerate() {
        let doc = match <Value as serde::Deserialize>::deserialize(d) {
            Ok(v) => v,
            Err(e) => {
                out.push(Err(LoadError {
                    file: file.to_string(),
                    title: format!("(document {})", i + 1),
                    reason: format!("YAML: {e}"),
                }));
                break;
            }
        };
        if doc.is_null() {
            continue;
        }
        if doc.get("correlation").is_some() {
            let title = text(&doc, "title");
            out.push(
                correlation::from_doc(&doc, file, &title)
                    .map(|c| Loaded::Correlation(Box::new(c)))
                    .map_err(|reason| LoadError {
                        file: file.to_string(),
                        title,
                        reason,
                    }),
            );
        } else {
            out.push(rule(&doc, file).map(|r| Loaded::Rule(Box::new(r))));
        }
    }
    out
}

/// Load the detection rules of a YAML file; correlation documents are
/// reported as errors (use [`load_all`] to get them).
pub fn load(text_in: &str, file: &str) -> Vec<Result<Rule, LoadError>> {
    load_all(text_in, file)
        .into_iter()
        .map(|r| match r {
            Ok(Loaded::Rule(r)) => Ok(*r),
            Ok(Loaded::Correlation(c)) => Err(LoadError {
                file: file.to_string(),
                title: c.title,
                reason: "a correlation rule (load it with load_all)".into(),
            }),
            Err(e) => Err(e),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Ev {
        f: HashMap<&'static str, &'static str>,
        raw: &'static str,
    }
    impl Event for Ev {
        fn field(&self, n: &str) -> Option<Cow<'_, str>> {
            self.f.get(n).map(|v| Cow::Borrowed(*v))
        }
        fn raw(&self) -> &str {
            self.raw
        }
    }
    fn ev(f: &[(&'static str, &'static str)], raw: &'static str) -> Ev {
        Ev {
            f: f.iter().copied().collect(),
            raw,
        }
    }

    fn one(y: &str) -> Rule {
        load(y, "t.yml").remove(0).unwrap()
    }

    #[test]
    fn fields_lists_and_conditions() {
        let r = one(r#"
title: t
author: Someone
level: high
logsource: {category: webserver}
detection:
  sel:
    cs-method: POST
    cs-uri-query|contains:
      - /wp-login
      - /xmlrpc
  filter:
    sc-status: 404
  _helper:
    c-ip: 1.2.3.4
  condition: sel and not filter
"#);
        assert!(r.is_web());
        assert_eq!(r.author, "Someone");
        assert!(r.matches(&ev(
            &[
                ("cs-method", "POST"),
                ("cs-uri-query", "/xmlrpc.php"),
                ("sc-status", "200")
            ],
            ""
        )));
        assert!(!r.matches(&ev(
            &[
                ("cs-method", "POST"),
                ("cs-uri-query", "/xmlrpc.php"),
                ("sc-status", "404")
            ],
            ""
        )));
        assert!(!r.matches(&ev(
            &[("cs-method", "GET"), ("cs-uri-query", "/xmlrpc.php")],
            ""
        )));
        assert_eq!(
            r.fields(),
            vec!["c-ip", "cs-method", "cs-uri-query", "sc-status"]
        );
    }

    #[test]
    fn list_of_maps_is_or_and_them_skips_underscore() {
        let r = one(r#"
title: t
logsource: {category: proxy}
detection:
  sel:
    - c-uri|endswith: '.class'
    - c-useragent: 'Java/*'
  _never:
    c-ip: 9.9.9.9
  condition: all of them
"#);
        assert!(r.matches(&ev(&[("c-uri", "/a/Exploit.class")], "")));
        assert!(r.matches(&ev(&[("c-useragent", "Java/1.8")], "")));
        assert!(!r.matches(&ev(&[("c-uri", "/a")], "")));
    }

    #[test]
    fn keywords_and_all_keywords() {
        let r = one(r#"
title: t
logsource: {category: webserver}
detection:
  keywords:
    - '${jndi:ldap:/'
    - '${jndi:rmi:/'
  kw_all:
    '|all':
      - POST
      - 200
  condition: keywords or kw_all
"#);
        assert!(r.matches(&ev(&[], "GET /?x=${JNDI:ldap://evil} 200")));
        assert!(r.matches(&ev(&[], "POST /a 200 12")));
        assert!(!r.matches(&ev(&[], "POST /a 404 12")));
    }

    #[test]
    fn unloadable_rules_are_named_with_the_reason() {
        let bad = load(
            "title: broken\nlogsource: {category: webserver}\ndetection:\n  sel:\n    a|expand: x\n  condition: sel\n---\ntitle: corr\ncorrelation:\n  type: event_count\n---\ntitle: nocond\ndetection:\n  sel: {a: b}\n",
            "x.yml",
        );
        assert_eq!(bad.len(), 3);
        let e: Vec<String> = bad
            .into_iter()
            .map(|r| r.unwrap_err().to_string())
            .collect();
        assert!(
            e[0].contains("broken") && e[0].contains("expand"),
            "{}",
            e[0]
        );
        assert!(
            e[1].contains("corr") && e[1].contains("correlation"),
            "{}",
            e[1]
        );
        assert!(e[2].contains("condition is missing"), "{}", e[2]);
        let y = load("title: [unclosed\n", "y.yml");
        assert!(y[0].as_ref().unwrap_err().reason.starts_with("YAML"));
    }

    #[test]
    fn null_and_neq() {
        let r = one(r#"
title: t
logsource: {category: webserver}
detection:
  sel:
    cs-referer: null
    sc-status|neq: 200
  condition: sel
"#);
        assert!(r.matches(&ev(&[("sc-status", "500")], "")));
        assert!(!r.matches(&ev(&[("sc-status", "200")], "")));
        assert!(!r.matches(&ev(&[("sc-status", "500"), ("cs-referer", "http://x")], "")));
    }

    /// A list of values is indexed (equalities, prefixes, suffixes,
    /// `contains`, the rest) and matches exactly as the values one by one.
    #[test]
    fn indexed_lists_match_as_the_values_one_by_one() {
        let r = one(r#"
title: t
logsource: {category: proxy}
detection:
  starts:
    c-useragent|startswith: ['Mozilla/3.0 ', 'Mozila/', ' Mozilla/']
  ends:
    cs-host|endswith: ['.adobe.com', '.io']
  exact:
    c-useragent: ['x', 'HTTPS', 'Mozilla/5.0 * Gecko/x']
  condition: 1 of them
"#);
        for (ua, host, want) in [
            ("mozilla/3.0 (compatible)", "a", true),
            ("Mozilla/3.0", "a", false),
            ("Mozila/5", "a", true),
            (" mozilla/5", "a", true),
            ("Mozilla/5.0", "get.adobe.com", true),
            ("Mozilla/5.0", "adobe.com", false),
            ("Mozilla/5.0", "ipfs.IO", true),
            ("X", "a", true),
            ("xx", "a", false),
            ("https", "a", true),
            ("Mozilla/5.0 (Win) Gecko/x", "a", true),
            ("Mozilla/5.0 (Win) Gecko/y", "a", false),
            ("", "", false),
        ] {
            let e = ev(&[("c-useragent", ua), ("cs-host", host)], "");
            assert_eq!(r.matches(&e), want, "{ua:?} {host:?}");
        }
    }
}
