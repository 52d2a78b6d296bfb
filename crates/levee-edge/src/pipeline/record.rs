//! The one access-log record of a request, and its metrics: written in one
//! place for both protocols, so the same event reads the same over HTTP/1.1
//! and HTTP/2. A defense named in the record is counted here, once.

use crate::accesslog::LogLine;
use crate::answer::Why;
use crate::clock::unix_ms;
use crate::conn::Peer;
use crate::{Shared, Verdict};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// How a request ended.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub status: u16,
    pub verdict: Verdict,
    pub why: Why,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub origin_us: Option<u64>,
    pub request_id: String,
    /// The defense was counted already (before the answer went out).
    counted: bool,
}

impl Record {
    pub(crate) fn new(status: u16, verdict: Verdict, why: Why) -> Record {
        Record {
            status,
            verdict,
            why,
            bytes_in: 0,
            bytes_out: 0,
            origin_us: None,
            request_id: String::new(),
            counted: false,
        }
    }

    /// Count the record's defense now, before the client can see the answer
    /// (a client that reads a refusal then asks `/metrics` finds it counted).
    pub(crate) fn count(&mut self, shared: &Shared) {
        if let (Why::Defense(r), false) = (self.why, self.counted) {
            shared.metrics.defend(r);
            self.counted = true;
        }
    }
}

/// Who asked what: the parts of the log line known before the outcome.
#[derive(Clone)]
pub(crate) struct Asked<'a> {
    pub client: IpAddr,
    pub site: &'a str,
    pub method: &'a str,
    /// The target as sent.
    pub path: &'a str,
    pub proto: &'static str,
    /// The client's HTTP/2 fingerprint, if HTTP/2.
    pub h2fp: Option<&'a str>,
    pub started: Instant,
    /// The route carries personal data: its egress table and class.
    pub data: Option<(&'a crate::egress::SiteEgress, crate::egress::Class)>,
    /// The site's tally for incident records, once routed.
    pub tally: Option<&'a crate::tally::Tally>,
}

/// Count and log a finished request.
pub(crate) fn finish(shared: &Shared, peer: &Peer, asked: &Asked<'_>, rec: &Record) {
    let m = &shared.metrics;
    if let (Why::Defense(r), false) = (rec.why, rec.counted) {
        m.defend(r);
    }
    m.status(rec.status);
    m.bytes_in.fetch_add(rec.bytes_in, Ordering::Relaxed);
    m.bytes_out.fetch_add(rec.bytes_out, Ordering::Relaxed);
    if let Some(t) = asked.tally {
        t.record(
            rec.verdict,
            rec.why,
            rec.status,
            rec.origin_us,
            asked.client,
        );
    }
    if let Some((e, class)) = asked.data {
        if let Some(o) = e.account(unix_ms(), class, asked.client, rec.bytes_out, rec.status) {
            shared.events.push(
                "egress_outlier",
                asked.site,
                serde_json::json!({
                    "client": shared.log.client_name(o.who.client),
                    "class": class.label(),
                    "bytes": o.who.bytes,
                    "records": o.who.records,
                    "share_bytes": o.who.share_bytes,
                    "share_records": o.who.share_records,
                    "window_bytes": o.total_bytes,
                    "window_records": o.total_records,
                    "window_s": e.window_s(),
                }),
            );
        }
    }
    if !shared.log.enabled() {
        return;
    }
    shared.log.log(&LogLine {
        ts_ms: unix_ms(),
        client: asked.client,
        site: asked.site,
        method: asked.method,
        path: asked.path,
        status: rec.status,
        bytes_in: rec.bytes_in,
        bytes_out: rec.bytes_out,
        duration_us: asked.started.elapsed().as_micros() as u64,
        origin_us: rec.origin_us,
        verdict: rec.verdict,
        reason: rec.why.label(),
        tls: peer.tls.as_ref().map(|t| t.version),
        ja4: peer.tls.as_ref().and_then(|t| t.ja4.as_deref()),
        h2fp: asked.h2fp,
        proto: asked.proto,
        request_id: &rec.request_id,
    });
}
