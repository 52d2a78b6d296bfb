//! The request target, normalised once: what every policy judges and what the
//! origin receives, so that the edge and the origin never disagree about what
//! was asked.
//!
//! The path is normalised as nginx does before matching locations:
//! percent-encoded unreserved characters are decoded (`%6c` → `l`, `%2e` →
//! `.`), other escapes are kept with upper-case hex, dot-segments are
//! resolved and repeated slashes merged. What cannot be normalised safely is
//! refused ([`TargetError`], a 400): a broken escape, an encoded `/`, `\` or
//! control byte, a raw `\`, a `..` above the root, bytes outside visible
//! ASCII. The query is kept as sent (its bytes checked).
//!
//! Also here: query parameters, percent-decoding of a value, the component
//! encoder, and the open-redirect guard for return paths.

use std::borrow::Cow;

/// Why a target was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the path does not start with /")]
    NotOriginForm,
    #[error("broken percent escape")]
    BadEscape,
    #[error("encoded /, \\ or control byte in the path")]
    EncodedSeparator,
    #[error("backslash in the path")]
    Backslash,
    #[error("a dot-segment climbs above the root")]
    AboveRoot,
    #[error("byte outside visible ASCII")]
    BadByte,
}

/// A normalised request target: `path[?query]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    text: String,
    path_end: usize,
}

impl Target {
    /// The normalised path (starts with `/`, or is `*`).
    pub fn path(&self) -> &str {
        &self.text[..self.path_end]
    }
    /// The query without its `?`, if the target had one.
    pub fn query(&self) -> Option<&str> {
        self.text
            .get(self.path_end + 1..)
            .filter(|_| self.text.len() > self.path_end)
    }
    /// Path and query, as forwarded to the origin.
    pub fn as_str(&self) -> &str {
        &self.text
    }
    /// Whether the path is `prefix` or lies under it. A prefix ending in `/`
    /// matches the directory itself without the slash too (`/api/` matches `/api`).
    pub fn path_under(&self, prefix: &str) -> bool {
        under(self.path(), prefix)
    }
}

/// Whether `path` is `prefix` or lies under it (a prefix ending in `/`
/// matches the directory without the slash too).
pub fn under(path: &str, prefix: &str) -> bool {
    path.starts_with(prefix)
        || (prefix.len() > 1 && prefix.ends_with('/') && path == &prefix[..prefix.len() - 1])
}

/// As [`under`], ignoring ASCII case: for tags that an origin which does
/// not care about case must not let `/MEMBERS` walk around.
pub fn under_any_case(path: &str, prefix: &str) -> bool {
    let (p, x) = (path.as_bytes(), prefix.as_bytes());
    (p.len() >= x.len() && p[..x.len()].eq_ignore_ascii_case(x))
        || (x.len() > 1 && x.ends_with(b"/") && p.eq_ignore_ascii_case(&x[..x.len() - 1]))
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Normalise a request target in origin form (`/path?query`) or `*`.
/// An empty target is `/`.
pub fn normalize(raw: &[u8]) -> Result<Target, TargetError> {
    let (path, query) = match raw.iter().position(|&b| b == b'?') {
        Some(i) => (&raw[..i], Some(&raw[i + 1..])),
        None => (raw, None),
    };
    if let Some(q) = query {
        if !q.iter().all(|&b| (0x21..0x7f).contains(&b) && b != b'#') {
            return Err(TargetError::BadByte);
        }
    }
    let mut text = String::with_capacity(raw.len() + 1);
    // The common case, already normal: visible ASCII without `%`, `\`,
    // `//` or a dot-segment. Copied as is.
    let plain = path.first() == Some(&b'/')
        && path
            .iter()
            .all(|&b| (0x21..0x7f).contains(&b) && !matches!(b, b'%' | b'\\' | b'#'))
        && !path.windows(2).any(|w| w == b"//" || w == b"/.");
    if plain {
        text.extend(path.iter().map(|&b| char::from(b)));
    } else if path == b"*" {
        text.push('*');
    } else if path.is_empty() {
        text.push('/');
    } else {
        if path[0] != b'/' {
            return Err(TargetError::NotOriginForm);
        }
        // 1. Decode unreserved escapes; keep the others, upper-cased.
        let mut decoded: Vec<u8> = Vec::with_capacity(path.len());
        let mut i = 0;
        while i < path.len() {
            let b = path[i];
            match b {
                b'%' => {
                    let (Some(h), Some(l)) = (
                        path.get(i + 1).copied().and_then(hex),
                        path.get(i + 2).copied().and_then(hex),
                    ) else {
                        return Err(TargetError::BadEscape);
                    };
                    let c = (h << 4) | l;
                    if c == b'/' || c == b'\\' || c < 0x20 || c == 0x7f {
                        return Err(TargetError::EncodedSeparator);
                    }
                    if unreserved(c) {
                        decoded.push(c);
                    } else {
                        decoded.extend_from_slice(&[
                            b'%',
                            HEX_UPPER[(c >> 4) as usize],
                            HEX_UPPER[(c & 15) as usize],
                        ]);
                    }
                    i += 3;
                }
                b'\\' => return Err(TargetError::Backslash),
                0x21..=0x7e if b != b'#' => {
                    decoded.push(b);
                    i += 1;
                }
                _ => return Err(TargetError::BadByte),
            }
        }
        // 2. Resolve dot-segments and merge slashes.
        let mut segments: Vec<&[u8]> = Vec::new();
        let mut trailing = false;
        for seg in decoded.split(|&b| b == b'/').skip(1) {
            trailing = false;
            match seg {
                b"" => trailing = true,
                b"." => trailing = true,
                b".." => {
                    if segments.pop().is_none() {
                        return Err(TargetError::AboveRoot);
                    }
                    trailing = true;
                }
                s => segments.push(s),
            }
        }
        for s in &segments {
            text.push('/');
            // Every byte is visible ASCII, checked above.
            text.extend(s.iter().map(|&b| char::from(b)));
        }
        if segments.is_empty() || trailing {
            text.push('/');
        }
    }
    let path_end = text.len();
    if let Some(q) = query {
        text.push('?');
        text.extend(q.iter().map(|&b| char::from(b)));
    }
    Ok(Target { text, path_end })
}

/// The value of parameter `key` in a query string, percent-decoded
/// (`+` is a space). The first occurrence wins; `None` when absent or not
/// valid UTF-8 after decoding.
pub fn query_param<'a>(query: &'a str, key: &str) -> Option<Cow<'a, str>> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| percent_decode(v)).flatten()
    })
}

/// Percent-decode a query value (`+` is a space); `None` on a broken escape
/// or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Some(Cow::Borrowed(s));
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = b.get(i + 1).copied().and_then(hex)?;
                let l = b.get(i + 2).copied().and_then(hex)?;
                out.push((h << 4) | l);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// Percent-encode everything but unreserved characters (for a query value).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[(b >> 4) as usize]));
            out.push(char::from(HEX_UPPER[(b & 15) as usize]));
        }
    }
    out
}

/// A safe place to send a browser back to: a path on this site (decoded
/// from a query value), or `/`. Never another host (`//h`, `/\h`), never a
/// control byte, a space or a quote, at most 4 KiB.
pub fn safe_return(encoded: Option<&str>) -> String {
    match encoded.and_then(percent_decode) {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && p.bytes()
                    .all(|b| (0x21..0x7f).contains(&b) && !matches!(b, b'"' | b'<' | b'>'))
                && p.len() < 4096 =>
        {
            p.into_owned()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Result<String, TargetError> {
        normalize(s.as_bytes()).map(|t| t.as_str().to_string())
    }

    #[test]
    fn dot_segments_and_slashes_are_resolved() {
        assert_eq!(n("/.well-known/../x").unwrap(), "/x");
        assert_eq!(n("/.well-known/%2e%2e/search?q=1").unwrap(), "/search?q=1");
        assert_eq!(n("//login").unwrap(), "/login");
        assert_eq!(n("/./login").unwrap(), "/login");
        assert_eq!(n("/%6cogin").unwrap(), "/login");
        assert_eq!(n("/a/b/../c/./d/").unwrap(), "/a/c/d/");
        assert_eq!(n("/a/..").unwrap(), "/");
        assert_eq!(n("/a/.").unwrap(), "/a/");
        assert_eq!(n("/").unwrap(), "/");
        assert_eq!(n("").unwrap(), "/");
        assert_eq!(n("?x=1").unwrap(), "/?x=1");
        assert_eq!(n("*").unwrap(), "*");
        assert_eq!(n("/a%20b%3f").unwrap(), "/a%20b%3F");
        assert_eq!(n("/q?a=../b&c=%2F").unwrap(), "/q?a=../b&c=%2F");
    }

    #[test]
    fn unsafe_targets_are_refused() {
        assert_eq!(n("/../x"), Err(TargetError::AboveRoot));
        assert_eq!(n("/a/%2e%2e/%2e%2e/x"), Err(TargetError::AboveRoot));
        assert_eq!(n("/a%2f..%2fb"), Err(TargetError::EncodedSeparator));
        assert_eq!(n("/a%5cb"), Err(TargetError::EncodedSeparator));
        assert_eq!(n("/a%00b"), Err(TargetError::EncodedSeparator));
        assert_eq!(n("/a\\b"), Err(TargetError::Backslash));
        assert_eq!(n("/a%zz"), Err(TargetError::BadEscape));
        assert_eq!(n("/a%4"), Err(TargetError::BadEscape));
        assert_eq!(n("x/a"), Err(TargetError::NotOriginForm));
        assert_eq!(normalize(b"/\xff").map(|_| ()), Err(TargetError::BadByte));
        assert_eq!(n("/a b"), Err(TargetError::BadByte));
        assert_eq!(n("/a?b c"), Err(TargetError::BadByte));
    }

    #[test]
    fn normalising_is_idempotent() {
        for s in ["/a//b/../c", "/%41%2e/x?y", "/x/./", "/%7e%7Eu"] {
            let once = n(s).unwrap();
            assert_eq!(n(&once).unwrap(), once, "{s}");
        }
    }

    #[test]
    fn prefixes_match_on_the_normalised_path() {
        let t = normalize(b"/.well-known/../wp-login.php").unwrap();
        assert!(!t.path_under("/.well-known/"));
        let t = normalize(b"/api").unwrap();
        assert!(t.path_under("/api/"));
        assert!(!normalize(b"/apix").unwrap().path_under("/api/"));
        assert_eq!(t.query(), None);
        assert_eq!(normalize(b"/a?").unwrap().query(), Some(""));
    }

    #[test]
    fn query_values_and_returns() {
        assert_eq!(query_param("t=a%2Bb&c=2", "t").as_deref(), Some("a+b"));
        assert_eq!(query_param("x&t=1", "x").as_deref(), Some(""));
        assert_eq!(query_param("t=%zz", "t"), None);
        assert_eq!(safe_return(Some("%2Fa%3Fb%3D1")), "/a?b=1");
        assert_eq!(safe_return(Some("//evil.example/")), "/");
        assert_eq!(safe_return(Some("https%3A%2F%2Fevil.example")), "/");
        assert_eq!(safe_return(Some("/%5Cevil")), "/");
        assert_eq!(safe_return(Some("/a%0d%0aSet-Cookie:x")), "/");
        assert_eq!(safe_return(Some("/%3C/script%3E")), "/");
        assert_eq!(safe_return(None), "/");
        assert_eq!(encode_component("/a?b=1"), "%2Fa%3Fb%3D1");
    }
}
