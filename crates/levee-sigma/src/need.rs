//! What an event must hold for a rule to match it, for a caller's
//! prefilter: clauses (all of them hold in every event the rule matches),
//! each a set of needles (at least one of them is in the event). A needle
//! is a literal in a field's value (or in the raw event, for keywords),
//! with whether it starts or ends that value. From the rule's conditions:
//! an AND keeps its branches' clauses, an OR pairs them (`a ∨ b` for every
//! clause `a` of one side and `b` of the other); a negation, a number, a
//! CIDR test or a regular expression with no literal gives nothing. At most
//! [`MAX_CLAUSES`] clauses are kept, the most selective: dropping a clause
//! only weakens the promise, never breaks it.

use super::condition::Cond;
use super::pattern::Matcher;
use super::Search;

/// A literal that every match of a matcher holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Needle {
    /// In the form the match compares: lower case unless the matcher is
    /// `cased` (regular expressions' literals are lower-cased).
    pub text: String,
    /// The field whose value holds it; `None`: the raw event (keywords).
    pub field: Option<String>,
    /// The value starts with it.
    pub start: bool,
    /// The value ends with it.
    pub end: bool,
}

/// Clauses that every matching event satisfies: each clause is satisfied
/// when one of its needles is in the event. No clause at all means nothing
/// is known; an empty clause means the rule can match nothing.
pub type Clauses = Vec<Vec<Needle>>;

/// `None`: nothing known.
pub(crate) type Need = Option<Clauses>;

/// The most clauses a rule's need keeps.
pub const MAX_CLAUSES: usize = 6;

/// How often a clause is expected in a web log record (lower is more
/// selective): longer literals are rarer, an anchored one rarer still, and
/// the words of every request (methods, protocol, common agents) are in
/// all of them unless they are the whole value.
fn cost(clause: &[Needle]) -> f64 {
    const UBIQUITOUS: [&str; 12] = [
        "get",
        "post",
        "head",
        "http",
        "http/1.1",
        "https",
        "mozilla",
        "mozilla/5.0",
        "www",
        "html",
        "com",
        "index",
    ];
    let c: f64 = clause
        .iter()
        .map(|n| {
            let l = n.text.to_ascii_lowercase();
            let word = l.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '/' && c != '.');
            if UBIQUITOUS.contains(&word) && !(n.start && n.end) {
                1.0
            } else {
                let len = l.len() + usize::from(n.start) + usize::from(n.end);
                0.25f64.powi(i32::try_from(len).unwrap_or(i32::MAX).min(30))
            }
        })
        .sum();
    c.min(1.0)
}

/// Sorted, deduplicated needles; clauses that another one implies (a
/// superset of it) dropped; the most selective kept.
fn tidy(mut cs: Clauses) -> Clauses {
    for c in &mut cs {
        c.sort_unstable();
        c.dedup();
    }
    if cs.iter().any(Vec::is_empty) {
        return vec![Vec::new()];
    }
    cs.sort_by(|a, b| cost(a).total_cmp(&cost(b)).then(a.len().cmp(&b.len())));
    let mut out: Clauses = Vec::new();
    for c in cs {
        let implied = out
            .iter()
            .any(|o| o.iter().all(|n| c.binary_search(n).is_ok()));
        if !implied && out.len() < MAX_CLAUSES {
            out.push(c);
        }
    }
    out
}

/// OR: every branch must be known; `a ∨ b` for the two best clauses of
/// each side. No branch at all: nothing matches.
pub(crate) fn or_need(it: impl Iterator<Item = Need>) -> Need {
    let mut acc: Option<Clauses> = None;
    for n in it {
        let n = n?;
        acc = Some(match acc {
            None => n,
            Some(a) => or2(a, n),
        });
    }
    Some(tidy(acc.unwrap_or_else(|| vec![Vec::new()])))
}

fn or2(a: Clauses, b: Clauses) -> Clauses {
    let never = |c: &Clauses| c.iter().any(Vec::is_empty);
    if never(&a) {
        return b;
    }
    if never(&b) {
        return a;
    }
    if a.is_empty() || b.is_empty() {
        // One side holds with no clause: so does the OR.
        return Vec::new();
    }
    let (a, b) = (tidy(a), tidy(b));
    let mut out = Vec::new();
    for x in a.iter().take(2) {
        for y in b.iter().take(2) {
            out.push(x.iter().chain(y).cloned().collect());
        }
    }
    tidy(out)
}

/// AND: every known branch's clauses.
pub(crate) fn and_need(it: impl Iterator<Item = Need>) -> Need {
    let all: Clauses = it.flatten().flatten().collect();
    (!all.is_empty()).then(|| tidy(all))
}

fn matcher_need(m: &Matcher, field: Option<&str>) -> Need {
    let needle = |text: String, start: bool, end: bool| Needle {
        text,
        field: field.map(str::to_string),
        start,
        end,
    };
    match m {
        Matcher::Glob(g) => g
            .anchored_literal()
            .map(|(l, start, end)| vec![vec![needle(l.to_string(), start, end)]]),
        Matcher::Re(re) => regex_need(re.as_str())
            .map(|ls| vec![ls.into_iter().map(|l| needle(l, false, false)).collect()]),
        _ => None,
    }
}

/// Literals one of which every match of the regular expression holds: its
/// suffixes, else its prefixes (`regex-syntax`'s extractor), when that set
/// is finite and each is at least three bytes (lower case: the prefilter
/// searches lower-cased text, and `(?i)` gives every casing, `ſ` too).
pub(crate) fn regex_need(re: &str) -> Option<Vec<String>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::Parser::new().parse(re).ok()?;
    [ExtractKind::Suffix, ExtractKind::Prefix]
        .into_iter()
        .find_map(|kind| {
            let seq = Extractor::new().kind(kind).extract(&hir);
            let lits = seq.literals()?;
            let mut out: Vec<String> = Vec::new();
            for l in lits {
                let s = std::str::from_utf8(l.as_bytes()).ok()?.to_lowercase();
                if s.len() < 3 {
                    return None;
                }
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            (!out.is_empty()).then_some(out)
        })
}

fn matchers_need(matchers: &[Matcher], all: bool, field: Option<&str>) -> Need {
    if all {
        and_need(matchers.iter().map(|m| matcher_need(m, field)))
    } else {
        or_need(matchers.iter().map(|m| matcher_need(m, field)))
    }
}

pub(crate) fn cond_need(c: &Cond, search: &dyn Fn(&str) -> Need) -> Need {
    match c {
        Cond::Id(id) => search(id),
        Cond::Not(_) => None,
        Cond::And(cs) => and_need(cs.iter().map(|c| cond_need(c, search))),
        Cond::Or(cs) => or_need(cs.iter().map(|c| cond_need(c, search))),
        Cond::OneOf(ids) => or_need(ids.iter().map(|i| search(i))),
        Cond::AllOf(ids) => and_need(ids.iter().map(|i| search(i))),
    }
}

impl Search {
    pub(crate) fn need(&self) -> Need {
        match self {
            Search::Fields(groups) => or_need(groups.iter().map(|g| {
                and_need(g.iter().map(|c| {
                    if c.negate {
                        None
                    } else {
                        matchers_need(&c.matchers, c.all, Some(&c.field))
                    }
                }))
            })),
            Search::Keywords { matchers, all, .. } => matchers_need(matchers, *all, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str, start: bool, end: bool) -> Needle {
        Needle {
            text: text.into(),
            field: Some("f".into()),
            start,
            end,
        }
    }

    #[test]
    fn regular_expressions_give_their_needed_literals() {
        let evil = r"-[a-z0-9]{3}\.[a-z0-9-]{3,}-s-account\.workers\.dev|\.up\.railway\.app";
        assert_eq!(
            regex_need(evil),
            Some(vec![
                "-s-account.workers.dev".to_string(),
                ".up.railway.app".to_string()
            ])
        );
        let ipfs = regex_need(r"(?i)(ipfs\.io/|ipfs\.io\s).+\..+@.+\.[a-z]+").unwrap();
        assert!(ipfs.contains(&"ipfs.io".to_string()), "{ipfs:?}");
        assert!(ipfs.contains(&"ipfſ.io".to_string()), "{ipfs:?}");
        assert_eq!(regex_need(r"a.*b"), None, "no literal of three bytes");
        assert_eq!(regex_need(r"[a-z]+"), None);
    }

    #[test]
    fn and_keeps_clauses_or_pairs_them_and_implied_ones_go() {
        let (a, b, c) = (
            n("aaaa", false, false),
            n("bbbbb", false, false),
            n("cc", true, true),
        );
        let and = and_need(
            [
                Some(vec![vec![a.clone()]]),
                None,
                Some(vec![vec![b.clone()]]),
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(and, vec![vec![b.clone()], vec![a.clone()]], "rarest first");
        let or = or_need([Some(and.clone()), Some(vec![vec![c.clone()]])].into_iter()).unwrap();
        assert_eq!(or.len(), 2, "{or:?}");
        assert!(or.iter().all(|cl| cl.contains(&c)), "{or:?}");
        // A clause implied by another (its superset) is dropped.
        let t = tidy(vec![vec![a.clone(), b.clone()], vec![a.clone()]]);
        assert_eq!(t, vec![vec![a.clone()]]);
        // Nothing known on one side of an AND: the other's clauses.
        assert_eq!(and_need([None, None].into_iter()), None);
        // An OR with an unknown branch is unknown; one that can match
        // nothing leaves the other side.
        assert_eq!(
            or_need([Some(vec![vec![a.clone()]]), None].into_iter()),
            None
        );
        assert_eq!(
            or_need([Some(vec![Vec::new()]), Some(vec![vec![a.clone()]])].into_iter()),
            Some(vec![vec![a]])
        );
        assert_eq!(or_need(std::iter::empty()), Some(vec![Vec::new()]));
    }

    #[test]
    fn an_exact_value_is_anchored_and_rarer_than_a_common_word() {
        assert!(cost(&[n("mozilla/5.0", true, true)]) < 0.001);
        assert_eq!(cost(&[n("mozilla/5.0", true, false)]), 1.0);
        assert!(cost(&[n("m", true, true)]) < cost(&[n("m", false, false)]));
    }
}
