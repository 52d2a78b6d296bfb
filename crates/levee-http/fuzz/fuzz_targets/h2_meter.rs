#![no_main]
use levee_http::h2meter::{FloodLimits, FrameMeter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = FloodLimits { window_ms: 1000, max_rst: 10, max_ping: 10, max_settings: 10, max_empty_data: 10, max_window_update: 10, max_continuation: 4 };
    let mut m = FrameMeter::new(limits, 0);
    for (i, chunk) in data.chunks(7).enumerate() {
        if m.feed(chunk, i as u64 * 50).is_err() {
            assert!(m.tripped().is_some());
            break;
        }
    }
    let _ = m.fingerprint().text();
});
