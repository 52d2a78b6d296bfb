#![no_main]
use libfuzzer_sys::fuzz_target;

struct Ev;
impl levee_sigma::Event for Ev {
    fn field(&self, _: &str) -> Option<std::borrow::Cow<'_, str>> {
        Some("GET /a?b=c".into())
    }
    fn raw(&self) -> &str {
        "1.2.3.4 GET /a?b=c 200"
    }
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    for r in levee_sigma::load_all(&s, "f").into_iter().flatten() {
        if let levee_sigma::Loaded::Rule(r) = r {
            let _ = r.matches(&Ev);
        }
    }
});
