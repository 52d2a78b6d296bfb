//! The per-site phases between routing and the origin, shared by HTTP/1 and
//! HTTP/2, in order: request-rate limits (tightened by the site's mode), the
//! adaptive defense's assessment (class, rules), rule actions (block, rate
//! limit; repeat offenders blocked at accept), and the browser challenge
//! (policy, `auto` under attack, or a challenge rule). A request that passes
//! carries its priority class to origin admission.

use crate::admission::Class;
use crate::challenge::{self, Answer, Req, Want};
use crate::defense::Inputs;
use crate::metrics::Reason;
use crate::state::{Site, State};
use crate::Shared;
use levee_config::{ChallengeMode, OverLimit};

/// A client with a valid clearance may send this many times the rate limits.
const VERIFIED_LIMIT_FACTOR: f64 = 4.0;
use levee_detect::{Action, Mode, Request};
use std::sync::PoisonError;

/// What the gate needs beyond the challenge's view of a request.
pub(crate) struct View<'a> {
    pub req: Req<'a>,
    pub header_order: u64,
    pub header_names: &'a (dyn Fn() -> String + Sync),
    /// The User-Agent's claim judged against the request's traits (sampled requests).
    pub judge: &'a (dyn Fn() -> levee_detect::browser::Judgement + Sync),
    pub ja4: Option<&'a str>,
    pub h2: Option<&'a str>,
}

/// A request that may go on to the origin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pass {
    pub class: Class,
    pub mode: Mode,
}

impl Pass {
    pub(crate) fn attack(&self) -> bool {
        self.mode == Mode::UnderAttack
    }
}

fn refusal(status: u16, reason: Reason, retry: Option<u64>, close: bool) -> Answer {
    Answer::refusal(status, reason, retry, close)
}

/// What the gate decided: go on to the origin, or answer here.
pub(crate) enum Decision {
    Pass(Pass),
    Answer(Answer),
}

/// Run the phases. Defenses are not counted here: the pipeline's record
/// counts and logs the answer's reason, once.
pub(crate) fn check(shared: &Shared, state: &State, site: &Site, v: &View<'_>) -> Decision {
    match run(shared, state, site, v) {
        Ok(p) => Decision::Pass(p),
        Err(a) => Decision::Answer(a),
    }
}

fn run(shared: &Shared, state: &State, site: &Site, v: &View<'_>) -> Result<Pass, Answer> {
    let now = crate::clock::now_ms();
    let cfg = &site.defense_cfg;
    let mode = site.defense.mode();
    let factor = match mode {
        Mode::Normal => 1.0,
        Mode::Elevated => cfg.elevated_rate_factor,
        Mode::UnderAttack => cfg.attack_rate_factor,
    };
    let client = v.req.client;
    let trusted = challenge::trusted(state, site, &v.req);
    let ask = |want| {
        challenge::decide(
            state,
            site,
            &shared.spent,
            &shared.metrics,
            &v.req,
            want,
            trusted,
        )
    };
    if site.limits.active() {
        // A browser that proved itself (a clearance) has more room.
        let verified = trusted == Some(Class::Verified);
        let f = if verified {
            factor * VERIFIED_LIMIT_FACTOR
        } else {
            factor
        };
        let limited = site.limits.check(
            v.req.target.path(),
            client,
            crate::clock::unix_ms(),
            f,
            shared.fleet.share(),
        );
        if let Some((reason, retry_ms)) = limited {
            // A browser over a limit is asked to prove itself, not refused:
            // an HTML GET gets the interstitial (and the challenge's own
            // endpoints answer, so that it can clear).
            let html_get = v.req.method == b"GET"
                && (challenge::own_path(v.req.target.path())
                    || challenge::wants_html(v.req.accept));
            if site.over_limit == OverLimit::Challenge && !verified && html_get {
                if let Some(ans) = ask(Want::Rule) {
                    return Err(ans);
                }
            }
            return Err(refusal(
                429,
                reason,
                Some(retry_ms.div_ceil(1000).max(1)),
                false,
            ));
        }
    }
    let (path, query) = (
        v.req.target.path().as_bytes(),
        v.req.target.query().unwrap_or("").as_bytes(),
    );
    let out = site.defense.assess(
        cfg,
        &Inputs {
            req: Request {
                client,
                method: v.req.method,
                path,
                query,
                user_agent: v.req.user_agent,
                header_order: v.header_order,
                ja4: v.ja4,
                h2: v.h2,
            },
            header_names: v.header_names,
            judge: v.judge,
            trusted,
            marked: v.req.marked,
        },
        now,
    );
    // Rule-matched requests are held before their answer while under attack.
    let tarpit = (out.action.is_some() && out.mode == Mode::UnderAttack)
        .then(|| cfg.tarpit.as_duration())
        .filter(|d| !d.is_zero());
    match out.action {
        Some(Action::Block) => {
            if site.defense.should_auto_block(cfg, client, now) {
                auto_block(shared, site, client);
            }
            let mut a = refusal(403, Reason::RuleBlock, None, true);
            a.delay = tarpit;
            return Err(a);
        }
        Some(Action::RateLimit) if out.over_rule_rate => {
            let mut a = refusal(429, Reason::RuleRateLimit, Some(1), false);
            a.delay = tarpit;
            return Err(a);
        }
        _ => {}
    }
    let want = if out.action == Some(Action::Challenge) {
        Want::Rule
    } else {
        match site.challenge.mode {
            ChallengeMode::Always => Want::Policy,
            ChallengeMode::Auto if out.mode == Mode::UnderAttack && out.class <= Class::Unknown => {
                Want::Policy
            }
            _ => Want::No,
        }
    };
    // An outside source (CrowdSec's `captcha`) asked that this client prove itself.
    let want = if want == Want::No && shared.sources.challenge(client) {
        Want::Rule
    } else {
        want
    };
    if let Some(ans) = ask(want) {
        let mut ans = ans;
        if want == Want::Rule {
            ans.delay = tarpit;
        }
        return Err(ans);
    }
    Ok(Pass {
        class: out.class,
        mode: out.mode,
    })
}

fn auto_block(shared: &Shared, site: &Site, ip: std::net::IpAddr) {
    let ttl_ms = site.defense_cfg.auto_block_ttl.as_duration().as_millis() as u64;
    let len = if ip.is_ipv4() { 32 } else { 128 };
    let Some(c) = levee_config::Cidr::new(ip, len) else {
        return;
    };
    let added = shared
        .lists
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .block(
            c,
            crate::clock::now_ms() + ttl_ms,
            crate::clock::unix_ms() + ttl_ms,
        );
    if added {
        shared.fleet.note_block(
            c.to_string(),
            format!(
                "matched block rules {} times on site {}",
                site.defense_cfg.auto_block_after, site.name
            ),
            ttl_ms,
        );
    }
    shared.events.push(
        "block",
        &site.name,
        serde_json::json!({
            "cidr": c.to_string(),
            "ttl_s": ttl_ms / 1000,
            "added": added,
            "why": format!("matched block rules {} times", site.defense_cfg.auto_block_after),
        }),
    );
}
