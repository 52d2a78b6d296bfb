//! Legitimate, browser-like clients: each from its own address, keeping
//! cookies, fetching a page and then its assets, pausing between pages.
//! Their success and latency are what a drill is about.

use crate::attack::{connect_io, read_response, Ctx};
use crate::stats::Field;
use bytes::BytesMut;
use hdrhistogram::Histogram;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

const BROWSER_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

/// Raise the calling thread's priority (nice -10) if allowed; best effort,
/// through `renice` so that no unsafe code is needed.
pub fn raise_priority() {
    let Ok(link) = std::fs::read_link("/proc/thread-self") else {
        return;
    };
    let Some(tid) = link
        .file_name()
        .and_then(|t| t.to_str())
        .map(str::to_string)
    else {
        return;
    };
    let _ = std::process::Command::new("renice")
        .args(["-n", "-10", "-p", &tid])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// The address of legitimate client `i`: 127.250-254.x.y, far from the
/// bots, each of the first 250 in a /24 of its own (real visitors come from
/// many networks).
pub fn legit_addr(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        250 + (i / 62_500) as u8 % 5,
        (i % 250) as u8,
        ((i / 250) % 250 + 1) as u8,
    ))
}

/// Legitimate latencies (µs), one histogram per second of the drill.
pub type PerSecond = Arc<Mutex<Vec<Option<Histogram<u64>>>>>;

/// One legitimate visitor until the drill ends. Latencies go to `hist`.
#[allow(clippy::too_many_arguments)]
pub async fn client(
    ctx: Arc<Ctx>,
    i: u32,
    pages: Arc<Vec<String>>,
    assets: Arc<Vec<String>>,
    think: Duration,
    staff_token: Option<String>,
    hist: PerSecond,
    start_at: Option<Instant>,
) {
    if let Some(t) = start_at {
        tokio::time::sleep_until(t).await;
    }
    let mut cookie: Option<String> = None;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut conn = None;
    let mut n = i as usize;
    // Stagger the start so that clients do not arrive in lock step.
    tokio::time::sleep(Duration::from_millis(u64::from(i % 50) * 7)).await;
    while Instant::now() < ctx.end {
        let page = &pages[n % pages.len()];
        n += 1;
        for path in std::iter::once(page).chain(assets.iter()) {
            if Instant::now() >= ctx.end {
                break;
            }
            let mut req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {BROWSER_UA}\r\nAccept: text/html,application/xhtml+xml,*/*;q=0.8\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-GB,en;q=0.9\r\n", ctx.host);
            if let Some(t) = &staff_token {
                req.push_str(&format!("Authorization: Bearer {t}\r\n"));
            }
            let t0 = Instant::now();
            let ok = async {
                // A page load: the request, and if the edge asks, the challenge solved
                // (as the browser's worker would) and the request again.
                for _attempt in 0..2 {
                    if conn.is_none() {
                        conn = Some(connect_io(&ctx, legit_addr(i)).await.ok()?);
                        buf.clear();
                    }
                    let mut full = req.clone();
                    if let Some(c) = &cookie {
                        full.push_str(&format!("Cookie: {c}\r\n"));
                    }
                    full.push_str("\r\n");
                    let s = conn.as_mut()?;
                    s.write_all(full.as_bytes()).await.ok()?;
                    let r = read_response(s, &mut buf, false).await?;
                    if !r.keep_alive {
                        conn = None;
                    }
                    if r.set_cookie.is_some() {
                        cookie = r.set_cookie.clone();
                    }
                    let refused = match r.status {
                        503 => Some(Field::LegitShed),
                        403 | 429 if !r.challenge => Some(Field::LegitBlocked),
                        _ => None,
                    };
                    if let Some(f) = refused {
                        ctx.timeline.add(ctx.sec(), f, 1);
                    }
                    let Some(token) = r.token.filter(|_| r.challenge) else {
                        return Some((200..400).contains(&r.status));
                    };
                    ctx.timeline.add(ctx.sec(), Field::LegitChallenged, 1);
                    let counter = tokio::task::spawn_blocking(move || {
                        levee_challenge::solve(&token, 1 << 30).map(|c| (token, c))
                    })
                    .await
                    .ok()??;
                    let verify = format!(
                        "GET /.levee/challenge/verify?t={}&c={}&r=%2F HTTP/1.1\r\nHost: {}\r\nUser-Agent: {BROWSER_UA}\r\n\r\n",
                        counter.0, counter.1, ctx.host
                    );
                    if conn.is_none() {
                        conn = Some(connect_io(&ctx, legit_addr(i)).await.ok()?);
                        buf.clear();
                    }
                    let s = conn.as_mut()?;
                    s.write_all(verify.as_bytes()).await.ok()?;
                    let v = read_response(s, &mut buf, false).await?;
                    if !v.keep_alive {
                        conn = None;
                    }
                    cookie = Some(v.set_cookie?);
                }
                Some(false)
            };
            let res = tokio::time::timeout(Duration::from_secs(10), ok).await;
            let good = matches!(res, Ok(Some(true)));
            if !good {
                conn = None;
            }
            ctx.timeline.add(
                ctx.sec(),
                if good {
                    Field::LegitOk
                } else {
                    Field::LegitFailed
                },
                1,
            );
            let sec = t0.duration_since(ctx.start).as_secs() as usize;
            let us = t0.elapsed().as_micros().max(1) as u64;
            let mut all = hist.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = all.get_mut(sec) {
                if slot.is_none() {
                    *slot = Histogram::<u64>::new_with_bounds(1, 60_000_000, 2).ok();
                }
                if let Some(h) = slot.as_mut() {
                    let _ = h.record(us);
                }
            }
        }
        tokio::time::sleep(think).await;
    }
}
