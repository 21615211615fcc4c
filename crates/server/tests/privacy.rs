//! Privacy end to end in the server: each consent combination's effect on what a session keeps (and so on
//! targeting and caps, which the decision engine's own tests cover per flag) and on what events store; and the
//! erasure of a viewer from every store — embedded, then distributed on real Redis, PostgreSQL and the
//! Kafka-protocol broker — after which no store contains the viewer's id or any of its pseudonyms, while the
//! reports and the billing ledger are byte-identical.
//!
//! Consent strings: `COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA` (a real TC string consenting to purposes 2
//! and 10 only, from iabtcf-java's TCStringV2Test); `DBABLA~BVVVkkkklWA.YA` (a GPP string with the US National
//! section opted out of sale, sharing and targeted advertising, from iabgpp-java's UsNatTest).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use chrono::{DateTime, TimeDelta, Utc};
use interlude_decision::ViewerContext;
use interlude_decision::reservation::{CapClaim, Reservation, ReservationBook, Reservations};
use interlude_events::contract::{ConsentFlags, EventSource, EventType};
use interlude_events::testing::event;
use interlude_events::{Counters, Envelope, Policy};
use interlude_server::collector::{Collector, EventsConfig};
use interlude_server::privacy::edge::{EdgePrivacy, PrivacySettings, SignalParams, flags_of};
use interlude_server::privacy::erasure::Erasure;
use interlude_server::stitcher::beacons::MemoryBeaconSink;
use interlude_server::stitcher::pods::ConfiguredPodSource;
use interlude_server::stitcher::session::{MemorySessionStore, Session, SessionStore};
use interlude_server::stitcher::shared::SharedSessions;
use interlude_server::stitcher::{Stitcher, StitcherConfig};
use interlude_store::DistributedConfig;
use interlude_store::GroupBy;
use interlude_store::redis::RedisSessionShare;

fn privacy() -> Arc<EdgePrivacy> {
    Arc::new(EdgePrivacy::from_settings(&PrivacySettings::default()).unwrap())
}

/// The client address the edge resolved (a documentation range).
fn us_client() -> std::net::IpAddr {
    "203.0.113.7".parse().unwrap()
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, v.parse().unwrap());
    }
    h
}

/// (what was sent, expected viewer id kept, expected personalisation, expected opt-out of sale)
#[test]
fn each_consent_combination_decides_what_a_session_and_its_events_keep() {
    let p = privacy();
    let signals = |f: &dyn Fn(&mut SignalParams)| {
        let mut s = SignalParams {
            device_id: Some("6d92078a-8246-4ba4-ae5b-76104861e7dc".into()),
            ..SignalParams::default()
        };
        f(&mut s);
        s
    };
    // The client's address comes from the socket or a trusted proxy (the edge resolves it), not from headers.
    let us = headers(&[("user-agent", "Roku/DVP-9.10 (519.10E04111A)")]);
    let cases: Vec<(&str, SignalParams, HeaderMap, bool, bool, bool)> = vec![
        (
            "nothing sent, outside GDPR: the configured default",
            signals(&|_| {}),
            us.clone(),
            true,
            true,
            false,
        ),
        (
            "gdpr=1 with a real TC string without purpose 1",
            signals(&|s| {
                s.gdpr = Some("1".into());
                s.gdpr_consent = Some("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA".into());
            }),
            us.clone(),
            false,
            false,
            false,
        ),
        (
            "gdpr=1 and no TC string",
            signals(&|s| s.gdpr = Some("1".into())),
            us.clone(),
            false,
            false,
            false,
        ),
        (
            "US Privacy opt-out of sale",
            signals(&|s| s.us_privacy = Some("1YYN".into())),
            us.clone(),
            false,
            false,
            true,
        ),
        (
            "US Privacy without opt-out",
            signals(&|s| s.us_privacy = Some("1YNN".into())),
            us.clone(),
            true,
            true,
            false,
        ),
        (
            "GPP usnat opted out",
            signals(&|s| {
                s.gpp = Some("DBABLA~BVVVkkkklWA.YA".into());
                s.gpp_sid = Some("7".into());
            }),
            us.clone(),
            false,
            false,
            true,
        ),
        (
            "limit ad tracking",
            signals(&|s| s.lmt = Some("1".into())),
            us.clone(),
            false,
            false,
            false,
        ),
        (
            "Do Not Track header",
            signals(&|_| {}),
            headers(&[("dnt", "1")]),
            false,
            false,
            false,
        ),
        (
            "COPPA",
            signals(&|s| s.coppa = Some("1".into())),
            us.clone(),
            false,
            false,
            true,
        ),
    ];
    let now = std::time::SystemTime::now();
    for (what, s, h, keeps_id, personalised, opt_out) in cases {
        let viewer = ViewerContext {
            viewer_id: Some("player-supplied-id".into()),
            segments: vec!["car-intenders".into()],
            ..ViewerContext::default()
        };
        let (kept, decision) = p.viewer(viewer, &s, &h, Some(us_client()), now, false);
        assert_eq!(
            kept.viewer_id.is_some(),
            keeps_id,
            "{what}: viewer id ({:?})",
            decision.explain()
        );
        assert_ne!(
            kept.viewer_id.as_deref(),
            Some("player-supplied-id"),
            "{what}: never the raw id"
        );
        assert_ne!(
            kept.viewer_id.as_deref(),
            Some("6d92078a-8246-4ba4-ae5b-76104861e7dc"),
            "{what}: never the raw device id"
        );
        // The decision engine uses segments and per-viewer caps only when this is true.
        assert_eq!(kept.consent, Some(personalised), "{what}: personalisation");
        assert_eq!(kept.opt_out_sale, opt_out, "{what}: opt-out of sale");
        // What every event of this session stores.
        let flags = flags_of(&kept);
        assert_eq!(
            flags.store_viewer_id, keeps_id,
            "{what}: events store the viewer id"
        );
        assert_eq!(
            flags.opt_out_sale, opt_out,
            "{what}: events carry the opt-out"
        );
    }
    // The edge: geography is not looked up without a table, device from the user agent, address never kept.
    let (kept, _) = p.viewer(
        ViewerContext::default(),
        &signals(&|_| {}),
        &us,
        Some(us_client()),
        now,
        false,
    );
    assert_eq!(kept.device.as_deref(), Some("tv"));
    assert_eq!(kept.platform.as_deref(), Some("roku"));
}

#[test]
fn beacons_are_minimised_before_anything_sees_them() {
    let p = privacy();
    let at: DateTime<Utc> = "2026-11-23T20:00:00Z".parse().unwrap();
    let mut e = event(
        "e1".into(),
        "ai1",
        EventType::Impression,
        EventSource::ClientSide,
        at,
        1,
    );
    e.viewer_id = Some("v-without-consent".into());
    e.device = None;
    let mut envelope = Envelope {
        event: e,
        user_agent: Some("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)".into()),
        ip: Some("198.51.100.77".parse().unwrap()),
    };
    p.minimise(&mut envelope);
    assert_eq!(
        envelope.ip,
        Some("198.51.100.0".parse().unwrap()),
        "truncated to /24"
    );
    assert_eq!(
        envelope.event.viewer_id, None,
        "no viewer id without consent to store it"
    );
    assert_eq!(envelope.event.device.as_deref(), Some("mobile"));
    let mut v6 = Envelope {
        ip: Some("2001:db8:abcd:12:1:2:3:4".parse().unwrap()),
        ..envelope.clone()
    };
    p.minimise(&mut v6);
    assert_eq!(
        v6.ip,
        Some("2001:db8:abcd::".parse().unwrap()),
        "truncated to /48"
    );
}

/// A viewer's impressions (consented, so the id is stored), one of them quarantined, and another viewer's.
fn viewer_events(pseudonym: &str, now: DateTime<Utc>) -> Vec<Envelope> {
    let consented = ConsentFlags {
        store_viewer_id: true,
        personalisation: true,
        opt_out_sale: false,
    };
    let mut out = Vec::new();
    for (n, viewer) in [(1, pseudonym), (2, pseudonym), (3, "someone-else")] {
        let mut e = event(
            format!("pv{n}"),
            &format!("pv-ai{n}"),
            EventType::Impression,
            EventSource::ServerSide,
            now - TimeDelta::minutes(5),
            1,
        );
        e.viewer_id = Some(viewer.to_owned());
        e.consent = consented;
        e.received_at = now;
        out.push(Envelope {
            event: e,
            user_agent: None,
            ip: None,
        });
    }
    let mut bot = event(
        "pv-bot".into(),
        "pv-ai-bot",
        EventType::Impression,
        EventSource::ClientSide,
        now - TimeDelta::minutes(5),
        2,
    );
    bot.viewer_id = Some(pseudonym.to_owned());
    bot.consent = consented;
    bot.received_at = now;
    out.push(Envelope {
        event: bot,
        user_agent: Some("Googlebot/2.1".into()),
        ip: None,
    });
    out
}

fn stitcher(sessions: Arc<MemorySessionStore>) -> Arc<Stitcher> {
    stitcher_sharing(sessions, None)
}

fn stitcher_sharing(
    sessions: Arc<MemorySessionStore>,
    shared: Option<Arc<SharedSessions>>,
) -> Arc<Stitcher> {
    Stitcher::builder(
        StitcherConfig::default(),
        "http://ads.example.test".into(),
        Arc::new(ConfiguredPodSource::new(&[], 0.5)),
        Arc::new(MemoryBeaconSink::default()),
        Arc::new(Utc::now),
    )
    .sessions(sessions)
    .shared(shared)
    .build()
    .unwrap()
}

async fn snapshot(c: &Collector, now: DateTime<Utc>) -> String {
    let r = c.reports();
    let report = r
        .report(
            GroupBy::LineItem,
            now - TimeDelta::days(1),
            now + TimeDelta::days(1),
        )
        .await
        .unwrap();
    format!(
        "{}\n{}",
        serde_json::to_string(&report).unwrap(),
        serde_json::to_string(&r.ledger().await.unwrap()).unwrap()
    )
}

const DEVICE: &str = "38400000-8cf0-11bd-b23e-10b96e40000d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_leaves_no_trace_in_the_embedded_stores_and_aggregates_unchanged() {
    let privacy = privacy();
    let pseudonym = privacy.pseudonyms_over(DEVICE, 0)[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let config = EventsConfig {
        data_dir: dir.path().to_owned(),
        ..EventsConfig::default()
    };
    let now = Utc::now();
    let collector = Collector::open(&config, Arc::new(Utc::now))
        .unwrap()
        .with_privacy(privacy.clone());
    let store = collector.embedded().unwrap();
    store.ingest(&viewer_events(&pseudonym, now), now).unwrap();
    let sessions = Arc::new(MemorySessionStore::default());
    let viewer = ViewerContext {
        viewer_id: Some(pseudonym.clone()),
        ..ViewerContext::default()
    };
    sessions.insert(Arc::new(Session::new(
        "s-erase".into(),
        "live1".into(),
        viewer,
        now,
        1,
    )));
    assert!(!store.tables_mentioning(&pseudonym).unwrap().is_empty());
    assert_eq!(
        store.viewer_impressions(&pseudonym, "li1", now - TimeDelta::hours(1)),
        2
    );
    let before = snapshot(&collector, now).await;
    // A pending reservation of the viewer holds a cap under the pseudonym.
    let reservations: Arc<dyn Reservations> =
        Arc::new(std::sync::Mutex::new(ReservationBook::new()));
    let hold = Reservation {
        ad_instance_id: "s-erase-b1-0".into(),
        line_item_id: "li1".into(),
        viewer_id: Some(pseudonym.clone()),
        expires_at: now + TimeDelta::minutes(5),
        caps: vec![CapClaim {
            key: "line_item:li1".into(),
            max: 1,
            seen: 0,
        }],
    };
    assert!(reservations.reserve(hold.clone(), 10, now));

    let erasure = Erasure {
        stitcher: stitcher(sessions.clone()),
        collector: collector.clone(),
        privacy,
        retention: Default::default(),
        frequency_window_days: 30,
        kafka_log: false,
        clock: Arc::new(Utc::now),
        reservations: Some(reservations.clone()),
    };
    let receipt = erasure.forget(DEVICE, false).await.unwrap();
    assert!(
        !receipt.to_string().contains(DEVICE),
        "the receipt does not repeat the id"
    );
    assert!(!receipt.to_string().contains(&pseudonym));

    assert_eq!(
        store.tables_mentioning(&pseudonym).unwrap(),
        Vec::<&str>::new(),
        "no table mentions the pseudonym"
    );
    assert_eq!(store.tables_mentioning(DEVICE).unwrap(), Vec::<&str>::new());
    assert!(sessions.get("s-erase").is_none(), "the session is gone");
    assert!(
        receipt["stores"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["store"] == "cap holds of pending reservations" && s["holds"] == 1),
        "{receipt}"
    );
    let again = Reservation {
        ad_instance_id: "s-erase-b2-0".into(),
        ..hold
    };
    assert!(reservations.reserve(again, 10, now), "no cap hold left");
    assert_eq!(
        store.viewer_impressions("someone-else", "li1", now - TimeDelta::hours(1)),
        1,
        "others untouched"
    );
    assert_eq!(
        snapshot(&collector, now).await,
        before,
        "reports and ledger byte-identical"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_leaves_no_trace_in_the_distributed_stores_and_aggregates_unchanged() {
    use interlude_store::testing;
    let privacy = privacy();
    let pseudonym = privacy.pseudonyms_over(DEVICE, 0)[0].clone();
    let distributed = DistributedConfig {
        enabled: true,
        kafka: testing::kafka_config(2),
        redis_url: testing::redis_url(),
        postgres_url: testing::pg_fresh_schema().await.unwrap(),
        key_prefix: testing::redis_prefix(),
    };
    let now = Utc::now();
    let collector =
        Collector::distributed(&EventsConfig::default(), &distributed, Arc::new(Utc::now))
            .await
            .unwrap()
            .with_privacy(privacy.clone());
    // One processor consumes into PostgreSQL and the Redis counters.
    let pg = Arc::new(
        interlude_store::pg::PgStore::connect(&distributed.postgres_url, Policy::default())
            .await
            .unwrap(),
    );
    let processor = interlude_store::kafka::Processor::new(
        &distributed.kafka,
        pg.clone(),
        collector.shared_counters().cloned(),
    )
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        processor
            .run(
                async {
                    let _ = stopped.await;
                },
                |_| {},
            )
            .await
    });
    let log = interlude_store::kafka::KafkaLog::new(&distributed.kafka, Policy::default()).unwrap();
    interlude_store::EventLog::append(&log, viewer_events(&pseudonym, now))
        .await
        .unwrap();
    let shared = Arc::new(SharedSessions::new(Arc::new(
        RedisSessionShare::connect(&distributed.redis_url, &distributed.key_prefix, 600)
            .await
            .unwrap(),
    )));
    let viewer = ViewerContext {
        viewer_id: Some(pseudonym.clone()),
        ..ViewerContext::default()
    };
    let session = Session::new("s-erase-d".into(), "live1".into(), viewer, now, 1);
    shared.save_session(&session.record()).await.unwrap();
    let sessions = Arc::new(MemorySessionStore::default());
    let stitcher = stitcher_sharing(sessions, Some(shared.clone()));

    let counters = collector.shared_counters().unwrap().clone();
    for _ in 0..200 {
        counters.prefetch(&pseudonym).await;
        if counters.viewer_impressions(&pseudonym, "li1", now - TimeDelta::hours(1)) == 2
            && pg.quarantine_counts().await.unwrap().get("bot_user_agent") == Some(&1)
        {
            break;
        }
        counters.load_viewer(&pseudonym).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        counters.viewer_impressions(&pseudonym, "li1", now - TimeDelta::hours(1)),
        2,
        "processed"
    );
    assert!(!pg.tables_mentioning(&pseudonym).await.unwrap().is_empty());
    assert!(
        !counters
            .keys_mentioning(&pseudonym)
            .await
            .unwrap()
            .is_empty()
    );
    let before = snapshot(&collector, now).await;
    // A pending reservation of the viewer holds a cap in Redis under the pseudonym.
    let reservations: Arc<dyn Reservations> = interlude_store::redis::RedisReservations::connect(
        &distributed.redis_url,
        &distributed.key_prefix,
    )
    .unwrap();
    assert!(reservations.reserve(
        Reservation {
            ad_instance_id: "s-erase-d-b1-0".into(),
            line_item_id: "li1".into(),
            viewer_id: Some(pseudonym.clone()),
            expires_at: now + TimeDelta::minutes(5),
            caps: vec![CapClaim {
                key: "line_item:li1".into(),
                max: 1,
                seen: 0,
            }],
        },
        10,
        now
    ));

    let erasure = Erasure {
        stitcher,
        collector: collector.clone(),
        privacy,
        retention: Default::default(),
        frequency_window_days: 30,
        kafka_log: true,
        clock: Arc::new(Utc::now),
        reservations: Some(reservations),
    };
    let receipt = erasure.forget(DEVICE, false).await.unwrap();
    assert_eq!(
        receipt["retained"][0]["store"], "kafka raw event log",
        "{receipt}"
    );

    assert_eq!(
        pg.tables_mentioning(&pseudonym).await.unwrap(),
        Vec::<String>::new(),
        "postgres"
    );
    assert_eq!(
        counters.keys_mentioning(&pseudonym).await.unwrap(),
        Vec::<String>::new(),
        "redis"
    );
    assert_eq!(
        shared.load_session("s-erase-d").await.unwrap(),
        None,
        "shared session deleted"
    );
    assert_eq!(
        snapshot(&collector, now).await,
        before,
        "reports and ledger byte-identical"
    );
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}

/// Counts the events whose message mentions `needle`.
struct MessageCounter {
    needle: &'static str,
    seen: Arc<std::sync::atomic::AtomicUsize>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for MessageCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if message.0.contains(self.needle) {
            self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The application builds its privacy edge once: with an admin token (which adds the erasure API) the
/// development-secret warning printed twice at every demo start.
#[tokio::test(flavor = "current_thread")]
async fn the_privacy_edge_is_built_once_so_its_warning_prints_once() {
    use tracing_subscriber::layer::SubscriberExt;
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(MessageCounter {
            needle: "INTERLUDE_PRIVACY_SECRET",
            seen: seen.clone(),
        }));
    let dir = tempfile::tempdir().unwrap();
    let mut config = interlude_server::InterludeConfig::default();
    config.server.insecure_dev = true;
    config.decision.admin_token = Some("operator-token".into());
    config.events.data_dir = dir.path().to_owned();
    let app = interlude_server::App::build(&config, Arc::new(Utc::now))
        .await
        .unwrap();
    let _router = app.router().unwrap();
    let expected = usize::from(std::env::var_os("INTERLUDE_PRIVACY_SECRET").is_none());
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), expected);
    app.shutdown().await.unwrap();
}
