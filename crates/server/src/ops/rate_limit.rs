//! Per-client limits: the key a client is counted under (its address; for IPv6 the whole /64, which one
//! subscriber usually holds entirely) and a token bucket per key, for work that must not be started without
//! bound by one client (sessions). Time is the process's monotonic clock, never channel time.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// The key a client address is counted under: an IPv4 address as is (also when written IPv4-mapped), an
/// IPv6 address by its /64 (a single subscriber can pick any of 2^64 addresses in it).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Client keys a limiter tracks one by one. Past it (an attacker cycling through addresses), clients not yet
/// tracked share a single bucket until pruning frees room: memory stays bounded, and tracked clients are
/// unaffected.
pub const MAX_TRACKED_CLIENTS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.updated = now;
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, rate: f64, burst: f64, now: Instant) -> Result<(), Duration> {
        self.refill(rate, burst, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

/// A token bucket per client key: `burst` at once, then `rate` per second.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: DashMap<IpAddr, Bucket>,
    overflow: Mutex<Bucket>,
}

impl RateLimiter {
    /// A limiter of `rate_per_sec` with bursts of `burst`; `None` when `rate_per_sec` is 0 (no limit).
    pub fn new(rate_per_sec: f64, burst: u32) -> Option<RateLimiter> {
        if !(rate_per_sec.is_finite() && rate_per_sec > 0.0) {
            return None;
        }
        let burst = f64::from(burst.max(1));
        Some(RateLimiter {
            rate: rate_per_sec,
            burst,
            buckets: DashMap::new(),
            overflow: Mutex::new(Bucket {
                tokens: burst,
                updated: Instant::now(),
            }),
        })
    }

    /// Takes one token for the client at `ip`; when it has none, how long until it will have one.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = client_key(ip);
        let (rate, burst) = (self.rate, self.burst);
        if let Some(mut bucket) = self.buckets.get_mut(&key) {
            return bucket.take(rate, burst, now);
        }
        if self.buckets.len() >= MAX_TRACKED_CLIENTS {
            return match self.overflow.lock() {
                Ok(mut shared) => shared.take(rate, burst, now),
                // Poisoned only if a holder panicked; a limiter must not take the route down with it.
                Err(_) => Ok(()),
            };
        }
        self.buckets
            .entry(key)
            .or_insert(Bucket {
                tokens: burst,
                updated: now,
            })
            .take(rate, burst, now)
    }

    /// Forgets clients whose bucket has refilled (they are indistinguishable from new ones); how many are
    /// still tracked.
    pub fn prune(&self, now: Instant) -> usize {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, bucket| {
            bucket.refill(rate, burst, now);
            bucket.tokens < burst
        });
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_client_gets_its_burst_then_the_rate_and_others_are_unaffected() {
        let limiter = RateLimiter::new(2.0, 3).unwrap();
        let (one, other): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.take(one, t0).unwrap();
        }
        let wait = limiter.take(one, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500), "one token at 2/s");
        limiter.take(other, t0).unwrap();
        limiter.take(one, t0 + Duration::from_millis(500)).unwrap();
        assert!(limiter.take(one, t0 + Duration::from_millis(500)).is_err());
        assert_eq!(limiter.prune(t0 + Duration::from_secs(10)), 0, "refilled");
    }

    #[test]
    fn no_rate_is_no_limiter() {
        assert!(RateLimiter::new(0.0, 10).is_none());
    }
}
