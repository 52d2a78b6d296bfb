//! Counters for `/metrics`, in fixed memory: one atomic per (metric, label) that
//! the code can produce, indexed by enums, rendered as Prometheus text.

use levee_http::h1::Reject;
use levee_http::h2meter::Flood;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why the edge refused, cut or shed something. Every defense has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    ConnCapGlobal,
    ConnCapIp,
    ConnCapPrefix,
    AcceptFdExhausted,
    AcceptError,
    TlsHandshakeTimeout,
    TlsHandshakeFailed,
    ProxyHeaderTimeout,
    ProxyHeaderBad,
    HeaderTimeout,
    IdleTimeout,
    BodyTooSlow,
    SendTooSlow,
    BodyTooLarge,
    BadChunkedBody,
    UnknownHost,
    MisdirectedSni,
    MaxRequestsPerConnection,
    OriginBusy,
    OriginUnavailable,
    OriginTimeout,
    BadOriginResponse,
    H2RefusedStream,
    H2ProtocolError,
    H2Goaway,
    RateLimitIp,
    RateLimitPrefix,
    RateLimitTotal,
    Blocked,
    RuleBlock,
    RuleRateLimit,
    /// The challenge page was served instead of the request.
    Challenge,
    /// A non-GET request while challenged (503, retry later).
    ChallengeNonGet,
    /// A GET that does not accept HTML while challenged (429, retry later).
    ChallengeNonHtml,
    /// A challenge solution was refused (details in `levee_challenges_failed_total`).
    ChallengeFailed,
    /// A client over `max_requests_in_flight_per_ip`.
    InFlightCapIp,
    /// A prefix over `max_requests_in_flight_per_prefix`.
    InFlightCapPrefix,
    Http(Reject),
    H2(Flood),
}

const EDGE_REASONS: [Reason; 37] = [
    Reason::ConnCapGlobal,
    Reason::ConnCapIp,
    Reason::ConnCapPrefix,
    Reason::AcceptFdExhausted,
    Reason::AcceptError,
    Reason::TlsHandshakeTimeout,
    Reason::TlsHandshakeFailed,
    Reason::ProxyHeaderTimeout,
    Reason::ProxyHeaderBad,
    Reason::HeaderTimeout,
    Reason::IdleTimeout,
    Reason::BodyTooSlow,
    Reason::SendTooSlow,
    Reason::BodyTooLarge,
    Reason::BadChunkedBody,
    Reason::UnknownHost,
    Reason::MisdirectedSni,
    Reason::MaxRequestsPerConnection,
    Reason::OriginBusy,
    Reason::OriginUnavailable,
    Reason::OriginTimeout,
    Reason::BadOriginResponse,
    Reason::H2RefusedStream,
    Reason::H2ProtocolError,
    Reason::H2Goaway,
    Reason::RateLimitIp,
    Reason::RateLimitPrefix,
    Reason::RateLimitTotal,
    Reason::Blocked,
    Reason::RuleBlock,
    Reason::RuleRateLimit,
    Reason::Challenge,
    Reason::ChallengeNonGet,
    Reason::ChallengeNonHtml,
    Reason::ChallengeFailed,
    Reason::InFlightCapIp,
    Reason::InFlightCapPrefix,
];

const N_REASONS: usize = EDGE_REASONS.len() + Reject::ALL.len() + Flood::ALL.len();

impl Reason {
    fn index(self) -> usize {
        match self {
            Reason::Http(r) => EDGE_REASONS.len() + r as usize,
            Reason::H2(f) => EDGE_REASONS.len() + Reject::ALL.len() + f as usize,
            other => EDGE_REASONS.iter().position(|&r| r == other).unwrap_or(0),
        }
    }

    /// The metric label and access-log reason.
    pub fn label(self) -> &'static str {
        match self {
            Reason::ConnCapGlobal => "conn_cap_global",
            Reason::ConnCapIp => "conn_cap_ip",
            Reason::ConnCapPrefix => "conn_cap_prefix",
            Reason::AcceptFdExhausted => "accept_fd_exhausted",
            Reason::AcceptError => "accept_error",
            Reason::TlsHandshakeTimeout => "tls_handshake_timeout",
            Reason::TlsHandshakeFailed => "tls_handshake_failed",
            Reason::ProxyHeaderTimeout => "proxy_header_timeout",
            Reason::ProxyHeaderBad => "proxy_header_bad",
            Reason::HeaderTimeout => "header_timeout",
            Reason::IdleTimeout => "idle_timeout",
            Reason::BodyTooSlow => "body_too_slow",
            Reason::SendTooSlow => "send_too_slow",
            Reason::BodyTooLarge => "body_too_large",
            Reason::BadChunkedBody => "bad_chunked_body",
            Reason::UnknownHost => "unknown_host",
            Reason::MisdirectedSni => "misdirected_sni",
            Reason::MaxRequestsPerConnection => "max_requests_per_connection",
            Reason::OriginBusy => "origin_busy",
            Reason::OriginUnavailable => "origin_unavailable",
            Reason::OriginTimeout => "origin_timeout",
            Reason::BadOriginResponse => "bad_origin_response",
            Reason::H2RefusedStream => "h2_refused_stream",
            Reason::H2ProtocolError => "h2_protocol_error",
            Reason::H2Goaway => "h2_goaway_enhance_your_calm",
            Reason::RateLimitIp => "rate_limit_ip",
            Reason::RateLimitPrefix => "rate_limit_prefix",
            Reason::RateLimitTotal => "rate_limit_total",
            Reason::Blocked => "blocked",
            Reason::RuleBlock => "rule_block",
            Reason::RuleRateLimit => "rule_rate_limit",
            Reason::Challenge => "challenge",
            Reason::ChallengeNonGet => "challenge_non_get",
            Reason::ChallengeNonHtml => "challenge_non_html",
            Reason::ChallengeFailed => "challenge_failed",
            Reason::InFlightCapIp => "in_flight_cap_ip",
            Reason::InFlightCapPrefix => "in_flight_cap_prefix",
            Reason::Http(r) => r.label(),
            Reason::H2(f) => f.label(),
        }
    }

    fn all() -> impl Iterator<Item = Reason> {
        EDGE_REASONS
            .into_iter()
            .chain(Reject::ALL.into_iter().map(Reason::Http))
            .chain(Flood::ALL.into_iter().map(Reason::H2))
    }
}

/// Process-wide counters.
#[derive(Debug)]
pub(crate) struct Metrics {
    defenses: Vec<AtomicU64>,
    pub connections_accepted: AtomicU64,
    pub tls_handshakes: AtomicU64,
    /// ACME validations answered (HTTP-01 requests, TLS-ALPN-01 handshakes).
    pub acme_http01: AtomicU64,
    pub acme_alpn: AtomicU64,
    pub requests_h1: AtomicU64,
    pub requests_h2: AtomicU64,
    /// WebSocket tunnels open now.
    pub websockets_open: AtomicU64,
    /// Responses by status class 1xx..5xx (index 0..5).
    pub status_class: [AtomicU64; 5],
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub origin_requests: AtomicU64,
    pub origin_connects: AtomicU64,
    pub origin_retries: AtomicU64,
    pub access_log_written: AtomicU64,
    pub access_log_dropped: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    pub clients_marked: AtomicU64,
    pub challenges_issued: AtomicU64,
    challenges_solved: AtomicU64,
    challenges_failed: [AtomicU64; 7],
    /// Solve time histogram (issue to verification), seconds: cumulative buckets.
    solve_buckets: [AtomicU64; SOLVE_BUCKETS.len()],
    solve_sum_s: AtomicU64,
}

const SOLVE_BUCKETS: [u64; 7] = [1, 2, 5, 10, 30, 60, 300];

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            defenses: (0..N_REASONS).map(|_| AtomicU64::new(0)).collect(),
            connections_accepted: AtomicU64::new(0),
            tls_handshakes: AtomicU64::new(0),
            acme_http01: AtomicU64::new(0),
            acme_alpn: AtomicU64::new(0),
            requests_h1: AtomicU64::new(0),
            requests_h2: AtomicU64::new(0),
            websockets_open: AtomicU64::new(0),
            status_class: Default::default(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            origin_requests: AtomicU64::new(0),
            origin_connects: AtomicU64::new(0),
            origin_retries: AtomicU64::new(0),
            access_log_written: AtomicU64::new(0),
            access_log_dropped: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            clients_marked: AtomicU64::new(0),
            challenges_issued: AtomicU64::new(0),
            challenges_solved: AtomicU64::new(0),
            challenges_failed: Default::default(),
            solve_buckets: Default::default(),
            solve_sum_s: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Count one use of a defense.
    pub(crate) fn defend(&self, r: Reason) {
        if let Some(c) = self.defenses.get(r.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How often a defense fired.
    pub(crate) fn defense_count(&self, r: Reason) -> u64 {
        self.defenses
            .get(r.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// A challenge solved `secs` after it was issued.
    pub(crate) fn challenge_solved(&self, secs: u64) {
        self.challenges_solved.fetch_add(1, Ordering::Relaxed);
        self.solve_sum_s.fetch_add(secs, Ordering::Relaxed);
        for (i, b) in SOLVE_BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.solve_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn challenge_failed(&self, e: levee_challenge::ChallengeError) {
        if let Some(c) = self.challenges_failed.get(e as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn status(&self, status: u16) {
        let i = usize::from(status / 100).clamp(1, 5) - 1;
        self.status_class[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition. `extra` lines (gauges) are appended.
    pub(crate) fn render(&self, extra: &[(&str, &str, f64)]) -> String {
        let mut s = String::with_capacity(8192);
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        s.push_str("# HELP levee_defense_total Connections or requests refused, cut or shed, by reason.\n# TYPE levee_defense_total counter\n");
        for r in Reason::all() {
            let _ = writeln!(
                s,
                "levee_defense_total{{reason=\"{}\"}} {}",
                r.label(),
                self.defense_count(r)
            );
        }
        let counters: [(&str, &str, u64); 16] = [
            (
                "levee_acme_http01_answered_total",
                "ACME HTTP-01 validations answered.",
                g(&self.acme_http01),
            ),
            (
                "levee_acme_tls_alpn01_answered_total",
                "ACME TLS-ALPN-01 validation handshakes answered.",
                g(&self.acme_alpn),
            ),
            (
                "levee_connections_accepted_total",
                "Client connections admitted.",
                g(&self.connections_accepted),
            ),
            (
                "levee_tls_handshakes_total",
                "TLS handshakes completed.",
                g(&self.tls_handshakes),
            ),
            (
                "levee_origin_requests_total",
                "Requests sent to origins.",
                g(&self.origin_requests),
            ),
            (
                "levee_origin_connects_total",
                "New connections opened to origins.",
                g(&self.origin_connects),
            ),
            (
                "levee_origin_retries_total",
                "Requests retried on a fresh origin connection.",
                g(&self.origin_retries),
            ),
            (
                "levee_bytes_received_total",
                "Request body bytes received from clients.",
                g(&self.bytes_in),
            ),
            (
                "levee_bytes_sent_total",
                "Response bytes sent to clients.",
                g(&self.bytes_out),
            ),
            (
                "levee_access_log_lines_total",
                "Access log lines written.",
                g(&self.access_log_written),
            ),
            (
                "levee_access_log_dropped_total",
                "Access log lines dropped because the buffer was full.",
                g(&self.access_log_dropped),
            ),
            (
                "levee_reloads_total",
                "Successful configuration reloads.",
                g(&self.reloads),
            ),
            (
                "levee_reload_failures_total",
                "Rejected configuration reloads.",
                g(&self.reload_failures),
            ),
            (
                "levee_clients_marked_total",
                "Clients marked abusive by a protocol defense.",
                g(&self.clients_marked),
            ),
            (
                "levee_requests_http1_total",
                "Requests received over HTTP/1.x.",
                g(&self.requests_h1),
            ),
            (
                "levee_requests_http2_total",
                "Requests received over HTTP/2.",
                g(&self.requests_h2),
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        let _ = writeln!(
            s,
            "# HELP levee_websockets_open WebSocket tunnels open now.\n# TYPE levee_websockets_open gauge\nlevee_websockets_open {}",
            g(&self.websockets_open)
        );
        s.push_str("# HELP levee_responses_total Responses by status class.\n# TYPE levee_responses_total counter\n");
        for (i, c) in self.status_class.iter().enumerate() {
            let _ = writeln!(s, "levee_responses_total{{class=\"{}xx\"}} {}", i + 1, g(c));
        }
        let issued = g(&self.challenges_issued);
        let solved = g(&self.challenges_solved);
        let _ = writeln!(s, "# HELP levee_challenges_issued_total Challenge pages served.\n# TYPE levee_challenges_issued_total counter\nlevee_challenges_issued_total {issued}");
        let _ = writeln!(s, "# HELP levee_challenges_solved_total Challenges solved (clearance given).\n# TYPE levee_challenges_solved_total counter\nlevee_challenges_solved_total {solved}");
        s.push_str("# HELP levee_challenges_failed_total Challenge solutions refused, by reason.\n# TYPE levee_challenges_failed_total counter\n");
        for e in levee_challenge::ChallengeError::ALL {
            let _ = writeln!(
                s,
                "levee_challenges_failed_total{{reason=\"{}\"}} {}",
                e.label(),
                g(&self.challenges_failed[e as usize])
            );
        }
        s.push_str("# HELP levee_challenge_solve_seconds Time from challenge to solution.\n# TYPE levee_challenge_solve_seconds histogram\n");
        for (i, b) in SOLVE_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "levee_challenge_solve_seconds_bucket{{le=\"{b}\"}} {}",
                g(&self.solve_buckets[i])
            );
        }
        let _ = writeln!(s, "levee_challenge_solve_seconds_bucket{{le=\"+Inf\"}} {solved}\nlevee_challenge_solve_seconds_sum {}\nlevee_challenge_solve_seconds_count {solved}", g(&self.solve_sum_s));
        for (name, help, v) in extra {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_distinct_slot_and_label() {
        let all: Vec<Reason> = Reason::all().collect();
        assert_eq!(all.len(), N_REASONS);
        let mut idx: Vec<usize> = all.iter().map(|r| r.index()).collect();
        idx.sort_unstable();
        idx.dedup();
        assert_eq!(idx.len(), N_REASONS);
        let mut labels: Vec<&str> = all.iter().map(|r| r.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), N_REASONS);
    }

    #[test]
    fn render_counts() {
        let m = Metrics::default();
        m.defend(Reason::Http(Reject::BareLf));
        m.defend(Reason::ConnCapIp);
        m.status(503);
        let t = m.render(&[("levee_open_connections", "Open.", 3.0)]);
        assert!(t.contains("levee_defense_total{reason=\"bare_lf\"} 1"));
        assert!(t.contains("levee_defense_total{reason=\"conn_cap_ip\"} 1"));
        assert!(t.contains("levee_responses_total{class=\"5xx\"} 1"));
        assert!(t.contains("levee_open_connections 3"));
    }
}
