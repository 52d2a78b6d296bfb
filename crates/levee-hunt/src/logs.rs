//! Web access log lines into records: nginx/Apache combined and common
//! formats, and JSON lines (Levee's own access log, or other JSON logs
//! through a field mapping). Pure: a line in, a record or a reason out.

use std::borrow::Cow;

/// One request, as logged. Its text fields borrow from the line where
/// they stand in it verbatim (a common-format field without escapes), so
/// that reading a line allocates nothing; `into_owned` detaches it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Record<'a> {
    /// Unix time in milliseconds.
    pub ts_ms: i64,
    pub client: Cow<'a, str>,
    pub user: Cow<'a, str>,
    pub method: Cow<'a, str>,
    /// Path and query, as logged (not URL-decoded).
    pub target: Cow<'a, str>,
    pub protocol: Cow<'a, str>,
    pub status: u16,
    pub bytes_out: u64,
    pub bytes_in: Option<u64>,
    pub referer: Cow<'a, str>,
    pub user_agent: Cow<'a, str>,
    pub host: Cow<'a, str>,
}

impl Record<'_> {
    /// The same record, owning its text.
    pub fn into_owned(self) -> Record<'static> {
        let o = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        Record {
            ts_ms: self.ts_ms,
            client: o(self.client),
            user: o(self.user),
            method: o(self.method),
            target: o(self.target),
            protocol: o(self.protocol),
            status: self.status,
            bytes_out: self.bytes_out,
            bytes_in: self.bytes_in,
            referer: o(self.referer),
            user_agent: o(self.user_agent),
            host: o(self.host),
        }
    }

    pub fn path(&self) -> &str {
        match memchr::memchr(b'?', self.target.as_bytes()) {
            Some(i) => &self.target[..i],
            None => &self.target,
        }
    }
    pub fn query(&self) -> &str {
        match memchr::memchr(b'?', self.target.as_bytes()) {
            Some(i) => &self.target[i + 1..],
            None => "",
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Unix ms of a civil time in UTC, validated (`31/Feb` is no date).
pub fn utc_ms(y: i64, m: u32, d: u32, hh: i64, mm: i64, ss: i64) -> Option<i64> {
    let dt = jiff::civil::DateTime::new(
        i16::try_from(y).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(d).ok()?,
        i8::try_from(hh).ok()?,
        i8::try_from(mm).ok()?,
        // A leap second is read as the second before.
        i8::try_from(ss.min(59)).ok()?,
        0,
    )
    .ok()?;
    Some(
        dt.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_millisecond(),
    )
}

/// `17/May/2015:10:05:03 +0000` → Unix ms.
pub fn parse_clf_time(s: &str) -> Option<i64> {
    let (dt, tz) = s.split_once(' ')?;
    let mut p = dt.split(['/', ':']);
    let day: u32 = p.next()?.parse().ok()?;
    let mon = p.next()?;
    let m = MONTHS.iter().position(|x| *x == mon)? as u32 + 1;
    let year: i64 = p.next()?.parse().ok()?;
    let hh: i64 = p.next()?.parse().ok()?;
    let mm: i64 = p.next()?.parse().ok()?;
    let ss: i64 = p.next()?.parse().ok()?;
    if !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let tz = tz.trim();
    let sign = match tz.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let tzh: i64 = tz.get(1..3)?.parse().ok()?;
    let tzm: i64 = tz.get(3..5)?.parse().ok()?;
    let offset = sign * (tzh * 3600 + tzm * 60);
    Some(utc_ms(year, m, day, hh, mm, ss)? - offset * 1000)
}

/// `parse_clf_time`, remembering the last hour read on this thread: the
/// lines of a log mostly share their hour (and zone) with the line before,
/// so for `dd/Mon/yyyy:hh:mm:ss +zzzz` only the minutes and seconds are
/// read anew. Anything of another shape is parsed whole.
fn clf_time_cached(s: &str) -> Option<i64> {
    thread_local! {
        /// The hour's prefix and zone (`17/May/2015:10 +0000`) and its start.
        static LAST: std::cell::RefCell<(String, Option<i64>)> =
            const { std::cell::RefCell::new((String::new(), None)) };
    }
    let b = s.as_bytes();
    let digits = |i: usize| -> Option<i64> {
        let (x, y) = (*b.get(i)?, *b.get(i + 1)?);
        (x.is_ascii_digit() && y.is_ascii_digit())
            .then(|| i64::from(x - b'0') * 10 + i64::from(y - b'0'))
    };
    let shaped = b.len() == 26 && b[14] == b':' && b[17] == b':' && b[20] == b' ';
    let (Some(mm), Some(ss), true) = (digits(15), digits(18), shaped) else {
        return parse_clf_time(s);
    };
    if mm > 59 || ss > 60 {
        return None;
    }
    let (hour, zone) = (s.get(..14)?, s.get(20..)?);
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        let same =
            last.0.len() == 20 && last.0.get(..14) == Some(hour) && last.0.get(14..) == Some(zone);
        if !same {
            last.0.clear();
            last.0.push_str(hour);
            last.0.push_str(zone);
            last.1 = parse_clf_time(&format!("{hour}:00:00{zone}"));
        }
        // A leap second is read as the second before, as `utc_ms` does.
        last.1.map(|h| h + (mm * 60 + ss.min(59)) * 1000)
    })
}

/// A quoted field starting at `s` (after the opening quote); returns (content, rest).
fn quoted(s: &str) -> Option<(Cow<'_, str>, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut escaped = false;
    loop {
        i += memchr::memchr2(b'\\', b'"', b.get(i..)?)?;
        if b[i] == b'"' {
            break;
        }
        escaped = true;
        i += 2;
    }
    let raw = &s[..i];
    let v = if escaped {
        Cow::Owned(raw.replace("\\\"", "\"").replace("\\\\", "\\"))
    } else {
        Cow::Borrowed(raw)
    };
    Some((v, &s[i + 1..]))
}

/// The request line's method, target and protocol, borrowed when it was.
fn request_parts(req: Cow<'_, str>) -> (Cow<'_, str>, Cow<'_, str>, Cow<'_, str>) {
    fn split(req: &str) -> (&str, &str, &str) {
        let Some((m, rest)) = cut(req, b' ') else {
            return (req, "", "");
        };
        let (t, p) = cut(rest, b' ').unwrap_or((rest, ""));
        (m, t, p)
    }
    match req {
        Cow::Borrowed(req) => {
            let (m, t, p) = split(req);
            (Cow::Borrowed(m), Cow::Borrowed(t), Cow::Borrowed(p))
        }
        Cow::Owned(req) => {
            let (m, t, p) = split(&req);
            let o = |s: &str| Cow::Owned(s.to_string());
            (o(m), o(t), o(p))
        }
    }
}

/// `s` split at the first `sep` (an ASCII byte), as `split_once`: the
/// fields it splits are short, where a plain scan beats a searcher.
fn cut(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Parse a combined or common log format line.
pub fn parse_clf(line: &str) -> Result<Record<'_>, &'static str> {
    let mut r = Record::default();
    let (client, rest) = cut(line, b' ').ok_or("no client address")?;
    r.client = Cow::Borrowed(client);
    let (_ident, rest) = cut(rest, b' ').ok_or("no ident field")?;
    let (user, rest) = cut(rest, b' ').ok_or("no user field")?;
    if user != "-" {
        r.user = Cow::Borrowed(user);
    }
    let rest = rest.strip_prefix('[').ok_or("no [time]")?;
    let (time, rest) = cut(rest, b']').ok_or("unterminated [time]")?;
    r.ts_ms = clf_time_cached(time).ok_or("bad time")?;
    let rest = rest
        .trim_start()
        .strip_prefix('"')
        .ok_or("no quoted request")?;
    let (req, rest) = quoted(rest).ok_or("unterminated request")?;
    let (method, target, protocol) = request_parts(req);
    r.method = method;
    r.target = target;
    r.protocol = protocol;
    // As `splitn(3, ' ')`: status, byte count, the rest.
    let rest = rest.trim_start();
    let (status, after) = match cut(rest, b' ') {
        Some((s, after)) => (s, Some(after)),
        None => (rest, None),
    };
    r.status = status.parse().map_err(|_| "bad status")?;
    let after = after.ok_or("no byte count")?;
    let (bytes, rest) = match cut(after, b' ') {
        Some((b, rest)) => (b, Some(rest)),
        None => (after, None),
    };
    r.bytes_out = if bytes == "-" {
        0
    } else {
        bytes.parse().map_err(|_| "bad byte count")?
    };
    if let Some(rest) = rest {
        let rest = rest.trim_start();
        if let Some(q) = rest.strip_prefix('"') {
            let (referer, rest) = quoted(q).ok_or("unterminated referer")?;
            if referer != "-" {
                r.referer = referer;
            }
            if let Some(q) = rest.trim_start().strip_prefix('"') {
                let (ua, _) = quoted(q).ok_or("unterminated user agent")?;
                if ua != "-" {
                    r.user_agent = ua;
                }
            }
        }
    }
    Ok(r)
}

/// Which JSON keys hold which record field (defaults: Levee's access log).
#[derive(Debug, Clone)]
pub struct JsonMapping {
    pub ts_ms: Vec<String>,
    pub client: Vec<String>,
    pub method: Vec<String>,
    pub target: Vec<String>,
    pub status: Vec<String>,
    pub bytes_out: Vec<String>,
    pub bytes_in: Vec<String>,
    pub referer: Vec<String>,
    pub user_agent: Vec<String>,
    pub host: Vec<String>,
}

impl Default for JsonMapping {
    fn default() -> Self {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        JsonMapping {
            ts_ms: v(&["ts_ms", "timestamp", "@timestamp", "time"]),
            client: v(&["client", "remote_addr", "client_ip"]),
            method: v(&["method", "request_method"]),
            target: v(&["path", "request_uri", "uri"]),
            status: v(&["status"]),
            bytes_out: v(&["bytes_out", "body_bytes_sent", "bytes_sent"]),
            bytes_in: v(&["bytes_in", "request_length"]),
            referer: v(&["referer", "http_referer"]),
            user_agent: v(&["user_agent", "http_user_agent"]),
            host: v(&["site", "host"]),
        }
    }
}

impl JsonMapping {
    /// Put `key` first for the record field `field` (`--json-field client=remote_ip`).
    pub fn set(&mut self, field: &str, key: &str) -> Result<(), String> {
        let slot = match field {
            "ts" | "ts_ms" | "time" => &mut self.ts_ms,
            "client" => &mut self.client,
            "method" => &mut self.method,
            "target" | "path" => &mut self.target,
            "status" => &mut self.status,
            "bytes_out" => &mut self.bytes_out,
            "bytes_in" => &mut self.bytes_in,
            "referer" => &mut self.referer,
            "user_agent" => &mut self.user_agent,
            "host" => &mut self.host,
            other => {
                return Err(format!(
                    "{other:?} is not a record field (time, client, method, target, status, bytes_out, bytes_in, referer, user_agent, host)"
                ))
            }
        };
        slot.insert(0, key.to_string());
        Ok(())
    }
}

/// Parse a JSON line with a mapping.
pub fn parse_json(line: &str, m: &JsonMapping) -> Result<Record<'static>, &'static str> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|_| "not valid JSON")?;
    let o = v.as_object().ok_or("not a JSON object")?;
    let get = |keys: &[String]| keys.iter().find_map(|k| o.get(k.as_str()));
    let s = |keys: &[String]| -> Cow<'static, str> {
        Cow::Owned(
            get(keys)
                .map(|x| match x {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default(),
        )
    };
    let n = |keys: &[String]| {
        get(keys).and_then(|x| {
            x.as_u64()
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        })
    };
    // Milliseconds or seconds since the epoch, or an ISO 8601 / RFC 3339 text.
    let ts = match get(&m.ts_ms) {
        Some(serde_json::Value::Number(n)) => match n.as_f64() {
            Some(x) if x > 1e11 => x as i64,
            Some(x) => (x * 1000.0) as i64,
            None => return Err("bad timestamp"),
        },
        Some(serde_json::Value::String(t)) => crate::parse_time(t).ok_or("bad timestamp")?,
        _ => return Err("no timestamp"),
    };
    Ok(Record {
        ts_ms: ts,
        client: s(&m.client),
        user: Cow::Borrowed(""),
        method: s(&m.method),
        target: s(&m.target),
        protocol: Cow::Borrowed(""),
        status: n(&m.status)
            .and_then(|x| u16::try_from(x).ok())
            .unwrap_or(0),
        bytes_out: n(&m.bytes_out).unwrap_or(0),
        bytes_in: n(&m.bytes_in),
        referer: s(&m.referer),
        user_agent: s(&m.user_agent),
        host: s(&m.host),
    })
}

/// Parse a line of either kind (JSON if it starts with `{`).
pub fn parse_line<'a>(line: &'a str, m: &JsonMapping) -> Result<Record<'a>, &'static str> {
    if line.trim_start().starts_with('{') {
        parse_json(line, m)
    } else {
        parse_clf(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_and_common() {
        let r = parse_clf(r#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/x.png?a=1 HTTP/1.1" 200 203023 "http://semicomplete.com/" "Mozilla/5.0 (X)""#).unwrap();
        assert_eq!(r.client, "83.149.9.216");
        assert_eq!(r.ts_ms, 1_431_857_103_000);
        assert_eq!(r.method, "GET");
        assert_eq!(r.path(), "/presentations/x.png");
        assert_eq!(r.query(), "a=1");
        assert_eq!(r.status, 200);
        assert_eq!(r.bytes_out, 203_023);
        assert_eq!(r.referer, "http://semicomplete.com/");
        assert_eq!(r.user_agent, "Mozilla/5.0 (X)");
        let c = parse_clf(
            r#"10.0.0.1 - bob [01/Jan/2026:00:00:00 +0100] "POST /login HTTP/1.1" 401 -"#,
        )
        .unwrap();
        assert_eq!(c.user, "bob");
        assert_eq!(c.ts_ms, 1_767_222_000_000);
        assert_eq!(c.bytes_out, 0);
        let q = parse_clf(
            r#"1.1.1.1 - - [01/Jan/2026:00:00:00 +0000] "GET /\"x\" HTTP/1.1" 200 1 "-" "a \"b\"""#,
        )
        .unwrap();
        assert_eq!(q.target, "/\"x\"");
        assert_eq!(q.user_agent, "a \"b\"");
    }

    /// The fields after the request split as `splitn(3, ' ')` did: each
    /// missing or bad piece is named, and a request line of one or two
    /// words is kept as it is.
    #[test]
    fn status_bytes_and_short_requests_split_as_before() {
        type Parts = (String, String, String, u16, u64);
        let with = |req: &str, tail: &str| -> Result<Parts, &'static str> {
            let line = format!(r#"1.1.1.1 - - [01/Jan/2026:00:00:00 +0000] "{req}" {tail}"#);
            parse_clf(&line).map(|r| {
                let p = (r.method.to_string(), r.target.to_string());
                (p.0, p.1, r.protocol.to_string(), r.status, r.bytes_out)
            })
        };
        assert_eq!(
            with("GET / HTTP/1.1", "200 5"),
            Ok(("GET".into(), "/".into(), "HTTP/1.1".into(), 200, 5))
        );
        assert_eq!(
            with("GET", "200 5"),
            Ok(("GET".into(), "".into(), "".into(), 200, 5))
        );
        assert_eq!(
            with("GET /a", "404 -"),
            Ok(("GET".into(), "/a".into(), "".into(), 404, 0))
        );
        assert_eq!(
            with("GET /a HTTP/1.1 x", "200 1"),
            Ok(("GET".into(), "/a".into(), "HTTP/1.1 x".into(), 200, 1))
        );
        assert_eq!(with("GET /", "200"), Err("no byte count"));
        assert_eq!(with("GET /", "2x0 5"), Err("bad status"));
        assert_eq!(with("GET /", "200 5x"), Err("bad byte count"));
        assert_eq!(parse_clf("1.1.1.1"), Err("no client address"));
        assert_eq!(
            parse_clf("1.1.1.1 - - [01/Jan/2026:00:00:00 +0000"),
            Err("unterminated [time]")
        );
    }

    /// The cached reading of a time is the whole reading, for times of
    /// the usual shape and others, valid or not, in any order.
    #[test]
    fn cached_times_read_as_parsed_whole() {
        let times = [
            "17/May/2015:10:05:03 +0000",
            "17/May/2015:10:59:60 +0000",
            "17/May/2015:10:05:03 +0200",
            "17/May/2015:11:00:00 -0130",
            "31/Feb/2015:10:05:03 +0000",
            "29/Feb/2016:23:59:59 +0000",
            "29/Feb/2015:23:59:59 +0000",
            "17/May/2015:10:60:03 +0000",
            "17/May/2015:10:05:61 +0000",
            "17/May/2015:24:05:03 +0000",
            "17/May/2015:10:+5:03 +0000",
            "17/May/2015:10:05:03 +000",
            "17/May/2015:10:05:03 x0000",
            "7/May/2015:10:05:03 +0000",
            "17/Mai/2015:10:05:03 +0000",
            "17/May/2015:10:05:03",
            "",
        ];
        for round in 0..3 {
            for (i, t) in times.iter().enumerate() {
                let t = times[(i * (round + 1)) % times.len()].min(t);
                assert_eq!(clf_time_cached(t), parse_clf_time(t), "{t:?}");
            }
        }
        assert!(clf_time_cached("31/Feb/2015:10:05:03 +0000").is_none());
        assert_eq!(
            clf_time_cached("17/May/2015:10:05:03 +0000"),
            utc_ms(2015, 5, 17, 10, 5, 3)
        );
    }

    #[test]
    fn malformed_lines_say_why() {
        assert_eq!(parse_clf(""), Err("no client address"));
        assert_eq!(
            parse_clf("1.1.1.1 - - [bad] \"GET / HTTP/1.1\" 200 1"),
            Err("bad time")
        );
        assert_eq!(
            parse_clf("1.1.1.1 - - [31/Feb/2015:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1"),
            Err("bad time"),
            "no 31 February"
        );
        assert_eq!(
            parse_clf("1.1.1.1 - - [01/Jan/2026:00:00:00 +0000] \"GET / HTTP/1.1"),
            Err("unterminated request")
        );
        assert_eq!(
            parse_clf("1.1.1.1 - - [01/Jan/2026:00:00:00 +0000] \"GET / HTTP/1.1\" abc 1"),
            Err("bad status")
        );
        assert_eq!(
            parse_json("{", &JsonMapping::default()),
            Err("not valid JSON")
        );
    }

    #[test]
    fn levee_json_lines() {
        let l = r#"{"ts_ms":1795929925542,"client":"192.0.2.1","site":"demo","method":"GET","path":"/a?b=c","status":200,"bytes_in":0,"bytes_out":17,"duration_us":311,"origin_us":216,"verdict":"allow","reason":"","tls":null,"ja4":null,"proto":"h2","request_id":"abc"}"#;
        let r = parse_line(l, &JsonMapping::default()).unwrap();
        assert_eq!(r.client, "192.0.2.1");
        assert_eq!(r.host, "demo");
        assert_eq!(r.target, "/a?b=c");
        assert_eq!(r.bytes_out, 17);
        let mut m = JsonMapping::default();
        m.set("client", "remote_ip").unwrap();
        m.set("target", "url").unwrap();
        assert!(m.set("nope", "x").is_err());
        let other = r#"{"@timestamp":"2026-05-17T10:00:00Z","remote_ip":"198.51.100.1","url":"/x","status":"404"}"#;
        let r = parse_line(other, &m).unwrap();
        assert_eq!(
            (r.ts_ms, &*r.client, &*r.target, r.status),
            (1_779_012_000_000, "198.51.100.1", "/x", 404)
        );
        let secs = r#"{"time":1779012000,"client":"x"}"#;
        assert_eq!(
            parse_line(secs, &JsonMapping::default()).unwrap().ts_ms,
            1_779_012_000_000
        );
    }
}
