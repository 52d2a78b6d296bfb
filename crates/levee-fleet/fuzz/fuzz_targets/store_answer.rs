//! Whatever a store answers (RESP bytes), the engine's readers return an
//! error or data, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = levee_fleet::read_answer(data);
});
