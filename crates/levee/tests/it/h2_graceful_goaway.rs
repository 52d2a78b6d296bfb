//! Review finding 21: a client that ends its HTTP/2 connection politely
//! (GOAWAY with NO_ERROR, then waits for the server to close) was marked
//! abusive. It must not be: only floods and the library's own guards mark.

use super::h2_frames::*;
use super::*;

#[test]
fn a_polite_goodbye_is_not_a_mark() {
    let o = Origin::start();
    let e = Edge::start("h2-graceful-goaway", &config(o.addr, "", ""));
    let mut h = H2::connect(e.addr);
    h.frame(HEADERS, END_HEADERS | END_STREAM, 1, &H2::block("/healthz"));
    // GOAWAY(last stream 1, NO_ERROR), then wait for the server's FIN.
    let mut payload = 1u32.to_be_bytes().to_vec();
    payload.extend_from_slice(&0u32.to_be_bytes());
    h.frame(GOAWAY, 0, 0, &payload);
    assert!(
        closed_within(&mut h.s, Duration::from_secs(5)),
        "the edge kept the connection"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(e.metric("levee_clients_marked_total"), 0.0);
    assert_eq!(e.defense("h2_goaway_enhance_your_calm"), 0.0);
}
