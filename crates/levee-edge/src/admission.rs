//! Priority admission to an origin: a concurrency limit (adaptive, from
//! measured latency, never above the origin's configured capacity) and a
//! bounded queue in which higher classes go first and push lower ones out.
//!
//! Classes, highest first: staff (token or allow-listed network) > verified
//! (valid challenge clearance) > returning (seen before the attack began) >
//! unknown > suspicious (marked by a protocol defense or matched by a rule).
//! When the limit is reached a request waits in the queue; when the queue is
//! full, a newcomer pushes out the newest waiter of a lower class, or is shed
//! itself (503 + `Retry-After`). Staff are never pushed out and may exceed the
//! queue bound; suspicious clients are not queued while the site is under
//! attack.

use levee_limits::adaptive::AdaptiveLimit;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;

/// A request's priority class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Class {
    Suspicious = 0,
    Unknown = 1,
    Returning = 2,
    Verified = 3,
    Staff = 4,
}

impl Class {
    pub(crate) const ALL: [Class; 5] = [
        Class::Suspicious,
        Class::Unknown,
        Class::Returning,
        Class::Verified,
        Class::Staff,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Class::Suspicious => "suspicious",
            Class::Unknown => "unknown",
            Class::Returning => "returning",
            Class::Verified => "verified",
            Class::Staff => "staff",
        }
    }
}

/// Why admission failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue was full of higher classes, or the wait timed out.
    Shed,
}

/// A slot at the origin; released when dropped.
#[derive(Debug)]
pub(crate) struct Grant {
    adm: Arc<Admission>,
    armed: bool,
}

impl Drop for Grant {
    fn drop(&mut self) {
        if self.armed {
            self.adm.release();
        }
    }
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    tx: oneshot::Sender<Grant>,
}

#[derive(Debug, Default)]
struct Inner {
    inflight: u32,
    waiting: u32,
    next_id: u64,
    queues: [VecDeque<Waiter>; 5],
}

/// One origin's admission.
#[derive(Debug)]
pub(crate) struct Admission {
    inner: Mutex<Inner>,
    max: u32,
    queue: u32,
    queue_timeout: Duration,
    adaptive: Mutex<AdaptiveLimit>,
    limit: AtomicU32,
    /// Sheds per class since start.
    pub shed: [AtomicU64; 5],
    /// Admitted per class since start.
    pub admitted: [AtomicU64; 5],
    peak: AtomicU32,
    lat_sum_us: AtomicU64,
    lat_n: AtomicU64,
    /// Latency figures of the last tick, for the site's baseline.
    pub last_latency_us: AtomicU64,
    pub last_samples: AtomicU64,
}

impl Admission {
    pub(crate) fn new(max: u32, min: u32, queue: u32, queue_timeout: Duration) -> Arc<Admission> {
        let max = max.max(1);
        Arc::new(Admission {
            inner: Mutex::default(),
            max,
            queue,
            queue_timeout,
            adaptive: Mutex::new(AdaptiveLimit::new(min, max)),
            limit: AtomicU32::new(max),
            shed: Default::default(),
            admitted: Default::default(),
            peak: AtomicU32::new(0),
            lat_sum_us: AtomicU64::new(0),
            lat_n: AtomicU64::new(0),
            last_latency_us: AtomicU64::new(0),
            last_samples: AtomicU64::new(0),
        })
    }

    /// The current concurrency limit.
    pub(crate) fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Requests in flight and waiting.
    pub(crate) fn load(&self) -> (u32, u32) {
        let i = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        (i.inflight, i.waiting)
    }

    /// Record an origin response time (head received).
    pub(crate) fn record_latency(&self, us: u64) {
        self.lat_sum_us.fetch_add(us, Ordering::Relaxed);
        self.lat_n.fetch_add(1, Ordering::Relaxed);
    }

    /// Once per tick: adapt the limit to the tick's latency.
    pub(crate) fn tick(self: &Arc<Self>, adaptive: bool) {
        let n = self.lat_n.swap(0, Ordering::Relaxed);
        let sum = self.lat_sum_us.swap(0, Ordering::Relaxed);
        let inflight = self.load().0;
        let peak = self.peak.swap(inflight, Ordering::Relaxed).max(inflight);
        let mean = if n > 0 { sum as f64 / n as f64 } else { 0.0 };
        self.last_latency_us.store(mean as u64, Ordering::Relaxed);
        self.last_samples.store(n, Ordering::Relaxed);
        let limit = if adaptive {
            let mut a = self.adaptive.lock().unwrap_or_else(PoisonError::into_inner);
            a.update(mean, n, peak);
            a.limit()
        } else {
            self.max
        };
        self.limit.store(limit, Ordering::Relaxed);
        // A raised limit may admit waiters.
        let mut i = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        self.pump(&mut i);
    }

    fn grant(self: &Arc<Self>) -> Grant {
        Grant {
            adm: Arc::clone(self),
            armed: true,
        }
    }

    /// Hand free slots to waiters, highest class first.
    fn pump(self: &Arc<Self>, i: &mut Inner) {
        let limit = self.limit();
        while i.inflight < limit {
            let Some(w) = i.queues.iter_mut().rev().find_map(VecDeque::pop_front) else {
                return;
            };
            i.waiting -= 1;
            // A grant made here must not release on failure (we hold the lock).
            let g = self.grant();
            i.inflight += 1;
            if let Err(mut g) = w.tx.send(g) {
                g.armed = false;
                i.inflight -= 1;
            }
        }
    }

    fn release(self: &Arc<Self>) {
        let mut i = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        i.inflight = i.inflight.saturating_sub(1);
        self.pump(&mut i);
    }

    /// Take a slot for a request of `class`. `attack`: the site is under attack.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        class: Class,
        attack: bool,
    ) -> Result<Grant, Refused> {
        let rx = {
            let mut i = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            self.pump(&mut i);
            let ahead = i.queues[class as usize..].iter().any(|q| !q.is_empty());
            if i.inflight < self.limit() && !ahead {
                i.inflight += 1;
                let p = self.peak.load(Ordering::Relaxed);
                if i.inflight > p {
                    self.peak.store(i.inflight, Ordering::Relaxed);
                }
                drop(i);
                self.admitted[class as usize].fetch_add(1, Ordering::Relaxed);
                return Ok(self.grant());
            }
            if class == Class::Suspicious && attack {
                drop(i);
                return Err(self.shed(class));
            }
            if i.waiting >= self.queue && class != Class::Staff {
                // Push out the newest waiter of the lowest class below ours.
                let victim = (0..class as usize).find(|&c| !i.queues[c].is_empty());
                match victim {
                    Some(c) => {
                        i.queues[c].pop_back();
                        i.waiting -= 1;
                        self.shed[c].fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        drop(i);
                        return Err(self.shed(class));
                    }
                }
            }
            let (tx, rx) = oneshot::channel();
            i.next_id += 1;
            let id = i.next_id;
            i.queues[class as usize].push_back(Waiter { id, tx });
            i.waiting += 1;
            (id, rx)
        };
        let (id, mut rx) = rx;
        let wait = if class == Class::Staff {
            self.queue_timeout * 10
        } else {
            self.queue_timeout
        };
        match tokio::time::timeout(wait, &mut rx).await {
            Ok(Ok(g)) => {
                self.admitted[class as usize].fetch_add(1, Ordering::Relaxed);
                Ok(g)
            }
            // Pushed out by a higher class (already counted).
            Ok(Err(_)) => Err(Refused::Shed),
            Err(_) => {
                let mut i = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
                let q = &mut i.queues[class as usize];
                if let Some(pos) = q.iter().position(|w| w.id == id) {
                    q.remove(pos);
                    i.waiting -= 1;
                    drop(i);
                    return Err(self.shed(class));
                }
                drop(i);
                // Granted (or pushed out) while timing out.
                match rx.try_recv() {
                    Ok(g) => {
                        self.admitted[class as usize].fetch_add(1, Ordering::Relaxed);
                        Ok(g)
                    }
                    Err(_) => Err(Refused::Shed),
                }
            }
        }
    }

    fn shed(&self, class: Class) -> Refused {
        self.shed[class as usize].fetch_add(1, Ordering::Relaxed);
        Refused::Shed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adm(max: u32, queue: u32) -> Arc<Admission> {
        Admission::new(max, 1, queue, Duration::from_millis(300))
    }

    #[tokio::test]
    async fn never_more_than_the_limit_in_flight() {
        let a = adm(2, 10);
        let g1 = a.acquire(Class::Unknown, false).await.unwrap();
        let _g2 = a.acquire(Class::Unknown, false).await.unwrap();
        assert_eq!(a.load(), (2, 0));
        let a2 = Arc::clone(&a);
        let waiter = tokio::spawn(async move { a2.acquire(Class::Unknown, false).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(a.load(), (2, 1));
        drop(g1);
        let g3 = waiter.await.unwrap();
        assert!(g3.is_ok());
        assert_eq!(a.load(), (2, 0));
    }

    #[tokio::test]
    async fn higher_classes_go_first_and_push_lower_ones_out() {
        let a = adm(1, 2);
        let g = a.acquire(Class::Returning, false).await.unwrap();
        let spawn = |c: Class| {
            let a = Arc::clone(&a);
            tokio::spawn(async move { a.acquire(c, false).await.map(|g| (c, g)) })
        };
        let u1 = spawn(Class::Unknown);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let u2 = spawn(Class::Unknown);
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The queue (2) is full of unknowns: a returning client pushes the newest out.
        let r = spawn(Class::Returning);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(u2.await.unwrap().is_err(), "newest unknown pushed out");
        assert_eq!(a.shed[Class::Unknown as usize].load(Ordering::Relaxed), 1);
        // The slot goes to the returning client before the older unknown.
        drop(g);
        let (c, g) = r.await.unwrap().unwrap();
        assert_eq!(c, Class::Returning);
        drop(g);
        assert_eq!(u1.await.unwrap().unwrap().0, Class::Unknown);
    }

    #[tokio::test]
    async fn staff_are_never_pushed_out_and_suspicious_not_queued_under_attack() {
        let a = adm(1, 1);
        let g = a.acquire(Class::Unknown, true).await.unwrap();
        assert_eq!(
            a.acquire(Class::Suspicious, true).await.err(),
            Some(Refused::Shed)
        );
        let a1 = Arc::clone(&a);
        let s1 = tokio::spawn(async move { a1.acquire(Class::Staff, true).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Queue full of staff: a verified client is shed, staff stay.
        assert_eq!(
            a.acquire(Class::Verified, true).await.err(),
            Some(Refused::Shed)
        );
        // Staff may exceed the queue bound.
        let a2 = Arc::clone(&a);
        let s2 = tokio::spawn(async move { a2.acquire(Class::Staff, true).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(a.load(), (1, 2));
        drop(g);
        let g1 = s1.await.unwrap().unwrap();
        drop(g1);
        assert!(s2.await.unwrap().is_ok());
        assert_eq!(a.shed[Class::Staff as usize].load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_does_not_leak_its_slot() {
        let a = adm(1, 4);
        let g = a.acquire(Class::Unknown, false).await.unwrap();
        let a1 = Arc::clone(&a);
        let w = tokio::spawn(async move { a1.acquire(Class::Unknown, false).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        w.abort();
        let _ = w.await;
        drop(g);
        // The slot is free again for a newcomer.
        let g2 = tokio::time::timeout(Duration::from_millis(100), a.acquire(Class::Unknown, false))
            .await
            .expect("slot leaked");
        assert!(g2.is_ok());
        assert_eq!(a.load(), (1, 0));
    }

    #[tokio::test]
    async fn the_limit_adapts_to_latency() {
        let a = Admission::new(64, 4, 8, Duration::from_millis(100));
        for _ in 0..5 {
            for _ in 0..20 {
                a.record_latency(10_000);
            }
            a.tick(true);
        }
        assert_eq!(a.limit(), 64);
        for _ in 0..40 {
            for _ in 0..20 {
                a.record_latency(200_000);
            }
            a.tick(true);
        }
        assert!(a.limit() < 16, "{}", a.limit());
        assert!(a.limit() >= 4);
    }
}
