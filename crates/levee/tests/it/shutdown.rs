//! Graceful shutdown: in-flight requests finish, new connections are refused,
//! the process exits within the drain deadline.

use super::*;

#[test]
fn sigterm_drains_in_flight_requests() {
    let o = Origin::start();
    let mut e = Edge::start("shutdown", &config(o.addr, "drain_timeout = \"5s\"", ""));
    let addr = e.addr;
    let inflight = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /delay?ms=1500 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        read_until_close(&mut s, Duration::from_secs(6))
    });
    // An idle keep-alive connection is closed at shutdown, not held until its timeout.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let start = Instant::now();
    e.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after SIGTERM"
    );
    let (resp, closed) = inflight.join().unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 200"),
        "in-flight request lost: {resp}"
    );
    assert!(resp.contains("connection: close"), "{resp}");
    assert!(closed);
    assert!(closed_within(&mut idle, Duration::from_secs(2)));
    let status = loop {
        if let Some(s) = e.child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(6), "did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    assert!(start.elapsed() < Duration::from_secs(4));
    assert!(
        e.stderr().iter().any(|l| l.contains("drained")),
        "{:?}",
        e.stderr()
    );
}
