//! Per-host limits: a semaphore for concurrency and a token bucket for the rate, keyed by `host:port`, so that
//! one third party is never hit harder than configured however many pixels are due for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::{Limits, OutboxConfig};

/// A token bucket: `burst` tokens, refilled at `rate` per second. A taker reserves a token (the count may go
/// negative) and waits until it would have been there, so waiters are served in order at the rate.
#[derive(Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl Bucket {
    pub(crate) fn new(rate: f64, burst: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(burst),
            last: now,
            rate,
            burst: f64::from(burst),
        }
    }

    /// Takes a token at `now`; how long to wait before using it.
    pub(crate) fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.rate >= self.burst
    }
}

/// The limits state of one host.
#[derive(Debug)]
pub(crate) struct Host {
    limits: Limits,
    permits: Arc<Semaphore>,
    bucket: Mutex<Bucket>,
    waiting: AtomicUsize,
}

/// A send's right to go: holds the host's concurrency permit until dropped.
#[derive(Debug)]
pub(crate) struct Turn {
    _permit: OwnedSemaphorePermit,
}

impl Host {
    /// Waits for this host's turn (a concurrency permit, then a token), or `None` when `max_waiting` sends
    /// are already waiting for it.
    pub(crate) async fn turn(&self, max_waiting: usize) -> Option<Turn> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let permit = Arc::clone(&self.permits).acquire_owned().await;
        let wait = self
            .bucket
            .lock()
            .map(|mut b| b.reserve(Instant::now()))
            .unwrap_or_default();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        // The semaphore is never closed.
        permit.ok().map(|p| Turn { _permit: p })
    }

    fn idle(&self, now: Instant) -> bool {
        self.waiting.load(Ordering::SeqCst) == 0
            && self.permits.available_permits() == self.limits.concurrency
            && self.bucket.lock().map(|b| b.is_full(now)).unwrap_or(true)
    }
}

/// The hosts seen, created on first use.
#[derive(Debug, Default)]
pub(crate) struct Hosts {
    map: Mutex<HashMap<String, Arc<Host>>>,
}

impl Hosts {
    /// The state of `host_port` (`host` alone for config lookups).
    pub(crate) fn get(&self, config: &OutboxConfig, host: &str, host_port: &str) -> Arc<Host> {
        let mut map = match self.map.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(map.entry(host_port.to_owned()).or_insert_with(|| {
            let limits = config.limits(host, host_port);
            Arc::new(Host {
                limits,
                permits: Arc::new(Semaphore::new(limits.concurrency)),
                bucket: Mutex::new(Bucket::new(
                    limits.rate_per_sec,
                    limits.burst,
                    Instant::now(),
                )),
                waiting: AtomicUsize::new(0),
            })
        }))
    }

    /// Forgets hosts with nothing in flight, nothing waiting and a full bucket (their state is the initial
    /// one): the map does not grow with every host ever seen.
    pub(crate) fn forget_idle(&self) {
        let now = Instant::now();
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, h| Arc::strong_count(h) > 1 || !h.idle(now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_serves_the_burst_then_the_rate() {
        let t = Instant::now();
        let mut b = Bucket::new(10.0, 3, t);
        for _ in 0..3 {
            assert_eq!(b.reserve(t), Duration::ZERO);
        }
        assert_eq!(b.reserve(t), Duration::from_millis(100));
        assert_eq!(b.reserve(t), Duration::from_millis(200));
        // A second later the debt (2 tokens) is paid and 8 more have come, capped at the burst of 3.
        let later = t + Duration::from_secs(1);
        assert_eq!(b.reserve(later), Duration::ZERO);
        assert!(!b.is_full(later));
        assert!(b.is_full(later + Duration::from_secs(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_host_turns_away_senders_beyond_the_waiting_limit() {
        let config = OutboxConfig {
            per_host_concurrency: 1,
            ..OutboxConfig::default()
        };
        let hosts = Hosts::default();
        let host = hosts.get(&config, "h", "h:443");
        let first = host.turn(1).await.expect("first turn");
        // One waits for the permit …
        let waiter = {
            let host = Arc::clone(&host);
            tokio::spawn(async move { host.turn(1).await.is_some() })
        };
        while host.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // … so a third is turned away.
        assert!(host.turn(1).await.is_none());
        drop(first);
        assert!(waiter.await.expect("waiter"));
        drop(host);
        tokio::time::advance(Duration::from_secs(1)).await;
        hosts.forget_idle();
        assert!(hosts.map.lock().expect("map").is_empty());
    }
}
