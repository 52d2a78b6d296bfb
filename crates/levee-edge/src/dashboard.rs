//! The live dashboard on the admin listener: `GET /dashboard` (one page,
//! its script and the vendored uPlot, all embedded in the binary; nothing
//! fetched elsewhere, a Content-Security-Policy of `'self'`), and `GET
//! /dashboard/stream`, one server-sent-events stream that pushes a
//! snapshot each second: every site's seconds by outcome with origin
//! latency and 5xx, its mode, rules with evidence and matches, the top
//! prefixes, paths, User-Agents and JA4s, the challenge funnel, origins'
//! health, the packet filter's counters, the open incident and the fleet.
//!
//! Without the admin token a stream carries nothing sensitive: no address
//! (prefixes, blocks, origins, fleet members), no path, no rule value that
//! names a network, and the page offers no action. With it, the page can pin
//! a mode, add or remove a block and drop a rule, through the admin API's
//! own calls. The admin listener's Host check (DNS rebinding) applies, and
//! at most `MAX_STREAMS` streams are open at once, each for at most an hour.

use crate::Shared;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Streams open at once; beyond, 503.
pub(crate) const MAX_STREAMS: usize = 8;
/// A stream ends after this long (the page reconnects).
const STREAM_FOR: Duration = Duration::from_secs(3600);
/// Rows of each top-N table.
const TOP: usize = 8;

static STREAMS: AtomicUsize = AtomicUsize::new(0);

const PAGE: &str = include_str!("../assets/dashboard.html");
const APP: &str = include_str!("../assets/dashboard.js");
const UPLOT_JS: &str = include_str!("../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../assets/uplot/uPlot.min.css");

/// The page or one of its assets, as a whole response.
pub(crate) fn asset(path: &[u8]) -> Option<Vec<u8>> {
    let (body, kind) = match path {
        b"/dashboard" | b"/dashboard/" => (PAGE, "text/html; charset=utf-8"),
        b"/dashboard/app.js" => (APP, "text/javascript; charset=utf-8"),
        b"/dashboard/uplot.js" => (UPLOT_JS, "text/javascript; charset=utf-8"),
        b"/dashboard/uplot.css" => (UPLOT_CSS, "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut r = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\nx-frame-options: DENY\r\nreferrer-policy: no-referrer\r\ncontent-security-policy: default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body.as_bytes());
    Some(r)
}

/// The packet filter's counters from the lines the feed publishes.
fn xdp_counters(text: &str) -> serde_json::Map<String, serde_json::Value> {
    text.lines()
        .filter(|l| l.starts_with("levee_xdp"))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse::<f64>().ok()?.into()))
        })
        .collect()
}

/// One snapshot: the seconds after `after` and the current state.
fn snapshot(shared: &Shared, authorized: bool, after: u64) -> (serde_json::Value, u64) {
    let st = shared.state.load();
    let now = crate::clock::now_ms();
    let mut last = after;
    let live = shared.incidents.live(after);
    let sites: Vec<serde_json::Value> = st
        .sites
        .iter()
        .map(|s| {
            let (secs, open) = live
                .iter()
                .find(|(n, _, _)| *n == s.name)
                .map(|(_, v, o)| (v.clone(), o.clone()))
                .unwrap_or_default();
            if let Some((sec, _)) = secs.last() {
                last = last.max(sec.t);
            }
            let status = s.defense.status();
            let rules: Vec<serde_json::Value> = status["rules"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut r| {
                    if !authorized && r["dim"] == "prefix" {
                        r["value"] = "(an address prefix: give the token)".into();
                    }
                    if !authorized {
                        if let Some(o) = r.as_object_mut() {
                            o.remove("from");
                        }
                    }
                    r
                })
                .collect();
            let mut top = s.defense.top(TOP);
            if !authorized {
                top["prefix"] = serde_json::Value::Null;
                top["path"] = serde_json::Value::Null;
            }
            let origins: Vec<serde_json::Value> = s
                .origins
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    serde_json::json!({
                        "name": if authorized { o.address.clone() } else { format!("origin {}", i + 1) },
                        "up": o.available(now),
                        "outstanding": o.outstanding(),
                        "limit": o.admission.limit(),
                        "waiting": o.admission.load().1,
                        "shed": o.admission.shed.iter().map(|x| x.load(Ordering::Relaxed)).sum::<u64>(),
                        "requests": o.requests.load(Ordering::Relaxed),
                    })
                })
                .collect();
            serde_json::json!({
                "name": s.name,
                "mode": status["mode"],
                "pinned": status["pinned"],
                "rate": status["rate"],
                "seconds": secs.iter().map(|(sec, mode)| serde_json::json!({
                    "t": sec.t, "counts": sec.counts, "e5xx": sec.e5xx,
                    "p50_ms": sec.p50_ms, "p99_ms": sec.p99_ms, "conns": sec.conns, "mode": mode,
                    "solves": sec.solves,
                })).collect::<Vec<_>>(),
                "rules": rules,
                "top": top,
                "origins": origins,
                "incident": open,
            })
        })
        .collect();
    let xdp = xdp_counters(
        &shared
            .extra_metrics
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    let fleet = shared.fleet.status();
    let blocks: serde_json::Value = if authorized {
        shared
            .lists
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .dynamic()
            .into_iter()
            .take(100)
            .map(|(c, e)| serde_json::json!({"cidr": c, "expires_in_s": e.saturating_sub(now) / 1000}))
            .collect()
    } else {
        serde_json::Value::Null
    };
    let v = serde_json::json!({
        "t_ms": crate::clock::unix_ms(),
        "edge": crate::edge_name(&st.cfg),
        "authorized": authorized,
        "token_configured": st.cfg.admin.token.is_some(),
        "connections": shared.tracker.open(),
        "sites": sites,
        "xdp": xdp,
        "blocks": blocks,
        "fleet": if authorized || fleet.is_null() {
            if fleet.is_null() { serde_json::json!({"enabled": false}) } else { fleet }
        } else {
            // The edges and what they said (modes, rules, rates); not the
            // store's address or errors.
            serde_json::json!({
                "enabled": true,
                "edges": fleet["edges"].as_array().map(|a| a.iter().map(|e| serde_json::json!({
                    "name": e["name"], "live": e["live"], "said": {"sites": e["said"]["sites"]},
                })).collect::<Vec<_>>()),
            })
        },
    });
    (v, last)
}

/// Write `data` within 5 s (a client that does not read is let go).
async fn send(sock: &mut TcpStream, data: &[u8]) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(5), sock.write_all(data)).await,
        Ok(Ok(()))
    )
}

/// Serve one stream until the client goes, the hour is up or the edge stops.
pub(crate) async fn stream(mut sock: TcpStream, shared: Arc<Shared>, authorized: bool) {
    if STREAMS.fetch_add(1, Ordering::AcqRel) >= MAX_STREAMS {
        STREAMS.fetch_sub(1, Ordering::AcqRel);
        let body = format!("503: at most {MAX_STREAMS} dashboard streams at once (levee)\n");
        let _ = sock
            .write_all(&crate::proxy::own_response(503, &body, true, None))
            .await;
        return;
    }
    struct Slot;
    impl Drop for Slot {
        fn drop(&mut self) {
            STREAMS.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let _slot = Slot;
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\nretry: 2000\n\n";
    if !send(&mut sock, head.as_bytes()).await {
        return;
    }
    let until = tokio::time::Instant::now() + STREAM_FOR;
    let mut after = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut scratch = [0u8; 256];
    let mut junk = 0usize;
    while tokio::time::Instant::now() < until && !shared.shutting_down() {
        tokio::select! {
            _ = tick.tick() => {}
            // The client closed (or sends what a stream never reads: at most 4 KiB).
            r = sock.read(&mut scratch) => match r {
                Ok(n) if n > 0 && junk + n <= 4096 => { junk += n; continue; }
                _ => return,
            },
        }
        let (v, last) = snapshot(&shared, authorized, after);
        after = last;
        if !send(&mut sock, format!("data: {v}\n\n").as_bytes()).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_and_the_page_fetches_only_its_own() {
        for p in [
            "/dashboard",
            "/dashboard/app.js",
            "/dashboard/uplot.js",
            "/dashboard/uplot.css",
        ] {
            let r = asset(p.as_bytes()).unwrap();
            assert!(r.starts_with(b"HTTP/1.1 200 OK"), "{p}");
        }
        assert!(asset(b"/dashboard/../etc/passwd").is_none());
        for text in [PAGE, APP] {
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
    }

    #[test]
    fn packet_filter_counters_are_read_from_the_published_lines() {
        let m = xdp_counters("# HELP x\nlevee_xdp_dropped_total{reason=\"syn_flood\"} 42\nother 1\nlevee_xdp_bad x\n");
        assert_eq!(m.len(), 1);
        assert_eq!(m["levee_xdp_dropped_total{reason=\"syn_flood\"}"], 42.0);
    }
}
