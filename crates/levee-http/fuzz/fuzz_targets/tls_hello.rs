#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let levee_http::tls_hello::Hello::Complete(h) = levee_http::tls_hello::parse(data) {
        let j = h.ja4();
        assert!(j.len() >= 36 && j.is_ascii());
    }
});
