//! The request-head path: strict parsing must never panic, and every range it
//! returns must lie inside the input.
#![no_main]
use levee_http::h1::{parse_request, HeadLimits, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = HeadLimits { max_head_bytes: 8192, max_headers: 64, max_uri_bytes: 2048 };
    // Also feed every prefix class the edge sees while a head trickles in.
    for cut in [data.len() / 3, data.len() / 2, data.len()] {
        if let Ok(Parsed::Complete(h)) = parse_request(&data[..cut], &limits) {
            assert!(h.len <= cut);
            for r in [&h.method, &h.path, &h.host] {
                assert!(r.start <= r.end && r.end <= h.len);
            }
            for (n, v) in &h.headers {
                assert!(n.end <= h.len && v.end <= h.len);
            }
        }
    }
});
