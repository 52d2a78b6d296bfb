//! Request-rate limits per address, per prefix and per route class, in fixed
//! memory: over a limit, 429 with Retry-After; other clients go on.

use super::*;
use std::net::Ipv4Addr;

fn get_from(e: &Edge, src: &str, path: &str) -> String {
    let mut s = connect_from(src.parse().unwrap(), e.addr).unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    read_until_close(&mut s, Duration::from_secs(3)).0
}

#[test]
fn limits_per_address_prefix_and_route() {
    let o = Origin::start();
    let extra = "\n[site.rate_limit]\nper_ip = 20\nper_prefix = 30\nwindow = \"10s\"\n\n[[site.route]]\nname = \"search\"\npaths = [\"/search\"]\nper_ip = 3\nwindow = \"10s\"\n";
    let e = Edge::start("rate-limit", &config(o.addr, "", extra));
    // A route class: 3 searches per 10 s per address.
    let codes: Vec<u16> = (0..5)
        .map(|_| parse_response(&get_from(&e, "127.0.5.1", "/search?q=x")).0)
        .collect();
    assert_eq!(codes, vec![200, 200, 200, 429, 429]);
    let r = get_from(&e, "127.0.5.1", "/search?q=y");
    assert!(
        r.contains("retry-after: ") && r.contains("rate_limit_ip"),
        "{r}"
    );
    // Another address is not affected.
    assert_eq!(
        parse_response(&get_from(&e, "127.0.6.1", "/search?q=x")).0,
        200
    );
    // The site-wide per-address limit: 20 per 10 s.
    let ok = (0..25)
        .filter(|_| parse_response(&get_from(&e, "127.0.7.1", "/healthz")).0 == 200)
        .count();
    assert_eq!(ok, 20);
    // Many addresses in one /24, each under its own limit: the /24 as a whole is capped at 30.
    let ok = (1..=40u8)
        .filter(|i| {
            parse_response(&get_from(
                &e,
                &Ipv4Addr::new(127, 0, 8, *i).to_string(),
                "/healthz",
            ))
            .0 == 200
        })
        .count();
    assert_eq!(ok, 30);
    assert!(e.await_defense("rate_limit_ip", 1.0) >= 7.0);
    assert_eq!(e.await_defense("rate_limit_prefix", 10.0), 10.0);
    // Every request is logged (5 + 1 + 1 + 25 + 40 lines).
    let log = e.access_log(72);
    assert!(log
        .iter()
        .any(|l| l["status"] == 429 && l["reason"] == "rate_limit_prefix"));
}
