//! Sigma value matching: wildcards anchored to the whole value (`*`, `?`,
//! escapes `\*`, `\?`, `\\`), case-insensitive unless `cased`, and the value
//! modifiers (`contains`, `startswith`, `endswith`, `all`, `re` with `i`/`m`/`s`,
//! `cidr`, `base64`, `base64offset`, `windash`, `exists`, `cased`, `neq`,
//! `gt`/`gte`/`lt`/`lte`).

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Star,
    One,
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone)]
pub struct Glob {
    pieces: Vec<Piece>,
    cased: bool,
}

impl Glob {
    /// The literal of a wildcard-free pattern (an equality), with its casing.
    pub fn exact_literal(&self) -> Option<(&str, bool)> {
        match self.pieces.as_slice() {
            [Piece::Lit(l)] => Some((l.as_str(), self.cased)),
            _ => None,
        }
    }

    pub fn cased(&self) -> bool {
        self.cased
    }

    /// The longest literal piece, in the form the match compares (lower
    /// case unless `cased`), and whether it starts and ends the pattern:
    /// every value this glob matches contains it (in that form), and
    /// starts (ends) with it if so. An empty pattern gives the empty
    /// literal, at both ends. `None` for a pattern of wildcards only.
    pub fn anchored_literal(&self) -> Option<(&str, bool, bool)> {
        if self.pieces.is_empty() {
            return Some(("", true, true));
        }
        let last = self.pieces.len() - 1;
        self.pieces
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Piece::Lit(l) => Some((l.as_str(), i == 0, i == last)),
                _ => None,
            })
            .max_by_key(|l| l.0.len())
    }

    /// The literal of a `*literal*` pattern (a `contains`), with its casing.
    pub fn contains_literal(&self) -> Option<(&str, bool)> {
        match self.pieces.as_slice() {
            [Piece::Star, Piece::Lit(l), Piece::Star] => Some((l.as_str(), self.cased)),
            _ => None,
        }
    }

    /// The literal of a `literal*` pattern (a `startswith`), with its casing.
    pub fn prefix_literal(&self) -> Option<(&str, bool)> {
        match self.pieces.as_slice() {
            [Piece::Lit(l), Piece::Star] => Some((l.as_str(), self.cased)),
            _ => None,
        }
    }

    /// The literal of a `*literal` pattern (an `endswith`), with its casing.
    pub fn suffix_literal(&self) -> Option<(&str, bool)> {
        match self.pieces.as_slice() {
            [Piece::Star, Piece::Lit(l)] => Some((l.as_str(), self.cased)),
            _ => None,
        }
    }

    /// Parse Sigma wildcard syntax. `\` escapes only `*`, `?` and `\`.
    pub fn new(s: &str, cased: bool) -> Glob {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut it = s.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '\\' => match it.peek() {
                    Some(&n @ ('*' | '?' | '\\')) => {
                        lit.push(n);
                        it.next();
                    }
                    _ => lit.push('\\'),
                },
                '*' | '?' => {
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(if c == '*' { Piece::Star } else { Piece::One });
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        if !cased {
            for p in &mut pieces {
                if let Piece::Lit(l) = p {
                    *l = l.to_lowercase();
                }
            }
        }
        Glob { pieces, cased }
    }

    fn wrap(mut self, start: bool, end: bool) -> Glob {
        if start && self.pieces.first() != Some(&Piece::Star) {
            self.pieces.insert(0, Piece::Star);
        }
        if end && self.pieces.last() != Some(&Piece::Star) {
            self.pieces.push(Piece::Star);
        }
        self
    }

    /// Whether the whole of `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        if self.cased {
            self.matches_prepared(value, value)
        } else {
            self.matches_prepared(value, &value.to_lowercase())
        }
    }

    /// As `matches`, with the value's lower-case form already made (so that
    /// a list of values lower-cases the field once).
    pub fn matches_prepared(&self, value: &str, lower: &str) -> bool {
        let s = if self.cased { value } else { lower };
        match self.pieces.as_slice() {
            [] => s.is_empty(),
            [Piece::Lit(l)] => s == l,
            [Piece::Star] => true,
            [Piece::Star, Piece::Lit(l), Piece::Star] => s.contains(l.as_str()),
            [Piece::Lit(l), Piece::Star] => s.starts_with(l.as_str()),
            [Piece::Star, Piece::Lit(l)] => s.ends_with(l.as_str()),
            p => match_pieces(p, s),
        }
    }
}

/// Length of the UTF-8 character starting at `b[i]`.
fn char_len(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() && (b[j] & 0xC0) == 0x80 {
        j += 1;
    }
    j - i
}

/// Backtracking on the last star only: linear in practice. Works on bytes;
/// `?` takes one whole character.
fn match_pieces(p: &[Piece], s: &str) -> bool {
    let s = s.as_bytes();
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            match &p[pi] {
                Piece::Star => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                Piece::One if si < s.len() => {
                    pi += 1;
                    si += char_len(s, si);
                    continue;
                }
                Piece::Lit(l) => {
                    let l = l.as_bytes();
                    if s.len() >= si + l.len() && &s[si..si + l.len()] == l {
                        pi += 1;
                        si += l.len();
                        continue;
                    }
                }
                Piece::One => {}
            }
        } else if si == s.len() {
            return true;
        }
        match star {
            Some((sp, ss)) if ss < s.len() => {
                let next = ss + char_len(s, ss);
                star = Some((sp, next));
                pi = sp + 1;
                si = next;
            }
            _ => return false,
        }
    }
}

/// One value matcher.
#[derive(Debug, Clone)]
pub enum Matcher {
    Glob(Glob),
    Re(regex::Regex),
    Cidr(IpAddr, u8),
    /// `exists`: whether the field is present.
    Exists(bool),
    /// `null`: absent or empty.
    Null,
    Num(NumOp, f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

fn cidr_contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            u32::from(n) & m == u32::from(i) & m
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            u128::from(n) & m == u128::from(i) & m
        }
        _ => false,
    }
}

impl Matcher {
    /// `value`: the field's value, `None` when the event has no such field.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let lower = value.map(str::to_lowercase);
        self.matches_prepared(value, lower.as_deref())
    }

    /// As `matches`, with the value's lower-case form already made.
    pub fn matches_prepared(&self, value: Option<&str>, lower: Option<&str>) -> bool {
        match (self, value) {
            (Matcher::Exists(want), v) => v.is_some() == *want,
            (Matcher::Null, v) => v.is_none_or(str::is_empty),
            (_, None) => false,
            (Matcher::Glob(g), Some(v)) => g.matches_prepared(v, lower.unwrap_or(v)),
            (Matcher::Re(r), Some(v)) => r.is_match(v),
            (Matcher::Cidr(n, l), Some(v)) => v
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|ip| cidr_contains(*n, *l, ip)),
            (Matcher::Num(op, x), Some(v)) => v.trim().parse::<f64>().is_ok_and(|y| match op {
                NumOp::Gt => y > *x,
                NumOp::Gte => y >= *x,
                NumOp::Lt => y < *x,
                NumOp::Lte => y <= *x,
            }),
        }
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64(data: &[u8]) -> String {
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The three shifted base64 forms of `s` whose stable middles any encoding of
/// a text containing `s` contains (Sigma's `base64offset`, as pySigma does it).
fn base64_offsets(s: &str) -> Vec<String> {
    (0..3usize)
        .map(|i| {
            let mut data = vec![b' '; i];
            data.extend_from_slice(s.as_bytes());
            let enc = b64(&data);
            let start = [0, 2, 3][i];
            let cut = [0, 3, 2][(s.len() + i) % 3];
            let end = enc.len().saturating_sub(cut);
            enc.get(start..end.max(start)).unwrap_or("").to_string()
        })
        .collect()
}

fn windash(s: &str) -> Vec<String> {
    let dashes = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];
    let mut out = vec![s.to_string()];
    if s.contains('-') || s.contains('/') {
        for d in dashes {
            let v: String = s
                .chars()
                .map(|c| if c == '-' || c == '/' { d } else { c })
                .collect();
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

/// Build the matchers for a field's values under its modifiers. Returns the
/// matchers and whether all must match (`all`).
pub fn build(
    modifiers: &[&str],
    values: &[Option<String>],
) -> Result<(Vec<Matcher>, bool), String> {
    let mut contains = false;
    let mut starts = false;
    let mut ends = false;
    let mut all = false;
    let mut cased = false;
    let mut re = false;
    let mut re_flags = String::new();
    let mut cidr = false;
    let mut exists = false;
    let mut num: Option<NumOp> = None;
    let mut transforms: Vec<&str> = Vec::new();
    for m in modifiers {
        match *m {
            "contains" => contains = true,
            "startswith" => starts = true,
            "endswith" => ends = true,
            "all" => all = true,
            "cased" => cased = true,
            "re" => re = true,
            "i" | "m" | "s" if re => re_flags.push_str(m),
            "ignorecase" if re => re_flags.push('i'),
            "multiline" if re => re_flags.push('m'),
            "dotall" if re => re_flags.push('s'),
            "cidr" => cidr = true,
            "exists" => exists = true,
            "gt" => num = Some(NumOp::Gt),
            "gte" => num = Some(NumOp::Gte),
            "lt" => num = Some(NumOp::Lt),
            "lte" => num = Some(NumOp::Lte),
            "base64" | "base64offset" | "windash" => transforms.push(m),
            other => return Err(format!("modifier {other:?} is not supported")),
        }
    }
    if all && values.len() < 2 {
        return Err("modifier 'all' needs a list of at least two values".into());
    }
    let mut out = Vec::new();
    for v in values {
        let Some(v) = v else {
            out.push(Matcher::Null);
            continue;
        };
        if exists {
            let b = match v.as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(format!("'exists' needs true or false, not {v:?}")),
            };
            out.push(Matcher::Exists(b));
            continue;
        }
        if let Some(op) = num {
            let x: f64 = v
                .parse()
                .map_err(|_| format!("{v:?} is not a number for a comparison modifier"))?;
            out.push(Matcher::Num(op, x));
            continue;
        }
        if cidr {
            let (a, l) = v
                .split_once('/')
                .unwrap_or((v, if v.contains(':') { "128" } else { "32" }));
            let ip: IpAddr = a.parse().map_err(|_| format!("{v:?} is not a CIDR"))?;
            let len: u8 = l.parse().map_err(|_| format!("{v:?} is not a CIDR"))?;
            if len > if ip.is_ipv4() { 32 } else { 128 } {
                return Err(format!("{v:?}: prefix length too long"));
            }
            out.push(Matcher::Cidr(ip, len));
            continue;
        }
        if re {
            let pat = if re_flags.is_empty() {
                v.clone()
            } else {
                format!("(?{re_flags}){v}")
            };
            let r = regex::RegexBuilder::new(&pat)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("bad regular expression {v:?}: {e}"))?;
            out.push(Matcher::Re(r));
            continue;
        }
        let mut forms = vec![v.clone()];
        for t in &transforms {
            forms = forms
                .into_iter()
                .flat_map(|f| match *t {
                    "base64" => vec![b64(f.as_bytes())],
                    "base64offset" => base64_offsets(&f),
                    _ => windash(&f),
                })
                .collect();
        }
        // Encoded forms are matched literally (wildcards are not encoded meaningfully).
        let encoded = transforms.iter().any(|t| t.starts_with("base64"));
        for f in forms {
            let text = if encoded {
                f.replace('\\', "\\\\")
                    .replace('*', "\\*")
                    .replace('?', "\\?")
            } else {
                f
            };
            let g = Glob::new(&text, cased || encoded).wrap(contains || ends, contains || starts);
            out.push(Matcher::Glob(g));
        }
    }
    Ok((out, all))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(mods: &[&str], v: &str, value: &str) -> bool {
        let (ms, _) = build(mods, &[Some(v.to_string())]).unwrap();
        ms.iter().any(|x| x.matches(Some(value)))
    }

    #[test]
    fn wildcards_are_anchored_to_the_whole_value() {
        assert!(m(&[], "net*user", "net localuser"));
        assert!(!m(&[], "net*user", "mynetXuserZ"));
        assert!(m(&[], "a?c", "abc"));
        assert!(!m(&[], "a?c", "abbc"));
        assert!(
            m(&[], "*.php", "/x/shell.PHP"),
            "case-insensitive by default"
        );
        assert!(!m(&["cased"], "*.php", "/x/shell.PHP"));
    }

    #[test]
    fn escapes() {
        assert!(m(&[], "a\\*b", "a*b"));
        assert!(!m(&[], "a\\*b", "axxb"));
        // `\\*` is a literal backslash followed by a wildcard.
        assert!(m(&[], "c:\\\\*", "c:\\windows"));
        assert!(!m(&[], "c:\\\\*", "c:windows"));
        // A backslash before anything else is literal.
        assert!(m(&[], "c:\\windows", "C:\\Windows"));
        assert!(m(&[], "what\\?", "what?"));
        assert!(!m(&[], "what\\?", "whatX"));
    }

    #[test]
    fn modifier_order_does_not_matter_for_flags() {
        assert!(m(&["cased", "contains"], "Admin", "/Admin/x"));
        assert!(m(&["contains", "cased"], "Admin", "/Admin/x"));
        assert!(!m(&["cased", "contains"], "Admin", "/admin/x"));
        assert!(m(&["startswith"], "/wp-", "/WP-login.php"));
        assert!(!m(&["startswith"], "/wp-", "/x/wp-login.php"));
        assert!(m(&["endswith"], ".env", "/app/.env"));
    }

    #[test]
    fn all_on_a_single_value_is_refused() {
        assert!(build(&["contains", "all"], &[Some("x".into())]).is_err());
        let (ms, all) = build(&["contains", "all"], &[Some("a".into()), Some("b".into())]).unwrap();
        assert!(all);
        assert_eq!(ms.len(), 2);
    }

    #[test]
    fn regex_cidr_numbers_exists_null() {
        assert!(m(&["re"], "^/a[0-9]+$", "/a123"));
        assert!(!m(&["re"], "^/A", "/a"));
        assert!(m(&["re", "i"], "^/A", "/a"));
        assert!(m(&["cidr"], "10.0.0.0/8", "10.2.3.4"));
        assert!(!m(&["cidr"], "10.0.0.0/8", "11.2.3.4"));
        assert!(m(&["cidr"], "2001:db8::/32", "2001:db8::1"));
        assert!(m(&["gte"], "500", "503"));
        assert!(!m(&["lt"], "400", "404"));
        let (e, _) = build(&["exists"], &[Some("true".into())]).unwrap();
        assert!(e[0].matches(Some("")) && !e[0].matches(None));
        let (n, _) = build(&[], &[None]).unwrap();
        assert!(n[0].matches(None) && n[0].matches(Some("")) && !n[0].matches(Some("x")));
        assert!(build(&["re"], &[Some("(".into())]).is_err());
        assert!(build(&["expand"], &[Some("x".into())]).is_err());
    }

    #[test]
    fn base64_forms() {
        assert_eq!(b64(b"whoami"), "d2hvYW1p");
        assert!(m(&["base64"], "whoami", "d2hvYW1p"));
        assert!(m(&["base64", "contains"], "whoami", "xx d2hvYW1p yy"));
        // base64offset finds the text at any alignment inside an encoded blob.
        for prefix in ["", "a", "ab"] {
            let blob = b64(format!("{prefix}/bin/sh -c id").as_bytes());
            assert!(
                m(&["base64offset", "contains"], "/bin/sh", &blob),
                "{prefix:?} {blob}"
            );
        }
    }

    #[test]
    fn windash_variants() {
        assert!(m(&["windash", "contains"], " -enc ", "powershell /enc abc"));
        assert!(m(
            &["windash", "contains"],
            " -enc ",
            "powershell \u{2013}enc abc"
        ));
    }
}
