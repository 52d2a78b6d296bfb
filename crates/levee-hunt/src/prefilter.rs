//! One pass over a record for every rule. Each rule's needed clauses
//! (`levee_sigma::Rule::needed_clauses`: every event it matches satisfies
//! each clause, by holding one of its needles) become literals of one
//! Aho-Corasick automaton (a DFA, ASCII case-insensitive, walked here a
//! byte at a time), run once over the record's hay (`fields::Hay`: the
//! line as logged, and the values it does not hold so). A rule is evaluated
//! only when every clause it kept was seen; the result is the same as
//! trying every rule (a test compares them on the SigmaHQ rules).
//!
//! A needle becomes a literal in the haystack's terms:
//! - lower case: a case-insensitive match compares lower case already; a
//!   `cased` one is searched lower-cased, which an ASCII literal survives
//!   (a clause with a cased literal outside ASCII is dropped);
//! - anchored: a needle that starts or ends the value of a field the
//!   haystack holds in quotes (User-Agent, Referer, host) gets the quote on
//!   that side, so `c-useragent: 'M'` looks for `"m"`, not every `m`; one
//!   that starts a path's extension gets the dot before it;
//! - a literal shorter than [`MIN_LITERAL`] is in too many records to be
//!   worth it: its clause is dropped, and a rule left with no clause (or
//!   with nothing known: negations, numbers) is always tried.

use crate::fields::{Hay, QUOTED_FIELDS};
use aho_corasick::automaton::{Automaton as _, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::Anchored;
use levee_sigma::need::{Needle, MAX_CLAUSES};
use levee_sigma::Rule;

/// Literals shorter than this are in too many records to be worth it.
const MIN_LITERAL: usize = 2;

const _: () = assert!(MAX_CLAUSES <= 8, "a rule's clauses are bits of a u8");

/// The rules' prefilter.
#[derive(Debug)]
pub struct Prefilter {
    /// The automaton and its start state.
    dfa: Option<(DFA, StateID)>,
    /// For each literal, the (rule, clause bit) pairs it satisfies, and the
    /// hint groups (bits) that hold it.
    rules_of: Vec<Vec<(usize, u8)>>,
    hints_of: Vec<u32>,
    /// For each rule, the bits of all its clauses (0: always tried).
    full: Vec<u8>,
    /// Rules tried for every record.
    always: Vec<usize>,
}

/// Per-thread scratch space of [`Prefilter::candidates`].
#[derive(Debug, Default)]
pub struct Scratch {
    hay: Vec<u8>,
    seen: Vec<u8>,
    touched: Vec<usize>,
    found: Vec<StateID>,
}

/// The needle as a literal of the haystack (`None`: not worth searching).
fn literal(n: &Needle) -> Option<String> {
    if !(n.text.is_ascii() || n.text.to_lowercase() == n.text) {
        return None;
    }
    let t = n.text.to_ascii_lowercase();
    let l = match n.field.as_deref() {
        Some(f) if QUOTED_FIELDS.contains(&f) => {
            let q = |b: bool| if b { "\"" } else { "" };
            format!("{}{t}{}", q(n.start), q(n.end))
        }
        Some("c-uri-extension") if n.start => format!(".{t}"),
        _ => t,
    };
    (l.len() >= MIN_LITERAL).then_some(l)
}

/// A needle of a field whose few values nearly every record holds (`GET`,
/// `200`: short, and found all over a line): its clause selects little
/// and costs a look at each of its rules on each line, so it is dropped
/// when the rule has another.
fn common(n: &Needle) -> bool {
    matches!(n.field.as_deref(), Some("cs-method" | "sc-status"))
}

impl Prefilter {
    /// `hints`: groups of needles (lower case) of other searches; the
    /// candidates say which groups may be in the record (group i, bit i).
    pub fn new(rules: &[Rule], hints: &[&[&str]]) -> Prefilter {
        let mut lits: Vec<String> = Vec::new();
        let mut rules_of: Vec<Vec<(usize, u8)>> = Vec::new();
        let mut hints_of: Vec<u32> = Vec::new();
        let mut index = std::collections::HashMap::new();
        let mut slot = |l: String, lits: &mut Vec<String>| -> usize {
            *index.entry(l.clone()).or_insert_with(|| {
                lits.push(l);
                rules_of.push(Vec::new());
                hints_of.push(0);
                lits.len() - 1
            })
        };
        let mut full = vec![0u8; rules.len()];
        let mut uses: Vec<(usize, usize, u8)> = Vec::new();
        for (ri, r) in rules.iter().enumerate() {
            let mut kept: Vec<(Vec<String>, bool)> = r
                .needed_clauses()
                .unwrap_or_default()
                .iter()
                .filter_map(|c| {
                    let lits = c.iter().map(literal).collect::<Option<Vec<String>>>()?;
                    Some((lits, !c.is_empty() && c.iter().all(common)))
                })
                .take(MAX_CLAUSES)
                .collect();
            if kept.iter().any(|(_, common)| !common) {
                kept.retain(|(_, common)| !common);
            }
            for (ci, (c, _)) in kept.into_iter().enumerate() {
                let bit = 1u8 << ci;
                full[ri] |= bit;
                if c.is_empty() {
                    // A clause no event satisfies: the rule matches nothing,
                    // and its bit is never set.
                    continue;
                }
                for l in c {
                    let li = slot(l, &mut lits);
                    uses.push((li, ri, bit));
                }
            }
        }
        let mut hint_uses = Vec::new();
        for (g, needles) in hints.iter().enumerate().take(32) {
            for n in needles.iter() {
                hint_uses.push((slot(n.to_ascii_lowercase(), &mut lits), g));
            }
        }
        for (li, ri, bit) in uses {
            if !rules_of[li].contains(&(ri, bit)) {
                rules_of[li].push((ri, bit));
            }
        }
        for (li, g) in hint_uses {
            hints_of[li] |= 1 << g;
        }
        let dfa = if lits.is_empty() {
            None
        } else {
            DFA::builder()
                .ascii_case_insensitive(true)
                .prefilter(false)
                .build(&lits)
                .ok()
                .and_then(|d| Some((d.start_state(Anchored::No).ok()?, d)))
                .map(|(start, d)| (d, start))
        };
        if dfa.is_none() {
            // No automaton: every rule is tried (never a silent skip).
            full.iter_mut().for_each(|f| *f = 0);
        }
        let always = (0..rules.len()).filter(|&r| full[r] == 0).collect();
        Prefilter {
            dfa,
            rules_of,
            hints_of,
            full,
            always,
        }
    }

    /// Rules tried for every record.
    pub fn always(&self) -> usize {
        self.always.len()
    }

    /// The rules worth evaluating on the record `hay` is of, in rule
    /// order, into `out`; returns the hint groups that may be in it.
    pub fn candidates(&self, hay: &Hay<'_>, s: &mut Scratch, out: &mut Vec<usize>) -> u32 {
        out.clear();
        out.extend_from_slice(&self.always);
        let Some((dfa, start)) = &self.dfa else {
            return u32::MAX;
        };
        s.hay.clear();
        hay.additions(&mut s.hay);
        s.seen.resize(self.full.len(), 0);
        let added = std::mem::take(&mut s.hay);
        s.found.clear();
        walk(dfa, *start, hay.line(), &mut s.found);
        walk(dfa, *start, &added, &mut s.found);
        s.hay = added;
        let mut hints = 0;
        for &sid in &s.found {
            if !dfa.is_match(sid) {
                continue;
            }
            for k in 0..dfa.match_len(sid) {
                let i = dfa.match_pattern(sid, k).as_usize();
                if let Some(rules) = self.rules_of.get(i) {
                    for &(r, bit) in rules {
                        if let Some(seen) = s.seen.get_mut(r) {
                            if *seen == 0 {
                                s.touched.push(r);
                            }
                            *seen |= bit;
                        }
                    }
                }
                hints |= self.hints_of.get(i).copied().unwrap_or(0);
            }
        }
        for r in s.touched.drain(..) {
            if s.seen[r] == self.full[r] {
                out.push(r);
            }
            s.seen[r] = 0;
        }
        out.sort_unstable();
        out.dedup();
        hints
    }
}

/// The automaton's walk over `h` (its own search loop, kept small so that
/// it stays in registers: the bytes are nearly all of a hunt's work), each
/// special state it reaches onto `found` (every literal counts:
/// overlapping).
#[inline(never)]
fn walk(dfa: &DFA, start: StateID, h: &[u8], found: &mut Vec<StateID>) {
    let mut sid = start;
    for &b in h {
        sid = dfa.next_state(Anchored::No, sid, b);
        // Special states are the dead and match states (start states
        // are special only with a prefilter, which this one is built
        // without): one comparison a byte; the caller keeps the matches.
        if dfa.is_special(sid) {
            found.push(sid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::WebEvent;
    use crate::logs::{parse_line, JsonMapping};

    fn data() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
    }

    /// Every rule that matches a line is among its candidates, on the real
    /// Apache log and on lines made from each rule's own literals (the
    /// attacks the rules describe), in the literals' case and upper case.
    #[test]
    fn the_prefilter_never_hides_a_match_of_the_sigmahq_rules() {
        let (rules, _, _) = crate::load_rules(&[data().join("sigma")]).unwrap();
        let rules: Vec<Rule> = rules.into_iter().filter(Rule::is_web).collect();
        assert!(rules.len() > 100, "{} web rules", rules.len());
        let p = Prefilter::new(&rules, &[]);
        let mut lines: Vec<String> =
            std::fs::read_to_string(data().join("logs/elastic-apache/apache_logs"))
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect();
        let real = lines.len();
        let base =
            r#"203.0.113.9 - - [17/May/2015:10:05:03 +0000] "GET /PATH HTTP/1.1" 200 512 "-" "UA""#;
        for r in &rules {
            for l in r.needed_literals().unwrap_or_default() {
                let safe = l.replace('"', "%22").replace(' ', "%20");
                for v in [safe.clone(), safe.to_uppercase()] {
                    lines.push(base.replace("/PATH", &format!("/x{v}")).replace("UA", &v));
                    lines.push(base.replace("/PATH", &format!("/?q={v}")));
                }
            }
        }
        let (mut scratch, mut cands, mut low) = (Scratch::default(), Vec::new(), String::new());
        let (mut matched, mut skipped, mut real_tries) = (0u64, 0u64, 0usize);
        let mut per_rule = vec![0usize; rules.len()];
        for (n, line) in lines.iter().enumerate() {
            let Ok(rec) = parse_line(line, &JsonMapping::default()) else {
                continue;
            };
            let ev = WebEvent::new(&rec, line, &mut low);
            p.candidates(&ev.hay(), &mut scratch, &mut cands);
            if n < real {
                real_tries += cands.len();
                cands.iter().for_each(|&c| per_rule[c] += 1);
            }
            for (i, r) in rules.iter().enumerate() {
                let hit = r.matches(&ev);
                let tried = cands.binary_search(&i).is_ok();
                assert!(
                    !hit || tried,
                    "rule {} ({}) matches but was skipped: {line}",
                    r.title,
                    r.file
                );
                matched += u64::from(hit);
                skipped += u64::from(!tried);
            }
        }
        eprintln!(
            "{} rules, {} always tried; {} lines, {matched} matches, {skipped} rule tries skipped; \
             {real_tries} tries on the {real} lines of the real log",
            rules.len(),
            p.always(),
            lines.len()
        );
        let mut top: Vec<(usize, &str)> = per_rule
            .iter()
            .zip(&rules)
            .map(|(n, r)| (*n, r.title.as_str()))
            .collect();
        top.sort_unstable_by(|a, b| b.cmp(a));
        eprintln!("most tried on the real log: {:?}", &top[..8]);
        // Anchored needles and every clause kept: on the real log (few
        // attacks), about one rule in a few lines is tried, not six a line.
        assert!(real_tries * 2 < real, "{real_tries} tries on {real} lines");
        assert!(
            matched > 500,
            "{matched} matches: the lines exercise the rules"
        );
        // And the prefilter does skip most rules on most lines.
        assert!(
            skipped > (lines.len() * rules.len()) as u64 / 2,
            "{skipped} skipped"
        );
    }
}
