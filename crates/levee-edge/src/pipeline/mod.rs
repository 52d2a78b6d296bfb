//! One request pipeline for HTTP/1 and HTTP/2 (in the spirit of pingora's
//! `ProxyHttp` phases and linkerd's one service behind both drivers).
//!
//! The drivers (`h1`, `h2`) read a head and hand it over with a
//! [`Downstream`]; [`serve`] runs the phases in this order and nothing else:
//!
//! 1. **normalise** ([`request`]): the target (dot-segments, slashes,
//!    escapes), the host and the client address, once, by `levee-http`'s
//!    parsers; what cannot be normalised is refused (400);
//! 2. **the edge's own paths**: ACME's HTTP-01 answers (before any limit
//!    or challenge), the drill opt-in;
//! 3. **route**: host → site, SNI agreement (421);
//! 4. **gate** ([`crate::gate`]): rate limits, rules, challenge (and its
//!    endpoints), admission class;
//! 5. **cache**, **forward**, **respond** ([`forward`]);
//! 6. **one record** ([`record`]): metrics and one access-log line.
//!
//! What it does not do: read or write sockets (the [`Downstream`] does),
//! parse bytes (`levee-http` does).

mod cache;
pub(crate) mod downstream;
mod forward;
pub(crate) mod record;
pub(crate) mod request;

use crate::answer::{Answer, Why};
use crate::conn::Peer;
use crate::gate::Decision;
use crate::metrics::Reason;
use crate::pace::SendFail;
use crate::state::State;
use crate::Shared;
use bytes::Bytes;
pub(crate) use downstream::{Downstream, RespBody};
use levee_http::h1::Reject;
use record::{Asked, Record};
pub(crate) use request::{Head, Request};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The drill opt-in path answered by the edge itself.
pub(crate) const DRILL_PATH: &str = "/.well-known/levee-drill";

/// What the connection does after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Serve the next request (HTTP/1 keep-alive).
    Continue,
    Close,
    /// The connection became a tunnel and is done.
    Upgraded,
}

/// Everything a request runs against.
pub(crate) struct Cx<'a> {
    pub shared: &'a Arc<Shared>,
    pub state: &'a State,
    pub peer: &'a Peer,
    /// When the request head was complete.
    pub started: Instant,
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

/// Serve one request.
pub(crate) async fn serve<D: Downstream>(cx: &Cx<'_>, mut head: Head<'_>, down: &mut D) -> Flow {
    let limits = &cx.state.cfg.limits;
    let (client, https) = head.client(cx.peer, &cx.state.cfg.trust);
    let mut asked = Asked {
        client,
        site: "",
        method: text(head.method),
        path: text(head.target),
        proto: head.proto,
        h2fp: head.h2_fingerprint,
        started: cx.started,
        data: None,
        tally: None,
    };
    // 1. The request's shape, normalised once. (HTTP/1 heads were already
    //    held to these by the parser; HTTP/2 requests meet them here.)
    let refuse = |r: Reject| Answer::refusal(r.status(), Reason::Http(r), None, true);
    if head.method == b"CONNECT" || head.method == b"TRACE" {
        return answer(cx, &asked, &head, down, refuse(Reject::MethodNotAllowed)).await;
    }
    if head.target.len() > limits.max_uri_bytes.0 as usize {
        return answer(cx, &asked, &head, down, refuse(Reject::UriTooLong)).await;
    }
    let target = match levee_http::target::normalize(head.target) {
        Ok(t) => t,
        Err(_) => return answer(cx, &asked, &head, down, refuse(Reject::BadTarget)).await,
    };
    let host = match std::mem::replace(&mut head.host, Err(levee_http::host::HostError::Empty)) {
        Ok(h) => h,
        Err(_) => return answer(cx, &asked, &head, down, refuse(Reject::BadHost)).await,
    };
    // 2. The edge's own paths. An ACME HTTP-01 validation is answered
    //    here, before routing, limits and the challenge: attack-mode
    //    defenses never stand between the CA and a renewal.
    //    (For the ACME hosts only: another host's origin may answer its own.)
    if let Some(token) = target.path().strip_prefix(crate::acme::HTTP01_PREFIX) {
        let h = host.name().trim_end_matches('.');
        if cx
            .state
            .acme_hosts
            .iter()
            .any(|a| a.eq_ignore_ascii_case(h))
        {
            let a = match cx.state.live.http01(h, token) {
                Some(k) if matches!(head.method, b"GET" | b"HEAD") => {
                    cx.shared
                        .metrics
                        .acme_http01
                        .fetch_add(1, Ordering::Relaxed);
                    Answer::text(200, k)
                }
                _ => Answer::text(404, "no such ACME challenge\n".to_string()),
            };
            return answer(cx, &asked, &head, down, a).await;
        }
    }
    if target.path() == DRILL_PATH {
        let a = match &cx.state.cfg.drill.token {
            Some(t) => Answer::text(200, format!("{t}\n")),
            None => Answer::text(404, "no drill token configured\n".to_string()),
        };
        return answer(cx, &asked, &head, down, a).await;
    }
    // 3. Route by host; an unknown host never reaches an origin.
    let Some(site) = cx.state.site_for_name(host.name()) else {
        let a = Answer::refusal(421, Reason::UnknownHost, None, true);
        return answer(cx, &asked, &head, down, a).await;
    };
    asked.site = &site.name;
    asked.tally = Some(&site.tally);
    if let Some(sni) = cx.peer.tls.as_ref().and_then(|t| t.sni.as_deref()) {
        if !cx
            .state
            .site_for_host(sni.as_bytes())
            .is_some_and(|s| Arc::ptr_eq(s, site))
        {
            let a = Answer::refusal(421, Reason::MisdirectedSni, None, true);
            return answer(cx, &asked, &head, down, a).await;
        }
    }
    site.requests.fetch_add(1, Ordering::Relaxed);
    let req = Request {
        head,
        target,
        host,
        client,
        https,
        trusted_peer: cx.peer.trusted,
    };
    // 4. The gate.
    let pass = {
        let h = &req.head;
        let names = || levee_detect::features::header_order_label(h.fields.iter().map(|(n, _)| *n));
        let trusted_peer = req.trusted_peer;
        // What the User-Agent claims against the rest of the request (for
        // sampled requests only). Behind a trusted proxy the order of fields
        // is the proxy's, so it is not judged.
        let judge = || {
            if trusted_peer {
                return levee_detect::browser::Judgement::Other;
            }
            let names: Vec<String> = h
                .fields
                .iter()
                .take(64)
                .map(|(n, _)| String::from_utf8_lossy(n).to_ascii_lowercase())
                .collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let seen = levee_detect::browser::Seen {
                names: &refs,
                h2: h.proto.starts_with("h2"),
                h2_settings: h.h2_fingerprint,
            };
            levee_detect::browser::judge(h.field(b"user-agent").unwrap_or(b""), &seen)
        };
        let guarded = site.challenge.mode != levee_config::ChallengeMode::Off
            || site.defense.mode() != levee_detect::Mode::Normal;
        let view = crate::gate::View {
            req: crate::challenge::Req {
                authorization: h.field(b"authorization"),
                marked: guarded && cx.shared.is_marked(client),
                method: h.method,
                target: &req.target,
                accept: h.field(b"accept"),
                cookies: h.lines(b"cookie").collect(),
                user_agent: h.field(b"user-agent").unwrap_or(b""),
                client,
                https,
            },
            header_order: levee_detect::features::header_order_hash(
                h.fields.iter().map(|(n, _)| *n),
            ),
            header_names: &names,
            judge: &judge,
            ja4: cx.peer.tls.as_ref().and_then(|t| t.ja4.as_deref()),
            h2: h.h2_fingerprint,
        };
        match crate::gate::check(cx.shared, cx.state, site, &view) {
            Decision::Pass(p) => p,
            Decision::Answer(a) => {
                drop(view);
                return answer(cx, &asked, &req.head, down, a).await;
            }
        }
    };
    // 5.–6. Cache, forward, respond, record.
    forward::run(cx, &asked, &req, site, pass, down).await
}

/// Whether the connection must close after answering now: the request's
/// body is still unread on it, or keep-alive is off.
fn must_close<D: Downstream>(head: &Head<'_>, down: &D) -> bool {
    let has_body = head.body != crate::upstream::SendFraming::None;
    !head.keep_alive || (has_body && !down.body_progress().1) || down.closing()
}

/// Answer with the edge's own response, and record it.
async fn answer<D: Downstream>(
    cx: &Cx<'_>,
    asked: &Asked<'_>,
    head: &Head<'_>,
    down: &mut D,
    a: Answer,
) -> Flow {
    if let Some(d) = a.delay {
        tokio::time::sleep(d).await;
    }
    let close = a.close || must_close(head, down);
    let cache_control: &[u8] = b"no-store";
    let mut fields: Vec<(&[u8], &[u8])> = Vec::with_capacity(2 + a.headers.len());
    fields.push((b"content-type", a.content_type.as_bytes()));
    fields.push((b"cache-control", cache_control));
    for (n, v) in &a.headers {
        fields.push((n.as_bytes(), v.as_bytes()));
    }
    let body = Bytes::from(a.body);
    let mut rec = Record::new(a.status, a.verdict, a.why);
    rec.count(cx.shared);
    let sent = down
        .whole(a.status, &fields, &body, head.method == b"HEAD", close)
        .await;
    rec.bytes_out = down.sent();
    let flow = finish_send(cx, sent, down, &mut rec, close);
    record::finish(cx.shared, cx.peer, asked, &rec);
    flow
}

/// After a response was sent (or not): a too-slow client is reset and
/// counted; the flow for the connection.
fn finish_send<D: Downstream>(
    cx: &Cx<'_>,
    sent: Result<(), SendFail>,
    down: &mut D,
    rec: &mut Record,
    close: bool,
) -> Flow {
    match sent {
        Ok(()) if !close && !down.closing() => Flow::Continue,
        Ok(()) => Flow::Close,
        Err(SendFail::TooSlow) => {
            down.abort();
            if matches!(rec.why, Why::Defense(_)) {
                // The answer was a defense already; the cut is counted on its own.
                cx.shared.metrics.defend(Reason::SendTooSlow);
            } else {
                rec.why = Why::Defense(Reason::SendTooSlow);
                rec.verdict = crate::Verdict::Block;
            }
            Flow::Close
        }
        Err(SendFail::Gone) => Flow::Close,
    }
}
