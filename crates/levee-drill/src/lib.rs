//! `levee drill`: rehearse real attack patterns against your own edge, with
//! legitimate traffic alongside, and measure what legitimate users felt.
//!
//! What it does: checks that the target opted in (`GET /.well-known/levee-drill`
//! must answer the drill token), runs the scenario's bots (many distinct
//! 127.x.y.z sources when the target is on loopback) and browser-like
//! legitimate clients for a bounded time and request count, samples the
//! edge's admin `/metrics` and the origin's counters each second, and writes
//! a per-second timeline, a summary, JSON and a self-contained HTML report.
//!
//! What it does not do: reach the edge other than over sockets (it is an
//! attacker, not a plug-in), attack anything that did not opt in, or run
//! without an end. HTTP/2 floods run over h2c (cleartext) targets; over
//! `https://` targets, the HTTP and TLS-handshake scenarios run.

pub mod attack;
pub mod expect;
pub mod legit;
pub mod netns;
pub mod report;
pub mod scenario;
pub mod stats;
pub mod tls;

use attack::Ctx;
use hdrhistogram::Histogram;
use report::{EdgeSample, Report};
use scenario::Scenario;
use stats::{Field, Timeline};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Why a drill could not run.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("target {0:?}: write http://host:port/ or https://host:port/")]
    BadTarget(String),
    #[error("scenario attack {0:?} needs an {1} target")]
    WrongScheme(String, &'static str),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, std::io::Error),
    #[error("{target} did not opt in to drills: {why}. Set `[drill] token = \"...\"` in the edge's configuration and pass the same value with --token.")]
    NotOptedIn { target: String, why: String },
    #[error("duration must be between 1 s and 3600 s")]
    BadDuration,
}

/// How to run a drill.
#[derive(Debug, Clone)]
pub struct Options {
    /// `http://host:port/`
    pub target: String,
    pub scenario: Scenario,
    pub duration: Duration,
    /// Legitimate traffic alone before the attack starts.
    pub warmup: Duration,
    /// Total attack requests per second (overrides the scenario; 0 = as fast as possible).
    pub rate: Option<u32>,
    /// The drill token; on a loopback target it may be omitted (the edge must still have one).
    pub token: Option<String>,
    /// Stop after this many attack requests.
    pub max_requests: u64,
    /// The edge's admin listener, to sample its CPU and memory.
    pub admin: Option<SocketAddr>,
    /// The origin's `/__origin/stats` (the demo origin), to count what reached it.
    pub origin: Option<SocketAddr>,
    /// Override the number of legitimate clients.
    pub legit_clients: Option<u32>,
    pub staff_token: Option<String>,
    /// Print a live line to stderr every second.
    pub live: bool,
    /// The Host header to send (default: the target's host).
    pub host: Option<String>,
    /// Running inside the drill's IPv6 namespace: bind bots to its sources.
    pub v6_sources: bool,
}

/// `(host, address, tls)` of an `http://` or `https://` target.
fn parse_target(t: &str) -> Result<(String, SocketAddr, bool), DrillError> {
    let (rest, tls) = match (t.strip_prefix("http://"), t.strip_prefix("https://")) {
        (Some(r), _) => (r, false),
        (_, Some(r)) => (r, true),
        _ => return Err(DrillError::BadTarget(t.into())),
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err(DrillError::BadTarget(t.into()));
    }
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:{}", if tls { 443 } else { 80 })
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| DrillError::Resolve(with_port.clone(), e))?
        .next()
        .ok_or_else(|| {
            DrillError::Resolve(with_port.clone(), std::io::Error::other("no address"))
        })?;
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .to_string();
    Ok((host, addr, tls))
}

/// A small GET over a fresh connection (TLS when `tls`): (status, body).
async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    tls: bool,
) -> std::io::Result<(u16, String)> {
    let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let mut s: Box<dyn attack::Io> = if tls {
        let c = tls::connector().map_err(std::io::Error::other)?;
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(std::io::Error::other)?;
        Box::new(c.connect(name, tcp).await?)
    } else {
        Box::new(tcp)
    };
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = Vec::new();
    // A TLS peer may close without close_notify: keep what arrived.
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    if status == 0 {
        return Err(std::io::Error::other("no HTTP response"));
    }
    Ok((status, body))
}

/// Check the target's opt-in before sending any attack traffic.
pub async fn check_opt_in(target: &str, token: Option<&str>) -> Result<(), DrillError> {
    let (host, addr, tls) = parse_target(target)?;
    let refuse = |why: String| DrillError::NotOptedIn {
        target: target.to_string(),
        why,
    };
    let (status, body) = get(addr, &host, "/.well-known/levee-drill", tls)
        .await
        .map_err(|e| refuse(format!("GET /.well-known/levee-drill failed: {e}")))?;
    if status != 200 {
        return Err(refuse(format!(
            "GET /.well-known/levee-drill answered {status}"
        )));
    }
    let presented = body.trim();
    if presented.is_empty() {
        return Err(refuse("the edge has no drill token".into()));
    }
    match token {
        Some(t) if t == presented => Ok(()),
        Some(_) => Err(refuse("the drill token does not match".into())),
        None if addr.ip().is_loopback() => Ok(()),
        None => Err(refuse(
            "no --token given (required for targets off this machine)".into(),
        )),
    }
}

fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
}

/// Run a drill to its end; the report says what happened.
pub async fn run(opts: Options) -> Result<Report, DrillError> {
    if opts.duration < Duration::from_secs(1) || opts.duration > Duration::from_secs(3600) {
        return Err(DrillError::BadDuration);
    }
    let (host, addr, tls) = parse_target(&opts.target)?;
    for a in &opts.scenario.attack {
        if tls && !a.kind.works_over_tls() {
            return Err(DrillError::WrongScheme(format!("{:?}", a.kind), "http://"));
        }
        if !tls && a.kind == scenario::Kind::TlsHandshake {
            return Err(DrillError::WrongScheme(format!("{:?}", a.kind), "https://"));
        }
    }
    check_opt_in(&opts.target, opts.token.as_deref()).await?;
    let tls = if tls {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| DrillError::BadTarget(opts.target.clone()))?;
        Some((tls::connector()?, name))
    } else {
        None
    };
    let total = opts.warmup + opts.duration;
    let warm = opts.warmup.as_secs() as usize;
    let seconds = total.as_secs() as usize + 3;
    let start = Instant::now();
    let ctx = Arc::new(Ctx {
        target: addr,
        host: opts.host.clone().unwrap_or(host),
        timeline: Arc::new(Timeline::new(seconds)),
        start,
        attack_at: start + opts.warmup,
        end: start + total,
        sent: AtomicU64::new(0),
        max_requests: opts.max_requests,
        spread_sources: addr.ip().is_loopback(),
        v6_sources: opts.v6_sources,
        tls,
    });
    // Legitimate latencies: [during the warm-up, during the attack].
    let hist: legit::PerSecond = Arc::new(Mutex::new(vec![None; seconds]));
    let mut tasks = Vec::new();
    let l = &opts.scenario.legit;
    let pages = Arc::new(l.pages.clone());
    let assets = Arc::new(l.assets.clone());
    let clients = opts.legit_clients.unwrap_or(l.clients);
    // Legitimate clients run on a thread of their own, raised in priority
    // where allowed: real visitors do not share the attacker's machine, so the
    // bots' load on the drill's own CPU must not count as the edge's latency.
    let legit_done = {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let ctx = Arc::clone(&ctx);
        let hist = Arc::clone(&hist);
        let think = Duration::from_millis(l.think_ms);
        let staff_token = opts.staff_token.clone();
        let n = clients + l.staff;
        // A flash crowd: more clients arrive during the attack phase.
        let extra = ((f64::from(clients) * (l.ramp - 1.0)).round() as u32).min(100_000);
        let (attack_at, span) = (ctx.attack_at, opts.duration);
        let spawned = std::thread::Builder::new()
            .name("levee-drill-legit".into())
            .spawn(move || {
                legit::raise_priority();
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    let mut set = tokio::task::JoinSet::new();
                    for i in 0..n + extra {
                        let staff = (i >= clients && i < n)
                            .then(|| staff_token.clone())
                            .flatten();
                        let start_at = (i >= n).then(|| {
                            attack_at
                                + span.mul_f64(f64::from(i - n + 1) / f64::from(extra.max(1)) * 0.9)
                        });
                        set.spawn(legit::client(
                            Arc::clone(&ctx),
                            i,
                            Arc::clone(&pages),
                            Arc::clone(&assets),
                            think,
                            staff,
                            Arc::clone(&hist),
                            start_at,
                        ));
                    }
                    while set.join_next().await.is_some() {}
                });
                let _ = tx.send(());
            });
        if spawned.is_err() {
            eprintln!("levee drill: cannot start the legitimate clients' thread");
        }
        rx
    };
    // Samplers: the edge's CPU and memory, the origin's request count, and the live line.
    let edge_samples = Arc::new(Mutex::new(Vec::<EdgeSample>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let origin_max = Arc::new(AtomicU64::new(0));
    let sampler = {
        let ctx = Arc::clone(&ctx);
        let origin_max = Arc::clone(&origin_max);
        let samples = Arc::clone(&edge_samples);
        let done = Arc::clone(&done);
        let (admin, origin, live) = (opts.admin, opts.origin, opts.live);
        tokio::spawn(async move {
            let mut last_origin: Option<f64> = None;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !done.load(Ordering::Relaxed) {
                tick.tick().await;
                let sec = ctx.sec();
                if let Some(a) = admin {
                    if let Ok((200, text)) = get(a, "admin", "/metrics", false).await {
                        samples
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(EdgeSample {
                                second: sec as u64,
                                cpu_seconds: sample(&text, "process_cpu_seconds_total")
                                    .unwrap_or(0.0),
                                rss_bytes: sample(&text, "process_resident_memory_bytes")
                                    .unwrap_or(0.0),
                            });
                    }
                }
                if let Some(o) = origin {
                    if let Ok((200, body)) = get(o, "origin", "/__origin/stats", false).await {
                        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                        if let Some(c) = v["in_flight"].as_u64() {
                            ctx.timeline.max(sec, Field::OriginInFlight, c);
                        }
                        if let Some(m) = v["max_in_flight"].as_u64() {
                            origin_max.store(m, Ordering::Relaxed);
                        }
                        if let Some(n) = v["requests"].as_f64() {
                            if let Some(prev) = last_origin {
                                ctx.timeline.add(
                                    sec.saturating_sub(1),
                                    Field::OriginRequests,
                                    (n - prev).max(0.0) as u64,
                                );
                            }
                            last_origin = Some(n);
                        }
                    }
                }
                if live && sec > 0 {
                    let s = sec - 1;
                    let t = &ctx.timeline;
                    let sent = t.get(s, Field::AttackSent);
                    let pct = |f| {
                        if sent == 0 {
                            0.0
                        } else {
                            100.0 * t.get(s, f) as f64 / sent as f64
                        }
                    };
                    let ok = t.total(Field::LegitOk) as f64;
                    let bad = t.total(Field::LegitFailed) as f64;
                    let phase = if s < warm { "warm-up" } else { "attack" };
                    eprintln!(
                        "[{:>4}s {phase}] attack {sent} req/s: {:.1}% blocked, {:.1}% challenged, {:.1}% shed, {:.1}% cut, {:.1}% reached origin | legit {:.2}% ok so far",
                        s + 1,
                        pct(Field::AttackBlocked),
                        pct(Field::AttackChallenged),
                        pct(Field::AttackShed),
                        pct(Field::AttackCut),
                        pct(Field::AttackPassed),
                        if ok + bad > 0.0 { 100.0 * ok / (ok + bad) } else { 100.0 }
                    );
                }
            }
        })
    };
    // The attack starts after the warm-up.
    tokio::time::sleep(opts.warmup).await;
    for (g, a) in opts.scenario.attack.iter().enumerate() {
        let mut a = a.clone();
        if let Some(r) = opts.rate {
            a.rate = r / opts.scenario.attack.len().max(1) as u32;
        }
        attack::spawn(Arc::clone(&ctx), g, a, &mut tasks);
    }
    // Bounded: every task ends by itself at `end`; Ctrl-C ends the drill early.
    let all = async {
        for t in tasks {
            let _ = t.await;
        }
        let _ = legit_done.await;
    };
    tokio::select! {
        _ = all => {}
        _ = tokio::signal::ctrl_c() => eprintln!("levee drill: interrupted, writing the report"),
        _ = tokio::time::sleep(total + Duration::from_secs(15)) => {}
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    done.store(true, Ordering::Relaxed);
    sampler.abort();
    let elapsed = start.elapsed().as_secs_f64();
    let upto = (elapsed.ceil() as usize).min(seconds);
    let t = &ctx.timeline;
    let per_sec = hist.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let merge = |r: std::ops::Range<usize>| {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 2)
            .unwrap_or_else(|_| Histogram::new(2).unwrap_or_else(|_| unreachable!()));
        for x in per_sec.iter().take(r.end).skip(r.start).flatten() {
            let _ = h.add(x);
        }
        h
    };
    let h = merge(0..per_sec.len());
    let h_warm = merge(0..warm);
    let h_attack = merge(warm..per_sec.len());
    let q = |h: &Histogram<u64>, q: f64| {
        (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
    };
    let (ok_attack, failed_attack) = (warm..upto).fold((0, 0), |(o, f), s| {
        (
            o + t.get(s, Field::LegitOk),
            f + t.get(s, Field::LegitFailed),
        )
    });
    let ok = t.total(Field::LegitOk);
    let failed = t.total(Field::LegitFailed);
    let attack_secs = opts.duration.as_secs_f64().max(1.0);
    let sent = t.total(Field::AttackSent);
    let passed = t.total(Field::AttackPassed);
    let ms = |x: f64| q(&h, x);
    let mitigated = stats::time_to_mitigate(t, warm, upto);
    let h_after = mitigated.map(|m| merge(warm + m as usize + 1..per_sec.len()));
    let legit_p99_per_s: Vec<Option<f64>> = per_sec
        .iter()
        .take(upto)
        .map(|x| x.as_ref().and_then(|h| q(h, 0.99)))
        .collect();
    // After mitigation: from the second after the one in which it was reached.
    let (sent_after, passed_after) = mitigated.map_or((0, 0), |m| {
        (warm + m as usize + 1..upto).fold((0, 0), |(a, b), s| {
            (
                a + t.get(s, Field::AttackSent),
                b + t.get(s, Field::AttackPassed),
            )
        })
    });
    let summary = serde_json::json!({
        "attack_sent": sent,
        "attack_rate": sent as f64 / attack_secs,
        "attack_passed": passed,
        "attack_blocked": t.total(Field::AttackBlocked),
        "attack_shed": t.total(Field::AttackShed),
        "attack_challenged": t.total(Field::AttackChallenged),
        "attack_cut": t.total(Field::AttackCut),
        "attack_passed_ratio": if sent > 0 { passed as f64 / sent as f64 } else { 0.0 },
        "time_to_mitigate_s": mitigated,
        "attack_passed_ratio_after_mitigation": (sent_after > 0).then(|| passed_after as f64 / sent_after as f64),
        "legit_success_during_attack": if ok_attack + failed_attack > 0 { ok_attack as f64 / (ok_attack + failed_attack) as f64 } else { 0.0 },
        "legit_p99_warmup_ms": q(&h_warm, 0.99),
        "legit_p99_attack_ms": q(&h_attack, 0.99),
        "legit_p99_after_mitigation_ms": h_after.as_ref().and_then(|h| q(h, 0.99)),
        "legit_p99_per_s": legit_p99_per_s,
        "legit_p99_ratio": match (q(&h_warm, 0.99), q(&h_attack, 0.99)) { (Some(w), Some(a)) if w > 0.0 => Some(a / w), _ => None },
        "legit_requests": ok + failed,
        "legit_challenged": t.total(Field::LegitChallenged),
        "legit_shed": t.total(Field::LegitShed),
        "legit_blocked": t.total(Field::LegitBlocked),
        "legit_success": if ok + failed > 0 { ok as f64 / (ok + failed) as f64 } else { 0.0 },
        "legit_p50_ms": ms(0.50),
        "legit_p95_ms": ms(0.95),
        "legit_p99_ms": ms(0.99),
        "origin_requests": t.total(Field::OriginRequests),
        "origin_peak_in_flight": (0..upto).map(|s| t.get(s, Field::OriginInFlight)).max().unwrap_or(0),
        "origin_max_in_flight": origin_max.load(Ordering::Relaxed),
        "origin_peak_rps": (0..upto).map(|s| t.get(s, Field::OriginRequests)).max().unwrap_or(0),
    });
    let edge = edge_samples
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Ok(Report {
        scenario: opts.scenario.name.clone(),
        description: opts.scenario.description.clone(),
        target: opts.target.clone(),
        duration_s: elapsed,
        summary,
        timeline: t.rows(upto),
        edge,
        expectations: Vec::new(),
        attack_start_s: opts.warmup.as_secs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let (h, a, t) = parse_target("http://127.0.0.1:8080/").unwrap();
        assert_eq!((h.as_str(), a.port(), t), ("127.0.0.1", 8080, false));
        let (h, a, _) = parse_target("http://localhost").unwrap();
        assert_eq!((h.as_str(), a.port()), ("localhost", 80));
        let (_, a, t) = parse_target("https://localhost").unwrap();
        assert_eq!((a.port(), t), (443, true));
        assert!(matches!(
            parse_target("ftp://x/"),
            Err(DrillError::BadTarget(_))
        ));
        assert!(matches!(
            parse_target("http:///"),
            Err(DrillError::BadTarget(_))
        ));
    }
}
