#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let _ = levee_hunt::ioc::stix_pattern(&s);
    let _ = levee_hunt::ioc::plain(&s, "f");
    let _ = levee_hunt::ioc::csv(&s, "f");
});
