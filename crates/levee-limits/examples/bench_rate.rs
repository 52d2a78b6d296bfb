//! Benchmark (not a test): the fixed-memory rate limiter against a naive
//! `Mutex<HashMap>` limiter, on one core, with many distinct sources.
//! Run: taskset -c 0 cargo run --release -p levee-limits --example bench_rate
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // a benchmark reads the clock and /proc
use levee_limits::rate::{RateDecision, RateLimiter};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    s.split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<f64>().ok())
        .unwrap_or(0.0)
        * 4096.0
        / 1048576.0
}

fn main() {
    // 20 s of traffic at 1 M requests/s in all, from 10 M distinct sources,
    // against a limit of 100 per source per second: nobody is over it.
    let ops = 20_000_000u64;
    let sources = 10_000_000u64;
    let ms = |i: u64| i / 1_000;
    let key = |i: u64| u128::from((i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) % sources);
    let base = rss_mib();
    let l = RateLimiter::new(100, 1000, 16, [11, 22, 33, 44]);
    let t = Instant::now();
    let mut limited = 0u64;
    for i in 0..ops {
        if l.check(key(i), ms(i)) != RateDecision::Allow {
            limited += 1;
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "sketch:  {:.1} M checks/s, {limited} limited, memory {:.1} MiB (counters {:.1} MiB)",
        ops as f64 / s / 1e6,
        rss_mib() - base,
        l.memory_bytes() as f64 / 1048576.0
    );
    let base = rss_mib();
    let naive: Mutex<HashMap<u128, (u64, u32)>> = Mutex::new(HashMap::new());
    let t = Instant::now();
    let mut limited = 0u64;
    for i in 0..ops {
        let now = ms(i);
        let w = now / 1000;
        let mut m = naive.lock().unwrap();
        let e = m.entry(key(i)).or_insert((w, 0));
        if e.0 != w {
            *e = (w, 0);
        }
        e.1 += 1;
        if e.1 > 100 {
            limited += 1;
        }
    }
    let s = t.elapsed().as_secs_f64();
    let entries = naive.lock().unwrap().len();
    println!("naive Mutex<HashMap>: {:.1} M checks/s, {limited} limited, memory {:.1} MiB ({entries} entries, growing with sources)", ops as f64 / s / 1e6, rss_mib() - base);
}
