//! HTTP/2 CONTINUATION flood: a header block that never ends.

use super::h2_frames::*;
use super::*;

#[test]
fn continuation_flood_gets_goaway() {
    let o = Origin::start();
    let e = Edge::start(
        "h2-continuation",
        &config(o.addr, "", "\n[http2]\nmax_continuation_frames = 8\n"),
    );
    let mut h = H2::connect(e.addr);
    let block = H2::block("/cont");
    h.frame(HEADERS, END_STREAM, 1, &block[..10]);
    for _ in 0..200 {
        h.frame(CONTINUATION, 0, 1, b"\x00");
    }
    assert_eq!(h.goaway(Duration::from_secs(5)), Some(ENHANCE_YOUR_CALM));
    assert!(closed_within(&mut h.s, Duration::from_secs(3)));
    assert_eq!(e.await_defense("h2_continuation_flood", 1.0), 1.0);
    assert!(!o.saw("/cont"));
}
