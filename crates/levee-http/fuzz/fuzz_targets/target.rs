//! Request targets: normalising never panics, the result is already normal
//! (idempotent), has no dot-segment or empty segment, and query helpers
//! never panic.
#![no_main]
use levee_http::target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = target::normalize(data) {
        let again = target::normalize(t.as_str().as_bytes()).expect("a normal target stays valid");
        assert_eq!(again, t, "normalising twice changed the target");
        let p = t.path();
        assert!(p == "*" || p.starts_with('/'));
        assert!(!p.contains("//") && !p.contains("/./") && !p.contains("/../"));
        if let Some(q) = t.query() {
            let _ = target::query_param(q, "r");
            let _ = target::safe_return(Some(q));
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let r = target::safe_return(Some(s));
        assert!(r.starts_with('/') && !r.starts_with("//") && !r.starts_with("/\\"));
        let _ = target::percent_decode(s);
        let _ = target::encode_component(s);
    }
});
