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
            // The prefilter's promise: a match satisfies every clause, by
            // one of its needles: in the field's value (every field here
            // is "GET /a?b=c"), at its start or end if anchored, or in the
            // raw event (keywords); lower-cased, as the prefilter searches.
            if hit {
                for clause in r.needed_clauses().unwrap_or_default() {
                    let ok = clause.iter().any(|n| {
                        let t = n.text.to_ascii_lowercase();
                        let held = |v: &str| {
                            let v = v.to_lowercase();
                            v.contains(&t)
                                && (!n.start || v.starts_with(&t))
                                && (!n.end || v.ends_with(&t))
                        };
                        match &n.field {
                            Some(_) => held("GET /a?b=c"),
                            None => "1.2.3.4 get /a?b=c 200".contains(&t),
                        }
                    });
                    assert!(ok, "a match without its needed clause {clause:?}");
                }
            }
        }
    }
});
