//! Review finding 3 (and the informational "no per-client limit on
//! concurrent origin requests"): one address may have only so many requests
//! in flight at once, across all its connections and streams, until each
//! answer is written. Beyond, 429 at once; others are not affected.

use super::*;

fn get_from(e: &Edge, src: &str, path: &str) -> u16 {
    let mut s = connect_from(src.parse().unwrap(), e.addr).unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    parse_response(&read_until_close(&mut s, Duration::from_secs(10)).0).0
}

#[test]
fn one_address_holds_a_bounded_number_of_requests_in_flight() {
    let o = Origin::start();
    let text = config(
        o.addr,
        "max_requests_in_flight_per_ip = 2\nmax_requests_in_flight_per_prefix = 100",
        "[site.defense]\nenabled = false\n",
    );
    let e = Arc::new(Edge::start("in-flight-cap", &text));
    let slow: Vec<_> = (0..4)
        .map(|i| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50 * i));
                get_from(&e, "127.0.9.1", "/delay?ms=1500")
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    // Another address is not affected while the first is at its cap.
    assert_eq!(get_from(&e, "127.0.9.2", "/healthz"), 200);
    let mut codes: Vec<u16> = slow.into_iter().map(|t| t.join().unwrap()).collect();
    codes.sort_unstable();
    assert_eq!(codes, vec![200, 200, 429, 429]);
    assert_eq!(e.await_defense("in_flight_cap_ip", 2.0), 2.0);
    // The slots came back with the answers.
    assert_eq!(get_from(&e, "127.0.9.1", "/healthz"), 200);
}
