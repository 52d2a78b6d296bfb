//! Connection floods: caps per address, per /24 and global, enforced at
//! accept, from many distinct 127.x.y.z sources; others keep being served.

use super::*;
use std::net::Ipv4Addr;

/// Whether the edge kept `s` open (a refused connection is reset at once).
fn alive(s: &TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 1];
    matches!((&mut &*s).read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut)
}

#[test]
fn per_address_and_per_prefix_caps() {
    let o = Origin::start();
    let e = Edge::start(
        "conn-caps",
        &config(
            o.addr,
            "max_connections_per_ip = 5\nmax_connections_per_prefix = 12\nheader_timeout = \"5s\"",
            "",
        ),
    );
    // One bot opens 30 connections: 5 are kept.
    let src: IpAddr = "127.0.3.2".parse().unwrap();
    let conns: Vec<TcpStream> = (0..30)
        .filter_map(|_| connect_from(src, e.addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let kept = conns.iter().filter(|s| alive(s)).count();
    assert_eq!(kept, 5);
    // Bots spread over one /24, one connection each: 12 per prefix in all.
    let more: Vec<TcpStream> = (10..40u8)
        .filter_map(|i| connect_from(IpAddr::V4(Ipv4Addr::new(127, 0, 3, i)), e.addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let kept2 = more.iter().filter(|s| alive(s)).count();
    assert_eq!(kept2, 12 - 5);
    // A client from another prefix is served at once.
    let mut c = connect_from("127.0.4.1".parse().unwrap(), e.addr).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (resp, _) = read_until_close(&mut c, Duration::from_secs(3));
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(e.await_defense("conn_cap_ip", 25.0), 25.0);
    assert_eq!(e.await_defense("conn_cap_prefix", 23.0), 23.0);
    // Each refusal is in the access log too.
    let log = e.access_log(49);
    let capped = log
        .iter()
        .filter(|l| l["reason"] == "conn_cap_ip" && l["client"] == "127.0.3.2")
        .count();
    assert_eq!(capped, 25);
    assert_eq!(
        log.iter()
            .filter(|l| l["reason"] == "conn_cap_prefix")
            .count(),
        23
    );
}

#[test]
fn flood_from_many_sources_does_not_stop_legitimate_clients() {
    let o = Origin::start();
    let e = Edge::start("conn-flood", &config(o.addr, "max_connections_per_ip = 4\nmax_connections_per_prefix = 64\nmax_connections = 2000\nheader_timeout = \"10s\"", ""));
    // 100 bots spread over 127.1.0.0/16 (5 per /24), each opening 6 connections and holding them.
    let mut held = Vec::new();
    for b in 0..100u32 {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 1, (b / 5) as u8, (b % 5 + 1) as u8));
        for _ in 0..6 {
            if let Ok(s) = connect_from(ip, e.addr) {
                held.push(s);
            }
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(e.metric("levee_open_connections"), 400.0);
    assert_eq!(e.await_defense("conn_cap_ip", 200.0), 200.0);
    // Legitimate clients from other addresses are served at once, during the flood.
    for i in 1..=20u8 {
        let start = Instant::now();
        let mut c = connect_from(IpAddr::V4(Ipv4Addr::new(127, 2, 0, i)), e.addr).unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (resp, _) = read_until_close(&mut c, Duration::from_secs(2));
        assert!(
            resp.starts_with("HTTP/1.1 200"),
            "legitimate client {i}: {resp}"
        );
        assert!(start.elapsed() < Duration::from_millis(500));
    }
    drop(held);
}
