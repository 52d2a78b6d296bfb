//! An adaptive concurrency limit for one origin, from measured latency
//! (a gradient method in the manner of Netflix's `concurrency-limits` and
//! TCP Vegas): while latency stays within twice its healthy average (the
//! origin is not queueing), the limit grows; beyond that, the limit shrinks in
//! proportion. The healthy average is a slow mean of tick means (not the
//! minimum: a site's mix of fast and slow pages moves the mean from tick to
//! tick). It never leaves `[min, max]`, and `max` is the origin's
//! configured capacity, so the origin never sees more than that.
//!
//! Time is a parameter: the edge calls `update` once per tick with the
//! tick's latency figures.

/// The limit and what it is derived from.
#[derive(Debug, Clone)]
pub struct AdaptiveLimit {
    min: f64,
    max: f64,
    limit: f64,
    /// Healthy latency: a slow average of tick means, updated only while the
    /// origin is not queueing (so that an overload does not become normal).
    healthy_us: f64,
    /// How much queueing latency is tolerated before shrinking (ratio).
    tolerance: f64,
}

impl AdaptiveLimit {
    /// Starts at `max` (no latency evidence yet).
    pub fn new(min: u32, max: u32) -> Self {
        let max = f64::from(max.max(1));
        let min = f64::from(min.max(1)).min(max);
        AdaptiveLimit {
            min,
            max,
            limit: max,
            healthy_us: 0.0,
            tolerance: 2.0,
        }
    }

    /// The current limit (whole requests, at least `min`).
    pub fn limit(&self) -> u32 {
        self.limit.round().clamp(self.min, self.max) as u32
    }

    /// Change the bounds (configuration reload), keeping what was learned.
    pub fn set_bounds(&mut self, min: u32, max: u32) {
        self.max = f64::from(max.max(1));
        self.min = f64::from(min.max(1)).min(self.max);
        self.limit = self.limit.clamp(self.min, self.max);
    }

    /// One tick: `mean_us` the tick's mean origin latency over `samples`
    /// responses, `peak_inflight` the most requests in flight during it.
    pub fn update(&mut self, mean_us: f64, samples: u64, peak_inflight: u32) {
        if samples == 0 || !mean_us.is_finite() || mean_us <= 0.0 {
            return;
        }
        if self.healthy_us == 0.0 {
            self.healthy_us = mean_us;
        }
        let gradient = (self.tolerance * self.healthy_us / mean_us).clamp(0.5, 1.0);
        if gradient >= 1.0 {
            self.healthy_us += 0.02 * (mean_us - self.healthy_us);
        }
        let used = f64::from(peak_inflight);
        let headroom = self.limit.sqrt();
        let mut next = self.limit * gradient + headroom;
        // Do not grow a limit that is not being used (it would prove nothing).
        if used < self.limit * 0.5 && next > self.limit {
            next = self.limit;
        }
        self.limit = (0.8 * self.limit + 0.2 * next).clamp(self.min, self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinks_when_latency_rises_and_recovers() {
        let mut l = AdaptiveLimit::new(4, 100);
        assert_eq!(l.limit(), 100);
        // Healthy: 10 ms at full use.
        for _ in 0..10 {
            l.update(10_000.0, 50, 100);
        }
        assert_eq!(l.limit(), 100);
        // Overloaded: latency ×10.
        for _ in 0..30 {
            l.update(100_000.0, 50, l.limit());
        }
        assert!(l.limit() < 30, "{}", l.limit());
        assert!(l.limit() >= 4);
        // Latency back to normal: the limit grows again, never past max.
        for _ in 0..200 {
            l.update(10_000.0, 50, l.limit());
        }
        assert_eq!(l.limit(), 100);
    }

    #[test]
    fn bounds_hold_and_no_samples_change_nothing() {
        let l = AdaptiveLimit::new(0, 0);
        assert_eq!(l.limit(), 1);
        let mut l2 = AdaptiveLimit::new(8, 16);
        l2.update(f64::NAN, 10, 16);
        l2.update(5.0, 0, 16);
        assert_eq!(l2.limit(), 16);
        for _ in 0..100 {
            l2.update(1e9, 10, 16);
            l2.update(1.0, 10, 16);
        }
        assert!((8..=16).contains(&l2.limit()));
        l2.set_bounds(2, 4);
        assert!(l2.limit() <= 4);
    }

    #[test]
    fn tolerates_moderate_latency_noise() {
        let mut l = AdaptiveLimit::new(4, 64);
        for i in 0..100 {
            let lat = if i % 2 == 0 { 10_000.0 } else { 15_000.0 };
            l.update(lat, 20, 64);
        }
        assert_eq!(l.limit(), 64);
    }
}
