//! Chunked decoding: whole-input and byte-split decoding must agree.
#![no_main]
use levee_http::chunked::{decode_all, Decoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = decode_all(data);
    let mut d = Decoder::new();
    let mut out = Vec::new();
    let mut err = false;
    let mut used = 0;
    for (i, b) in data.iter().enumerate() {
        if d.is_done() {
            break;
        }
        match d.decode(std::slice::from_ref(b)) {
            Ok(s) => {
                if let Some(r) = s.data {
                    out.extend_from_slice(&data[i + r.start..i + r.end]);
                }
                used = i + s.consumed;
            }
            Err(_) => {
                err = true;
                break;
            }
        }
    }
    match whole {
        Ok(Some((w, n))) => {
            assert!(!err);
            assert_eq!(w, out);
            assert_eq!(n, used);
        }
        Ok(None) => assert!(!err && !d.is_done()),
        Err(_) => assert!(err),
    }
});
