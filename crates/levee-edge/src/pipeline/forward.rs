//! The phases after the gate: the micro-cache, the body limit, forwarding to
//! an origin (with stale fallback), and relaying the response at the send
//! rate, with the origin's slot and connection given back as soon as the
//! whole response is in hand (before a slow reader gets it).

use super::cache::Probe;
use super::record::{self, Asked, Record};
use super::{answer, finish_send, must_close, Cx, Downstream, Flow, RespBody};
use crate::answer::{Answer, Why};
use crate::cache::{CacheRequest, Entry};
use crate::gate::Pass;
use crate::metrics::Reason;
use crate::pace::SendFail;
use crate::state::Site;
use crate::upstream::{self, BodyError, Exchange, ProxyError};
use crate::Verdict;
use bytes::Bytes;
use levee_http::fields::connection_tokens;
use levee_http::h1::{is_hop_by_hop, Framing};
use std::sync::Arc;

/// Cache, forward, respond, record.
pub(super) async fn run<D: Downstream>(
    cx: &Cx<'_>,
    asked: &Asked<'_>,
    req: &super::Request<'_>,
    site: &Arc<Site>,
    pass: Pass,
    down: &mut D,
) -> Flow {
    let limits = &cx.state.cfg.limits;
    let head = &req.head;
    let has_body = head.body != upstream::SendFraming::None;
    let head_only = head.method == b"HEAD";
    // Micro-cache (GET and HEAD without a body): fresh copies answer here,
    // concurrent misses wait for one fetch.
    let mut probe = Probe::default();
    let mut forward_target = None;
    // Routes tagged personal, export, login or admin are never cached.
    let private = site.is_private(req.target.path());
    // Answers from personal-data routes feed the egress view.
    let asked = &Asked {
        data: site
            .data_class(req.target.path())
            .map(|c| (&*site.egress, c)),
        ..asked.clone()
    };
    if let (Some(c), false, false) = (&site.cache, has_body, private) {
        let creq = CacheRequest {
            method: head.method,
            host: req.host.name(),
            target: &req.target,
            https: req.https,
            fields: &head.fields,
            clearance_cookie: crate::challenge::COOKIE,
        };
        if let Some((k, stripped)) = c.key(&creq, pass.attack()) {
            forward_target = stripped;
            probe = Probe::run(&site.origins, c, k).await;
        }
    }
    if let Some((e, label)) = probe.answer.take() {
        let rec = Record::new(e.status, Verdict::Allow, cache_note(label));
        return cached(cx, asked, head, down, &e, label, rec).await;
    }
    let max_body = limits.max_body_bytes.0;
    if head.declared_len.is_some_and(|n| n > max_body) {
        let a = Answer::refusal(413, Reason::BodyTooLarge, None, true);
        return answer(cx, asked, head, down, a).await;
    }
    // A bounded number of requests in flight per client, until its answer
    // is written: one address cannot hold thousands of streams (and their
    // buffers) open by reading slowly.
    let _in_flight = match cx.shared.in_flight.try_acquire(req.client) {
        Ok(p) => p,
        Err(c) => {
            let reason = match c {
                levee_limits::CapExceeded::PerPrefix => Reason::InFlightCapPrefix,
                _ => Reason::InFlightCapIp,
            };
            let a = Answer::refusal(429, reason, Some(1), has_body);
            return answer(cx, asked, head, down, a).await;
        }
    };
    let request_id = crate::proxy::request_id();
    let mut up = down.scratch();
    up.clear();
    // Small bodies are read completely before any origin is asked.
    let mut capped = crate::body::Capped::new(down.body(), max_body);
    let prebuffered =
        crate::body::prebuffer(&mut capped, head.body, limits.request_buffer.0 as usize).await;
    let (mut src, framing) = match prebuffered {
        Ok(x) => x,
        Err(e) => return client_body_failed(cx, asked, head, down, e).await,
    };
    super::request::write_upstream_head(
        &mut up,
        req,
        forward_target.as_deref().unwrap_or(req.target.as_str()),
        cx.peer.ip,
        &site.allow_client_headers,
        &request_id,
        framing,
    );
    let result = probe
        .bounded(upstream::forward(
            &site.origins,
            &up,
            framing,
            &mut src,
            head.method,
            &cx.shared.metrics,
            (pass.class, pass.attack()),
        ))
        .await;
    drop(src);
    down.give_back(up);
    let (bytes_in, body_done) = down.body_progress();
    let mut ex = match result {
        Ok(ex) => ex,
        Err(ProxyError::Client(e)) => return client_body_failed(cx, asked, head, down, e).await,
        Err(e) => {
            if matches!(
                e,
                ProxyError::Unavailable | ProxyError::Timeout | ProxyError::BadResponse
            ) {
                site.defense.error();
            }
            if let Some((entry, label)) = probe.fallback() {
                let mut rec = Record::new(entry.status, Verdict::Allow, cache_note(label));
                rec.bytes_in = bytes_in;
                return cached(cx, asked, head, down, &entry, label, rec).await;
            }
            let retry = (e == ProxyError::Busy).then_some(1);
            let a = Answer::refusal(e.status(), e.reason(), retry, !body_done);
            return answer(cx, asked, head, down, a).await;
        }
    };
    let origin_us = ex.started.elapsed().as_micros() as u64;
    let status = ex.head.status;
    if status >= 500 {
        site.defense.error();
    }
    let mut rec = Record::new(status, Verdict::Allow, Why::Plain);
    rec.bytes_in = bytes_in;
    rec.origin_us = Some(origin_us);
    rec.request_id = request_id;
    // A cacheable response is read whole, stored, and answered from the cache.
    if status != 101 {
        match probe.fill(&mut ex, head_only).await {
            None => {}
            Some(None) => {
                let a = Answer::refusal(502, Reason::BadOriginResponse, None, true);
                return answer(cx, asked, head, down, a).await;
            }
            Some(Some(entry)) => {
                ex.finish();
                drop(probe);
                return cached(cx, asked, head, down, &entry, "MISS", rec).await;
            }
        }
    }
    drop(probe);
    // WebSocket: after 101, splice the two connections.
    if status == 101 {
        if !head.websocket {
            let a = Answer::refusal(502, Reason::BadOriginResponse, None, true);
            return answer(cx, asked, head, down, a).await;
        }
        let fields = ex
            .headers()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        // Logged when the tunnel opens; its bytes are not counted.
        return match down.upgrade(ex, fields).await {
            Ok(n) => {
                rec.bytes_out = n;
                record::finish(cx.shared, cx.peer, asked, &rec);
                Flow::Upgraded
            }
            Err(_) => {
                rec.bytes_out = down.sent();
                record::finish(cx.shared, cx.peer, asked, &rec);
                Flow::Close
            }
        };
    }
    // The origin answered before reading the whole body: the rest is unread, so close.
    let close = !body_done || must_close(head, down) || cx.shared.shutting_down();
    relay(cx, asked, down, ex, rec, close).await
}

/// Relay an origin's response: head, then body at the send rate.
async fn relay<D: Downstream>(
    cx: &Cx<'_>,
    asked: &Asked<'_>,
    down: &mut D,
    ex: Exchange,
    mut rec: Record,
    close: bool,
) -> Flow {
    let body = match ex.head.framing {
        Framing::None => RespBody::None,
        Framing::Length(n) => RespBody::Length(n),
        Framing::Chunked | Framing::Close => RespBody::Stream,
    };
    let mut failed: Option<Failed> = None;
    {
        let fields = end_to_end(&ex, body == RespBody::None);
        if let Err(f) = down.head(rec.status, &fields, body, close).await {
            failed = Some(Failed::Send(f));
        }
    }
    let mut slot = Some(ex);
    let mut done = false;
    if let Some(ex) = slot.as_mut() {
        if ex.body.is_done() {
            // No body: the head is all; the connection can go back now.
            if failed.is_none() {
                if let Err(f) = down.data(Bytes::new(), true).await {
                    failed = Some(Failed::Send(f));
                }
            }
            done = true;
        } else if ex.conn.buf.is_empty() && failed.is_none() {
            // No body bytes in hand yet: the head goes out now, not with the first piece.
            if let Err(f) = down.data(Bytes::new(), false).await {
                failed = Some(Failed::Send(f));
            }
        }
    }
    while !done && failed.is_none() {
        let Some(ex) = slot.as_mut() else { break };
        // A stalled origin body does not hold the client for ever.
        let idle = ex.origin.response_timeout;
        let stalled = || tokio::time::Instant::now() + idle;
        let next = match crate::pace::within(stalled, ex.body.next(&mut ex.conn)).await {
            Some(r) => r,
            None => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "origin body stalled",
            )),
        };
        match next {
            Ok(Some(d)) => {
                let last = ex.body.is_done();
                if last {
                    // The whole response is in hand: the origin's slot and
                    // connection are free before the client (perhaps a slow
                    // reader) gets the last piece.
                    ex.response_complete();
                    if let Some(ex) = slot.take() {
                        ex.finish();
                    }
                }
                if let Err(f) = down.data(d, last).await {
                    failed = Some(Failed::Send(f));
                }
                done = last;
            }
            Ok(None) => {
                ex.response_complete();
                if let Some(ex) = slot.take() {
                    ex.finish();
                }
                if let Err(f) = down.data(Bytes::new(), true).await {
                    failed = Some(Failed::Send(f));
                }
                done = true;
            }
            Err(_) => failed = Some(Failed::Origin),
        }
    }
    if let Some(ex) = slot.take() {
        if failed.is_none() {
            ex.finish();
        }
    }
    rec.bytes_out = down.sent();
    let flow = match failed {
        None => finish_send(cx, Ok(()), down, &mut rec, close),
        Some(Failed::Send(f)) => finish_send(cx, Err(f), down, &mut rec, close),
        Some(Failed::Origin) => {
            // Not a verdict on the client: the origin's body broke off.
            rec.why = Why::Defense(Reason::BadOriginResponse);
            down.abort();
            Flow::Close
        }
    };
    record::finish(cx.shared, cx.peer, asked, &rec);
    flow
}

enum Failed {
    Send(SendFail),
    Origin,
}

/// The origin's response fields that go on to the client: no hop-by-hop
/// field, nothing its `Connection` names, no framing field (the downstream
/// writes its own) except a bodiless response's `Content-Length`.
fn end_to_end(ex: &Exchange, bodiless: bool) -> Vec<(&[u8], &[u8])> {
    let tokens = connection_tokens(
        ex.headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
            .map(|(_, v)| v),
    );
    ex.headers()
        .filter(|(n, _)| {
            let keep_len = bodiless && n.eq_ignore_ascii_case(b"content-length");
            (keep_len || !is_hop_by_hop(n)) && !tokens.iter().any(|t| t.eq_ignore_ascii_case(n))
        })
        .collect()
}

fn cache_note(label: &'static str) -> Why {
    match label {
        "HIT" => Why::Note("cache_hit"),
        "STALE" => Why::Note("cache_stale"),
        _ => Why::Plain,
    }
}

/// Answer from the micro-cache (the body is shared, never copied).
async fn cached<D: Downstream>(
    cx: &Cx<'_>,
    asked: &Asked<'_>,
    head: &super::Head<'_>,
    down: &mut D,
    e: &Entry,
    label: &'static str,
    mut rec: Record,
) -> Flow {
    let close = must_close(head, down);
    let extra = crate::cache::extra_headers(e, label);
    let fields: Vec<(&[u8], &[u8])> = e
        .headers
        .iter()
        .map(|(n, v)| (&n[..], &v[..]))
        .filter(|(n, _)| !is_hop_by_hop(n))
        .chain(extra.iter().map(|(n, v)| (*n, &v[..])))
        .collect();
    let sent = down
        .whole(e.status, &fields, &e.body, head.method == b"HEAD", close)
        .await;
    rec.status = e.status;
    rec.bytes_out = down.sent();
    let flow = finish_send(cx, sent, down, &mut rec, close);
    record::finish(cx.shared, cx.peer, asked, &rec);
    flow
}

/// The client's body failed while being read: too slow, too large, malformed
/// or gone. A client that went away gets no answer.
async fn client_body_failed<D: Downstream>(
    cx: &Cx<'_>,
    asked: &Asked<'_>,
    head: &super::Head<'_>,
    down: &mut D,
    e: BodyError,
) -> Flow {
    let pe = ProxyError::Client(e);
    if e == BodyError::Closed {
        let mut rec = Record::new(pe.status(), Verdict::Block, Why::Defense(pe.reason()));
        rec.bytes_in = down.body_progress().0;
        record::finish(cx.shared, cx.peer, asked, &rec);
        return Flow::Close;
    }
    let a = Answer::refusal(pe.status(), pe.reason(), None, true);
    answer(cx, asked, head, down, a).await
}
