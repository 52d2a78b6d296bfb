//! Whatever an incident record or a hunt file holds (damaged, hand-edited,
//! an edge's `GET /incidents/{id}` answer of another version), `levee
//! report` renders all four formats, never a panic; and a pseudonymised
//! report names no address the input held.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The first line may be hunt's JSON; the rest the incident.
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let hunt = serde_json::from_str::<levee_report::hunt::Hunt>(first).ok();
    let incident = levee_incident::read_any("f.jsonl", rest);
    let r = levee_report::build(levee_report::Input {
        incident,
        incident_file: "f.jsonl".into(),
        hunt,
        hunt_file: None,
        routes: Vec::new(),
        ledger: Some(levee_report::cite_ledger("l", rest, "x", 0, None)),
        addresses: levee_report::Addresses::Pseudonymised {
            key: levee_privacy::Pseudonymizer::new(b"fuzz key of sixteen", false),
            same_as_hunt: true,
        },
        organisation: None,
        now_ms: 1_796_202_000_000,
    });
    let md = levee_report::markdown(&r);
    let html = levee_report::html(&r);
    let stix = levee_report::stix::bundle(&r).to_string();
    let json = serde_json::to_string(&r).unwrap_or_default();
    // An address standing alone in the input never stands alone in the output.
    for a in ["192.0.2.77", "2001:db8::77"] {
        if standalone(&text, a) {
            for out in [&md, &html, &stix, &json] {
                assert!(!standalone(out, a), "{a} left in a pseudonymised report");
            }
        }
    }
});

/// `a` occurs in `t` not glued to a word or a longer address.
fn standalone(t: &str, a: &str) -> bool {
    t.match_indices(a).any(|(i, _)| {
        let before = t[..i].chars().next_back();
        let after = t[i + a.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || "_.:".contains(c))
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || ".:".contains(c))
    })
}
