//! Fixed memory under a slow-client flood: 10,000 idle connections, each
//! holding a partial request head, cost at most 64 MiB of resident memory
//! beyond the idle edge's baseline.

use super::*;
use std::net::Ipv4Addr;

fn rss_bytes(pid: u32) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap();
    statm
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 4096
}

fn fd_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(0)
}

/// Open `N` connections from 1,000 addresses under `net` (127.net.x.y), run
/// `each` on every one and keep them open; the edge's resident memory
/// before and after, which must grow by at most 64 MiB.
fn ten_thousand_held(
    name: &str,
    net: u8,
    cfg: &str,
    warm: &str,
    what: &str,
    each: impl Fn(&mut TcpStream, usize),
) {
    const N: usize = 10_000;
    // One at a time: both hold 10,000 sockets of this test process.
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if fd_limit() < (N + 1000) as u64 {
        eprintln!(
            "SKIPPED: needs `ulimit -n` of at least {} (scripts/test.sh raises it)",
            N + 1000
        );
        return;
    }
    let o = Origin::start();
    let e = Edge::start(
        name,
        &config(o.addr, cfg, "[site.defense]\nenabled = false\n")
            .replace("path = \"ACCESS_LOG\"", "path = \"off\""),
    );
    // Warm up: a few requests so that pools and buffers of the normal path exist.
    for _ in 0..50 {
        assert_eq!(http_get(e.addr, warm, &[]).0, 200);
    }
    std::thread::sleep(Duration::from_millis(300));
    let base = rss_bytes(e.child.id());
    let mut held = Vec::with_capacity(N);
    for i in 0..N {
        let ip = Ipv4Addr::new(127, net, (i / 1000) as u8, (i % 1000 / 10 + 1) as u8);
        let mut s = connect_from(IpAddr::V4(ip), e.addr).unwrap();
        each(&mut s, i);
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(e.metric("levee_open_connections"), N as f64);
    let loaded = rss_bytes(e.child.id());
    let extra = loaded.saturating_sub(base);
    eprintln!(
        "{what}: baseline {} KiB, with {N} clients {} KiB, extra {} KiB ({} bytes per connection)",
        base / 1024,
        loaded / 1024,
        extra / 1024,
        extra / N as u64
    );
    assert!(
        extra <= 64 * 1024 * 1024,
        "{what}: 10k connections cost {} MiB",
        extra >> 20
    );
    drop(held);
}

#[test]
fn ten_thousand_idle_connections_fit_in_64_mib() {
    ten_thousand_held(
        "idle-memory",
        3,
        "header_timeout = \"120s\"\nmax_connections_per_ip = 200\nmax_connections_per_prefix = 2000",
        "/healthz",
        "slow clients (a partial head each)",
        |s, _| s.write_all(b"GET /slow HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").unwrap(),
    );
}

/// Read one HTTP/1.1 response with a `Content-Length` body; its body length.
fn read_one(s: &mut TcpStream) -> usize {
    let mut buf = Vec::with_capacity(70 * 1024);
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return len;
            }
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed mid-response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Review finding 11: the bound must hold after the first response too (an
/// idle keep-alive connection once kept its largest response buffer).
#[test]
fn ten_thousand_keep_alive_connections_after_a_64_kib_response_fit_in_64_mib() {
    ten_thousand_held(
        "idle-memory-after",
        4,
        "idle_timeout = \"300s\"\nmax_connections_per_ip = 200\nmax_connections_per_prefix = 2000",
        "/big?bytes=65536",
        "keep-alive clients after one 64 KiB response each",
        |s, i| {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"GET /big?bytes=65536 HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            assert_eq!(read_one(s), 65536, "connection {i}");
        },
    );
}
