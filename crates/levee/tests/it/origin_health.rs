//! Origin health: a dead origin is skipped (retry, then passive mark-down), a
//! silent one is found by active checks; clients see only successes.

use super::*;
use std::net::TcpListener;

fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A server that accepts and never answers.
fn black_hole() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().take(500) {
            held.push(s);
        }
    });
    addr
}

fn status(e: &Edge) -> serde_json::Value {
    serde_json::from_str(&http_get(e.admin, "/status", &[]).1).unwrap()
}

#[test]
fn dead_origin_is_retried_around_then_marked_down() {
    let o = Origin::start();
    let dead = closed_port();
    let text = config(
        o.addr,
        "",
        &format!("[[site.origin]]\naddress = \"{dead}\"\n"),
    )
    .replace(
        "name = \"test\"\n",
        "name = \"test\"\npassive_failures = 2\npassive_cooldown = \"30s\"\n",
    );
    let e = Edge::start("origin-dead", &text);
    for _ in 0..20 {
        assert_eq!(http_get(e.addr, "/healthz", &[]).0, 200);
    }
    assert!(e.metric("levee_origin_retries_total") >= 1.0);
    let st = status(&e);
    let origins = st["sites"][0]["origins"].as_array().unwrap();
    let d = origins
        .iter()
        .find(|x| x["address"] == dead.to_string())
        .unwrap();
    assert_eq!(d["up"], false, "{st}");
}

#[test]
fn silent_origin_is_found_by_active_checks() {
    let o = Origin::start();
    let hole = black_hole();
    let text = config(o.addr, "", &format!("[[site.origin]]\naddress = \"{hole}\"\n[site.health]\npath = \"/healthz\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\nfall = 1\nrise = 1\n"));
    let e = Edge::start("origin-silent", &text);
    let start = Instant::now();
    loop {
        let st = status(&e);
        let origins = st["sites"][0]["origins"].as_array().unwrap().clone();
        let h = origins
            .iter()
            .find(|x| x["address"] == hole.to_string())
            .unwrap()
            .clone();
        if h["up"] == false {
            assert_eq!(h["active_check_healthy"], false);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "silent origin never marked down: {st}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let t = Instant::now();
    for _ in 0..20 {
        assert_eq!(http_get(e.addr, "/healthz", &[]).0, 200);
    }
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "requests went to the silent origin"
    );
}
