#![no_main]
use levee_http::h1::{parse_response, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let head = data.first().is_some_and(|b| b & 1 == 1);
    if let Ok(Parsed::Complete(r)) = parse_response(data, head, 16384) {
        assert!(r.len <= data.len());
    }
});
