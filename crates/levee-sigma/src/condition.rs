//! Sigma conditions: `and`, `or`, `not`, parentheses, `1 of PATTERN`,
//! `all of PATTERN` (a name or a prefix ending in `*`), and `them` (every
//! search identifier that does not start with `_`).

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Id(String),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    /// `1 of` / `all of` over the identifiers a pattern names.
    OneOf(Vec<String>),
    AllOf(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    LParen,
    RParen,
}

fn lex(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<Tok>| {
        if !cur.is_empty() {
            out.push(Tok::Word(std::mem::take(cur)));
        }
    };
    for c in s.chars() {
        match c {
            '(' => {
                flush(&mut cur, &mut out);
                out.push(Tok::LParen);
            }
            ')' => {
                flush(&mut cur, &mut out);
                out.push(Tok::RParen);
            }
            c if c.is_whitespace() => flush(&mut cur, &mut out),
            c => cur.push(c),
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// Identifiers named by `pattern` among `ids` (`them`: all but `_`-prefixed).
fn expand(pattern: &str, ids: &[String]) -> Result<Vec<String>, String> {
    let v: Vec<String> = if pattern == "them" {
        ids.iter()
            .filter(|i| !i.starts_with('_'))
            .cloned()
            .collect()
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        ids.iter()
            .filter(|i| i.starts_with(prefix))
            .cloned()
            .collect()
    } else {
        ids.iter().filter(|i| *i == pattern).cloned().collect()
    };
    if v.is_empty() {
        return Err(format!("{pattern:?} names no search identifier"));
    }
    Ok(v)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    ids: &'a [String],
}

impl Parser<'_> {
    fn peek_word(&self) -> Option<&str> {
        match self.toks.get(self.pos) {
            Some(Tok::Word(w)) => Some(w.as_str()),
            _ => None,
        }
    }
    fn or(&mut self) -> Result<Cond, String> {
        let mut v = vec![self.and()?];
        while self
            .peek_word()
            .is_some_and(|w| w.eq_ignore_ascii_case("or"))
        {
            self.pos += 1;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Cond::Or(v)
        })
    }
    fn and(&mut self) -> Result<Cond, String> {
        let mut v = vec![self.not()?];
        while self
            .peek_word()
            .is_some_and(|w| w.eq_ignore_ascii_case("and"))
        {
            self.pos += 1;
            v.push(self.not()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Cond::And(v)
        })
    }
    fn not(&mut self) -> Result<Cond, String> {
        if self
            .peek_word()
            .is_some_and(|w| w.eq_ignore_ascii_case("not"))
        {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.atom()
    }
    fn atom(&mut self) -> Result<Cond, String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let c = self.or()?;
                if self.toks.get(self.pos) != Some(&Tok::RParen) {
                    return Err("missing ')'".into());
                }
                self.pos += 1;
                Ok(c)
            }
            Some(Tok::Word(w)) => {
                self.pos += 1;
                let quant = if w == "1" || w.eq_ignore_ascii_case("any") {
                    Some(true)
                } else if w.eq_ignore_ascii_case("all") {
                    Some(false)
                } else {
                    None
                };
                if let Some(one) = quant {
                    if self
                        .peek_word()
                        .is_some_and(|x| x.eq_ignore_ascii_case("of"))
                    {
                        self.pos += 1;
                        let Some(pat) = self.peek_word().map(str::to_string) else {
                            return Err(format!("'{w} of' needs a pattern"));
                        };
                        self.pos += 1;
                        let ids = expand(&pat, self.ids)?;
                        return Ok(if one {
                            Cond::OneOf(ids)
                        } else {
                            Cond::AllOf(ids)
                        });
                    }
                }
                if ["and", "or", "not", "of"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k))
                {
                    return Err(format!("unexpected {w:?}"));
                }
                if w.contains('|') {
                    return Err("aggregations in conditions (`| count()`) are not supported; use a correlation rule".into());
                }
                if !self.ids.contains(&w) {
                    return Err(format!("{w:?} is not a search identifier of this rule"));
                }
                Ok(Cond::Id(w))
            }
            Some(Tok::RParen) => Err("unexpected ')'".into()),
            None => Err("condition ends too early".into()),
        }
    }
}

/// Parse `text` against the rule's search identifiers.
pub fn parse(text: &str, ids: &[String]) -> Result<Cond, String> {
    let mut p = Parser {
        toks: lex(text),
        pos: 0,
        ids,
    };
    let c = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected text after position {}", p.pos));
    }
    Ok(c)
}

impl Cond {
    /// Evaluate with `hit(id)` telling whether a search identifier matched.
    pub fn eval(&self, hit: &mut dyn FnMut(&str) -> bool) -> bool {
        match self {
            Cond::Id(i) => hit(i),
            Cond::Not(c) => !c.eval(hit),
            Cond::And(v) => v.iter().all(|c| c.eval(hit)),
            Cond::Or(v) => v.iter().any(|c| c.eval(hit)),
            Cond::OneOf(v) => v.iter().any(|i| hit(i)),
            Cond::AllOf(v) => v.iter().all(|i| hit(i)),
        }
    }
}

/// A condition with its identifiers resolved to search positions once, at
/// load (an unknown identifier is `None`, which is false), so that matching
/// compares no names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Id(Option<usize>),
    Not(Box<Resolved>),
    And(Vec<Resolved>),
    Or(Vec<Resolved>),
    OneOf(Vec<Option<usize>>),
    AllOf(Vec<Option<usize>>),
}

impl Cond {
    /// Resolve against the searches' names, in order.
    pub fn resolve(&self, names: &[&str]) -> Resolved {
        let at = |id: &str| names.iter().position(|n| *n == id);
        match self {
            Cond::Id(i) => Resolved::Id(at(i)),
            Cond::Not(c) => Resolved::Not(Box::new(c.resolve(names))),
            Cond::And(v) => Resolved::And(v.iter().map(|c| c.resolve(names)).collect()),
            Cond::Or(v) => Resolved::Or(v.iter().map(|c| c.resolve(names)).collect()),
            Cond::OneOf(v) => Resolved::OneOf(v.iter().map(|i| at(i)).collect()),
            Cond::AllOf(v) => Resolved::AllOf(v.iter().map(|i| at(i)).collect()),
        }
    }
}

impl Resolved {
    /// As `Cond::eval`, by position.
    pub fn eval(&self, hit: &mut dyn FnMut(usize) -> bool) -> bool {
        let one = |i: &Option<usize>, hit: &mut dyn FnMut(usize) -> bool| i.is_some_and(&mut *hit);
        match self {
            Resolved::Id(i) => one(i, hit),
            Resolved::Not(c) => !c.eval(hit),
            Resolved::And(v) => v.iter().all(|c| c.eval(hit)),
            Resolved::Or(v) => v.iter().any(|c| c.eval(hit)),
            Resolved::OneOf(v) => v.iter().any(|i| one(i, hit)),
            Resolved::AllOf(v) => v.iter().all(|i| one(i, hit)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn precedence_and_parentheses() {
        let i = ids(&["a", "b", "c"]);
        let c = parse("a or b and not c", &i).unwrap();
        // and binds tighter than or
        let mut f = |x: &str| x == "a";
        assert!(c.eval(&mut f));
        let c = parse("(a or b) and not c", &i).unwrap();
        let mut g = |x: &str| x == "b" || x == "c";
        assert!(!c.eval(&mut g));
    }

    #[test]
    fn them_skips_underscore_identifiers() {
        let i = ids(&["sel1", "sel2", "_filter"]);
        assert_eq!(
            parse("all of them", &i).unwrap(),
            Cond::AllOf(ids(&["sel1", "sel2"]))
        );
        assert_eq!(
            parse("1 of sel*", &i).unwrap(),
            Cond::OneOf(ids(&["sel1", "sel2"]))
        );
        assert!(parse("1 of nothing*", &i).is_err());
        assert!(parse("sel1 and", &i).is_err());
        assert!(parse("sel3", &i).is_err());
        assert!(parse("(sel1", &i).is_err());
        assert!(parse("sel1 | count() > 5", &i).is_err());
    }
}
