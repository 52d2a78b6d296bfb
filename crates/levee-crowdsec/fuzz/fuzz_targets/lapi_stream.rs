//! Whatever a Local API (or whatever sits where it should) answers, the
//! stream's parser returns decisions or an error, never a panic; every
//! decision it returns has a prefix length its family allows, and at most
//! the bound of decisions come back.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = levee_crowdsec::stream::parse(data, 64) {
        assert!(d.new.len() + d.deleted.len() <= 64);
        for x in d.new.iter().chain(&d.deleted) {
            assert!(x.len <= if x.addr.is_ipv4() { 32 } else { 128 });
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = levee_crowdsec::stream::go_duration(s);
    }
});
