//! What the edge answers itself instead of an origin, and why: the one
//! vocabulary the gate, the challenge and the pipeline share, so that every
//! defense is counted and logged once, by the pipeline's record.

use crate::metrics::Reason;
use crate::Verdict;

/// Why a request ended as it did, for `levee_defense_total` and the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// An ordinary request.
    Plain,
    /// A defense acted: counted in `levee_defense_total{reason}` and logged.
    Defense(Reason),
    /// Not a defense, but worth a word in the log (`cache_hit`, `challenge_solved`).
    Note(&'static str),
}

impl Why {
    /// The access log's `reason`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Why::Plain => "",
            Why::Defense(r) => r.label(),
            Why::Note(n) => n,
        }
    }
}

/// A response the edge writes itself.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    pub body: String,
    pub verdict: Verdict,
    pub why: Why,
    /// Close the connection after answering.
    pub close: bool,
    /// Hold the answer this long first (a tarpit for rule-matched bots).
    pub delay: Option<std::time::Duration>,
}

impl Answer {
    /// A short plain-text refusal naming its reason: 503 sheds, the rest block.
    pub(crate) fn refusal(
        status: u16,
        reason: Reason,
        retry_after: Option<u64>,
        close: bool,
    ) -> Answer {
        Answer {
            status,
            headers: retry_after
                .map(|r| vec![("retry-after", r.to_string())])
                .unwrap_or_default(),
            content_type: "text/plain; charset=utf-8",
            body: crate::proxy::error_text(status, reason.label()),
            verdict: if status == 503 {
                Verdict::Shed
            } else {
                Verdict::Block
            },
            why: Why::Defense(reason),
            close,
            delay: None,
        }
    }

    /// A plain-text answer that is not a defense (the drill opt-in).
    pub(crate) fn text(status: u16, body: String) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            content_type: "text/plain; charset=utf-8",
            body,
            verdict: Verdict::Allow,
            why: Why::Plain,
            close: false,
            delay: None,
        }
    }
}
