//! The field-mapping profile for web logs: Sigma's web server and proxy
//! field names onto a log record.
//!
//! | Sigma field | from the record |
//! |---|---|
//! | `c-ip`, `src_ip` | client address |
//! | `cs-method` | method |
//! | `cs-uri-query`, `cs-uri`, `c-uri`, `request` | path plus query, as logged (not URL-decoded) |
//! | `cs-uri-stem`, `c-uri-stem` | path |
//! | `c-uri-query` | query only |
//! | `c-uri-extension` | the path's extension (without the dot) |
//! | `sc-status` | status |
//! | `c-useragent`, `cs-user-agent` | User-Agent |
//! | `cs-referer`, `cs-referrer` | Referer |
//! | `cs-host`, `r-dns` | host (or site) |
//! | `cs-bytes` | request bytes, `sc-bytes` response bytes |
//! | `cs-username` | authenticated user |

use crate::logs::Record;
use std::borrow::Cow;

/// A record seen as a Sigma event, with its lower-case forms made once.
/// For an ASCII line (nearly every one) that costs one copy: the line is
/// lower-cased into the caller's scratch buffer and each field that stands
/// verbatim in the line is read there at the same offsets.
pub struct WebEvent<'a> {
    pub rec: &'a Record<'a>,
    pub raw: &'a str,
    lower: Record<'a>,
    raw_lower: &'a str,
}

/// Where `f` lies in `raw`, if it is a slice of it.
fn offset_in(raw: &str, f: &str) -> Option<usize> {
    let (r, p) = (raw.as_ptr() as usize, f.as_ptr() as usize);
    (p >= r && p + f.len() <= r + raw.len()).then(|| p - r)
}

impl<'a> WebEvent<'a> {
    pub fn new(rec: &'a Record<'a>, raw: &'a str, scratch: &'a mut String) -> WebEvent<'a> {
        let ascii = raw.is_ascii();
        scratch.clear();
        if ascii {
            scratch.push_str(raw);
            scratch.make_ascii_lowercase();
        } else {
            scratch.push_str(&raw.to_lowercase());
        }
        let raw_lower: &'a str = scratch;
        let low = |f: &'a Cow<'a, str>| -> Cow<'a, str> {
            let f: &'a str = f;
            if ascii {
                if let Some(o) = offset_in(raw, f) {
                    if let Some(l) = raw_lower.get(o..o + f.len()) {
                        return Cow::Borrowed(l);
                    }
                }
            }
            if f.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
                return Cow::Borrowed(f);
            }
            Cow::Owned(f.to_lowercase())
        };
        let lower = Record {
            ts_ms: rec.ts_ms,
            client: low(&rec.client),
            user: low(&rec.user),
            method: low(&rec.method),
            target: low(&rec.target),
            protocol: Cow::Borrowed(""),
            status: rec.status,
            bytes_out: rec.bytes_out,
            bytes_in: rec.bytes_in,
            referer: low(&rec.referer),
            user_agent: low(&rec.user_agent),
            host: low(&rec.host),
        };
        WebEvent {
            rec,
            raw,
            lower,
            raw_lower,
        }
    }
}

/// The fields whose values [`Hay`] holds between double
/// quotes, by their Sigma names.
pub const QUOTED_FIELDS: [&str; 6] = [
    "c-useragent",
    "cs-user-agent",
    "cs-referer",
    "cs-referrer",
    "cs-host",
    "r-dns",
];

impl WebEvent<'_> {
    /// What the rules' prefilter searches of this event.
    pub fn hay(&self) -> Hay<'_> {
        if let Some(h) = Hay::verbatim(self.rec, self.raw) {
            return h;
        }
        Hay {
            line: self.raw_lower,
            vals: &self.lower,
            verbatim: false,
        }
    }
}

/// What the rules' prefilter searches of a record, case-insensitively for
/// ASCII: [`Hay::line`] and [`Hay::additions`] (searched apart: no value
/// straddles the two). Its promises: each field's value is in one of the
/// two (in lower case when the line is not ASCII: `prefilter` lower-cases
/// its literals), and the User-Agent's, the Referer's and the host's stand
/// between double quotes (`"value"`, as [`QUOTED_FIELDS`]), so a literal
/// that starts or ends such a value can be searched with its quote.
///
/// A *verbatim* line, an ASCII common-format line with no escape, holds
/// its fields as they are (the User-Agent and Referer in quotes): it is
/// searched as logged, with no copy and no lower-casing (most lines match
/// no rule, and only those that may are made a [`WebEvent`]), and only a
/// quoted field not seen in quotes there (the host, never in the line) is
/// added. Any other line (escapes, JSON, other than ASCII) is searched in
/// lower case, every field added in quotes.
pub struct Hay<'a> {
    line: &'a str,
    /// The record's values: as parsed when verbatim, else in lower case.
    vals: &'a Record<'a>,
    verbatim: bool,
}

impl<'a> Hay<'a> {
    /// The hay of a record parsed from a verbatim line (`None` when `raw`
    /// is not: then see [`WebEvent::hay`]).
    pub fn verbatim(rec: &'a Record<'a>, raw: &'a str) -> Option<Hay<'a>> {
        let verbatim = raw.is_ascii()
            && !(raw.trim_start().starts_with('{')
                || memchr::memchr(b'\\', raw.as_bytes()).is_some());
        verbatim.then_some(Hay {
            line: raw,
            vals: rec,
            verbatim: true,
        })
    }

    /// The line: as logged when verbatim, else in lower case.
    pub fn line(&self) -> &[u8] {
        self.line.as_bytes()
    }

    /// The values [`Hay::line`] does not hold as promised, onto `out`.
    pub fn additions(&self, out: &mut Vec<u8>) {
        let r = self.vals;
        let quoted = [&r.referer, &r.user_agent, &r.host];
        if self.verbatim {
            let raw = self.line.as_bytes();
            for v in quoted {
                let in_quotes = v.is_empty()
                    || offset_in(self.line, v).is_some_and(|o| {
                        o > 0
                            && raw.get(o - 1) == Some(&b'"')
                            && raw.get(o + v.len()) == Some(&b'"')
                    });
                if in_quotes {
                    continue;
                }
                if v.is_ascii() {
                    push_quoted(out, v.as_bytes());
                } else {
                    push_quoted(out, v.to_lowercase().as_bytes());
                }
            }
            return;
        }
        for v in [&r.client, &r.user, &r.method, &r.target]
            .into_iter()
            .chain(quoted)
        {
            push_quoted(out, v.as_bytes());
        }
        use std::io::Write as _;
        let _ = write!(out, "\0{}\0{}\0", r.status, r.bytes_out);
        if let Some(b) = r.bytes_in {
            let _ = write!(out, "{b}\0");
        }
    }
}

/// `\0"v"` onto the haystack.
fn push_quoted(out: &mut Vec<u8>, v: &[u8]) {
    out.extend_from_slice(b"\0\"");
    out.extend_from_slice(v);
    out.push(b'"');
}

fn get<'r>(r: &'r Record<'_>, name: &str) -> Option<Cow<'r, str>> {
    let s = |v: &'r str| (!v.is_empty()).then_some(Cow::Borrowed(v));
    match name {
        "c-ip" | "src_ip" => s(&r.client),
        "cs-method" => s(&r.method),
        "cs-uri-query" | "cs-uri" | "c-uri" | "request" => s(&r.target),
        "cs-uri-stem" | "c-uri-stem" => s(r.path()),
        "c-uri-query" => s(r.query()),
        "c-uri-extension" => {
            let p = r.path();
            let last = p.rsplit('/').next().unwrap_or("");
            last.rsplit_once('.').map(|(_, e)| Cow::Borrowed(e))
        }
        "sc-status" => (r.status != 0).then(|| Cow::Owned(r.status.to_string())),
        "c-useragent" | "cs-user-agent" => s(&r.user_agent),
        "cs-referer" | "cs-referrer" => s(&r.referer),
        "cs-host" | "r-dns" => s(&r.host),
        "cs-bytes" => r.bytes_in.map(|b| Cow::Owned(b.to_string())),
        "sc-bytes" => Some(Cow::Owned(r.bytes_out.to_string())),
        "cs-username" => s(&r.user),
        _ => None,
    }
}

impl levee_sigma::Event for WebEvent<'_> {
    fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        get(self.rec, name)
    }

    fn raw(&self) -> &str {
        self.raw
    }

    fn field_lower(&self, name: &str) -> Option<Cow<'_, str>> {
        get(&self.lower, name)
    }

    fn raw_lower(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.raw_lower)
    }
}
