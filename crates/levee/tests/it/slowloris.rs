//! Slowloris: a client that trickles its request head is cut at the header
//! deadline however steadily it trickles; other clients keep being served.

use super::*;

#[test]
fn trickled_head_is_cut_at_the_deadline() {
    let o = Origin::start();
    let e = Edge::start("slowloris-raw", &config(o.addr, "", ""));
    let mut s = TcpStream::connect(e.addr).unwrap();
    let start = Instant::now();
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    // One header byte every 100 ms: steady, but the head never completes.
    let mut cut = false;
    for i in 0..60 {
        std::thread::sleep(Duration::from_millis(100));
        if s.write_all(format!("X-{i}: a\r\n").as_bytes()).is_err() {
            cut = true;
            break;
        }
        if start.elapsed() > Duration::from_millis(2600) {
            break;
        }
    }
    let (resp, closed) = read_until_close(&mut s, Duration::from_secs(2));
    assert!(
        cut || closed,
        "connection still open after {:?}",
        start.elapsed()
    );
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(4000),
        "cut after {took:?}, header_timeout is 2s"
    );
    assert!(
        took >= Duration::from_millis(1900),
        "cut too early: {took:?}"
    );
    if !resp.is_empty() {
        assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    }
    assert_eq!(e.await_defense("header_timeout", 1.0), 1.0);
    assert!(!o.saw("/slow"));
}

#[test]
fn slowhttptest_slowloris_does_not_starve_other_clients() {
    let o = Origin::start();
    let e = Edge::start(
        "slowloris-tool",
        &config(o.addr, "max_connections_per_ip = 1000", ""),
    );
    let url = e.url("/");
    // 200 slowloris connections for 6 seconds, headers every 1 s.
    let tool = std::thread::spawn(move || {
        slowhttptest(
            &[
                "-H", "-c", "200", "-r", "200", "-i", "1", "-l", "6", "-x", "10", "-p", "3", "-u",
                &url,
            ],
            "slowloris",
        )
    });
    std::thread::sleep(Duration::from_millis(1500));
    let start = Instant::now();
    let mut ok = 0;
    while start.elapsed() < Duration::from_secs(3) {
        if http_get(e.addr, "/healthz", &[]).0 == 200 {
            ok += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tool.join().unwrap();
    assert!(
        ok >= 20,
        "legitimate requests served during the attack: {ok}"
    );
    // Every slowloris connection was cut by the header deadline.
    assert!(
        e.defense("header_timeout") >= 150.0,
        "header_timeout = {}",
        e.defense("header_timeout")
    );
    assert!(!o.saw("X-"), "a slowloris head reached the origin");
}
