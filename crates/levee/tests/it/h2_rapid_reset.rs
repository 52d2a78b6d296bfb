//! HTTP/2 Rapid Reset (CVE-2023-44487): streams opened and reset at once.

use super::h2_frames::*;
use super::*;

#[test]
fn rapid_reset_gets_goaway_and_origin_load_stays_bounded() {
    let o = Origin::start();
    let e = Edge::start(
        "h2-rapid-reset",
        &config(
            o.addr,
            "",
            "\n[http2]\nmax_concurrent_streams = 20\nmax_rst_frames = 10\n",
        ),
    );
    let mut h = H2::connect(e.addr);
    let block = H2::block("/delay?ms=300");
    let mut burst = Vec::new();
    for i in 0..2000u32 {
        let id = 2 * i + 1;
        burst.extend(H2::frame_bytes(
            HEADERS,
            END_HEADERS | END_STREAM,
            id,
            &block,
        ));
        burst.extend(H2::frame_bytes(RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    let _ = h.s.write_all(&burst);
    let code = h.goaway(Duration::from_secs(5));
    assert_eq!(code, Some(ENHANCE_YOUR_CALM));
    assert!(
        closed_within(&mut h.s, Duration::from_secs(3)),
        "connection not closed after GOAWAY"
    );
    // The frame meter (10 RST_STREAM per window here) trips before h2's own
    // pending-reset guard (20), so the edge's own defense is the one counted,
    // once: as the flood it was, not also as a GOAWAY.
    assert_eq!(e.await_defense("h2_rst_flood", 1.0), 1.0);
    assert_eq!(e.defense("h2_goaway_enhance_your_calm"), 0.0);
    std::thread::sleep(Duration::from_millis(600));
    // Reset streams counted until their origin work ended: the origin never
    // had more than max_concurrent_streams of this connection's requests at once.
    let max = o
        .stats
        .max_in_flight
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(max <= 20, "origin saw {max} concurrent requests");
    assert!(e.metric("levee_clients_marked_total") >= 1.0);
    // The edge still serves others.
    assert_eq!(http_get(e.addr, "/healthz", &[]).0, 200);
}
