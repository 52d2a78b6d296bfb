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
    // The adaptive defense is off here: the test's own bursts could make it
    // scale the limits down under load (a mode change), which is not what is
    // checked here (adaptive_defense.rs checks that).
    let extra = "\n[site.defense]\nenabled = false\n\n[site.rate_limit]\nper_ip = 20\nper_prefix = 30\nwindow = \"10s\"\n\n[[site.route]]\nname = \"search\"\npaths = [\"/search\"]\nper_ip = 3\nwindow = \"10s\"\n";
    let e = Edge::start("rate-limit", &config(o.addr, "", extra));
    // A route class: 3 searches per 10 s per address.
    let codes: Vec<u16> = (0..5)
        .map(|_| parse_response(&get_from(&e, "127.0.5.1", "/search?q=x")).0)
        .collect();
    assert_eq!(codes, vec![200, 200, 200, 429, 429]);
    // The route's limit is not walked around by changing the path's case.
    let codes: Vec<u16> = ["/SEARCH?q=1", "/Search?q=2", "/search?q=3", "/sEaRcH?q=4"]
        .iter()
        .map(|p| parse_response(&get_from(&e, "127.0.5.9", p)).0)
        .collect();
    assert_eq!(codes[3], 429, "{codes:?}");
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
    let codes: Vec<u16> = (1..=40u8)
        .map(|i| {
            parse_response(&get_from(
                &e,
                &Ipv4Addr::new(127, 0, 8, i).to_string(),
                "/healthz",
            ))
            .0
        })
        .collect();
    let ok = codes.iter().filter(|c| **c == 200).count();
    assert_eq!(ok, 30, "{codes:?}");
    assert!(e.await_defense("rate_limit_ip", 1.0) >= 7.0);
    assert_eq!(e.await_defense("rate_limit_prefix", 10.0), 10.0);
    // Every request is logged (5 + 1 + 1 + 25 + 40 lines).
    let log = e.access_log(72);
    assert!(log
        .iter()
        .any(|l| l["status"] == 429 && l["reason"] == "rate_limit_prefix"));
}

fn browser_get(e: &Edge, src: &str, path: &str, cookie: Option<&str>) -> String {
    let mut s = connect_from(src.parse().unwrap(), e.addr).unwrap();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Mozilla/5.0 Firefox/133.0\r\nAccept: text/html,*/*;q=0.8\r\n{cookie}Connection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    read_until_close(&mut s, Duration::from_secs(3)).0
}

#[test]
fn a_browser_over_a_rate_limit_is_challenged_and_clears_it() {
    let o = Origin::start();
    let extra = "\n[site.rate_limit]\nper_ip = 3\nwindow = \"10s\"\n";
    let e = Edge::start("rate-limit-challenge", &config(o.addr, "", extra));
    let src = "127.0.6.1";
    for _ in 0..3 {
        assert!(browser_get(&e, src, "/", None).starts_with("HTTP/1.1 200"));
    }
    // Over the limit: the interstitial, not a 429.
    let page = browser_get(&e, src, "/", None);
    assert!(
        page.starts_with("HTTP/1.1 403") && page.contains("data-token=\""),
        "{page}"
    );
    // A non-browser request over the same limit is still refused.
    let api = get_from(&e, src, "/");
    assert!(api.starts_with("HTTP/1.1 429"), "{api}");
    // Solve it (as the page's script would) and verify.
    let token = page
        .split("data-token=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let counter = levee_challenge::solve(token, 1 << 24).unwrap();
    let verify = format!("/.levee/challenge/verify?t={token}&c={counter}&r=%2F");
    let resp = browser_get(&e, src, &verify, None);
    assert!(resp.starts_with("HTTP/1.1 303"), "{resp}");
    let cookie = resp
        .split("set-cookie: ")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // Cleared: it gets through again, with more room than before.
    for i in 0..4 {
        let r = browser_get(&e, src, "/", Some(&cookie));
        assert!(
            r.starts_with("HTTP/1.1 200"),
            "request {i} after clearing: {r}"
        );
    }
    assert!(e.metric("levee_challenges_issued_total") >= 1.0);
}

#[test]
fn a_site_can_refuse_browsers_over_a_limit_instead() {
    let o = Origin::start();
    let extra = "\n[site.rate_limit]\nper_ip = 2\nwindow = \"10s\"\nover = \"refuse\"\n";
    let e = Edge::start("rate-limit-refuse", &config(o.addr, "", extra));
    let codes: Vec<u16> = (0..3)
        .map(|_| parse_response(&browser_get(&e, "127.0.6.2", "/", None)).0)
        .collect();
    assert_eq!(codes, vec![200, 200, 429]);
}
