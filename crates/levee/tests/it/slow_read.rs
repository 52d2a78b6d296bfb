//! Slow read: a client that does not read the response is cut when the
//! response falls below the minimum send rate.

use super::*;

#[test]
fn client_that_stops_reading_is_cut() {
    let o = Origin::start();
    let e = Edge::start(
        "slow-read",
        &config(o.addr, "min_send_rate = 100000\nsend_grace = \"1s\"", ""),
    );
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&e.addr.into()).unwrap();
    let mut s: TcpStream = sock.into();
    s.write_all(b"GET /big?bytes=50000000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    // Read nothing for a while: the edge's send deadline must pass.
    std::thread::sleep(Duration::from_secs(4));
    let start = Instant::now();
    let (_, closed) = read_until_close(&mut s, Duration::from_secs(20));
    assert!(closed, "connection not closed");
    assert!(start.elapsed() < Duration::from_secs(15));
    assert_eq!(e.await_defense("send_too_slow", 1.0), 1.0);
}

#[test]
fn slowhttptest_slow_read_is_cut() {
    let o = Origin::start();
    let e = Edge::start(
        "slow-read-tool",
        &config(
            o.addr,
            "min_send_rate = 50000\nsend_grace = \"1s\"\nmax_connections_per_ip = 1000",
            "",
        ),
    );
    let url = e.url("/big?bytes=20000000");
    slowhttptest(
        &[
            "-X", "-c", "20", "-r", "20", "-w", "10", "-y", "20", "-n", "5", "-z", "32", "-k", "1",
            "-l", "8", "-p", "3", "-u", &url,
        ],
        "slowread",
    );
    assert!(
        e.defense("send_too_slow") >= 10.0,
        "send_too_slow = {}",
        e.defense("send_too_slow")
    );
    assert_eq!(http_get(e.addr, "/healthz", &[]).0, 200);
}
