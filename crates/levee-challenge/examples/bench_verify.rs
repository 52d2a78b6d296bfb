//! Benchmark (not a test): how many bogus solutions one core rejects per
//! second, for a valid token with random counters (the work check fails),
//! and for forged tokens that claim little work (the MAC check fails).
//! Run: taskset -c 0 cargo run --release -p levee-challenge --example bench_verify
#![allow(clippy::unwrap_used)]
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock
use levee_challenge::{b64_decode, b64_encode, check, issue, Keyring};
use std::time::Instant;

fn main() {
    let keys = Keyring::new(b"bench master secret", 3600);
    let now = 1_800_000_000;
    let ip = "192.0.2.1".parse().unwrap();
    let token = issue(&keys, "www", ip, now, 18, [3; 16]);
    let n = 3_000_000u64;
    let t = Instant::now();
    let mut rejected = 0u64;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if check(&keys, &token, x, "www", ip, now, 300).is_err() {
            rejected += 1;
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "bogus counters: {rejected} of {n} rejected in {s:.3} s = {:.2} M/s",
        rejected as f64 / s / 1e6
    );
    // Forged tokens claiming 0 bits of work: they pass the work check and fail the MAC.
    let mut b = [0u8; 43];
    b64_decode(&token, &mut b).unwrap();
    b[10] = 0;
    let forged = b64_encode(&b);
    let t = Instant::now();
    let mut rejected = 0u64;
    for i in 0..n {
        if check(&keys, &forged, i, "www", ip, now, 300).is_err() {
            rejected += 1;
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "forged tokens:  {rejected} of {n} rejected in {s:.3} s = {:.2} M/s",
        rejected as f64 / s / 1e6
    );
}
