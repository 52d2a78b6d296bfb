//! Fleet mode against a real `redis-server` the test starts on loopback:
//! limits, blocks and clearances shared by two edges; an edge joining late
//! gets the snapshot; a secret that differs is refused; Redis killed and
//! restarted mid-flow; a "Redis" that answers garbage or stalls is treated
//! as down; a 3-node Redis Cluster. Without `redis-server`, skipped with a
//! message.

use super::challenge::{cookie_of, token_of};
use super::redis_server::{free_port, Redis};
use super::*;

const SECRET: &str = "fleet-test-secret-0123456789abcdef";

/// An edge's configuration as a member of the fleet at `url` named `name`.
pub(crate) fn member(origin: SocketAddr, url: &str, name: &str, site: &str) -> String {
    config(
        origin,
        "",
        &format!(
            "{site}\n[challenge]\nsecret = \"{SECRET}\"\n\n[fleet]\nredis = \"{url}\"\nname = \"{name}\"\nopen_for = \"500ms\"\n"
        ),
    )
}

fn get_from(addr: SocketAddr, src: &str, path: &str) -> u16 {
    match connect_from(src.parse().unwrap(), addr) {
        Ok(mut s) => {
            let req =
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            if s.write_all(req.as_bytes()).is_err() {
                return 0;
            }
            parse_response(&read_until_close(&mut s, Duration::from_secs(3)).0).0
        }
        Err(_) => 0,
    }
}

/// `src` sends `per_s` requests a second to each edge for `secs`; the
/// statuses seen.
fn paced(edges: &[&Edge], src: &str, per_s: u64, secs: u64) -> Vec<u16> {
    let mut codes = Vec::new();
    let gap = Duration::from_millis(1000 / per_s);
    let start = Instant::now();
    for i in 0..per_s * secs {
        let due = start + gap * i as u32;
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        for e in edges {
            codes.push(get_from(e.addr, src, "/"));
        }
    }
    codes
}

fn fleet_status(e: &Edge) -> serde_json::Value {
    let body = http_get(e.admin, "/status", &[]).1;
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["fleet"].clone()
}

/// Wait up to `secs` for `f` on the edge's fleet status.
fn await_fleet(e: &Edge, secs: u64, f: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = fleet_status(e);
        if f(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

const LIMIT: &str = "\n[site.rate_limit]\nper_ip = 20\nwindow = \"1s\"\n";

#[test]
fn two_edges_share_a_per_client_limit_and_alone_they_do_not() {
    let Some(redis) = Redis::start("fleet-limit") else {
        return;
    };
    let o = Origin::start();
    let a = Edge::start("fleet-limit-a", &member(o.addr, &redis.url(), "a", LIMIT));
    let b = Edge::start("fleet-limit-b", &member(o.addr, &redis.url(), "b", LIMIT));
    await_fleet(&a, 3, |f| f["share_of"] == 2);
    // 15 req/s to each edge: 30 req/s against a fleet-wide 20.
    let codes = paced(&[&a, &b], "127.0.21.1", 15, 3);
    let limited = codes.iter().filter(|c| **c == 429).count();
    let ok = codes.iter().filter(|c| **c == 200).count();
    eprintln!("fleet: {ok} served, {limited} limited of {}", codes.len());
    assert_eq!(ok + limited, codes.len(), "{codes:?}");
    // 30 a second against 20: refused as one edge would refuse it (every
    // attempt counts, so a client that keeps going over stays over).
    assert!(
        limited >= 30,
        "{limited} limited of {}: {codes:?}",
        codes.len()
    );
    assert!(ok >= 15, "{ok} served");
    let st = fleet_status(&a);
    assert_eq!(st["store"], "connected", "{st}");
    assert_eq!(st["degraded"], false, "{st}");
    assert!(a.metric("levee_fleet_counts_sent_total") > 0.0);
    assert_eq!(a.metric("levee_fleet_connected"), 1.0);
    assert_eq!(a.metric("levee_fleet_edges_live"), 2.0);
    assert_eq!(a.metric("levee_fleet_counts_dropped_total"), 0.0);

    // The control: the same traffic to two edges that are not a fleet.
    let solo = config(
        o.addr,
        "",
        &format!("{LIMIT}\n[challenge]\nsecret = \"{SECRET}\"\n"),
    );
    let (c, d) = (Edge::start("solo-c", &solo), Edge::start("solo-d", &solo));
    let codes = paced(&[&c, &d], "127.0.21.2", 15, 3);
    assert!(
        codes.iter().all(|c| *c == 200),
        "alone, 15 req/s is under 20: {codes:?}"
    );
}

#[test]
fn a_block_on_one_edge_is_applied_by_the_other_within_a_second_and_by_a_late_joiner() {
    let Some(redis) = Redis::start("fleet-block") else {
        return;
    };
    let o = Origin::start();
    let a = Edge::start("fleet-block-a", &member(o.addr, &redis.url(), "a", ""));
    let b = Edge::start("fleet-block-b", &member(o.addr, &redis.url(), "b", ""));
    let bad = "127.0.22.9";
    assert_eq!(get_from(b.addr, bad, "/"), 200);
    let t = Instant::now();
    let (s, _) = admin_post(a.admin, &format!("/blocks?cidr={bad}&ttl=120"), Some(TOKEN));
    assert_eq!(s, 200);
    // B refuses it at accept (the connection is reset: no status).
    while get_from(b.addr, bad, "/") != 0 {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "B still serves {bad} after {:?}",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("block applied by the other edge after {:?}", t.elapsed());
    assert_eq!(
        get_from(b.addr, "127.0.22.10", "/"),
        200,
        "others still served"
    );
    // B's block carries A's name and expiry.
    let blocks = http_get(b.admin, "/blocks", &[]).1;
    assert!(blocks.contains(&format!("{bad}/32")), "{blocks}");
    let ev = http_get(b.admin, "/events", &[]).1;
    assert!(ev.contains("\"from\":\"a\""), "{ev}");

    // A third edge started later has it from the snapshot at once.
    let c = Edge::start("fleet-block-c", &member(o.addr, &redis.url(), "c", ""));
    assert_eq!(
        get_from(c.addr, bad, "/"),
        0,
        "the late joiner serves a blocked client"
    );
    // `levee fleet status` lists the three edges and the block.
    let (code, out, err) = run(
        env!("CARGO_BIN_EXE_levee"),
        &["fleet", "status", "--config", c.config.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    for name in ["a ", "b ", "c ", &format!("block:{bad}/32")] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }

    // Lifting the block on B lifts it on A.
    let (s, body) = http_delete(b.admin, &format!("/blocks?cidr={bad}"));
    assert_eq!(s, 200, "{body}");
    let t = Instant::now();
    while get_from(a.addr, bad, "/") != 200 {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "A still refuses {bad}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn http_delete(addr: SocketAddr, path: &str) -> (u16, String) {
    let req = format!("DELETE {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n");
    parse_response(&raw(addr, req.as_bytes(), Duration::from_secs(3)).0)
}

#[test]
fn a_clearance_from_one_edge_is_accepted_by_the_other() {
    let Some(redis) = Redis::start("fleet-clear") else {
        return;
    };
    let o = Origin::start();
    let site = "\n[site.challenge]\nmode = \"always\"\nbits = 8\n";
    let a = Edge::start("fleet-clear-a", &member(o.addr, &redis.url(), "a", site));
    let b = Edge::start("fleet-clear-b", &member(o.addr, &redis.url(), "b", site));
    let html = [("Accept", "text/html,*/*")];
    let (s, body) = http_get(a.addr, "/page", &html);
    assert_eq!(s, 403);
    let token = token_of(&body);
    let counter = levee_challenge::solve(&token, 1 << 24).unwrap();
    let (resp, _) = raw(
        a.addr,
        format!("GET /.levee/challenge/verify?t={token}&c={counter}&r=%2Fpage HTTP/1.1\r\nHost: localhost\r\nUser-Agent: ua-1\r\nConnection: close\r\n\r\n").as_bytes(),
        Duration::from_secs(3),
    );
    assert!(resp.starts_with("HTTP/1.1 303"), "{resp}");
    let cookie = cookie_of(&resp);
    let on = |e: &Edge| {
        raw(e.addr, format!("GET /page HTTP/1.1\r\nHost: localhost\r\nUser-Agent: ua-1\r\nCookie: {cookie}\r\nAccept: text/html\r\nConnection: close\r\n\r\n").as_bytes(), Duration::from_secs(3)).0
    };
    // Past the challenge on both (the origin has no /page: 404).
    assert!(on(&a).starts_with("HTTP/1.1 404"));
    assert!(
        on(&b).starts_with("HTTP/1.1 404"),
        "edge B challenged a visitor edge A cleared"
    );
}

#[test]
fn an_edge_whose_secret_differs_from_the_fleets_refuses_to_start() {
    let Some(redis) = Redis::start("fleet-secret") else {
        return;
    };
    let o = Origin::start();
    let _a = Edge::start("fleet-secret-a", &member(o.addr, &redis.url(), "a", ""));
    let other = member(o.addr, &redis.url(), "b", "")
        .replace(SECRET, "another-secret-0123456789abcdef-xyz");
    let dir = scratch("fleet-secret-b");
    let path = dir.join("levee.toml");
    std::fs::write(
        &path,
        other.replace("ACCESS_LOG", &dir.join("a.log").display().to_string()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_levee"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("secret differs from the fleet's"), "{err}");
    // And without a secret at all, the configuration says what to do.
    let none = member(o.addr, &redis.url(), "b", "").replace(&format!("secret = \"{SECRET}\""), "");
    std::fs::write(&path, none.replace("ACCESS_LOG", "off")).unwrap();
    let (code, _, err) = run(
        env!("CARGO_BIN_EXE_levee"),
        &["check", "--config", path.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("fleet: a fleet needs [challenge] secret"),
        "{err}"
    );
}

#[test]
fn redis_dies_mid_flow_each_edge_takes_its_share_and_resyncs_when_it_returns() {
    let Some(mut redis) = Redis::start("fleet-down") else {
        return;
    };
    let o = Origin::start();
    // The adaptive defense off: its modes would scale the limits too.
    let site = format!("{LIMIT}\n[site.defense]\nenabled = false\n\n[drill]\ntoken = \"t0k3n\"\n");
    let a = Edge::start("fleet-down-a", &member(o.addr, &redis.url(), "a", &site));
    let b = Edge::start("fleet-down-b", &member(o.addr, &redis.url(), "b", &site));
    await_fleet(&a, 3, |f| f["share_of"] == 2);
    // A drill floods both edges (500 req/s each, 64 sources) throughout.
    let floods: Vec<_> = [&a, &b]
        .iter()
        .map(|e| {
            let (target, origin) = (e.url("/"), o.addr.to_string());
            std::thread::spawn(move || {
                let json = scratch("fleet-down-drill").join("d.json");
                let (code, _, err) = run(
                    env!("CARGO_BIN_EXE_levee"),
                    &[
                        "drill",
                        "--target",
                        &target,
                        "--scenario",
                        "http-flood",
                        "--warmup",
                        "0",
                        "--duration",
                        "6",
                        "--rate",
                        "500",
                        "--legit",
                        "10",
                        "--workers",
                        "1",
                        "--origin",
                        &origin,
                        "--json",
                        json.to_str().unwrap(),
                    ],
                );
                let text = std::fs::read_to_string(&json).unwrap_or_default();
                (
                    code,
                    err,
                    serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default(),
                )
            })
        })
        .collect();
    // Legitimate clients (50 addresses in turn) to A, before and after
    // Redis dies, once the floods are under way.
    std::thread::sleep(Duration::from_millis(1000));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (s2, addr) = (Arc::clone(&stop), a.addr);
    let begun = Instant::now();
    let legit = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut i = 0u32;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) && i < 2000 {
            let src = format!("127.0.23.{}", 1 + i % 50);
            let t = Instant::now();
            let code = get_from(addr, &src, "/");
            seen.push((t - begun, t.elapsed(), code));
            i += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        seen
    });
    std::thread::sleep(Duration::from_millis(1500));
    let killed = Instant::now();
    redis.kill();
    // Both edges notice, go on their own, and say so.
    let st = await_fleet(&a, 3, |f| f["degraded"] == true && f["breaker"] == "open");
    assert_eq!(st["degraded"], true, "{st}");
    assert_eq!(st["share_of"], 2, "{st}");
    assert!(st["store_errors"].as_u64().unwrap() >= 1, "{st}");
    assert_eq!(
        await_fleet(&b, 3, |f| f["degraded"] == true)["degraded"],
        true
    );
    assert_eq!(a.metric("levee_fleet_degraded"), 1.0);
    assert_eq!(a.metric("levee_fleet_connected"), 0.0);
    eprintln!("degraded {:?} after the kill", killed.elapsed());
    // Its share: 20 / 2 edges = 10 a second for one client at one edge.
    let codes = paced(&[&a], "127.0.23.200", 15, 2);
    let limited = codes.iter().filter(|c| **c == 429).count();
    assert!(
        (5..=20).contains(&limited),
        "on its own, 15 req/s against a share of 10: {limited} limited {codes:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = legit.join().unwrap();
    let ok = seen.iter().filter(|s| s.2 == 200).count();
    assert!(
        ok * 1000 >= seen.len() * 999,
        "legitimate clients failed: {ok} of {}",
        seen.len()
    );
    let at_kill = killed - begun;
    let p99 = |after: bool| {
        let mut l: Vec<Duration> = seen
            .iter()
            .filter(|s| (s.0 >= at_kill) == after)
            .map(|s| s.1)
            .collect();
        l.sort();
        (l[l.len() * 99 / 100], l.len())
    };
    let ((before, nb), (after, na)) = (p99(false), p99(true));
    for f in floods {
        let (code, err, r) = f.join().unwrap();
        assert_eq!(code, 0, "{err}");
        let s = &r["summary"];
        eprintln!(
            "drill: legitimate success {} with the flood",
            s["legit_success"]
        );
        assert!(s["legit_success"].as_f64().unwrap() >= 0.999, "{s}");
        assert!(
            s["attack_sent"].as_u64().unwrap_or(0) > 1000 || r.to_string().contains("attack"),
            "{s}"
        );
    }
    eprintln!("legitimate: {ok} of {} served; p99 {before:?} over {nb} before the kill, {after:?} over {na} after", seen.len());
    // A request that waited on the dead store would wait out the store's
    // 100 ms call timeout; a rise well under it is the loaded machine's noise.
    assert!(
        after <= before + Duration::from_millis(20),
        "legitimate p99 rose from {before:?} to {after:?} when Redis died: requests wait on the store"
    );
    // Back: both resync within 2 s, and A's block made while Redis was down reaches B.
    let (s, _) = admin_post(a.admin, "/blocks?cidr=127.0.23.250&ttl=60", Some(TOKEN));
    assert_eq!(s, 200);
    redis.restart();
    let back = Instant::now();
    let st = await_fleet(&a, 2, |f| {
        f["store"] == "connected" && f["degraded"] == false
    });
    assert_eq!(
        st["store"], "connected",
        "not resynced 2 s after Redis came back: {st}"
    );
    await_fleet(&b, 2, |f| f["store"] == "connected");
    eprintln!("resynced {:?} after the restart", back.elapsed());
    let t = Instant::now();
    while get_from(b.addr, "127.0.23.250", "/") != 0 {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "the block made while Redis was down did not reach B"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A "Redis" that answers every connection with `answer` (or nothing).
fn fake_store(answer: &'static [u8]) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    let h = std::thread::spawn(move || {
        let mut held = Vec::new();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end && held.len() < 200 {
            match l.accept() {
                Ok((mut s, _)) => {
                    if !answer.is_empty() {
                        let _ = s.write_all(answer);
                    }
                    held.push(s);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (addr, h)
}

#[test]
fn a_store_that_answers_garbage_or_stalls_is_down_and_the_edge_serves() {
    let o = Origin::start();
    for (what, answer) in [
        (
            "garbage",
            &b"HTTP/1.1 200 OK\r\n\r\n\x00\xff*9999999999\r\n$-7\r\n"[..],
        ),
        ("a bad integer", b"+OK\r\n:notanumber\r\n:1\r\n*2\r\n"),
        ("silence", b""),
    ] {
        let (addr, _h) = fake_store(answer);
        let t = Instant::now();
        let e = Edge::start(
            "fleet-garbage",
            &member(o.addr, &format!("redis://{addr}"), "a", LIMIT),
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{what}: start took {:?}",
            t.elapsed()
        );
        assert!(
            e.stderr()
                .iter()
                .any(|l| l.contains("fleet: warning") && l.contains("unreachable")),
            "{what}: {:?}",
            e.stderr()
        );
        for i in 0..5 {
            assert_eq!(
                get_from(e.addr, &format!("127.0.24.{i}"), "/"),
                200,
                "{what}"
            );
        }
        let st = await_fleet(&e, 3, |f| f["store_errors"].as_u64().unwrap_or(0) >= 2);
        assert_eq!(st["store"], "unreachable", "{what}: {st}");
        assert_eq!(st["degraded"], true, "{what}: {st}");
        assert!(st["last_error"].as_str().is_some(), "{what}: {st}");
    }
}

#[test]
fn the_shared_limit_holds_on_a_three_node_redis_cluster() {
    let mut nodes = Vec::new();
    for i in 0..3 {
        let bus = free_port().to_string();
        let conf = format!("nodes-{i}-{}.conf", std::process::id());
        let Some(r) = Redis::start_with(
            "fleet-cluster",
            &[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &conf,
                "--cluster-port",
                &bus,
            ],
        ) else {
            return;
        };
        nodes.push(r);
    }
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let mut args = vec!["--cluster", "create"];
    args.extend(addrs.iter().map(String::as_str));
    args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
    let (code, out, err) = run("redis-cli", &args);
    assert_eq!(code, 0, "{out}{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !nodes
        .iter()
        .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
    {
        assert!(Instant::now() < deadline, "the cluster did not form");
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = Origin::start();
    let url = nodes[0].url();
    let cluster = |name: &str| {
        member(o.addr, &url, name, LIMIT).replace("[fleet]\n", "[fleet]\ncluster = true\n")
    };
    let a = Edge::start("fleet-cluster-a", &cluster("a"));
    let b = Edge::start("fleet-cluster-b", &cluster("b"));
    let st = await_fleet(&a, 3, |f| f["share_of"] == 2);
    assert_eq!(st["store"], "connected", "{st}");
    let codes = paced(&[&a, &b], "127.0.25.1", 15, 3);
    let limited = codes.iter().filter(|c| **c == 429).count();
    eprintln!("cluster: {limited} limited of {}", codes.len());
    assert!(limited >= 15, "{limited} limited: {codes:?}");
    // The counters landed on the cluster (on whichever node owns the site's slot).
    let keys: usize = nodes
        .iter()
        .map(|n| {
            n.cli(&["--scan", "--pattern", "levee:v1:*"])
                .lines()
                .count()
        })
        .sum();
    assert!(keys >= 3, "{keys} levee keys in the cluster");
}

#[test]
fn a_rule_derived_by_one_edge_is_applied_by_the_other_within_a_second() {
    use super::adaptive_defense::{events, run_drill, FAST};
    let Some(redis) = Redis::start("fleet-rule") else {
        return;
    };
    let o = Origin::start();
    // Idle rules are kept a minute, so that the flood B gets later, and the
    // edge that joins after it, meet A's rules while A still holds them.
    let slow_expiry = FAST.replace("rule_idle = \"1s\"", "rule_idle = \"60s\"");
    let a = Edge::start(
        "fleet-rule-a",
        &member(o.addr, &redis.url(), "a", &slow_expiry),
    );
    let b = Edge::start(
        "fleet-rule-b",
        &member(o.addr, &redis.url(), "b", &slow_expiry),
    );
    let s = run_drill(&a, &o, "http-flood", "3", "3");
    assert!(
        s["time_to_mitigate_s"].as_u64().is_some(),
        "A never mitigated: {s}"
    );
    let ev_a = events(&a);
    let derived = ev_a
        .iter()
        .find(|v| v["event"] == "rule_added")
        .unwrap_or_else(|| panic!("A derived no rule: {ev_a:?}"));
    let ev_b = events(&b);
    let learnt = ev_b
        .iter()
        .find(|v| v["event"] == "rule_added" && v["from"] == "a")
        .unwrap_or_else(|| panic!("B did not take A's rule: {ev_b:?}"));
    assert_eq!(learnt["rule"]["value"], derived["rule"]["value"]);
    let lag = learnt["ts_ms"].as_u64().unwrap() - derived["ts_ms"].as_u64().unwrap();
    eprintln!("rule derived by A reached B after {lag} ms");
    assert!(lag <= 1000, "{lag} ms");
    // The same flood against B: stopped by A's rule from its first second,
    // without B deriving one of its own.
    let s = run_drill(&b, &o, "http-flood", "1", "3");
    assert!(s["legit_success"].as_f64().unwrap() >= 0.99, "{s}");
    assert_eq!(s["time_to_mitigate_s"].as_u64(), Some(0), "{s}");
    let own = events(&b)
        .iter()
        .filter(|v| v["event"] == "rule_added" && v["from"].is_null())
        .count();
    assert_eq!(own, 0, "B derived its own rule: {:?}", events(&b));
    // An edge that joins now has A's live rules from the snapshot.
    let c = Edge::start(
        "fleet-rule-c",
        &member(o.addr, &redis.url(), "c", &slow_expiry),
    );
    let st: serde_json::Value = serde_json::from_str(&http_get(c.admin, "/status", &[]).1).unwrap();
    let rules = st["sites"][0]["defense"]["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        rules
            .iter()
            .any(|r| r["value"] == derived["rule"]["value"] && r["from"] == "a"),
        "the late joiner lacks A's rule: {rules:?}"
    );
}

#[test]
fn a_pin_is_shared_a_password_is_used_and_fleet_settings_need_a_restart() {
    let Some(redis) = Redis::start_with("fleet-pin", &["--requirepass", "s3cret-pass"]) else {
        return;
    };
    let o = Origin::start();
    let url = format!("redis://:s3cret-pass@127.0.0.1:{}", redis.port);
    let a = Edge::start("fleet-pin-a", &member(o.addr, &url, "a", ""));
    let b = Edge::start("fleet-pin-b", &member(o.addr, &url, "b", ""));
    assert_eq!(fleet_status(&a)["store"], "connected");
    // The start message names the store without its password.
    let said = a.stderr().join("\n");
    assert!(
        said.contains("joined as a through redis://***@127.0.0.1:"),
        "{said}"
    );
    assert!(!said.contains("s3cret-pass"), "{said}");
    // An operator pins the site on A: B follows within a second.
    let (s, _) = admin_post(a.admin, "/mode?site=test&mode=under_attack", Some(TOKEN));
    assert_eq!(s, 200);
    let t = Instant::now();
    loop {
        let st: serde_json::Value =
            serde_json::from_str(&http_get(b.admin, "/status", &[]).1).unwrap();
        if st["sites"][0]["defense"]["pinned"] == "under_attack" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(1), "B not pinned: {st}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A wrong password: the edge serves on its own and says why.
    let wrong = member(o.addr, &url.replace("s3cret-pass", "wrong"), "c", "");
    let c = Edge::start("fleet-pin-c", &wrong);
    assert_eq!(get_from(c.addr, "127.0.26.1", "/"), 200);
    let st = fleet_status(&c);
    assert_eq!(st["store"], "unreachable", "{st}");
    let why = st["last_error"].as_str().unwrap_or("").to_ascii_uppercase();
    assert!(why.contains("WRONGPASS") || why.contains("AUTH"), "{st}");
    // Changing [fleet] and reloading: refused, the running settings stay.
    let text = std::fs::read_to_string(&a.config)
        .unwrap()
        .replace("name = \"a\"", "name = \"renamed\"");
    std::fs::write(&a.config, text).unwrap();
    let (s, body) = admin_post(a.admin, "/reload", Some(TOKEN));
    assert_ne!(s, 200, "{body}");
    assert!(body.contains("[fleet] changed"), "{body}");
    assert_eq!(fleet_status(&a)["name"], "a");
}

#[test]
fn the_store_is_reached_over_tls_with_its_authority_and_refused_without() {
    let Some((redis, ca)) = Redis::start_tls("fleet-tls") else {
        return;
    };
    let o = Origin::start();
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let with_ca = |name: &str| {
        member(o.addr, &url, name, "").replace(
            "[fleet]\n",
            &format!("[fleet]\nca = \"{}\"\n", ca.display()),
        )
    };
    let a = Edge::start("fleet-tls-a", &with_ca("a"));
    let b = Edge::start("fleet-tls-b", &with_ca("b"));
    let st = await_fleet(&a, 3, |f| f["share_of"] == 2);
    assert_eq!(st["store"], "connected", "{st}");
    assert_eq!(fleet_status(&b)["store"], "connected");
    // Without the authority, the system's roots do not know this certificate.
    let c = Edge::start("fleet-tls-c", &member(o.addr, &url, "c", ""));
    assert_eq!(get_from(c.addr, "127.0.27.1", "/"), 200);
    let st = fleet_status(&c);
    assert_eq!(st["store"], "unreachable", "{st}");
    assert!(
        st["last_error"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("certificate"),
        "{st}"
    );
}

#[test]
fn one_edges_dashboard_shows_every_edge_of_the_fleet_and_not_the_store() {
    let Some(redis) = Redis::start("fleet-dashboard") else {
        return;
    };
    let o = Origin::start();
    let a = Edge::start("fleet-dash-a", &member(o.addr, &redis.url(), "a", ""));
    let b = Edge::start("fleet-dash-b", &member(o.addr, &redis.url(), "b", ""));
    let (s, _) = admin_post(a.admin, "/mode?site=test&mode=under_attack", Some(TOKEN));
    assert_eq!(s, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // B's token-less stream: A's mode comes from A's heartbeat.
        let (_, text) = super::dashboard::stream(b.admin, "127.0.0.1", None);
        let data = text
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or("null");
        let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        let edges = v["fleet"]["edges"].as_array().cloned().unwrap_or_default();
        let a_said = edges.iter().find(|e| e["name"] == "a");
        if a_said.is_some_and(|e| e["said"]["sites"]["test"]["mode"] == "under_attack")
            && edges.iter().any(|e| e["name"] == "b")
        {
            assert!(
                !text.contains(&redis.url()) && !text.contains("redis://"),
                "the store's address in a token-less stream: {text}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B's dashboard never showed A's mode: {v}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
