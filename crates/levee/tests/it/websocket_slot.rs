//! Review finding 2: an upgraded connection kept its origin admission slot
//! and had no idle timeout, so a few hundred idle WebSockets shut a site off
//! from its origin. Now a tunnel gives its slot back and ends when idle.

use super::*;

fn open_ws(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    s
}

#[test]
fn idle_websockets_neither_hold_origin_slots_nor_live_for_ever() {
    let o = Origin::start();
    // Two origin slots, no queue: two tunnels holding slots would refuse every request.
    let text = config(
        o.addr,
        "idle_timeout = \"2s\"",
        "[site.defense]\nenabled = false\n",
    )
    .replace(
        "name = \"test\"\n",
        "name = \"test\"\nmax_concurrent_per_origin = 2\nqueue = 0\n",
    );
    let e = Edge::start("ws-slot", &text);
    let mut tunnels: Vec<TcpStream> = (0..4).map(|_| open_ws(e.addr)).collect();
    let deadline = Instant::now() + Duration::from_secs(3);
    while e.metric("levee_websockets_open") < 4.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(e.metric("levee_websockets_open"), 4.0);
    for i in 0..5 {
        assert_eq!(
            http_get(e.addr, &format!("/ws-free-{i}"), &[]).0,
            404,
            "request {i} with 4 tunnels open"
        );
    }
    // Idle for longer than idle_timeout: the edge ends them.
    let t = Instant::now();
    for s in &mut tunnels {
        let (_, closed) = read_until_close(s, Duration::from_secs(8));
        assert!(closed, "tunnel still open after {:?}", t.elapsed());
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while e.metric("levee_websockets_open") > 0.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(e.metric("levee_websockets_open"), 0.0);
}
