//! Long lists of values, indexed: a Sigma condition that lists many values
//! (user agents, paths, payload fragments) is looked up in sets and one
//! automaton rather than tried value by value, the index built the first
//! time the condition is evaluated.

use crate::pattern::Matcher;

/// A [`Fast`] index, built the first time its condition is evaluated (most
/// rules are never tried on most logs: a hunt's prefilter skips them, and
/// an index's automaton is most of a rule's load time).
#[derive(Debug, Clone, Default)]
pub(crate) struct LazyFast(std::sync::OnceLock<Option<Box<Fast>>>);

impl LazyFast {
    pub(crate) fn get(&self, matchers: &[Matcher], all: bool) -> Option<&Fast> {
        if all {
            return None;
        }
        self.0
            .get_or_init(|| Fast::build(matchers).map(Box::new))
            .as_deref()
    }
}

/// A set of strings hashed with a per-process random seed (the values are
/// the rules'; what is looked up is the attacker's).
type Set = std::collections::HashSet<String, foldhash::fast::RandomState>;

/// Literals to compare with a value's start or end: one lookup per
/// distinct length.
#[derive(Debug, Clone, Default)]
struct Affixes {
    lens: Vec<usize>,
    set: Set,
}

impl Affixes {
    fn add(&mut self, l: &str) {
        if !self.lens.contains(&l.len()) {
            self.lens.push(l.len());
        }
        self.set.insert(l.to_string());
    }

    fn prefix_of(&self, v: &str) -> bool {
        self.lens
            .iter()
            .any(|&n| v.get(..n).is_some_and(|p| self.set.contains(p)))
    }

    fn suffix_of(&self, v: &str) -> bool {
        self.lens.iter().any(|&n| {
            v.len()
                .checked_sub(n)
                .and_then(|i| v.get(i..))
                .is_some_and(|p| self.set.contains(p))
        })
    }
}

/// A list of values, indexed: equalities in a set (behind a bitmap of
/// their lengths), prefixes and suffixes by length, `contains` in one
/// automaton, the rest tried in turn. Only for lists of globs of one casing
/// (the common case: lists of user agents, paths, payload fragments).
#[derive(Debug, Clone)]
pub(crate) struct Fast {
    pub(crate) cased: bool,
    exact: Set,
    /// Bit n: an equality of n bytes (n < 256); bit 255 also stands for
    /// every longer one.
    exact_lens: [u64; 4],
    prefix: Affixes,
    suffix: Affixes,
    contains: Option<aho_corasick::AhoCorasick>,
    rest: Vec<Matcher>,
}

impl Fast {
    fn build(matchers: &[Matcher]) -> Option<Fast> {
        if matchers.len() < 2 {
            return None;
        }
        let mut cased = None;
        let mut exact = Set::default();
        let mut exact_lens = [0u64; 4];
        let (mut prefix, mut suffix) = (Affixes::default(), Affixes::default());
        let mut lits = Vec::new();
        let mut rest = Vec::new();
        for m in matchers {
            let Matcher::Glob(g) = m else { return None };
            if *cased.get_or_insert(g.cased()) != g.cased() {
                return None;
            }
            if let Some((l, _)) = g.exact_literal() {
                let n = l.len().min(255);
                exact_lens[n / 64] |= 1 << (n % 64);
                exact.insert(l.to_string());
            } else if let Some((l, _)) = g.contains_literal() {
                lits.push(l.to_string());
            } else if let Some((l, _)) = g.prefix_literal() {
                prefix.add(l);
            } else if let Some((l, _)) = g.suffix_literal() {
                suffix.add(l);
            } else {
                rest.push(m.clone());
            }
        }
        let contains = if lits.is_empty() {
            None
        } else {
            Some(
                aho_corasick::AhoCorasick::builder()
                    .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                    // Field values are short: a prefilter costs more than it skips.
                    .prefilter(false)
                    .build(&lits)
                    .or_else(|_| aho_corasick::AhoCorasick::new(&lits))
                    .ok()?,
            )
        };
        Some(Fast {
            cased: cased.unwrap_or(false),
            exact,
            exact_lens,
            prefix,
            suffix,
            contains,
            rest,
        })
    }

    /// `v` is the value in the matchers' casing.
    pub(crate) fn any(&self, original: &str, v: &str) -> bool {
        let n = v.len().min(255);
        (self.exact_lens[n / 64] & (1 << (n % 64)) != 0 && self.exact.contains(v))
            || self.prefix.prefix_of(v)
            || self.suffix.suffix_of(v)
            || self.contains.as_ref().is_some_and(|ac| ac.is_match(v))
            || self
                .rest
                .iter()
                .any(|m| m.matches_prepared(Some(original), Some(v)))
    }
}
