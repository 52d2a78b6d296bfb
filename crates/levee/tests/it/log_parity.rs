//! One pipeline for both protocols: the same requests over HTTP/1.1 and
//! HTTP/2 give the same access-log records, field by field (time, duration,
//! request id, origin time and protocol aside), and the same defense counts.

use super::*;

const CACHE: &str = "[site.cache]\nenabled = true\nttl = \"30s\"\n";

fn fetch(e: &Edge, h2: bool, path: &str, host: &str) {
    let url = format!("http://{}{path}", e.addr);
    // Each protocol from its own address, so that per-client limits start afresh.
    let from = if h2 { "127.0.0.2" } else { "127.0.0.1" };
    let mut args = vec!["-s", "-o", "/dev/null", "--interface", from, "-H"];
    let host = format!("Host: {host}");
    args.push(&host);
    args.push(if h2 {
        "--http2-prior-knowledge"
    } else {
        "--http1.1"
    });
    args.push("--path-as-is");
    args.push(&url);
    let (code, _, err) = run("curl", &args);
    assert_eq!(code, 0, "{err}");
}

fn records(e: &Edge, tag: &str, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut got: Vec<serde_json::Value> = e
            .access_log(0)
            .into_iter()
            .filter(|l| l["path"].as_str().is_some_and(|p| p.contains(tag)))
            .collect();
        if got.len() >= n || Instant::now() > deadline {
            for l in &mut got {
                let o = l.as_object_mut().unwrap();
                for k in [
                    "ts_ms",
                    "duration_us",
                    "request_id",
                    "origin_us",
                    "proto",
                    // A trait of HTTP/2 connections, like `tls` of TLS ones.
                    "h2fp",
                    "client",
                ] {
                    o.remove(k);
                }
                let p = o["path"].as_str().unwrap().replace(tag, "TAG");
                o.insert("path".into(), p.into());
            }
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn http1_and_http2_log_the_same_events_the_same_way() {
    let o = Origin::start();
    let route =
        "[[site.route]]\nname = \"login\"\npaths = [\"/login\"]\nper_ip = 1\nwindow = \"30s\"\n";
    let e = Edge::start(
        "log-parity",
        &config(o.addr, "", &format!("{CACHE}{route}")),
    );
    let run_all = |h2: bool, tag: &str| {
        fetch(&e, h2, &format!("/?p-{tag}"), "localhost"); // proxied, cached: MISS
        fetch(&e, h2, &format!("/?p-{tag}"), "localhost"); // HIT
        fetch(
            &e,
            h2,
            &format!("/.well-known/levee-drill?{tag}"),
            "localhost",
        ); // the edge's own path
        fetch(&e, h2, &format!("/u-{tag}"), "unknown.example"); // 421
        fetch(&e, h2, &format!("/../{tag}"), "localhost"); // 400 bad target
        fetch(&e, h2, &format!("/login?{tag}"), "localhost"); // 200
        fetch(&e, h2, &format!("/login?{tag}"), "localhost"); // 429
    };
    run_all(false, "AAAA");
    let h1 = records(&e, "AAAA", 7);
    let defenses = |e: &Edge| ["unknown_host", "bad_target", "rate_limit_ip"].map(|r| e.defense(r));
    let after_h1 = defenses(&e);
    run_all(true, "BBBB");
    let h2 = records(&e, "BBBB", 7);
    assert_eq!(h1.len(), 7, "{h1:?}");
    assert_eq!(h1, h2, "HTTP/1.1 and HTTP/2 records differ");
    let clients = |p: &str| {
        e.access_log(0)
            .iter()
            .filter(|l| l["path"].as_str().is_some_and(|x| x.contains(p)))
            .map(|l| l["client"].as_str().unwrap().to_string())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        clients("AAAA").into_iter().collect::<Vec<_>>(),
        vec!["127.0.0.1"]
    );
    assert_eq!(
        clients("BBBB").into_iter().collect::<Vec<_>>(),
        vec!["127.0.0.2"]
    );
    let after_h2 = defenses(&e);
    for i in 0..3 {
        assert_eq!(
            after_h2[i] - after_h1[i],
            after_h1[i],
            "each defense counted once per protocol"
        );
    }
    let reasons: Vec<&str> = h1.iter().map(|l| l["reason"].as_str().unwrap()).collect();
    assert_eq!(
        reasons,
        vec![
            "",
            "cache_hit",
            "",
            "unknown_host",
            "bad_target",
            "",
            "rate_limit_ip"
        ],
        "{h1:?}"
    );
}
