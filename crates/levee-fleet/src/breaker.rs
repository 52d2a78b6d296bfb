//! The circuit breaker in front of the store: after `failures_to_open`
//! failures in a row it opens for `open_for`, during which nothing is
//! called; then one call is tried (half-open), and its outcome closes or
//! reopens it. Pure: time is a parameter.

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Breaker {
    failures_to_open: u32,
    open_for_ms: u64,
    fails: u32,
    open_until: Option<u64>,
}

impl Breaker {
    pub(crate) fn new(failures_to_open: u32, open_for_ms: u64) -> Breaker {
        Breaker {
            failures_to_open: failures_to_open.max(1),
            open_for_ms,
            fails: 0,
            open_until: None,
        }
    }

    pub(crate) fn state(&self, now_ms: u64) -> State {
        match self.open_until {
            None => State::Closed,
            Some(t) if now_ms < t => State::Open,
            Some(_) => State::HalfOpen,
        }
    }

    /// May a call be made now?
    pub(crate) fn allow(&self, now_ms: u64) -> bool {
        self.state(now_ms) != State::Open
    }

    pub(crate) fn success(&mut self) {
        self.fails = 0;
        self.open_until = None;
    }

    pub(crate) fn failure(&mut self, now_ms: u64) {
        self.fails = self.fails.saturating_add(1);
        if self.fails >= self.failures_to_open || self.open_until.is_some() {
            self.open_until = Some(now_ms + self.open_for_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_and_half_opens_after_the_pause() {
        let mut b = Breaker::new(3, 1000);
        b.failure(0);
        b.failure(10);
        assert_eq!(b.state(20), State::Closed);
        b.failure(20);
        assert_eq!(b.state(21), State::Open);
        assert!(!b.allow(500));
        assert_eq!(b.state(1020), State::HalfOpen);
        // The trial call fails: open again at once, for another pause.
        b.failure(1020);
        assert_eq!(b.state(1500), State::Open);
        assert!(b.allow(2020));
        b.success();
        assert_eq!(b.state(2021), State::Closed);
    }
}
