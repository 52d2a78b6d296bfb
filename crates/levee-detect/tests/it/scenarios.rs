//! Scenarios for the detector, through its public API only: a flood, bots
//! with a few user agents, a flash crowd of browsers, learning, pinning.

use levee_detect::features::{header_order_hash, labels, Request};
use levee_detect::*;

fn params() -> Params {
    Params {
        tick_ms: 1000,
        learn_ticks: 5,
        calm_ticks: 3,
        rule_idle_ticks: 2,
        ..Params::default()
    }
}

const BROWSER: [&[u8]; 4] = [b"host", b"user-agent", b"accept", b"accept-language"];
const BOT: [&[u8]; 3] = [b"user-agent", b"host", b"accept"];

fn req<'a>(ip: &str, path: &'a [u8], ua: &'a [u8], order: &[&[u8]]) -> Request<'a> {
    Request {
        client: ip.parse().unwrap(),
        method: b"GET",
        path,
        query: b"",
        user_agent: ua,
        header_order: header_order_hash(order.iter().copied()),
        ja4: None,
        h2: None,
    }
}

fn feed(d: &mut Detector, r: &Request<'_>, n: usize) {
    let k = Keys::of(r);
    for _ in 0..n {
        d.observe(&k, || labels(r, "order"));
    }
}

/// Normal browsing: varied clients, pages and assets.
fn normal(d: &mut Detector, mult: usize) {
    for i in 0..(20 * mult) {
        let ip = format!("10.{}.{}.{}", i % 7, i % 13, i % 250);
        let path: &[u8] = match i % 3 {
            0 => b"/",
            1 => b"/news",
            _ => b"/static/app.css",
        };
        feed(d, &req(&ip, path, b"Firefox", &BROWSER), 1);
    }
}

fn learn(d: &mut Detector, ticks: u64) {
    for s in 0..ticks {
        normal(d, 1);
        let c = d.tick(
            &Tick {
                now_ms: s * 1000,
                requests: 20,
                ..Tick::default()
            },
            &[],
        );
        assert!(c.is_empty(), "{c:?}");
    }
    assert!(d.learned());
}

#[test]
fn flood_gives_attack_mode_and_a_bot_rule_that_expires() {
    let mut d = Detector::new(params());
    learn(&mut d, 6);
    // Attack: 2,000 req/s, one bot fingerprint, plus normal traffic.
    normal(&mut d, 1);
    feed(&mut d, &req("192.0.2.9", b"/", b"Bot/1", &BOT), 400);
    let c = d.tick(
        &Tick {
            now_ms: 7000,
            requests: 2020,
            ..Tick::default()
        },
        &[],
    );
    assert_eq!(d.mode(), Mode::UnderAttack, "{c:?}");
    assert_eq!(d.rules().len(), 1);
    let r = &d.rules()[0];
    assert_eq!(r.dim, Dim::Combo, "{r:?}");
    assert!(r.value.contains("Bot/1"));
    assert!(r.evidence.attack_share > 0.9);
    assert_eq!(r.evidence.baseline_share, 0.0);
    // The rule's key matches the bot, not a browser.
    let bot = Keys::of(&req("198.51.100.1", b"/", b"Bot/1", &BOT));
    let browser = Keys::of(&req("10.0.0.1", b"/", b"Firefox", &BROWSER));
    assert_eq!(Detector::matching(d.rules(), &bot), Some(0));
    assert_eq!(Detector::matching(d.rules(), &browser), None);
    // The rule holds the attack: still under attack while it matches.
    for s in 0..3 {
        normal(&mut d, 1);
        d.tick(
            &Tick {
                now_ms: 8000 + s * 1000,
                requests: 2020,
                ..Tick::default()
            },
            &[2000],
        );
        assert_eq!(d.mode(), Mode::UnderAttack);
    }
    // Attack stops: the rule expires after 2 idle ticks, mode steps down after 3 calm ticks each.
    let mut expired = false;
    let mut modes = Vec::new();
    for s in 0..8 {
        normal(&mut d, 1);
        let m = vec![0; d.rules().len()];
        for c in d.tick(
            &Tick {
                now_ms: 11_000 + s * 1000,
                requests: 20,
                ..Tick::default()
            },
            &m,
        ) {
            match c {
                Change::RuleExpired { .. } => expired = true,
                Change::Mode { to, .. } => modes.push(to),
                Change::RuleAdded { .. } => panic!("no new rule when calm"),
            }
        }
    }
    assert!(expired);
    assert_eq!(modes, vec![Mode::Elevated, Mode::Normal]);
}

#[test]
fn bots_with_three_user_agents_get_three_rules_in_one_tick() {
    let mut d = Detector::new(params());
    learn(&mut d, 6);
    normal(&mut d, 1);
    for ua in [&b"Bot/1"[..], b"Bot/2", b"Bot/3"] {
        feed(&mut d, &req("192.0.2.9", b"/", ua, &BOT), 130);
    }
    d.tick(
        &Tick {
            now_ms: 7000,
            requests: 3000,
            ..Tick::default()
        },
        &[],
    );
    assert_eq!(d.mode(), Mode::UnderAttack);
    // The bots' header order alone covers them all (one rule) — or the
    // three combos do; either way no rule matches a browser.
    let browser = Keys::of(&req("10.0.0.1", b"/", b"Firefox", &BROWSER));
    assert_eq!(Detector::matching(d.rules(), &browser), None);
    for ua in [&b"Bot/1"[..], b"Bot/2", b"Bot/3"] {
        let k = Keys::of(&req("198.51.100.7", b"/", ua, &BOT));
        assert!(
            Detector::matching(d.rules(), &k).is_some(),
            "{:?}",
            d.rules()
        );
    }
    // With the attack matched, the rest is normal: no further rules.
    let n = d.rules().len();
    normal(&mut d, 1);
    d.tick(
        &Tick {
            now_ms: 8000,
            requests: 3020,
            ..Tick::default()
        },
        &vec![1000; n],
    );
    assert_eq!(d.rules().len(), n);
}

#[test]
fn a_rule_never_takes_a_common_legitimate_value() {
    // The path "/" is 1/3 of normal traffic: even if every bot asks for it,
    // no rule on the path alone.
    let mut d = Detector::new(params());
    learn(&mut d, 6);
    normal(&mut d, 1);
    feed(&mut d, &req("192.0.2.9", b"/", b"Bot/1", &BOT), 400);
    d.tick(
        &Tick {
            now_ms: 7000,
            requests: 40_000,
            ..Tick::default()
        },
        &[],
    );
    assert!(!d.rules().is_empty());
    assert!(d
        .rules()
        .iter()
        .all(|r| r.dim != Dim::Path && r.dim != Dim::Method));
}

#[test]
fn flash_crowd_of_browsers_is_elevated_not_attacked() {
    let mut d = Detector::new(params());
    learn(&mut d, 6);
    for s in 0..5 {
        normal(&mut d, 10);
        d.tick(
            &Tick {
                now_ms: 7000 + s * 1000,
                requests: 200,
                new_clients: 150,
                ..Tick::default()
            },
            &[],
        );
        assert!(d.rules().is_empty(), "{:?}", d.rules());
        assert_eq!(d.mode(), Mode::Elevated);
    }
}

#[test]
fn no_rules_before_the_baseline_is_learned() {
    let mut d = Detector::new(params());
    feed(&mut d, &req("192.0.2.9", b"/", b"Bot/1", &BOT), 400);
    d.tick(
        &Tick {
            now_ms: 1000,
            requests: 5000,
            ..Tick::default()
        },
        &[],
    );
    assert!(d.rules().is_empty());
    assert_eq!(
        d.mode(),
        Mode::Normal,
        "a high rate alone proves nothing yet"
    );
    d.tick(
        &Tick {
            now_ms: 2000,
            requests: 5000,
            saturated: true,
            ..Tick::default()
        },
        &[],
    );
    assert!(d.rules().is_empty());
    assert_eq!(d.mode(), Mode::Elevated, "a saturated origin does");
}

#[test]
fn a_value_common_in_the_baseline_is_not_a_rule() {
    // The bots copy the browsers' fingerprint exactly: nothing to tell them
    // apart by, so no rule (priority admission handles it instead).
    let mut d = Detector::new(params());
    learn(&mut d, 6);
    normal(&mut d, 1);
    feed(&mut d, &req("10.0.0.9", b"/", b"Firefox", &BROWSER), 400);
    d.tick(
        &Tick {
            now_ms: 7000,
            requests: 2000,
            ..Tick::default()
        },
        &[],
    );
    // The one client's /24 might be picked; nothing wider.
    for r in d.rules() {
        assert_eq!(r.dim, Dim::Prefix, "{r:?}");
    }
}

#[test]
fn pinning_overrides_and_releases() {
    let mut d = Detector::new(params());
    let c = d.pin(Some(Mode::UnderAttack));
    assert_eq!(c.len(), 1);
    assert_eq!(d.mode(), Mode::UnderAttack);
    d.tick(&Tick::default(), &[]);
    assert_eq!(d.mode(), Mode::UnderAttack);
    d.pin(None);
    assert_eq!(d.mode(), Mode::Normal);
}
