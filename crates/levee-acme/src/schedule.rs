//! When to renew and when to try again: pure arithmetic on Unix seconds.
//!
//! - A certificate is renewed at two-thirds of its lifetime (Let's
//!   Encrypt's advice: 60 days into 90), unless the CA offers ACME Renewal
//!   Information (RFC 9773): then at a random point of the window it
//!   suggests (at once if that point has passed: a CA that revokes early
//!   says so there), but never later than five-sixths of the lifetime, so
//!   that a window past expiry cannot let the certificate lapse.
//! - A failure waits `retry`, doubling on each further failure up to
//!   `retry_max`; the certificate held meanwhile keeps serving.

use std::time::Duration;

/// A held certificate's validity, Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
}

impl Validity {
    /// Two-thirds of the way from `not_before` to `not_after`.
    pub fn two_thirds(&self) -> i64 {
        let life = (self.not_after - self.not_before).max(0);
        self.not_before + life * 2 / 3
    }
}

impl Validity {
    /// Five-sixths of the way: the latest a CA's window may put renewal.
    pub fn five_sixths(&self) -> i64 {
        let life = (self.not_after - self.not_before).max(0);
        self.not_before + life * 5 / 6
    }
}

/// When to renew: a point in the CA's window (`start..=end`, `pick` in
/// 0..1 chooses where) capped at five-sixths of the lifetime; without a
/// window, two-thirds.
pub fn renew_at(v: Validity, ari: Option<(i64, i64)>, pick: f64) -> i64 {
    match ari {
        Some((start, end)) if end >= start => {
            let span = (end - start) as f64;
            let at = start + (span * pick.clamp(0.0, 1.0)) as i64;
            at.min(v.five_sixths())
        }
        _ => v.two_thirds(),
    }
}

/// The wait after `failures` consecutive failures (1 = the first).
pub fn backoff(failures: u32, retry: Duration, retry_max: Duration) -> Duration {
    let shift = failures.saturating_sub(1).min(20);
    retry
        .checked_mul(1u32 << shift)
        .unwrap_or(retry_max)
        .min(retry_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn renews_at_two_thirds_unless_the_ca_says_sooner() {
        let v = Validity {
            not_before: 0,
            not_after: 90 * DAY,
        };
        assert_eq!(renew_at(v, None, 0.5), 60 * DAY);
        // The CA's window is followed: later than two-thirds...
        assert_eq!(renew_at(v, Some((62 * DAY, 64 * DAY)), 0.5), 63 * DAY);
        // ...but not past five-sixths (75 days of 90),
        assert_eq!(renew_at(v, Some((80 * DAY, 100 * DAY)), 0.5), 75 * DAY);
        // and earlier (an early revocation) brings it forward.
        assert_eq!(renew_at(v, Some((10 * DAY, 12 * DAY)), 0.5), 11 * DAY);
        assert_eq!(renew_at(v, Some((10 * DAY, 12 * DAY)), 7.0), 12 * DAY);
        // A malformed window (end before start) is ignored.
        assert_eq!(renew_at(v, Some((12 * DAY, 10 * DAY)), 0.5), 60 * DAY);
        // A 60-second test certificate renews after 40 s.
        let short = Validity {
            not_before: 1000,
            not_after: 1060,
        };
        assert_eq!(renew_at(short, None, 0.0), 1040);
    }

    #[test]
    fn backoff_doubles_to_the_ceiling_without_overflow() {
        let (r, m) = (Duration::from_secs(60), Duration::from_secs(3600));
        assert_eq!(backoff(1, r, m), Duration::from_secs(60));
        assert_eq!(backoff(2, r, m), Duration::from_secs(120));
        assert_eq!(backoff(4, r, m), Duration::from_secs(480));
        assert_eq!(backoff(7, r, m), m);
        assert_eq!(backoff(u32::MAX, r, m), m);
        assert_eq!(backoff(0, r, m), r);
    }
}
