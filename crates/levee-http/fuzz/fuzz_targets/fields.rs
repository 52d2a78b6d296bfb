//! Field values: forwarding chains, cookies, Connection tokens,
//! Content-Length and Cache-Control never panic on any lines.
#![no_main]
use levee_http::fields;
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let peer: IpAddr = [10, 0, 0, 1].into();
    let trusted = |ip: IpAddr| matches!(ip, IpAddr::V4(v) if v.octets()[0] == 10);
    let c = fields::client_address(peer, lines.iter().copied(), lines.iter().copied(), trusted);
    // Without forwarding lines the peer itself is the client.
    if data.is_empty() {
        assert_eq!(c, peer);
    }
    let _ = fields::forwarded_https(lines.iter().copied());
    let _ = fields::cookie_value(lines.iter().copied(), "levee_clearance");
    let _ = fields::only_cookie(lines.iter().copied(), "levee_clearance");
    let _ = fields::connection_tokens(lines.iter().copied());
    let _ = fields::CacheControl::parse(lines.iter().copied());
    if let Some(n) = fields::content_length(data) {
        assert!(n.to_string().len() <= data.len());
    }
});
