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
            let hit = r.matches(&Ev);
            // The prefilter's promise: a match contains one of the literals
            // (the event's values, lower-cased, hold every field and raw).
            if hit {
                if let Some(need) = r.needed_literals() {
                    let hay = "get /a?b=c\u{0}1.2.3.4 get /a?b=c 200\u{0}GET /a?b=c\u{0}1.2.3.4 GET /a?b=c 200";
                    assert!(
                        need.iter()
                            .any(|l| hay.contains(l.as_str())
                                || hay.contains(&l.to_ascii_lowercase())),
                        "a match without any of its needed literals {need:?}"
                    );
                }
            }
        }
    }
});
