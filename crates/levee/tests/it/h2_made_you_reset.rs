//! MadeYouReset (CVE-2025-8671): frames that make the server reset streams
//! itself. Past the local-reset budget the connection gets GOAWAY.

use super::h2_frames::*;
use super::*;

#[test]
fn provoked_local_resets_get_goaway() {
    let o = Origin::start();
    let e = Edge::start(
        "h2-made-you-reset",
        &config(
            o.addr,
            "",
            "\n[http2]\nmax_concurrent_streams = 500\nmax_local_error_reset_streams = 32\n",
        ),
    );
    let mut h = H2::connect(e.addr);
    // A request with a repeated pseudo-header is malformed (RFC 9113 §8.3):
    // a stream error, so the server itself resets the stream.
    let mut block = H2::block("/m");
    block.extend_from_slice(&[0x00, 5]);
    block.extend_from_slice(b":path");
    block.extend_from_slice(&[2, b'/', b'm']);
    let mut burst = Vec::new();
    for i in 0..200u32 {
        let id = 2 * i + 1;
        burst.extend(H2::frame_bytes(
            HEADERS,
            END_HEADERS | END_STREAM,
            id,
            &block,
        ));
    }
    let _ = h.s.write_all(&burst);
    assert_eq!(h.goaway(Duration::from_secs(5)), Some(ENHANCE_YOUR_CALM));
    assert!(closed_within(&mut h.s, Duration::from_secs(3)));
    assert!(e.await_defense("h2_goaway_enhance_your_calm", 1.0) >= 1.0);
    assert!(!o.saw("/m"), "a malformed request reached the origin");
    assert_eq!(http_get(e.addr, "/healthz", &[]).0, 200);
}
