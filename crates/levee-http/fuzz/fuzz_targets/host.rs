//! Hosts: parsing never panics, and a parsed host prints as a host that
//! parses back to itself (what is forwarded is what was routed on).
#![no_main]
use levee_http::host;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = host::parse(data) {
        let text = h.authority();
        let again = host::parse(text.as_bytes()).expect("a printed host parses");
        assert_eq!(again, h);
        assert!(h.name().bytes().all(|b| !b.is_ascii_uppercase()));
    }
});
