//! Moving bytes at a minimum rate: the deadline every body read and every
//! response write is held to (slow POST, slow read), whoever wrote the
//! response (origin, cache or the edge itself).

use std::future::Future;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout_at, Instant as TInstant};

/// Run `f` to its end, or give up (`None`) at the deadline `at()` names.
/// `f` is polled once first, and the timer (and the clock read) is made only
/// if it is not ready then: most socket writes and reads of bytes already in
/// hand are, and a timer per operation is a measurable part of a request.
pub(crate) async fn within<F: Future>(at: impl FnOnce() -> TInstant, f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let first = std::future::poll_fn(|cx| {
        Poll::Ready(match f.as_mut().poll(cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        })
    })
    .await;
    match first {
        Some(v) => Some(v),
        None => timeout_at(at(), f).await.ok(),
    }
}

/// A deadline for moving bytes at a minimum rate. A transfer must keep its
/// average since the start at or above `rate` after `grace`, and no single
/// piece may stall longer than `grace` plus its own length at `rate`: credit
/// earned by a fast start cannot be spent on a long stall.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateDeadline {
    start: TInstant,
    grace: Duration,
    rate: u64,
}

impl RateDeadline {
    pub(crate) fn new(grace: Duration, rate: u64) -> Self {
        Self::since(TInstant::now(), grace, rate)
    }
    /// A deadline whose transfer began at `start`.
    pub(crate) fn since(start: TInstant, grace: Duration, rate: u64) -> Self {
        RateDeadline {
            start,
            grace,
            rate: rate.max(1),
        }
    }
    /// When a piece of `piece` bytes, after `done` bytes already moved, must be done by.
    pub(crate) fn at(&self, done: u64, piece: u64) -> TInstant {
        let per = |n: u64| Duration::from_millis(n.saturating_mul(1000) / self.rate);
        let average = self.start + self.grace + per(done.saturating_add(piece));
        let stall = TInstant::now() + self.grace + per(piece);
        average.min(stall)
    }
}

/// How sending to a client ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendFail {
    /// The client read slower than the minimum send rate (slow read).
    TooSlow,
    /// The client went away (or reset the stream).
    Gone,
}

/// Write all of `data` before the rate deadline, counting into `sent`.
pub(crate) async fn write_paced<S: AsyncWrite + Unpin>(
    io: &mut S,
    data: &[u8],
    sent: &mut u64,
    pace: &RateDeadline,
) -> Result<(), SendFail> {
    let mut off = 0;
    while off < data.len() {
        // Each piece must land by the deadline for the bytes sent so far plus this piece.
        let end = (off + 64 * 1024).min(data.len());
        let done = *sent;
        let piece = (end - off) as u64;
        match within(|| pace.at(done, piece), io.write_all(&data[off..end])).await {
            None => return Err(SendFail::TooSlow),
            Some(Err(_)) => return Err(SendFail::Gone),
            Some(Ok(())) => {}
        }
        *sent += (end - off) as u64;
        off = end;
    }
    Ok(())
}
