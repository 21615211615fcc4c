//! `cargo run -p interlude-store --features redis --example reserve_latency [-- N]`: the cost of one
//! reservation (an ad with two cap claims) in the in-memory book and in Redis (`INTERLUDE_REDIS_URL`, default
//! the local server), measured in the same run: N reserves each, one thread, then N from 16 threads at once;
//! and a pod of three such ads reserved all or none (`reserve_pod`: one round trip to Redis).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{TimeDelta, Utc};
use interlude_decision::reservation::{CapClaim, Reservation, ReservationBook, Reservations};
use interlude_store::redis::RedisReservations;

fn reservation(k: usize) -> Reservation {
    let now = Utc::now();
    Reservation {
        ad_instance_id: format!("s{k}-b1-0"),
        line_item_id: format!("li{}", k % 100),
        viewer_id: Some(format!("v{k}")),
        expires_at: now + TimeDelta::minutes(5),
        caps: vec![
            CapClaim {
                key: format!("line_item:li{}", k % 100),
                max: 3,
                seen: 1,
            },
            CapClaim {
                key: "campaign:c".into(),
                max: 5,
                seen: 1,
            },
        ],
    }
}

/// Microseconds per reserve: one thread, then 16 threads (wall time over all reserves).
fn measure(name: &str, r: &Arc<dyn Reservations>, n: usize, offset: usize) {
    let started = Instant::now();
    for k in 0..n {
        r.reserve(reservation(offset + k), u64::MAX, Utc::now());
    }
    let one = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..16 {
            let r = r.clone();
            s.spawn(move || {
                for k in (t..n).step_by(16) {
                    r.reserve(reservation(offset + n + k), u64::MAX, Utc::now());
                }
            });
        }
    });
    let many = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    let started = Instant::now();
    for k in 0..n / 3 {
        let pod: Vec<(Reservation, u64)> = (0..3)
            .map(|j| (reservation(offset + 2 * n + 3 * k + j), u64::MAX))
            .collect();
        r.reserve_pod(&pod, Utc::now());
    }
    let pod = started.elapsed().as_secs_f64() * 1e6 / (n / 3).max(1) as f64;
    println!(
        "{name}: {one:.1} µs per reserve on one thread; {many:.1} µs per reserve (wall) from 16 threads; \
         {pod:.1} µs per pod of 3"
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000);
    let url =
        std::env::var("INTERLUDE_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let prefix = format!("reserve-latency-{}:", std::process::id());
    let book: Arc<dyn Reservations> = Arc::new(Mutex::new(ReservationBook::new()));
    let redis: Arc<dyn Reservations> = RedisReservations::connect(&url, &prefix)?;
    for round in 0..2 {
        measure("book ", &book, n, round * 3 * n);
        measure("redis", &redis, n, round * 3 * n);
    }
    println!("(keys under {prefix} expire within 5 minutes)");
    Ok(())
}
