//! Request-smuggling shapes and oversized heads: each gets its status and a
//! closed connection, is counted, and never reaches the origin.

use super::*;

#[test]
fn every_malformed_shape_is_refused_before_the_origin() {
    let o = Origin::start();
    let e = Edge::start("malformed", &config(o.addr, "max_header_bytes = \"4KiB\"\nmax_uri_bytes = 1024\nmax_headers = 20\nmax_body_bytes = 1000", ""));
    let many: String = (0..25).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("dup-cl", "POST /m-dup-cl HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc".into(), 400, "duplicate_content_length"),
        ("cl-te", "POST /m-cl-te HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".into(), 400, "cl_and_te"),
        ("te-te", "POST /m-te-te HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n".into(), 400, "bad_transfer_encoding"),
        ("te-obf", "POST /m-te-obf HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: xchunked\r\n\r\n".into(), 400, "bad_transfer_encoding"),
        ("te-10", "POST /m-te-10 HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n".into(), 400, "te_in_http10"),
        ("cl-bad", "POST /m-cl-bad HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1e3\r\n\r\n".into(), 400, "bad_content_length"),
        ("obs-fold", "GET /m-obs-fold HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n folded\r\n\r\n".into(), 400, "obs_fold"),
        ("bare-lf", "GET /m-bare-lf HTTP/1.1\nHost: localhost\n\n".into(), 400, "bare_lf"),
        ("space-colon", "GET /m-space-colon HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding : chunked\r\n\r\n".into(), 400, "bad_header"),
        ("ctl-byte", "GET /m-ctl HTTP/1.1\r\nHost: localhost\r\nX-A: a\x01b\r\n\r\n".into(), 400, "bad_header_value"),
        ("dup-host", "GET /m-dup-host HTTP/1.1\r\nHost: localhost\r\nHost: other\r\n\r\n".into(), 400, "duplicate_host"),
        ("no-host", "GET /m-no-host HTTP/1.1\r\n\r\n".into(), 400, "missing_host"),
        ("connect", "CONNECT m-connect:443 HTTP/1.1\r\nHost: m-connect:443\r\n\r\n".into(), 405, "method_not_allowed"),
        ("bad-version", "GET /m-version HTTP/1.7\r\nHost: localhost\r\n\r\n".into(), 505, "bad_version"),
        ("junk-line", "GET /m-junk junk\r\nHost: localhost\r\n\r\n".into(), 400, "bad_request_line"),
        ("uri-long", format!("GET /m-long{} HTTP/1.1\r\nHost: localhost\r\n\r\n", "a".repeat(2000)), 414, "uri_too_long"),
        ("head-big", format!("GET /m-big HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n", "a".repeat(5000)), 431, "head_too_large"),
        ("many", format!("GET /m-many HTTP/1.1\r\nHost: localhost\r\n{many}\r\n"), 431, "too_many_headers"),
        ("body-big", "POST /m-body-big HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n".into(), 413, "body_too_large"),
        ("bad-chunk", "POST /m-bad-chunk HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".into(), 400, "bad_chunked_body"),
        ("chunk-too-big", "POST /m-chunk-big HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n".to_string() + &"a".repeat(2000) + "\r\n0\r\n\r\n", 413, "body_too_large"),
        ("nul-in-target", "GET /m-nul\x00x HTTP/1.1\r\nHost: localhost\r\n\r\n".into(), 400, "bad_request_line"),
        ("fragment", "GET /m-frag#x HTTP/1.1\r\nHost: localhost\r\n\r\n".into(), 400, "bad_target"),
    ];
    for (name, req, status, reason) in &cases {
        let before = e.defense(reason);
        let (resp, closed) = raw(e.addr, req.as_bytes(), Duration::from_secs(5));
        let (got, _) = parse_response(&resp);
        assert_eq!(got, *status, "{name}: {resp}");
        assert!(closed, "{name}: connection left open");
        assert!(
            resp.contains(reason),
            "{name}: the body names the reason: {resp}"
        );
        assert_eq!(e.defense(reason), before + 1.0, "{name}: metric {reason}");
    }
    // The origin saw none of them: even the two bad bodies behind valid heads
    // were caught while the edge read them, before any origin was asked.
    let heads = o.stats.recent_heads();
    assert!(
        heads.iter().all(|h| !h.contains("/m-")),
        "origin saw: {heads:?}"
    );
    // Every refusal is in the access log with its reason.
    let log = e.access_log(cases.len());
    let blocked = log.iter().filter(|l| l["verdict"] == "block").count();
    assert_eq!(blocked, cases.len(), "{log:?}");
    // Nothing crashed: a normal request still works.
    assert_eq!(http_get(e.addr, "/healthz", &[]).0, 200);
}
