//! Review finding 6: the edge routed on a normalised host but forwarded the
//! raw one, so `Host: a.example:evil.com:80` reached site A's origin as
//! `host: a.example:evil.com` (and could poison the cache). Now a host is
//! parsed strictly and the origin gets the value that was routed on, over
//! HTTP/1.1 and HTTP/2 alike.

use super::*;

fn get(addr: SocketAddr, host: &str, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    raw(addr, req.as_bytes(), Duration::from_secs(5)).0
}

#[test]
fn junk_after_the_host_is_refused_and_the_routed_host_is_forwarded() {
    let o = Origin::start();
    let e = Edge::start("host-diff", &config(o.addr, "", ""));
    for (host, path) in [
        ("localhost:evil.com:80", "/h-two-colons"),
        ("localhost:@evil.com", "/h-userinfo"),
        ("localhost:80x", "/h-port"),
        ("localhost..", "/h-dots"),
    ] {
        let resp = get(e.addr, host, path);
        assert_eq!(parse_response(&resp).0, 400, "{host}: {resp}");
        assert!(resp.contains("bad_host"), "{resp}");
    }
    assert!(!o.saw("/h-"), "{:?}", o.stats.recent_heads());
    let resp = get(e.addr, "LocalHost.:8080", "/h-ok");
    assert_eq!(parse_response(&resp).0, 404, "the origin's answer: {resp}");
    let head = o
        .stats
        .recent_heads()
        .into_iter()
        .find(|h| h.contains("/h-ok"))
        .unwrap();
    assert!(head.contains("\r\nhost: localhost:8080\r\n"), "{head}");
}

#[test]
fn http2_authority_is_held_to_the_same_rule() {
    let o = Origin::start();
    let e = Edge::start("host-diff-h2", &config(o.addr, "", ""));
    let url = format!("http://{}/h2-ok", e.addr);
    let (_, out, err) = run(
        "curl",
        &[
            "-s",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Host: LOCALHOST:81",
            &url,
        ],
    );
    assert_eq!(out, "404", "the origin's answer: {err}");
    let head = o
        .stats
        .recent_heads()
        .into_iter()
        .find(|h| h.contains("/h2-ok"))
        .unwrap();
    assert!(head.contains("\r\nhost: localhost:81\r\n"), "{head}");
    let url = format!("http://{}/h2-bad", e.addr);
    let (_, out, err) = run(
        "curl",
        &[
            "-s",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Host: localhost:evil.com:80",
            &url,
        ],
    );
    // 400 from the edge, or the HTTP/2 library resets the malformed authority first.
    assert!(out == "400" || out == "000", "{out} {err}");
    assert!(!o.saw("/h2-bad"));
}
