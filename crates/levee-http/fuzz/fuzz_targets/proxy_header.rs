#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(h)) = levee_http::proxy_proto::parse(data) {
        assert!(h.len <= data.len());
    }
});
