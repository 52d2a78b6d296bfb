#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let m = levee_hunt::logs::JsonMapping::default();
    if let Ok(r) = levee_hunt::logs::parse_line(&line, &m) {
        let _ = (r.path(), r.query());
        let _ = levee_hunt::detect::template(r.path());
    }
});
