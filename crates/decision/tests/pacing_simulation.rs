//! Even pacing over a simulated week-long flight with daily traffic swings: the line item delivers its goal to
//! within ±5 %, and evenly (no day far off its share); ASAP takes what it can and stops at the goal.

use interlude_decision::pacing::{Pacer, PacingMode};

/// Eligible opportunities in minute `m`: a daily curve from 20 % (night) to 180 % (prime time) of 1,000/min.
fn traffic(m: i64) -> u64 {
    let day_phase = (m % 1440) as f64 / 1440.0 * std::f64::consts::TAU;
    (1000.0 * (1.0 - 0.8 * day_phase.cos())) as u64
}

/// A deterministic stand-in for a coin flip per opportunity: serve `p` of the minute's traffic, carrying the
/// fractions over.
fn simulate(mode: PacingMode, goal: u64, days: i64) -> (u64, Vec<u64>) {
    let minutes = days * 1440;
    let mut pacer = Pacer::new(mode, goal, 0, minutes * 60);
    let (mut delivered, mut eligible, mut carry) = (0u64, 0u64, 0.0f64);
    let mut per_day = vec![0u64; days as usize];
    for m in 0..minutes {
        pacer.update(m * 60, delivered, eligible);
        let opportunities = traffic(m);
        eligible += opportunities;
        let served = opportunities as f64 * pacer.probability() + carry;
        let whole = served.floor();
        carry = served - whole;
        let whole = (whole as u64).min(goal.saturating_sub(delivered));
        delivered += whole;
        per_day[(m / 1440) as usize] += whole;
    }
    (delivered, per_day)
}

#[test]
fn even_pacing_lands_within_five_percent_and_spreads_over_the_days() {
    // 7 days × ~1.44 M opportunities/day ≈ 10 M available; the goal takes about a third.
    let goal = 3_500_000;
    let (delivered, per_day) = simulate(PacingMode::Even, goal, 7);
    let off = (delivered as f64 - goal as f64).abs() / goal as f64;
    eprintln!("even: delivered {delivered} per day {per_day:?}");
    assert!(
        off <= 0.05,
        "delivered {delivered} for a goal of {goal} ({:.1} % off)",
        off * 100.0
    );
    let share = goal as f64 / 7.0;
    for (d, n) in per_day.iter().enumerate() {
        let dev = (*n as f64 - share).abs() / share;
        assert!(
            dev <= 0.10,
            "day {d} delivered {n}, even share {share:.0} ({:.1} % off)",
            dev * 100.0
        );
    }
}

#[test]
fn asap_delivers_early_and_never_over_the_goal() {
    let goal = 3_500_000;
    let (delivered, per_day) = simulate(PacingMode::Asap, goal, 7);
    assert_eq!(delivered, goal);
    assert!(per_day[0] > 1_000_000, "ASAP front-loads: {per_day:?}");
    assert_eq!(per_day[6], 0, "nothing left for the last day: {per_day:?}");
}

#[test]
fn a_pacer_at_its_goal_stops() {
    let mut pacer = Pacer::new(PacingMode::Even, 100, 0, 1000);
    pacer.update(10, 100, 5000);
    assert_eq!(pacer.probability(), 0.0);
}
