//! The admin listener: `/healthz`, `/metrics` (Prometheus text), `/status`
//! and `/events` (JSON), `POST /reload`, `POST /mode`, `GET|POST|DELETE
//! /blocks` and `/blocks/changes`, `DELETE /rules`, the live dashboard
//! (`/dashboard`, `dashboard.rs`). Anything that changes state needs the
//! bearer token from `[admin] token`; without a configured token, such calls
//! are refused. One request per connection, small heads only, short
//! deadlines, at most `MAX_ADMIN_CONNECTIONS` at once, and only for a Host
//! that is an IP address or `localhost` (a page on another name rebound to
//! 127.0.0.1 cannot read it: DNS rebinding).

use crate::clock::now_ms;
use crate::proxy::own_response;
use crate::Shared;
use bytes::BytesMut;
use levee_http::h1::{self, HeadLimits, Parsed};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Admin connections served at once; beyond, new ones are closed.
const MAX_ADMIN_CONNECTIONS: usize = 64;

pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_ADMIN_CONNECTIONS));
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(sock);
            continue;
        };
        let sh = Arc::clone(&shared);
        tokio::spawn(async move {
            // Reading the request and writing the answer each have 10 s;
            // an erasure may work longer in between.
            handle(sock, sh).await;
            drop(slot);
        });
    }
}

/// Whether the admin API answers a request with this Host: an IP address
/// or `localhost`, never another name (DNS rebinding).
fn admin_host(host: &levee_http::host::Host) -> bool {
    let n = host.name();
    n == "localhost" || n.starts_with('[') || n.parse::<std::net::IpAddr>().is_ok()
}

fn json_response(status: u16, v: &serde_json::Value) -> Vec<u8> {
    let body = format!("{v}\n");
    let mut r = own_response(status, &body, true, None);
    // Replace the text content type with JSON.
    if let Some(pos) = r
        .windows(26)
        .position(|w| w == b"text/plain; charset=utf-8\r\n")
    {
        r.splice(pos..pos + 26, b"application/json\r\n".iter().copied());
    }
    r
}

async fn handle(mut sock: TcpStream, shared: Arc<Shared>) {
    let mut buf = BytesMut::with_capacity(2048);
    let limits = HeadLimits {
        max_head_bytes: 8192,
        max_headers: 32,
        max_uri_bytes: 1024,
    };
    let read_by = tokio::time::Instant::now() + Duration::from_secs(10);
    let head = loop {
        match h1::parse_request(&buf, &limits) {
            Ok(Parsed::Complete(h)) => break h,
            Ok(Parsed::Partial) => {}
            Err(r) => {
                let _ = sock
                    .write_all(&own_response(r.status(), &format!("{r}\n"), true, None))
                    .await;
                return;
            }
        }
        match tokio::time::timeout_at(read_by, sock.read_buf(&mut buf)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => return,
            Ok(Ok(_)) => {}
        }
    };
    if !admin_host(&head.host) {
        let body = "421 Misdirected Request: the admin API answers only to an IP address or localhost as Host (levee)\n";
        let _ = sock.write_all(&own_response(421, body, true, None)).await;
        return;
    }
    let method = &buf[head.method.clone()];
    let target = &buf[head.path.clone()];
    let path = target.split(|&b| b == b'?').next().unwrap_or(b"");
    let query = std::str::from_utf8(target.get(path.len() + 1..).unwrap_or(b"")).unwrap_or("");
    let param = |k: &str| levee_http::target::query_param(query, k).map(|v| v.into_owned());
    let token = shared.state.load().cfg.admin.token.clone();
    let authorized = token
        .as_deref()
        .is_some_and(|t| bearer_ok(auth_of(&head, &buf), t));
    let auth = auth_of(&head, &buf);
    if method == b"GET" && path == b"/dashboard/stream" {
        crate::dashboard::stream(sock, shared, authorized).await;
        return;
    }
    let resp = match (method, path) {
        (b"GET", b"/healthz") => own_response(200, "ok\n", true, None),
        (b"GET", p) if p.starts_with(b"/dashboard") => {
            crate::dashboard::asset(p).unwrap_or_else(|| {
                own_response(
                    404,
                    "not found: the dashboard is at /dashboard\n",
                    true,
                    None,
                )
            })
        }
        (b"DELETE", b"/rules") if !authorized => json_response(
            401,
            &serde_json::json!({"error": "DELETE /rules needs Authorization: Bearer <[admin] token>"}),
        ),
        (b"DELETE", b"/rules") => {
            let st = shared.state.load();
            let site = param("site").and_then(|n| st.sites.iter().find(|s| s.name == n).cloned());
            let id = param("id").and_then(|v| v.parse::<u64>().ok());
            match (site, id) {
                (Some(site), Some(id)) => match site.defense.drop_rule(id) {
                    Some(rule) => {
                        shared.events.push(
                            "rule_dropped",
                            &site.name,
                            serde_json::json!({"rule": rule, "by": "operator"}),
                        );
                        json_response(200, &serde_json::json!({"site": site.name, "dropped": id}))
                    }
                    None => json_response(
                        404,
                        &serde_json::json!({"error": format!("site {:?} has no rule {id} (GET /status lists them)", site.name)}),
                    ),
                },
                _ => json_response(
                    400,
                    &serde_json::json!({"error": "give ?site=NAME&id=RULE_ID (both in GET /status)"}),
                ),
            }
        }
        (b"GET", b"/metrics") => {
            let st = shared.state.load();
            let open = f64::from(shared.tracker.open());
            let uptime = shared.started.elapsed().as_secs_f64();
            let marked = shared
                .marks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len() as f64;
            let (cpu, rss) = process_usage();
            let healthy = st
                .sites
                .iter()
                .flat_map(|s| s.origins.iter())
                .filter(|o| o.available(now_ms()))
                .count() as f64;
            let text = shared.metrics.render(&[
                ("levee_open_connections", "Open client connections.", open),
                ("levee_uptime_seconds", "Seconds since start.", uptime),
                (
                    "levee_marked_clients",
                    "Clients currently in the abuse table.",
                    marked,
                ),
                (
                    "levee_origins_up",
                    "Origins currently believed up.",
                    healthy,
                ),
                (
                    "levee_config_generation",
                    "Configuration generation (0 at start, +1 per reload).",
                    st.generation as f64,
                ),
                (
                    "process_cpu_seconds_total",
                    "CPU time used by the process.",
                    cpu,
                ),
                (
                    "process_resident_memory_bytes",
                    "Resident memory of the process.",
                    rss,
                ),
            ]);
            // Lines other parts of the process publish (the packet filter's counters).
            let text = text
                + &egress_metrics(&st)
                + shared
                    .extra_metrics
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_str()
                + &shared.fleet.metrics(&st)
                + &shared.sources.metrics()
                + &crate::acme::expiry_metrics(&st, (crate::clock::unix_ms() / 1000) as i64)
                + &shared.incidents.metrics()
                + &format!(
                    "# HELP levee_incident_sources_skipped_total requests left out of an incident's source ranking (its table was busy; workers never wait for it)\n# TYPE levee_incident_sources_skipped_total counter\nlevee_incident_sources_skipped_total {}\n",
                    st.sites
                        .iter()
                        .map(|s| s.tally.skipped.load(Ordering::Relaxed))
                        .sum::<u64>()
                );
            let mut r = own_response(200, &text, true, None);
            if let Some(pos) = r
                .windows(26)
                .position(|w| w == b"text/plain; charset=utf-8\r\n")
            {
                r.splice(
                    pos..pos + 26,
                    b"text/plain; version=0.0.4\r\n".iter().copied(),
                );
            }
            r
        }
        (b"GET", b"/status") => json_response(200, &status(&shared)),
        (b"GET", b"/events") => {
            let since = param("since").and_then(|v| v.parse().ok()).unwrap_or(0);
            let (lines, last) = shared.events.since(since, 1000);
            let events: Vec<serde_json::Value> = lines
                .iter()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            json_response(200, &serde_json::json!({"last": last, "events": events}))
        }
        (b"POST", b"/mode") if !authorized => json_response(
            401,
            &serde_json::json!({"error": "POST /mode needs Authorization: Bearer <[admin] token>"}),
        ),
        (b"POST", b"/mode") => {
            let st = shared.state.load();
            let site = param("site").and_then(|n| st.sites.iter().find(|s| s.name == n).cloned());
            let mode = param("mode");
            let pin = match mode.as_deref() {
                Some("auto") => Some(None),
                Some(m) => levee_detect::Mode::parse(m).map(Some),
                None => None,
            };
            match (site, pin) {
                (Some(site), Some(pin)) => {
                    for c in site.defense.pin(pin) {
                        shared.publish(&site.name, &c);
                    }
                    shared.fleet.note_pin(&site.name, pin);
                    json_response(
                        200,
                        &serde_json::json!({"site": site.name, "mode": site.defense.mode().label(), "pinned": pin.is_some()}),
                    )
                }
                _ => json_response(
                    400,
                    &serde_json::json!({"error": "give ?site=NAME&mode=normal|elevated|under_attack|auto (site names: GET /status)"}),
                ),
            }
        }
        (b"GET" | b"POST", p) if p.starts_with(b"/retention") => {
            retention(&shared, method, p, &param, authorized).await
        }
        (b"GET", b"/egress") if token.is_some() && !authorized => json_response(
            401,
            &serde_json::json!({"error": "the egress view names clients: give the [admin] token (Authorization: Bearer ...)"}),
        ),
        (b"GET", b"/egress") => json_response(200, &egress_view(&shared)),
        (b"GET", p) if p.starts_with(b"/incidents") && token.is_some() && !authorized => {
            json_response(
                401,
                &serde_json::json!({"error": "incident records name source prefixes: give the [admin] token (Authorization: Bearer ...)"}),
            )
        }
        (b"GET", b"/incidents") => json_response(200, &shared.incidents.list()),
        (b"GET", p) if p.starts_with(b"/incidents/") => {
            let id = String::from_utf8_lossy(&p[b"/incidents/".len()..]).to_string();
            match shared.incidents.get(&id) {
                Some(s) => json_response(200, &serde_json::to_value(s).unwrap_or_default()),
                None => json_response(
                    404,
                    &serde_json::json!({"error": format!("no incident {id:?} (GET /incidents lists them)")}),
                ),
            }
        }
        (b"GET", b"/blocks") => {
            let now = now_ms();
            let dynamic: Vec<serde_json::Value> = shared
                .lists
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .dynamic()
                .into_iter()
                .map(
                    |(c, e)| serde_json::json!({"cidr": c, "expires_in_ms": e.saturating_sub(now)}),
                )
                .collect();
            // What the packet filter is fed (when `[xdp] iface` is set): the
            // first 1,000 entries and the count.
            let view = shared.filter_view();
            let mut fed: Vec<serde_json::Value> = view
                .blocks
                .iter()
                .take(1000)
                .map(|(ip, len, left)| {
                    serde_json::json!({"cidr": format!("{ip}/{len}"), "expires_in_ms": left.map(|d| d.as_millis() as u64)})
                })
                .collect();
            fed.sort_by(|a, b| a["cidr"].as_str().cmp(&b["cidr"].as_str()));
            json_response(
                200,
                &serde_json::json!({
                    "dynamic": dynamic,
                    "static": shared.state.load().cfg.lists.block.len(),
                    "packet_filter": {"blocks": view.blocks.len(), "allow": view.allow.len(), "entries": fed},
                }),
            )
        }
        (b"GET", b"/blocks/changes") => {
            let since = param("since").and_then(|v| v.parse().ok()).unwrap_or(0);
            let (changes, next) = shared
                .lists
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .changes_since(since);
            json_response(200, &serde_json::json!({"next": next, "changes": changes}))
        }
        (b"POST" | b"DELETE", b"/blocks") if !authorized => json_response(
            401,
            &serde_json::json!({"error": "a configured [admin] token is required (Authorization: Bearer ...)"}),
        ),
        (b"POST" | b"DELETE", b"/blocks") => {
            let cidr: Option<levee_config::Cidr> = param("cidr").and_then(|c| c.parse().ok());
            match cidr {
                None => json_response(
                    400,
                    &serde_json::json!({"error": "give ?cidr=ADDR or ?cidr=NET/LEN (and for POST, ttl=SECONDS)"}),
                ),
                Some(c) if method == b"DELETE" => {
                    let removed = shared
                        .lists
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .unblock(c);
                    if removed {
                        shared.fleet.note_unblock(c.to_string());
                        shared.events.push(
                            "unblock",
                            "",
                            serde_json::json!({"cidr": c.to_string(), "by": "operator"}),
                        );
                    }
                    json_response(
                        if removed { 200 } else { 404 },
                        &serde_json::json!({"removed": removed, "cidr": c.to_string()}),
                    )
                }
                Some(c) => {
                    let ttl_s: u64 = param("ttl")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(3600)
                        .clamp(1, 30 * 86_400);
                    let added = shared
                        .lists
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .block(
                            c,
                            now_ms() + ttl_s * 1000,
                            crate::clock::unix_ms() + ttl_s * 1000,
                        );
                    if added {
                        shared.fleet.note_block(
                            c.to_string(),
                            "blocked through the admin API".into(),
                            ttl_s * 1000,
                        );
                        shared.events.push(
                            "block",
                            "",
                            serde_json::json!({"cidr": c.to_string(), "ttl_s": ttl_s, "why": "blocked by an operator (admin API)", "by": "operator"}),
                        );
                        json_response(
                            200,
                            &serde_json::json!({"blocked": c.to_string(), "ttl_s": ttl_s}),
                        )
                    } else {
                        json_response(
                            507,
                            &serde_json::json!({"error": "the dynamic block list is full ([lists] max_dynamic)"}),
                        )
                    }
                }
            }
        }
        (b"POST", b"/reload") => {
            let token = shared.state.load().cfg.admin.token.clone();
            match token {
                None => json_response(
                    403,
                    &serde_json::json!({"error": "no [admin] token is configured; state-changing calls are disabled"}),
                ),
                Some(t) if !bearer_ok(auth, &t) => json_response(
                    401,
                    &serde_json::json!({"error": "missing or wrong bearer token"}),
                ),
                Some(_) => {
                    let sh = Arc::clone(&shared);
                    match tokio::task::spawn_blocking(move || sh.reload()).await {
                        Ok(Ok(gen)) => {
                            json_response(200, &serde_json::json!({"ok": true, "generation": gen}))
                        }
                        Ok(Err(e)) => {
                            json_response(400, &serde_json::json!({"ok": false, "error": e}))
                        }
                        Err(_) => json_response(
                            500,
                            &serde_json::json!({"ok": false, "error": "reload task failed"}),
                        ),
                    }
                }
            }
        }
        _ => own_response(
            404,
            "not found: try /healthz, /metrics, /status, /dashboard, POST /reload\n",
            true,
            None,
        ),
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let _ = sock.write_all(&resp).await;
        let _ = sock.shutdown().await;
    })
    .await;
}

fn auth_of<'a>(head: &h1::RequestHead, buf: &'a [u8]) -> Option<&'a [u8]> {
    head.headers.iter().find_map(|(n, v)| {
        buf[n.clone()]
            .eq_ignore_ascii_case(b"authorization")
            .then(|| &buf[v.clone()])
    })
}

/// Constant-time comparison of the presented bearer token.
fn bearer_ok(auth: Option<&[u8]>, token: &str) -> bool {
    let Some(a) = auth else { return false };
    let Some(presented) = a.strip_prefix(b"Bearer ") else {
        return false;
    };
    let t = token.as_bytes();
    if presented.len() != t.len() {
        return false;
    }
    presented
        .iter()
        .zip(t)
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The retention API, behind the admin token: `GET /retention` (status),
/// `POST /retention/hold?incident=ID&for=SECONDS|until_ms=MS&reason=...`,
/// `POST /retention/erase?address=IP|pseudonym=P&reason=...` (run by the
/// access log's writer, which alone may rewrite the live logs).
async fn retention(
    shared: &Shared,
    method: &[u8],
    path: &[u8],
    param: &(dyn Fn(&str) -> Option<String> + Sync),
    authorized: bool,
) -> Vec<u8> {
    if !authorized {
        return json_response(
            401,
            &serde_json::json!({"error": "the retention API needs the [admin] token (Authorization: Bearer ...)"}),
        );
    }
    let cfg = shared.state.load().cfg.clone();
    let now = crate::clock::unix_ms();
    let bad = |m: &str| json_response(400, &serde_json::json!({ "error": m }));
    match (method, path) {
        (b"GET", b"/retention") => json_response(200, &crate::retention::status(&cfg, now)),
        (b"POST", b"/retention/hold") => {
            let (Some(incident), Some(reason)) = (param("incident"), param("reason")) else {
                return bad("give ?incident=ID&reason=...&for=SECONDS (or until_ms=MS)");
            };
            let until = match (param("for"), param("until_ms")) {
                (Some(f), _) => f
                    .parse::<u64>()
                    .ok()
                    .map(|s| now.saturating_add(s.saturating_mul(1000))),
                (None, Some(u)) => u.parse::<u64>().ok(),
                _ => None,
            };
            let Some(until) = until.filter(|u| *u > now) else {
                return bad("give for=SECONDS or until_ms=MS in the future");
            };
            match crate::retention::hold(&cfg, &incident, until, &reason, now) {
                Ok(()) => json_response(
                    200,
                    &serde_json::json!({"held": incident, "until_ms": until, "reason": reason}),
                ),
                Err(e) => json_response(500, &serde_json::json!({ "error": e })),
            }
        }
        (b"POST", b"/retention/erase") => {
            let who = match (param("address"), param("pseudonym")) {
                (Some(a), None) => match a.parse() {
                    Ok(ip) => crate::Person::Address(ip),
                    Err(_) => return bad("address: not an IP address"),
                },
                (None, Some(p)) if !p.is_empty() => crate::Person::Pseudonym(p),
                _ => return bad("give ?address=IP or ?pseudonym=P (one), and reason=..."),
            };
            let Some(reason) = param("reason").filter(|r| !r.trim().is_empty()) else {
                return bad("give reason=... (it is recorded in the ledger)");
            };
            let Some(rx) = shared.log.erase(who, reason) else {
                return bad("the access log is off: nothing to erase");
            };
            match tokio::time::timeout(std::time::Duration::from_secs(3600), rx).await {
                Ok(Ok(Ok(done))) => json_response(200, &serde_json::json!(done)),
                Ok(Ok(Err(e))) if e.starts_with("refused") => {
                    json_response(409, &serde_json::json!({ "error": e }))
                }
                Ok(Ok(Err(e))) => json_response(500, &serde_json::json!({ "error": e })),
                Ok(Err(_)) | Err(_) => json_response(
                    503,
                    &serde_json::json!({"error": "the access log's writer did not answer (within an hour)"}),
                ),
            }
        }
        _ => json_response(
            404,
            &serde_json::json!({"error": "GET /retention, POST /retention/hold, POST /retention/erase"}),
        ),
    }
}

/// Per site and class: bytes and 2xx records served from personal-data
/// routes, and outliers found (Prometheus text).
fn egress_metrics(st: &crate::state::State) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "# HELP levee_egress_bytes_total Bytes served from routes tagged personal or export.\n# TYPE levee_egress_bytes_total counter\n",
    );
    let mut records = String::from(
        "# HELP levee_egress_records_total 2xx answers from routes tagged personal or export.\n# TYPE levee_egress_records_total counter\n",
    );
    let mut outliers = String::from(
        "# HELP levee_egress_outliers_total Clients found taking an outlier share of a site's personal-data egress.\n# TYPE levee_egress_outliers_total counter\n",
    );
    for s in &st.sites {
        for c in crate::egress::Class::ALL {
            let (b, r) = s.egress.totals(c);
            let _ = writeln!(
                out,
                "levee_egress_bytes_total{{site=\"{}\",class=\"{}\"}} {b}",
                s.name,
                c.label()
            );
            let _ = writeln!(
                records,
                "levee_egress_records_total{{site=\"{}\",class=\"{}\"}} {r}",
                s.name,
                c.label()
            );
        }
        let _ = writeln!(
            outliers,
            "levee_egress_outliers_total{{site=\"{}\"}} {}",
            s.name,
            s.egress.outliers.load(Ordering::Relaxed)
        );
    }
    out + &records + &outliers
}

/// `GET /egress`: per site, the sliding window's totals and its 20
/// heaviest clients on personal-data routes (named as the access log
/// names them).
fn egress_view(shared: &Shared) -> serde_json::Value {
    let st = shared.state.load();
    let now = crate::clock::unix_ms();
    let sites: Vec<serde_json::Value> = st
        .sites
        .iter()
        .filter(|s| !s.data_paths.is_empty())
        .map(|s| {
            let ((bytes, records), top) = s.egress.view(now, 20);
            serde_json::json!({
                "site": s.name,
                "window_s": s.egress.window_s(),
                "bytes": bytes,
                "records": records,
                "outliers_total": s.egress.outliers.load(Ordering::Relaxed),
                "top": top.iter().map(|c| serde_json::json!({
                    "client": shared.log.client_name(c.client),
                    "bytes": c.bytes,
                    "bytes_possible_overcount": c.bytes_error,
                    "records": c.records,
                    "share_bytes": c.share_bytes,
                    "share_records": c.share_records,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({"sites": sites})
}

fn status(shared: &Shared) -> serde_json::Value {
    let st = shared.state.load();
    let now = now_ms();
    let sites: Vec<serde_json::Value> = st
        .sites
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "requests": s.requests.load(Ordering::Relaxed),
                "defense": s.defense.status(),
                "origins": s.origins.iter().map(|o| serde_json::json!({
                    "address": o.address,
                    "up": o.available(now),
                    "active_check_healthy": o.healthy.load(Ordering::Relaxed),
                    "outstanding": o.outstanding(),
                    "max_concurrent": o.max_concurrent,
                    "concurrency_limit": o.admission.limit(),
                    "waiting": o.admission.load().1,
                    "admitted": crate::admission::Class::ALL.iter().map(|c| (c.label(), o.admission.admitted[*c as usize].load(Ordering::Relaxed))).collect::<std::collections::BTreeMap<_, _>>(),
                    "shed": crate::admission::Class::ALL.iter().map(|c| (c.label(), o.admission.shed[*c as usize].load(Ordering::Relaxed))).collect::<std::collections::BTreeMap<_, _>>(),
                    "idle_connections": o.idle_connections(),
                    "requests": o.requests.load(Ordering::Relaxed),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": shared.started.elapsed().as_secs(),
        "config_generation": st.generation,
        "listen": shared.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "connections": {
            "open": shared.tracker.open(),
            "accepted": shared.metrics.connections_accepted.load(Ordering::Relaxed),
            "limit": st.cfg.limits.max_connections,
        },
        "marked_clients": shared.marks.lock().unwrap_or_else(PoisonError::into_inner).len(),
        "shutting_down": shared.shutting_down(),
        "fleet": shared.fleet.status(),
        "sources": shared.sources.status(),
        "sites": sites,
    })
}

/// CPU seconds and resident bytes of this process, from /proc (0 where unavailable).
pub(crate) fn process_usage() -> (f64, f64) {
    let ticks = 100.0; // USER_HZ on Linux
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let u: f64 = f.get(11)?.parse().ok()?;
            let k: f64 = f.get(12)?.parse().ok()?;
            Some((u + k) / ticks)
        })
        .unwrap_or(0.0);
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |pages| pages * 4096.0);
    (cpu, rss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_and_localhost_reach_the_admin_api() {
        let h = |s: &str| levee_http::host::parse(s.as_bytes()).unwrap();
        assert!(admin_host(&h("127.0.0.1:9090")));
        assert!(admin_host(&h("[::1]:9090")));
        assert!(admin_host(&h("LOCALHOST")));
        assert!(!admin_host(&h("evil.example:9090")));
        assert!(!admin_host(&h("localhost.evil.example")));
    }

    #[test]
    fn bearer_tokens() {
        assert!(bearer_ok(Some(b"Bearer s3cret"), "s3cret"));
        assert!(!bearer_ok(Some(b"Bearer s3cre"), "s3cret"));
        assert!(!bearer_ok(Some(b"Basic s3cret"), "s3cret"));
        assert!(!bearer_ok(None, "s3cret"));
    }
}
