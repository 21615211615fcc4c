//! Deliveries back to the decision engine: each impression the event pipeline counts confirms the
//! reservation the decision made for it ([`interlude_decision::reservation`]), so it stops pending against its
//! goal once the live counters show it, instead of counting next to its own delivery until it expires.
//!
//! The embedded committer calls this after each commit; in distributed mode `interlude process` does, after
//! the shared counters have the batch.

use std::sync::Arc;

use interlude_decision::reservation::Reservations;
use interlude_events::token::Keyring;
use interlude_store::OnCounted;

/// Confirms, in `reservations`, the reservation of every counted impression of a catalog line item, at the
/// time `clock` gives. The event names the ad instance as issued to the player (the engine's id with a MAC,
/// see `crate::stitcher::instances`); the reservation is under the engine's id.
pub fn confirming(
    reservations: Arc<dyn Reservations>,
    clock: interlude_events::Clock,
) -> OnCounted {
    Arc::new(move |counted| {
        let now = clock();
        for event in counted {
            let Some(line_item) = event.line_item_id.as_deref().filter(|l| !l.is_empty()) else {
                continue;
            };
            let id = Keyring::issued_base(&event.ad_instance_id);
            reservations.confirm(id, line_item, now);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, Utc};
    use interlude_decision::reservation::{Reservation, ReservationBook};

    #[test]
    fn a_counted_impression_confirms_its_reservation_by_the_engines_id() {
        let now = Utc::now();
        let book = Arc::new(std::sync::Mutex::new(ReservationBook::new()));
        let reservations: Arc<dyn Reservations> = book.clone();
        assert!(reservations.reserve(
            Reservation {
                ad_instance_id: "s1-b1-0".into(),
                line_item_id: "li".into(),
                viewer_id: None,
                expires_at: now + TimeDelta::minutes(5),
                caps: Vec::new(),
            },
            10,
            now,
        ));
        let keys = Keyring::new(1, b"deliveries-test-key-0123456789abcdef".to_vec());
        let mut event = interlude_events::testing::event(
            "e1".into(),
            &keys.issue_instance("s1", "s1-b1-0"),
            interlude_events::EventType::Impression,
            interlude_events::EventSource::ServerSide,
            now,
            0,
        );
        event.line_item_id = Some("li".into());
        let mut house = event.clone();
        house.line_item_id = None;
        confirming(reservations.clone(), Arc::new(move || now))(&[&event, &house]);
        let c = reservations.consumption("li", now);
        assert_eq!((c.delivered, c.pending, c.settling), (1, 0, 1));
    }
}
