//! One pass over a record for every rule: each rule's necessary literals
//! (`levee_sigma::Rule::needed_literals`: at least one of them is in every
//! event it matches) go into one Aho-Corasick automaton, run once over the
//! record's values in lower case (each field and the raw line). A literal
//! of a case-insensitive match is lower case already (as the match
//! compares it); one of a `cased` match is searched lower-cased, which an
//! ASCII literal survives (a value holding it holds its lower case once
//! lower-cased); a rule with a cased literal outside ASCII is always tried.
//! Only the rules whose literals
//! were found, and those with no usable literal (negations, regular
//! expressions, numbers), are then evaluated; the result is the same as
//! trying every rule (a test compares them on the SigmaHQ rules).

use crate::fields::WebEvent;
use aho_corasick::AhoCorasick;
use levee_sigma::Rule;

/// Literals shorter than this are in too many records to be worth it: a
/// rule needing one is always tried.
const MIN_LITERAL: usize = 2;

/// The rules' prefilter.
#[derive(Debug)]
pub struct Prefilter {
    ac: Option<AhoCorasick>,
    /// For each literal, the rules that need it, and the hint groups
    /// (bits) that hold it.
    rules_of: Vec<Vec<usize>>,
    hints_of: Vec<u32>,
    /// Rules tried for every record.
    always: Vec<usize>,
}

impl Prefilter {
    /// `hints`: groups of needles (lower case) of other searches; the
    /// candidates say which groups may be in the record (group i, bit i).
    pub fn new(rules: &[Rule], hints: &[&[&str]]) -> Prefilter {
        let mut lits: Vec<String> = Vec::new();
        let mut rules_of: Vec<Vec<usize>> = Vec::new();
        let mut hints_of: Vec<u32> = Vec::new();
        let mut index = std::collections::HashMap::new();
        let mut always = Vec::new();
        for (ri, r) in rules.iter().enumerate() {
            match r.needed_literals() {
                Some(set)
                    if set.iter().all(|l| {
                        l.len() >= MIN_LITERAL && (l.is_ascii() || l.to_lowercase() == *l)
                    }) =>
                {
                    for l in set {
                        let l = l.to_ascii_lowercase();
                        let li = *index.entry(l.clone()).or_insert_with(|| {
                            lits.push(l);
                            rules_of.push(Vec::new());
                            hints_of.push(0);
                            lits.len() - 1
                        });
                        rules_of[li].push(ri);
                    }
                }
                _ => always.push(ri),
            }
        }
        for (g, needles) in hints.iter().enumerate().take(32) {
            for n in needles.iter() {
                let l = n.to_ascii_lowercase();
                let li = *index.entry(l.clone()).or_insert_with(|| {
                    lits.push(l);
                    rules_of.push(Vec::new());
                    hints_of.push(0);
                    lits.len() - 1
                });
                hints_of[li] |= 1 << g;
            }
        }
        let ac = if lits.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build(&lits)
                .or_else(|_| AhoCorasick::new(&lits))
                .ok()
        };
        if ac.is_none() {
            // No automaton: every rule is tried (never a silent skip).
            always = (0..rules.len()).collect();
        }
        Prefilter {
            ac,
            rules_of,
            hints_of,
            always,
        }
    }

    /// Rules tried for every record.
    pub fn always(&self) -> usize {
        self.always.len()
    }

    /// The rules worth evaluating on `ev`, in rule order, into `out`
    /// (`hay` is scratch space); returns the hint groups that may be in it.
    pub fn candidates(&self, ev: &WebEvent<'_>, hay: &mut Vec<u8>, out: &mut Vec<usize>) -> u32 {
        out.clear();
        out.extend_from_slice(&self.always);
        let Some(ac) = &self.ac else {
            return u32::MAX;
        };
        hay.clear();
        ev.haystack(hay);
        let mut hints = 0;
        for m in ac.find_overlapping_iter(hay.as_slice()) {
            let i = m.pattern().as_usize();
            out.extend_from_slice(&self.rules_of[i]);
            hints |= self.hints_of[i];
        }
        out.sort_unstable();
        out.dedup();
        hints
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let (mut hay, mut cands, mut low) = (Vec::new(), Vec::new(), String::new());
        let (mut matched, mut skipped) = (0u64, 0u64);
        for line in &lines {
            let Ok(rec) = parse_line(line, &JsonMapping::default()) else {
                continue;
            };
            let ev = WebEvent::new(&rec, line, &mut low);
            p.candidates(&ev, &mut hay, &mut cands);
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
            "{} rules, {} always tried; {} lines, {matched} matches, {skipped} rule tries skipped",
            rules.len(),
            p.always(),
            lines.len()
        );
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
