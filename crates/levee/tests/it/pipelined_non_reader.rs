//! Review finding 1: answers the edge wrote itself had no send deadline, so
//! a client that pipelined requests and never read held its connection for
//! ever. Now every response, the edge's own included, is held to the send
//! rate: the connection is cut and counted.

use super::*;

#[test]
fn a_pipelining_client_that_never_reads_is_cut() {
    let o = Origin::start();
    let e = Edge::start(
        "pipelined",
        &config(
            o.addr,
            "send_grace = \"1s\"\nmax_requests_per_connection = 1000000",
            "",
        ),
    );
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&e.addr.into()).unwrap();
    let mut s: TcpStream = s.into();
    let one = b"GET /.well-known/levee-drill HTTP/1.1\r\nHost: x\r\n\r\n";
    let many: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * 40_000)
        .collect();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(&many);
    let t = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut cut = 0.0;
    while cut < 1.0 && Instant::now() < deadline {
        cut = e.defense("send_too_slow");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(cut >= 1.0, "the non-reader was never cut");
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    // (40,000 answers: more than a loopback send buffer holds, 4 MiB at most.)
    // The edge reset the connection: reading ends instead of hanging.
    let (_, closed) = read_until_close(&mut s, Duration::from_secs(10));
    assert!(closed, "connection still open");
    assert_eq!(http_get(e.addr, "/healthz", &[]).0, 200);
}

/// The HTTP/2 form: a client that grants no flow-control window
/// (SETTINGS_INITIAL_WINDOW_SIZE = 0) and asks for answers the edge writes
/// itself. The stream is reset once the send deadline passes, and counted.
#[test]
fn an_http2_client_with_a_zero_window_is_cut() {
    use super::h2_frames::*;
    let o = Origin::start();
    let e = Edge::start("zero-window", &config(o.addr, "send_grace = \"1s\"", ""));
    let s = TcpStream::connect(e.addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut h = H2 { s };
    h.s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    h.frame(SETTINGS, 0, 0, &[0x00, 0x04, 0, 0, 0, 0]);
    for id in [1u32, 3, 5] {
        h.frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            id,
            &H2::block("/.well-known/levee-drill"),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut cut = 0.0;
    while cut < 3.0 && Instant::now() < deadline {
        cut = e.defense("send_too_slow");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(cut, 3.0, "every stream without a window is cut and counted");
    assert_eq!(http_get(e.addr, "/healthz", &[]).0, 200);
}
