//! Ordinary proxying: HTTP/1.1 and h2c, the headers the origin sees, unknown
//! hosts, chunked bodies, WebSocket passthrough, PROXY protocol, the drill opt-in.

use super::*;

#[test]
fn http1_and_h2c_reach_the_origin_with_forwarding_headers() {
    let o = Origin::start();
    let e = Edge::start("proxy-basic", &config(o.addr, "", ""));
    let (status, body) = http_get(
        e.addr,
        "/api/members/7",
        &[("X-Forwarded-For", "6.6.6.6"), ("X-Request-Id", "spoof")],
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"id\":7"), "{body}");
    let heads = o.stats.recent_heads();
    let h = heads.iter().find(|h| h.contains("/api/members/7")).unwrap();
    // The untrusted client's X-Forwarded-For and X-Request-Id are replaced.
    assert!(h.contains("x-forwarded-for: 127.0.0.1\r\n"), "{h}");
    assert!(h.contains("x-forwarded-proto: http\r\n"), "{h}");
    assert!(h.contains("x-request-id: "), "{h}");
    assert!(!h.contains("6.6.6.6") && !h.contains("spoof"), "{h}");

    let (code, out, err) = run(
        "curl",
        &[
            "-s",
            "--http2-prior-knowledge",
            "-o",
            "-",
            "-w",
            "\n%{http_version} %{http_code}",
            &e.url("/api/members/8"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"id\":8") && out.ends_with("2 200"), "{out}");

    let log = e.access_log(2);
    let l = log.iter().find(|l| l["path"] == "/api/members/8").unwrap();
    assert_eq!(l["proto"], "h2c");
    assert_eq!(l["status"], 200);
    assert_eq!(l["verdict"], "allow");
    assert!(l["origin_us"].as_u64().is_some());
    // curl's passive HTTP/2 fingerprint: its SETTINGS, its connection
    // window, no PRIORITY frames, its pseudo-field order (m,p,s,a).
    let fp = l["h2fp"].as_str().expect("no HTTP/2 fingerprint");
    let parts: Vec<&str> = fp.split('|').collect();
    assert_eq!(parts.len(), 4, "{fp}");
    assert!(parts[0].contains("3:") || parts[0].contains("4:"), "{fp}");
    assert!(parts[1].parse::<u32>().is_ok(), "{fp}");
    assert_eq!(parts[3], "m,p,s,a", "{fp}");
    // HTTP/1 requests have none.
    let h1 = log.iter().find(|l| l["path"] == "/api/members/7").unwrap();
    assert!(h1["h2fp"].is_null(), "{h1}");
}

#[test]
fn unknown_host_gets_421_and_never_reaches_an_origin() {
    let o = Origin::start();
    let e = Edge::start("proxy-421", &config(o.addr, "", ""));
    let (resp, closed) = raw(
        e.addr,
        b"GET /secret-421 HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        Duration::from_secs(3),
    );
    assert!(resp.starts_with("HTTP/1.1 421"), "{resp}");
    assert!(closed);
    let (resp, _) = raw(
        e.addr,
        b"GET http://evil.example/secret-abs HTTP/1.1\r\nHost: localhost\r\n\r\n",
        Duration::from_secs(3),
    );
    assert!(resp.starts_with("HTTP/1.1 421"), "{resp}");
    let (code, out, _) = run(
        "curl",
        &[
            "-s",
            "--http2-prior-knowledge",
            "-H",
            "Host: evil.example",
            "-w",
            "%{http_code}",
            "-o",
            "/dev/null",
            &e.url("/secret-h2"),
        ],
    );
    assert_eq!((code, out.as_str()), (0, "421"));
    assert!(!o.saw("secret"), "{:?}", o.stats.recent_heads());
    assert_eq!(e.await_defense("unknown_host", 3.0), 3.0);
}

#[test]
fn keep_alive_pipelined_and_chunked_bodies() {
    let o = Origin::start();
    let e = Edge::start("proxy-chunked", &config(o.addr, "", ""));
    let mut s = TcpStream::connect(e.addr).unwrap();
    let req = "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    s.write_all(req.as_bytes()).unwrap();
    let (resp, closed) = read_until_close(&mut s, Duration::from_secs(5));
    assert!(closed);
    assert_eq!(resp.matches("HTTP/1.1 200").count(), 2, "{resp}");
    // The edge read the small chunked body whole and sent it with its exact length.
    assert!(resp.contains("hello world"), "{resp}");
    assert!(resp.contains("ok\n"), "{resp}");
    let h = o.stats.recent_heads();
    assert!(
        h.iter().any(|h| h.starts_with("POST /echo")
            && h.contains("content-length: 11\r\n")
            && !h.contains("chunked")),
        "{h:?}"
    );
    // A body larger than the request buffer is streamed, re-encoded as chunked.
    let big = "x".repeat(100_000);
    let req = format!("POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    let (resp, _) = raw(e.addr, req.as_bytes(), Duration::from_secs(5));
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.contains(&big),
        "{}",
        &resp[..200.min(resp.len())]
    );
    let h = o.stats.recent_heads();
    assert!(
        h.iter()
            .any(|h| h.starts_with("POST /echo") && h.contains("transfer-encoding: chunked")),
        "{h:?}"
    );
}

#[test]
fn websocket_upgrade_is_passed_through() {
    let o = Origin::start();
    let e = Edge::start("proxy-ws", &config(o.addr, "", ""));
    let mut s = TcpStream::connect(e.addr).unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    // After the upgrade, bytes flow both ways (the origin echoes them).
    s.write_all(b"\x81\x05hello").unwrap();
    let mut got = Vec::new();
    while got.len() < 7 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(&got, b"\x81\x05hello");
}

#[test]
fn proxy_protocol_only_from_trusted_peers() {
    let o = Origin::start();
    let mut text = config(o.addr, "", "");
    text = text.replace(
        "address = \"127.0.0.1:0\"\n\n[admin]",
        "address = \"127.0.0.1:0\"\nproxy_protocol = true\n\n[admin]",
    );
    text.push_str("\n[trust]\nproxies = [\"127.0.0.1/32\"]\n");
    let e = Edge::start("proxy-pp", &text);
    // From the trusted load balancer (127.0.0.1): the header names the client.
    let (resp, _) = raw(
        e.addr,
        b"PROXY TCP4 192.0.2.77 127.0.0.1 5555 80\r\nGET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(resp.contains("x-forwarded-for: 192.0.2.77\r\n"), "{resp}");
    // From an untrusted peer the header is not believed: it is a bad request.
    let mut s = connect_from("127.0.0.9".parse().unwrap(), e.addr).unwrap();
    s.write_all(
        b"PROXY TCP4 192.0.2.78 127.0.0.1 5555 80\r\nGET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .unwrap();
    let (resp, _) = read_until_close(&mut s, Duration::from_secs(5));
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(!o.saw("192.0.2.78"));
    // A trusted peer that sends garbage instead of a header is dropped.
    let (resp, closed) = raw(
        e.addr,
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(closed && resp.is_empty(), "{resp}");
    assert_eq!(e.await_defense("proxy_header_bad", 1.0), 1.0);
}

#[test]
fn drill_opt_in_is_answered_by_the_edge() {
    let o = Origin::start();
    let e = Edge::start(
        "proxy-drill",
        &config(o.addr, "", "\n[drill]\ntoken = \"drill-me\"\n"),
    );
    let (status, body) = http_get(e.addr, "/.well-known/levee-drill", &[]);
    assert_eq!((status, body.as_str()), (200, "drill-me\n"));
    assert!(!o.saw("levee-drill"));
}

#[test]
fn keep_alive_limits_idle_timeout_and_requests_per_connection() {
    let o = Origin::start();
    let e = Edge::start(
        "proxy-keepalive",
        &config(
            o.addr,
            "idle_timeout = \"1s\"\nmax_requests_per_connection = 3",
            "",
        ),
    );
    // Four pipelined requests: the third is answered with `connection: close`, the fourth never.
    let mut s = TcpStream::connect(e.addr).unwrap();
    let req = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(4);
    s.write_all(req.as_bytes()).unwrap();
    let (resp, closed) = read_until_close(&mut s, Duration::from_secs(3));
    assert!(closed);
    assert_eq!(resp.matches("HTTP/1.1 200").count(), 3, "{resp}");
    assert_eq!(resp.matches("connection: close").count(), 1, "{resp}");
    assert_eq!(e.await_defense("max_requests_per_connection", 1.0), 1.0);
    // An idle keep-alive connection is closed after idle_timeout.
    let mut s = TcpStream::connect(e.addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    let (resp, closed) = read_until_close(&mut s, Duration::from_secs(4));
    assert!(closed && resp.starts_with("HTTP/1.1 200"), "{resp}");
    let idle = start.elapsed();
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_millis(2500),
        "closed after {idle:?}"
    );
    assert_eq!(e.await_defense("idle_timeout", 1.0), 1.0);
}
