//! HTTP/2 control-frame floods: PING and SETTINGS.

use super::h2_frames::*;
use super::*;

#[test]
fn ping_flood_gets_goaway() {
    let o = Origin::start();
    let e = Edge::start(
        "h2-ping",
        &config(o.addr, "", "\n[http2]\nmax_ping_frames = 50\n"),
    );
    let mut h = H2::connect(e.addr);
    let mut burst = Vec::new();
    for i in 0..500u64 {
        burst.extend(H2::frame_bytes(PING, 0, 0, &i.to_be_bytes()));
    }
    let _ = h.s.write_all(&burst);
    assert_eq!(h.goaway(Duration::from_secs(5)), Some(ENHANCE_YOUR_CALM));
    assert!(closed_within(&mut h.s, Duration::from_secs(3)));
    assert_eq!(e.await_defense("h2_ping_flood", 1.0), 1.0);
}

#[test]
fn settings_flood_gets_goaway_but_normal_h2_works() {
    let o = Origin::start();
    let e = Edge::start(
        "h2-settings",
        &config(o.addr, "", "\n[http2]\nmax_settings_frames = 20\n"),
    );
    let mut h = H2::connect(e.addr);
    for _ in 0..100 {
        h.frame(SETTINGS, 0, 0, &[]);
    }
    assert_eq!(h.goaway(Duration::from_secs(5)), Some(ENHANCE_YOUR_CALM));
    // A well-behaved HTTP/2 client (h2load, 200 requests over 4 streams) is unaffected.
    let (code, out, err) = run(
        "h2load",
        &["-n", "200", "-c", "2", "-m", "4", &e.url("/healthz")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("200 succeeded"), "{out}");
}
