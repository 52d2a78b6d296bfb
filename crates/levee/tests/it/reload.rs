//! Reload under load (SIGHUP and the admin API): zero failed requests, the new
//! configuration takes effect, a bad configuration is refused and the old one stays.

use super::*;

fn wrk_failures(out: &str) -> (u64, u64) {
    let requests = out
        .lines()
        .find_map(|l| {
            l.split_once(" requests in ")
                .map(|(n, _)| n.trim().parse::<u64>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut failed = 0;
    for l in out.lines() {
        if let Some(n) = l.trim().strip_prefix("Non-2xx or 3xx responses:") {
            failed += n.trim().parse::<u64>().unwrap_or(0);
        }
        if let Some(rest) = l.trim().strip_prefix("Socket errors:") {
            failed += rest
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    (requests, failed)
}

#[test]
fn reload_under_load_fails_no_request() {
    let o = Origin::start();
    let e = Edge::start("reload", &config(o.addr, "", ""));
    let url = e.url("/api/members/1");
    let load = std::thread::spawn(move || run("wrk", &["-t1", "-c20", "-d5s", &url]));
    std::thread::sleep(Duration::from_millis(800));
    // Change the configuration: a new host and tighter limits.
    let text = std::fs::read_to_string(&e.config).unwrap();
    let new = text
        .replace(
            "hosts = [\"localhost\", \"127.0.0.1\", \"test.levee\"]",
            "hosts = [\"localhost\", \"127.0.0.1\", \"test.levee\", \"new.levee\"]",
        )
        .replace("idle_timeout = \"5s\"", "idle_timeout = \"6s\"");
    assert_ne!(new, text);
    std::fs::write(&e.config, &new).unwrap();
    e.signal("HUP");
    std::thread::sleep(Duration::from_millis(700));
    for _ in 0..3 {
        let (s, body) = admin_post(e.admin, "/reload", Some(TOKEN));
        assert_eq!(s, 200, "{body}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // A broken file is refused; the running configuration stays.
    std::fs::write(&e.config, new.replace("[[site]]", "[[site]]\nbogus = 1")).unwrap();
    let (s, body) = admin_post(e.admin, "/reload", Some(TOKEN));
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("bogus"), "{body}");
    let (code, out, err) = load.join().unwrap();
    assert_eq!(code, 0, "{err}");
    let (requests, failed) = wrk_failures(&out);
    assert!(requests > 1000, "{out}");
    assert_eq!(failed, 0, "{out}");
    assert_eq!(e.metric("levee_reloads_total"), 4.0);
    assert_eq!(e.metric("levee_reload_failures_total"), 1.0);
    assert_eq!(http_get(e.addr, "/healthz", &[("X-Ignore", "1")]).0, 200);
    let (resp, _) = raw(
        e.addr,
        b"GET /healthz HTTP/1.1\r\nHost: new.levee\r\nConnection: close\r\n\r\n",
        Duration::from_secs(3),
    );
    assert!(
        resp.starts_with("HTTP/1.1 200"),
        "new host not served: {resp}"
    );
    assert!(
        e.stderr()
            .iter()
            .any(|l| l.contains("configuration reloaded (generation 1)")),
        "{:?}",
        e.stderr()
    );
}

/// What the edge learned is kept across `SIGHUP`: a client over its rate
/// limit stays over it, and the detector keeps its baseline and its mode.
#[test]
fn rate_limit_counters_and_detector_state_survive_sighup() {
    let o = Origin::start();
    let extra = "\n[site.rate_limit]\nper_ip = 3\nwindow = \"30s\"\nover = \"refuse\"\n\n[site.defense]\ntick = \"100ms\"\nlearn = \"1s\"\n";
    let e = Edge::start("reload-state", &config(o.addr, "", extra));
    let get = || {
        raw(
            e.addr,
            b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            Duration::from_secs(3),
        )
        .0
    };
    for _ in 0..3 {
        assert!(get().starts_with("HTTP/1.1 200"));
    }
    assert!(get().starts_with("HTTP/1.1 429"));
    // Let the detector learn a baseline from calm traffic (it learns only
    // from ticks with requests): one request every 50 ms, each from an
    // address of its own so that none is over its limit.
    for i in 0..30u8 {
        let mut s = connect_from(format!("127.0.40.{}", i + 1).parse().unwrap(), e.addr).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert!(read_until_close(&mut s, Duration::from_secs(3))
            .0
            .starts_with("HTTP/1.1 200"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let learned = |e: &Edge| {
        let (_, body) = http_get(e.admin, "/status", &[]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["sites"][0]["defense"]["baseline"]["ticks"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = learned(&e);
    assert!(before >= 10, "no baseline learned: {before} ticks");
    // Reload with a change elsewhere in the file.
    let text = std::fs::read_to_string(&e.config).unwrap();
    let new = text.replace("idle_timeout = \"5s\"", "idle_timeout = \"6s\"");
    assert_ne!(new, text);
    std::fs::write(&e.config, &new).unwrap();
    e.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while e.metric("levee_reloads_total") < 1.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(e.metric("levee_reloads_total"), 1.0);
    // Still over the limit: the counters were kept.
    let r = get();
    assert!(
        r.starts_with("HTTP/1.1 429"),
        "limit forgotten by the reload: {r}"
    );
    assert!(learned(&e) >= before, "baseline forgotten by the reload");
    // A reload that changes the limits starts them afresh.
    std::fs::write(&e.config, new.replace("per_ip = 3", "per_ip = 5")).unwrap();
    e.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while e.metric("levee_reloads_total") < 2.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(get().starts_with("HTTP/1.1 200"));
}
