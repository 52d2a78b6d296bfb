//! The configuration parser: any text gives a config or an error that names a
//! line inside the text; never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = levee_config::parse("fuzz.toml", text) {
        if let Some(line) = e.line {
            assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "{e}");
        }
        assert!(!e.message.is_empty());
    }
});
