//! Review findings 4, 9 and 22: forwarding fields at the trust boundary.
//! An untrusted client's `X-Real-IP`, `True-Client-IP`, `X-Original-URL`,
//! `X-Forwarded-Host` and underscore names never reach the origin; behind a
//! trusted proxy every `X-Forwarded-For` line counts (HAProxy appends a new
//! line after the client's own), and its `X-Forwarded-Proto` is honoured.

use super::*;

const SPOOFED: &str = "X-Real-IP: 127.9.9.9\r\nTrue-Client-IP: 127.9.9.9\r\nX-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Prefix: //evil\r\nTransfer_Encoding: chunked\r\nX-Forwarded-For: 10.6.6.6\r\nX-Kept: yes\r\n";

#[test]
fn owned_fields_from_untrusted_clients_are_dropped() {
    let o = Origin::start();
    let e = Edge::start("trust-untrusted", &config(o.addr, "", ""));
    let req = format!(
        "GET /t-untrusted HTTP/1.1\r\nHost: localhost\r\n{SPOOFED}Connection: close\r\n\r\n"
    );
    let resp = raw(e.addr, req.as_bytes(), Duration::from_secs(5)).0;
    assert_eq!(parse_response(&resp).0, 404, "the origin's answer: {resp}");
    let head = o
        .stats
        .recent_heads()
        .into_iter()
        .find(|h| h.contains("/t-untrusted"))
        .unwrap();
    let lower = head.to_ascii_lowercase();
    for name in [
        "x-real-ip",
        "true-client-ip",
        "x-original-url",
        "x-rewrite-url",
        "x-forwarded-host",
        "x-forwarded-prefix",
        "transfer_encoding",
        "10.6.6.6",
    ] {
        assert!(!lower.contains(name), "{name} reached the origin: {head}");
    }
    assert!(lower.contains("x-kept: yes"), "{head}");
    assert!(lower.contains("x-forwarded-for: 127.0.0.1\r\n"), "{head}");
}

#[test]
fn a_site_may_allow_one_by_name() {
    let o = Origin::start();
    let text = config(o.addr, "", "").replace(
        "name = \"test\"\n",
        "name = \"test\"\nallow_client_headers = [\"x-real-ip\"]\n",
    );
    let e = Edge::start("trust-allow", &text);
    let req =
        format!("GET /t-allow HTTP/1.1\r\nHost: localhost\r\n{SPOOFED}Connection: close\r\n\r\n");
    assert_eq!(
        parse_response(&raw(e.addr, req.as_bytes(), Duration::from_secs(5)).0).0,
        404
    );
    let head = o
        .stats
        .recent_heads()
        .into_iter()
        .find(|h| h.contains("/t-allow"))
        .unwrap();
    assert!(head.contains("X-Real-IP: 127.9.9.9"), "{head}");
    assert!(!head.contains("True-Client-IP"), "{head}");
}

#[test]
fn every_forwarded_for_line_counts_behind_a_trusted_proxy() {
    let o = Origin::start();
    let text = config(o.addr, "", "").replace(
        "[limits]",
        "[trust]\nproxies = [\"127.0.0.1/32\"]\n\n[limits]",
    );
    let e = Edge::start("trust-proxy", &text);
    // The client's own line first, then the proxy's appended one.
    let req = "GET /t-proxy HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 10.1.2.3\r\nX-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n";
    assert_eq!(
        parse_response(&raw(e.addr, req.as_bytes(), Duration::from_secs(5)).0).0,
        404
    );
    let head = o
        .stats
        .recent_heads()
        .into_iter()
        .find(|h| h.contains("/t-proxy"))
        .unwrap();
    assert!(
        head.contains("x-forwarded-for: 10.1.2.3, 198.51.100.7, 127.0.0.1\r\n"),
        "{head}"
    );
    assert!(head.contains("x-forwarded-proto: https\r\n"), "{head}");
    let log = e.access_log(1);
    let line = log.iter().find(|l| l["path"] == "/t-proxy").unwrap();
    assert_eq!(
        line["client"], "198.51.100.7",
        "the proxy's line wins: {line}"
    );
}
