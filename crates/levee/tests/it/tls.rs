//! TLS termination: certificates by SNI, ALPN h2 and http/1.1, Host/SNI
//! mismatch refused, handshake deadline.

use super::*;

pub(crate) fn cert(dir: &std::path::Path, name: &str) -> (PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    let c = dir.join(format!("{name}.pem"));
    let k = dir.join(format!("{name}.key"));
    std::fs::write(&c, ck.cert.pem()).unwrap();
    std::fs::write(&k, ck.key_pair.serialize_pem()).unwrap();
    (c, k)
}

#[test]
fn sni_alpn_and_handshake_deadline() {
    let o = Origin::start();
    let dir = scratch("tls-certs");
    let (ca, ka) = cert(&dir, "a.test");
    let (cb, kb) = cert(&dir, "b.test");
    let text = config(o.addr, "tls_handshake_timeout = \"1s\"", "")
        .replace("address = \"127.0.0.1:0\"\n\n[admin]", "address = \"127.0.0.1:0\"\ntls = true\n\n[admin]")
        .replace("hosts = [\"localhost\", \"127.0.0.1\", \"test.levee\"]", "hosts = [\"a.test\"]")
        + &format!(
            "\n[[site]]\nname = \"b\"\nhosts = [\"b.test\"]\n[[site.origin]]\naddress = \"{}\"\n\n[[tls.certificate]]\nserver_names = [\"a.test\"]\ncert = \"{}\"\nkey = \"{}\"\n[[tls.certificate]]\nserver_names = [\"b.test\"]\ncert = \"{}\"\nkey = \"{}\"\n",
            o.addr, ca.display(), ka.display(), cb.display(), kb.display()
        );
    let e = Edge::start("tls", &text);
    let port = e.addr.port();
    let curl = |host: &str, cafile: &PathBuf, extra: &[&str]| {
        let resolve = format!("{host}:{port}:127.0.0.1");
        let url = format!("https://{host}:{port}/api/members/2");
        let mut args = vec![
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            "--cacert",
            cafile.to_str().unwrap(),
            "--resolve",
            &resolve,
        ];
        args.extend_from_slice(extra);
        args.push(&url);
        run("curl", &args)
    };
    // Each name gets its own certificate (curl trusts only that one).
    assert_eq!(curl("a.test", &ca, &[]).1, "2 200");
    assert_eq!(curl("b.test", &cb, &[]).1, "2 200");
    assert_eq!(curl("a.test", &ca, &["--http1.1"]).1, "1.1 200");
    assert_ne!(
        curl("b.test", &ca, &[]).0,
        0,
        "b.test must not be served a.test's certificate"
    );
    // SNI a.test but Host b.test: misdirected.
    let (_, out, _) = curl("a.test", &ca, &["-H", "Host: b.test"]);
    assert_eq!(out, "2 421");
    let log = e.access_log(4);
    assert!(
        log.iter()
            .any(|l| l["tls"] == "TLSv1.3" && l["proto"] == "h2"),
        "{log:?}"
    );
    // Every TLS request carries the JA4 of its ClientHello (read before rustls):
    // curl offers TLS 1.3, sends SNI; h2 and http/1.1 by ALPN give different JA4_a.
    // (The refused handshake's line, if already written, has no request and no JA4.)
    let requests: Vec<&serde_json::Value> = log.iter().filter(|l| l["method"] != "").collect();
    assert!(requests.len() >= 3, "{log:?}");
    let ja4: Vec<&str> = requests.iter().filter_map(|l| l["ja4"].as_str()).collect();
    assert_eq!(ja4.len(), requests.len(), "{log:?}");
    assert!(ja4.iter().any(|j| &j[8..10] == "h2"), "{ja4:?}");
    assert!(ja4.iter().any(|j| &j[8..10] == "h1"), "{ja4:?}");
    // A client that never completes the handshake is cut at the deadline.
    let mut s = TcpStream::connect(e.addr).unwrap();
    let start = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(3)));
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert_eq!(e.await_defense("tls_handshake_timeout", 1.0), 1.0);
}

#[test]
fn tls_to_the_origin_is_verified() {
    let o = Origin::start();
    let dir = scratch("tls-origin");
    let (ca, ka) = cert(&dir, "a.test");
    // B: a TLS edge in front of the origin, playing a TLS origin for A.
    let b_text = config(
        o.addr,
        "",
        &format!(
            "\n[[tls.certificate]]\nserver_names = [\"a.test\"]\ncert = \"{}\"\nkey = \"{}\"\n",
            ca.display(),
            ka.display()
        ),
    )
    .replace(
        "address = \"127.0.0.1:0\"\n\n[admin]",
        "address = \"127.0.0.1:0\"\ntls = true\n\n[admin]",
    )
    .replace(
        "hosts = [\"localhost\", \"127.0.0.1\", \"test.levee\"]",
        "hosts = [\"a.test\"]",
    );
    let b = Edge::start("tls-origin-b", &b_text);
    // A: plain HTTP in front, speaking TLS to B and verifying B's certificate.
    let a_text = config(b.addr, "", "")
        .replace(
            "hosts = [\"localhost\", \"127.0.0.1\", \"test.levee\"]",
            "hosts = [\"a.test\"]",
        )
        .replace(
            &format!("address = \"{}\"", b.addr),
            &format!(
                "address = \"{}\"\ntls = true\nserver_name = \"a.test\"\nca_file = \"{}\"",
                b.addr,
                ca.display()
            ),
        );
    let a = Edge::start("tls-origin-a", &a_text);
    let (resp, _) = raw(
        a.addr,
        b"GET /api/members/3 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.contains("\"id\":3"),
        "{resp}"
    );
    let log = b.access_log(1);
    assert_eq!(log[0]["tls"], "TLSv1.3");
    // A's X-Forwarded-Proto to B is http (the client spoke plain HTTP to A); B sees A as the client.
    // An origin whose certificate does not verify is unavailable, never silently trusted.
    let (_, other_key) = cert(&dir, "other.test");
    let _ = other_key;
    let bad_text = a_text.replace(
        &format!("ca_file = \"{}\"", ca.display()),
        &format!("ca_file = \"{}\"", dir.join("other.test.pem").display()),
    );
    let bad = Edge::start("tls-origin-bad", &bad_text);
    let (resp, _) = raw(
        bad.addr,
        b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
}
