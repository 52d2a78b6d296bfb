//! HTTP/1.x heads: strict request parsing and origin-response parsing.
//!
//! The parsers return byte ranges into the caller's buffer, so the caller can
//! keep the head as one shared buffer and re-serialise it without copying each
//! field. A request head is either accepted whole or rejected with a status and
//! a stable reason name (used as a metric label); there is no lenient middle.

use std::ops::Range;

/// Caps applied while reading a request head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub max_head_bytes: usize,
    pub max_headers: usize,
    pub max_uri_bytes: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self {
            max_head_bytes: 16 * 1024,
            max_headers: 100,
            max_uri_bytes: 8 * 1024,
        }
    }
}

/// The most header fields any configuration may allow.
pub const MAX_HEADERS_CAP: usize = 256;

/// Why a request head was refused. Each maps to one status and one metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("request head too large")]
    HeadTooLarge,
    #[error("too many header fields")]
    TooManyHeaders,
    #[error("request target too long")]
    UriTooLong,
    #[error("malformed request line")]
    BadRequestLine,
    #[error("unsupported HTTP version")]
    BadVersion,
    #[error("malformed header field")]
    BadHeader,
    #[error("invalid byte in header value")]
    BadHeaderValue,
    #[error("bare LF line ending")]
    BareLf,
    #[error("obsolete line folding")]
    ObsFold,
    #[error("duplicate Content-Length")]
    DuplicateContentLength,
    #[error("invalid Content-Length")]
    BadContentLength,
    #[error("both Content-Length and Transfer-Encoding")]
    ContentLengthAndTransferEncoding,
    #[error("unsupported or repeated Transfer-Encoding")]
    BadTransferEncoding,
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    TransferEncodingHttp10,
    #[error("missing Host")]
    MissingHost,
    #[error("duplicate Host")]
    DuplicateHost,
    #[error("invalid Host")]
    BadHost,
    #[error("invalid request target")]
    BadTarget,
    #[error("method not allowed at the edge")]
    MethodNotAllowed,
    #[error("unsupported Expect")]
    BadExpect,
}

impl Reject {
    /// The HTTP status the client gets.
    pub fn status(self) -> u16 {
        match self {
            Reject::HeadTooLarge | Reject::TooManyHeaders => 431,
            Reject::UriTooLong => 414,
            Reject::BadVersion => 505,
            Reject::MethodNotAllowed => 405,
            Reject::BadExpect => 417,
            _ => 400,
        }
    }

    /// A stable snake_case name for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Reject::HeadTooLarge => "head_too_large",
            Reject::TooManyHeaders => "too_many_headers",
            Reject::UriTooLong => "uri_too_long",
            Reject::BadRequestLine => "bad_request_line",
            Reject::BadVersion => "bad_version",
            Reject::BadHeader => "bad_header",
            Reject::BadHeaderValue => "bad_header_value",
            Reject::BareLf => "bare_lf",
            Reject::ObsFold => "obs_fold",
            Reject::DuplicateContentLength => "duplicate_content_length",
            Reject::BadContentLength => "bad_content_length",
            Reject::ContentLengthAndTransferEncoding => "cl_and_te",
            Reject::BadTransferEncoding => "bad_transfer_encoding",
            Reject::TransferEncodingHttp10 => "te_in_http10",
            Reject::MissingHost => "missing_host",
            Reject::DuplicateHost => "duplicate_host",
            Reject::BadHost => "bad_host",
            Reject::BadTarget => "bad_target",
            Reject::MethodNotAllowed => "method_not_allowed",
            Reject::BadExpect => "bad_expect",
        }
    }

    /// Every reason, for pre-registering metrics.
    pub const ALL: [Reject; 20] = [
        Reject::HeadTooLarge,
        Reject::TooManyHeaders,
        Reject::UriTooLong,
        Reject::BadRequestLine,
        Reject::BadVersion,
        Reject::BadHeader,
        Reject::BadHeaderValue,
        Reject::BareLf,
        Reject::ObsFold,
        Reject::DuplicateContentLength,
        Reject::BadContentLength,
        Reject::ContentLengthAndTransferEncoding,
        Reject::BadTransferEncoding,
        Reject::TransferEncodingHttp10,
        Reject::MissingHost,
        Reject::DuplicateHost,
        Reject::BadHost,
        Reject::BadTarget,
        Reject::MethodNotAllowed,
        Reject::BadExpect,
    ];
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (responses only).
    Close,
}

/// A parsed request head: ranges into the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Bytes of the whole head, including the final empty line.
    pub len: usize,
    pub method: Range<usize>,
    /// The path and query to forward (origin-form), within the buffer.
    pub path: Range<usize>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// `(name, value)` ranges of every field, in order.
    pub headers: Vec<(Range<usize>, Range<usize>)>,
    /// The host, from an absolute-form target or else the Host field,
    /// parsed strictly and normalised ([`crate::host`]).
    pub host: crate::host::Host,
    pub framing: Framing,
    pub keep_alive: bool,
    pub expect_continue: bool,
    pub websocket: bool,
}

/// Result of feeding bytes to [`parse_request`].
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    /// Need more bytes.
    Partial,
    Complete(T),
}

fn offset(buf: &[u8], s: &[u8]) -> Range<usize> {
    let start = (s.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
    start..start + s.len()
}

fn trim(buf: &[u8], mut r: Range<usize>) -> Range<usize> {
    while r.start < r.end && matches!(buf[r.start], b' ' | b'\t') {
        r.start += 1;
    }
    while r.end > r.start && matches!(buf[r.end - 1], b' ' | b'\t') {
        r.end -= 1;
    }
    r
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn valid_value(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

fn valid_host(h: &[u8]) -> bool {
    crate::host::parse(h).is_ok()
}

/// Parse a request head from the start of `buf`.
///
/// `Partial` means the head is not complete yet and is still within limits.
pub fn parse_request(buf: &[u8], limits: &HeadLimits) -> Result<Parsed<RequestHead>, Reject> {
    // A small field array is cheaper to set up on every request; the large
    // one is used only when the configured cap needs it.
    if limits.max_headers <= SMALL_HEADERS {
        let mut storage = [httparse::EMPTY_HEADER; SMALL_HEADERS];
        parse_request_with(buf, limits, &mut storage)
    } else {
        let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS_CAP];
        parse_request_with(buf, limits, &mut storage)
    }
}

const SMALL_HEADERS: usize = 100;

fn parse_request_with<'b>(
    buf: &'b [u8],
    limits: &HeadLimits,
    storage: &mut [httparse::Header<'b>],
) -> Result<Parsed<RequestHead>, Reject> {
    let max_headers = limits.max_headers.clamp(1, storage.len());
    let mut req = httparse::Request::new(&mut storage[..max_headers]);
    let status = match req.parse(buf) {
        Ok(s) => s,
        Err(e) => return Err(classify_error(buf, e)),
    };
    let len = match status {
        httparse::Status::Partial => {
            if buf.len() >= limits.max_head_bytes {
                // Still inside the request line? Then it is the target that is too long.
                let line_done = buf.contains(&b'\n');
                return Err(if line_done {
                    Reject::HeadTooLarge
                } else {
                    Reject::UriTooLong
                });
            }
            if !buf.contains(&b'\n') && buf.len() > limits.max_uri_bytes + 32 {
                return Err(Reject::UriTooLong);
            }
            return Ok(Parsed::Partial);
        }
        httparse::Status::Complete(n) => n,
    };
    if len > limits.max_head_bytes {
        return Err(Reject::HeadTooLarge);
    }
    // Every LF must end a CRLF: bare LFs are how parsers disagree.
    for (i, &b) in buf[..len].iter().enumerate() {
        if b == b'\n' && (i == 0 || buf[i - 1] != b'\r') {
            return Err(Reject::BareLf);
        }
    }
    let method = req.method.ok_or(Reject::BadRequestLine)?;
    let target = req.path.ok_or(Reject::BadRequestLine)?;
    let minor = req.version.ok_or(Reject::BadVersion)?;
    if target.len() > limits.max_uri_bytes {
        return Err(Reject::UriTooLong);
    }
    if method == "CONNECT" || method == "TRACE" {
        return Err(Reject::MethodNotAllowed);
    }
    let method_r = offset(buf, method.as_bytes());
    let target_r = offset(buf, target.as_bytes());
    let tb = target.as_bytes();
    if tb.iter().any(|&b| b >= 0x80 || b == b'#') {
        return Err(Reject::BadTarget);
    }
    // Origin-form, asterisk-form for OPTIONS, or absolute-form http(s)://authority/path.
    let mut authority: Option<Range<usize>> = None;
    let path_r = if tb.first() == Some(&b'/') {
        target_r.clone()
    } else if tb == b"*" {
        if method != "OPTIONS" {
            return Err(Reject::BadTarget);
        }
        target_r.clone()
    } else {
        let rest_at = if tb.len() > 7 && tb[..7].eq_ignore_ascii_case(b"http://") {
            7
        } else if tb.len() > 8 && tb[..8].eq_ignore_ascii_case(b"https://") {
            8
        } else {
            return Err(Reject::BadTarget);
        };
        let rest = &tb[rest_at..];
        let auth_len = rest
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .unwrap_or(rest.len());
        let a = target_r.start + rest_at..target_r.start + rest_at + auth_len;
        if !valid_host(&buf[a.clone()]) {
            return Err(Reject::BadHost);
        }
        authority = Some(a.clone());
        if auth_len == rest.len() {
            // `http://host` alone: forward `/`.
            a.end..a.end
        } else {
            a.end..target_r.end
        }
    };

    let mut headers = Vec::with_capacity(req.headers.len());
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut saw_te = false;
    let mut host: Option<Range<usize>> = None;
    let mut keep_alive = minor == 1;
    let mut conn_upgrade = false;
    let mut upgrade_ws = false;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let value = h.value;
        if !valid_value(value) {
            return Err(Reject::BadHeaderValue);
        }
        let nr = offset(buf, name);
        let vr = trim(buf, offset(buf, value));
        let v = &buf[vr.clone()];
        if name.eq_ignore_ascii_case(b"content-length") {
            if content_length.is_some() {
                return Err(Reject::DuplicateContentLength);
            }
            if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
                return Err(Reject::BadContentLength);
            }
            let n = v
                .iter()
                .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if minor == 0 {
                return Err(Reject::TransferEncodingHttp10);
            }
            if saw_te || !v.eq_ignore_ascii_case(b"chunked") {
                return Err(Reject::BadTransferEncoding);
            }
            saw_te = true;
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"host") {
            if host.is_some() {
                return Err(Reject::DuplicateHost);
            }
            if !valid_host(v) {
                return Err(Reject::BadHost);
            }
            host = Some(vr.clone());
        } else if name.eq_ignore_ascii_case(b"connection") {
            if has_token(v, b"close") {
                keep_alive = false;
            } else if has_token(v, b"keep-alive") {
                keep_alive = true;
            }
            conn_upgrade = has_token(v, b"upgrade");
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade_ws = has_token(v, b"websocket");
        } else if name.eq_ignore_ascii_case(b"expect") {
            if v.eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                return Err(Reject::BadExpect);
            }
        }
        headers.push((nr, vr));
    }
    if chunked && content_length.is_some() {
        return Err(Reject::ContentLengthAndTransferEncoding);
    }
    let host = match (authority, host) {
        (Some(a), _) => a,
        (None, Some(h)) => h,
        (None, None) => return Err(Reject::MissingHost),
    };
    let host = crate::host::parse(&buf[host]).map_err(|_| Reject::BadHost)?;
    let framing = if chunked {
        Framing::Chunked
    } else {
        match content_length {
            Some(0) | None => Framing::None,
            Some(n) => Framing::Length(n),
        }
    };
    let websocket = conn_upgrade && upgrade_ws && method == "GET";
    Ok(Parsed::Complete(RequestHead {
        len,
        method: method_r,
        path: path_r,
        minor_version: minor,
        headers,
        host,
        framing,
        keep_alive,
        expect_continue,
        websocket,
    }))
}

fn classify_error(buf: &[u8], e: httparse::Error) -> Reject {
    match e {
        httparse::Error::TooManyHeaders => Reject::TooManyHeaders,
        httparse::Error::Version => {
            // Only a well-formed but unsupported `HTTP/x.y` is a version problem.
            let line = buf
                .split(|&b| b == b'\r' || b == b'\n')
                .next()
                .unwrap_or(b"");
            match line.split(|&b| b == b' ').nth(2) {
                Some(v) if v.starts_with(b"HTTP/") => Reject::BadVersion,
                _ => Reject::BadRequestLine,
            }
        }
        httparse::Error::HeaderName => {
            // A header line that starts with SP/HT is obs-fold.
            if buf
                .windows(3)
                .any(|w| w[0] == b'\r' && w[1] == b'\n' && matches!(w[2], b' ' | b'\t'))
            {
                Reject::ObsFold
            } else {
                Reject::BadHeader
            }
        }
        httparse::Error::HeaderValue => Reject::BadHeaderValue,
        httparse::Error::NewLine => Reject::BareLf,
        httparse::Error::Token | httparse::Error::Status => Reject::BadRequestLine,
    }
}

/// A parsed origin response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub len: usize,
    pub status: u16,
    pub minor_version: u8,
    pub headers: Vec<(Range<usize>, Range<usize>)>,
    pub framing: Framing,
    /// The origin will keep the connection open after this response.
    pub keep_alive: bool,
}

/// Why an origin response was refused (the client gets 502).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadResponse {
    #[error("malformed response head from origin")]
    Malformed,
    #[error("response head from origin too large")]
    TooLarge,
    #[error("conflicting Content-Length from origin")]
    BadLength,
}

/// Parse an origin's response head. `head_request` and the status decide
/// whether a body follows.
pub fn parse_response(
    buf: &[u8],
    head_request: bool,
    max_head_bytes: usize,
) -> Result<Parsed<ResponseHead>, BadResponse> {
    let mut small = [httparse::EMPTY_HEADER; 48];
    match parse_response_with(buf, head_request, max_head_bytes, &mut small) {
        Err(BadResponse::TooLarge) if buf.len() < max_head_bytes => {
            let mut large = [httparse::EMPTY_HEADER; MAX_HEADERS_CAP];
            parse_response_with(buf, head_request, max_head_bytes, &mut large)
        }
        other => other,
    }
}

fn parse_response_with<'b>(
    buf: &'b [u8],
    head_request: bool,
    max_head_bytes: usize,
    storage: &mut [httparse::Header<'b>],
) -> Result<Parsed<ResponseHead>, BadResponse> {
    let mut res = httparse::Response::new(storage);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= max_head_bytes {
                return Err(BadResponse::TooLarge);
            }
            return Ok(Parsed::Partial);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(BadResponse::TooLarge),
        Err(_) => return Err(BadResponse::Malformed),
    };
    let status = res.code.ok_or(BadResponse::Malformed)?;
    let minor = res.version.ok_or(BadResponse::Malformed)?;
    let mut headers = Vec::with_capacity(res.headers.len());
    let mut cl: Option<u64> = None;
    let mut chunked = false;
    let mut coded = false;
    let mut keep_alive = minor == 1;
    for h in res.headers.iter() {
        if !valid_value(h.value) {
            return Err(BadResponse::Malformed);
        }
        let nr = offset(buf, h.name.as_bytes());
        let vr = trim(buf, offset(buf, h.value));
        let v = &buf[vr.clone()];
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
                return Err(BadResponse::BadLength);
            }
            let n = v
                .iter()
                .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
            if cl.is_some_and(|p| p != n) {
                return Err(BadResponse::BadLength);
            }
            cl = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The final coding decides; anything but chunked last means close-delimited.
            let last = v.rsplit(|&b| b == b',').next().unwrap_or(b"").trim_ascii();
            chunked = last.eq_ignore_ascii_case(b"chunked");
            coded = true;
            if !chunked {
                keep_alive = false;
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            if has_token(v, b"close") {
                keep_alive = false;
            } else if has_token(v, b"keep-alive") {
                keep_alive = true;
            }
        }
        headers.push((nr, vr));
    }
    let bodiless = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    let framing = if bodiless {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if coded {
        // A transfer coding other than chunked last: the body runs to the
        // close, whatever Content-Length says (RFC 9112 §6.3).
        keep_alive = false;
        Framing::Close
    } else if let Some(n) = cl {
        if n == 0 {
            Framing::None
        } else {
            Framing::Length(n)
        }
    } else {
        keep_alive = false;
        Framing::Close
    };
    Ok(Parsed::Complete(ResponseHead {
        len,
        status,
        minor_version: minor,
        headers,
        framing,
        keep_alive,
    }))
}

/// Hop-by-hop fields that a proxy must not forward (RFC 9110 §7.6.1), plus
/// the framing fields the edge rewrites itself.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    const HOP: [&[u8]; 9] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"expect",
    ];
    HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// The canonical reason phrase for a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Parsed<RequestHead>, Reject> {
        parse_request(s.as_bytes(), &HeadLimits::default())
    }

    fn ok(s: &str) -> RequestHead {
        match parse(s) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!("{s:?} -> {other:?}"),
        }
    }

    fn rej(s: &str) -> Reject {
        match parse(s) {
            Err(r) => r,
            other => panic!("{s:?} should be rejected, got {other:?}"),
        }
    }

    #[test]
    fn simple_get() {
        let s = "GET /a?b=1 HTTP/1.1\r\nHost: Example.org:8080\r\nUser-Agent: x\r\n\r\n";
        let h = ok(s);
        assert_eq!(&s[h.method.clone()], "GET");
        assert_eq!(&s[h.path.clone()], "/a?b=1");
        assert_eq!(h.host.to_string(), "example.org:8080");
        assert_eq!(h.framing, Framing::None);
        assert!(h.keep_alive);
        assert_eq!(h.len, s.len());
    }

    #[test]
    fn partial_then_limits() {
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: a\r\n"), Ok(Parsed::Partial));
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(9000));
        assert_eq!(rej(&long[..8500]), Reject::UriTooLong);
        let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n", "a".repeat(17000));
        assert_eq!(rej(&big), Reject::HeadTooLarge);
        let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(
            rej(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")),
            Reject::TooManyHeaders
        );
    }

    #[test]
    fn smuggling_shapes_rejected() {
        assert_eq!(
            rej("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            Reject::DuplicateContentLength
        );
        assert_eq!(
            rej("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Reject::ContentLengthAndTransferEncoding
        );
        assert_eq!(
            rej("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Reject::BadTransferEncoding
        );
        assert_eq!(
            rej("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Reject::BadTransferEncoding
        );
        assert_eq!(
            rej("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"),
            Reject::BadTransferEncoding
        );
        assert_eq!(
            rej("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Reject::TransferEncodingHttp10
        );
        assert_eq!(
            rej("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"),
            Reject::BadContentLength
        );
        assert_eq!(
            rej("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"),
            Reject::BadContentLength
        );
        assert_eq!(
            rej("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"),
            Reject::ObsFold
        );
        assert_eq!(rej("GET / HTTP/1.1\nHost: a\n\n"), Reject::BareLf);
        assert_eq!(
            rej("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"),
            Reject::BareLf
        );
        assert_eq!(rej("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), Reject::BadHeader);
        assert_eq!(
            rej("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n"),
            Reject::BadHeaderValue
        );
        assert_eq!(
            rej("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Reject::DuplicateHost
        );
        assert_eq!(rej("GET / HTTP/1.1\r\nX: y\r\n\r\n"), Reject::MissingHost);
        assert_eq!(rej("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), Reject::BadHost);
        assert_eq!(
            rej("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Reject::MethodNotAllowed
        );
        assert_eq!(
            rej("GET /#x HTTP/1.1\r\nHost: a\r\n\r\n"),
            Reject::BadTarget
        );
        assert_eq!(
            rej("GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n"),
            Reject::BadTarget
        );
        assert_eq!(rej("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), Reject::BadVersion);
        assert_eq!(
            rej("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n\r\n"),
            Reject::BadRequestLine
        );
        assert_eq!(
            rej("GET / HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n"),
            Reject::BadExpect
        );
        assert_eq!(
            rej("G\x00T / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Reject::BadRequestLine
        );
    }

    #[test]
    fn framing_and_connection() {
        let h = ok("POST /l HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        let h =
            ok("POST /l HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nConnection: close\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(12));
        assert!(!h.keep_alive);
        let h = ok("GET / HTTP/1.0\r\nHost: a\r\n\r\n");
        assert!(!h.keep_alive);
        let h = ok("GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n");
        assert!(h.keep_alive);
        let h = ok("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n");
        assert!(h.websocket);
        let s = "GET http://b.example:81/x?y HTTP/1.1\r\nHost: other\r\n\r\n";
        let h = ok(s);
        assert_eq!(h.host.to_string(), "b.example:81");
        assert_eq!(&s[h.path.clone()], "/x?y");
        let s = "GET http://b.example HTTP/1.1\r\nHost: other\r\n\r\n";
        let h = ok(s);
        assert_eq!(&s[h.path.clone()], "");
        let s = "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n";
        assert_eq!(ok(s).host.name(), "[::1]");
        let s = "GET / HTTP/1.1\r\nHost: a.example:evil.com:80\r\n\r\n";
        assert_eq!(
            parse_request(s.as_bytes(), &HeadLimits::default()),
            Err(Reject::BadHost)
        );
    }

    #[test]
    fn responses() {
        let s = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        let Ok(Parsed::Complete(r)) = parse_response(s.as_bytes(), false, 8192) else {
            panic!()
        };
        assert_eq!(r.framing, Framing::Length(3));
        assert!(r.keep_alive);
        assert_eq!(r.len, s.len() - 3);
        let s = "HTTP/1.1 200 OK\r\n\r\n";
        let Ok(Parsed::Complete(r)) = parse_response(s.as_bytes(), false, 8192) else {
            panic!()
        };
        assert_eq!(r.framing, Framing::Close);
        assert!(!r.keep_alive);
        // Review finding 23: gzip with a length is close-delimited.
        let s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc";
        let Ok(Parsed::Complete(r)) = parse_response(s.as_bytes(), false, 8192) else {
            panic!()
        };
        assert_eq!(r.framing, Framing::Close);
        assert!(!r.keep_alive);
        let s = "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n";
        let Ok(Parsed::Complete(r)) = parse_response(s.as_bytes(), false, 8192) else {
            panic!()
        };
        assert_eq!(r.framing, Framing::None);
        let s = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(
            parse_response(s.as_bytes(), false, 8192),
            Err(BadResponse::BadLength)
        );
    }

    #[test]
    fn never_panics_on_prefixes() {
        let s = b"POST http://[::1]:8/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close, upgrade\r\n\r\n";
        for i in 0..s.len() {
            let _ = parse_request(&s[..i], &HeadLimits::default());
            let _ = parse_response(&s[..i], false, 100);
        }
    }
}
