//! Slow POST: a body sent below the minimum rate is cut with 408, and a small
//! slow body never reaches the origin (the edge reads it first).

use super::*;

#[test]
fn body_below_minimum_rate_is_cut() {
    let o = Origin::start();
    let e = Edge::start(
        "slow-post",
        &config(o.addr, "min_body_rate = 200\nbody_grace = \"1s\"", ""),
    );
    let mut s = TcpStream::connect(e.addr).unwrap();
    s.write_all(b"POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10000\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    // 10 bytes every 200 ms = 50 B/s, below 200 B/s.
    while start.elapsed() < Duration::from_secs(5) {
        if s.write_all(b"user=aaaaa").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 512];
        let r = s.read(&mut b);
        s.set_nonblocking(false).unwrap();
        if let Ok(n) = r {
            let text = String::from_utf8_lossy(&b[..n]).to_string();
            assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
            break;
        }
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "slow body not cut after {took:?}"
    );
    assert_eq!(e.await_defense("body_too_slow", 1.0), 1.0);
    assert!(!o.saw("POST /login"), "the origin saw the slow POST");
}

#[test]
fn slowhttptest_slow_body_is_cut() {
    let o = Origin::start();
    let e = Edge::start(
        "slow-post-tool",
        &config(
            o.addr,
            "min_body_rate = 500\nbody_grace = \"1s\"\nmax_connections_per_ip = 1000",
            "",
        ),
    );
    let url = e.url("/login");
    slowhttptest(
        &[
            "-B", "-c", "50", "-r", "50", "-i", "1", "-s", "8192", "-l", "5", "-x", "10", "-p",
            "3", "-u", &url,
        ],
        "slowpost",
    );
    assert!(
        e.defense("body_too_slow") >= 40.0,
        "body_too_slow = {}",
        e.defense("body_too_slow")
    );
    assert!(!o.saw("POST /login"));
    assert_eq!(http_get(e.addr, "/healthz", &[]).0, 200);
}
