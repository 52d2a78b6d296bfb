#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let m = levee_hunt::logs::JsonMapping::default();
    if let Ok(r) = levee_hunt::logs::parse_line(&line, &m) {
        let _ = (r.path(), r.query());
        let _ = levee_hunt::detect::template(r.path());
        // What the rules' prefilter searches, both ways it is made.
        let mut out = Vec::new();
        if let Some(h) = levee_hunt::fields::Hay::verbatim(&r, &line) {
            let _ = h.line();
            h.additions(&mut out);
        }
        let mut low = String::new();
        let ev = levee_hunt::fields::WebEvent::new(&r, &line, &mut low);
        out.clear();
        ev.hay().additions(&mut out);
    }
});
