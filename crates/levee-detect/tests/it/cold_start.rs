//! Detection without a baseline, through the public API and an injected
//! clock: a flood on a detector that never learned, the browser-trait table
//! deciding who is suspect, a crowd of real browsers left alone, and the
//! baseline bootstrapped from the clean part while the attack lasts.

use levee_detect::browser::{judge, Seen};
use levee_detect::features::{header_order_hash, labels, Request};
use levee_detect::*;

const CHROME: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
const MIRAI: &[u8] = b"Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Safari/537.36";
const BROWSER: [&str; 6] = [
    "host",
    "connection",
    "user-agent",
    "accept",
    "accept-encoding",
    "accept-language",
];
const BOT: [&str; 5] = [
    "user-agent",
    "host",
    "accept",
    "accept-language",
    "connection",
];

fn params() -> Params {
    Params {
        tick_ms: 100,
        learn_ticks: 100,
        ..Params::default()
    }
}

/// Sample one request as the edge does: its keys, its client and the
/// browser table's judgement.
fn sample(d: &mut Detector, ip: &str, ua: &[u8], names: &[&str]) {
    let order = header_order_hash(names.iter().map(|n| n.as_bytes()));
    let r = Request {
        client: ip.parse().unwrap(),
        method: b"GET",
        path: b"/",
        query: b"",
        user_agent: ua,
        header_order: order,
        ja4: None,
        h2: None,
    };
    let seen = Seen {
        names,
        h2: false,
        h2_settings: None,
    };
    let ip: std::net::IpAddr = r.client;
    let client = match ip {
        std::net::IpAddr::V4(v4) => u64::from(u32::from(v4)) | 1,
        std::net::IpAddr::V6(v6) => (u128::from(v6) >> 64) as u64 | 1,
    };
    let who = Who {
        client,
        suspect: judge(ua, &seen).suspect(),
        trusted: false,
    };
    d.observe_from(&Keys::of(&r), who, || labels(&r, &names.join(",")));
}

fn tick(d: &mut Detector, now_ms: u64, requests: u64) -> Vec<Change> {
    d.tick(
        &Tick {
            now_ms,
            requests,
            ..Tick::default()
        },
        &[],
    )
}

#[test]
fn a_flood_on_a_detector_that_never_learned_gets_a_rule_in_its_first_tick() {
    let mut d = Detector::new(params());
    assert!(!d.learned());
    // One 100 ms tick: 300 bots (one request each), 30 browsers.
    for b in 0..300 {
        sample(
            &mut d,
            &format!("127.1.{}.{}", b / 200, b % 200 + 1),
            MIRAI,
            &BOT,
        );
    }
    for v in 0..30 {
        sample(&mut d, &format!("127.2.{v}.1"), CHROME, &BROWSER);
    }
    let c = tick(&mut d, 100, 330);
    let rule = c
        .iter()
        .find_map(|c| match c {
            Change::RuleAdded { rule } => Some(rule),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no rule: {c:?}"));
    assert_eq!(rule.evidence.basis, "population");
    assert_eq!(rule.evidence.baseline_share, 0.0);
    assert!(rule.evidence.attack_share > 0.9, "{rule:?}");
    assert!(!rule.value.contains("Chrome/126"), "{}", rule.value);
    assert_eq!(d.mode(), Mode::UnderAttack);
    let why = c
        .iter()
        .find_map(|c| match c {
            Change::Mode { why, .. } => Some(why.clone()),
            _ => None,
        })
        .unwrap();
    assert!(why.contains("no baseline yet"), "{why}");
    assert!(why.contains("300 claiming a browser"), "{why}");
}

#[test]
fn a_crowd_of_real_browsers_on_a_detector_that_never_learned_gets_nothing() {
    let mut d = Detector::new(params());
    // 10 ticks of a growing crowd of 50 to 500 browsers, far above min_rate.
    for t in 1..=10u64 {
        let n = 50 * t;
        for v in 0..n {
            sample(
                &mut d,
                &format!("10.{}.{}.1", v / 250, v % 250),
                CHROME,
                &BROWSER,
            );
        }
        let c = tick(&mut d, t * 100, n * 10);
        assert!(
            !c.iter().any(|c| matches!(c, Change::RuleAdded { .. })),
            "tick {t}: {c:?}"
        );
    }
    assert!(d.rules().is_empty());
}

#[test]
fn the_baseline_is_bootstrapped_from_the_clean_part_during_the_attack() {
    let mut d = Detector::new(params());
    let mut t = 0;
    // The flood goes on for longer than the learning period.
    while !d.learned() && t < 300 {
        t += 1;
        // Once a rule holds the bots, their requests are matched, not sampled.
        if d.rules().is_empty() {
            for b in 0..100 {
                sample(&mut d, &format!("127.1.0.{}", b + 1), MIRAI, &BOT);
            }
        }
        for v in 0..20 {
            sample(&mut d, &format!("127.2.{v}.1"), CHROME, &BROWSER);
        }
        let matched = if d.rules().is_empty() { 0 } else { 100 };
        d.tick(
            &Tick {
                now_ms: t * 100,
                requests: 120,
                ..Tick::default()
            },
            &[matched],
        );
        assert_ne!(d.mode(), Mode::Normal, "tick {t}");
    }
    assert!(d.learned(), "never learned in {t} ticks");
    // The learned rate is the browsers' (about 200 req/s), not the flood's.
    let rate = d.baseline.rate.value;
    assert!(rate > 50.0 && rate < 400.0, "{rate}");
}
