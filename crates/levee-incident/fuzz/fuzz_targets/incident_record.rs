//! Whatever an incident file holds (damaged, truncated, hand-edited), the
//! reader returns a summary naming the bad lines, never a panic; every
//! problem it names carries the file's name.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s = levee_incident::read("f.jsonl", &text);
    for p in &s.problems {
        assert!(p.starts_with("f.jsonl"), "{p}");
    }
});
