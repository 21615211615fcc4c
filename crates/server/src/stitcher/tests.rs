//! Unit tests of the stitcher's parts, without sockets: rendering from a channel snapshot, the sessions'
//! admission and sharing, the decision spread.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use interlude_decision::ViewerContext;
use interlude_stitch::BreakTracker;
use interlude_store::MemorySessionShare;

use super::StitchError;
use super::channel::{ChannelSnapshot, RenditionWindow};
use super::channels::Channels;
use super::config::{ChannelConfig, JoinPolicy, StitcherConfig};
use super::creatives::CreativeLibrary;
use super::decisions::Decisions;
use super::pods::ConfiguredPodSource;
use super::render::{self, RenderSettings};
use super::session::{MemorySessionStore, Session, SessionMode};
use super::sessions::Sessions;
use super::shared::SharedSessions;

const ORIGIN: &str = "http://origin.test/live/live1";

/// A live window of six 2 s segments; a 10 s break starts at the third.
const MEDIA: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:100\n\
#EXT-X-PROGRAM-DATE-TIME:2026-12-03T18:00:00.000Z\n#EXTINF:2.0,\nc100.ts\n#EXTINF:2.0,\nc101.ts\n\
#EXT-X-CUE-OUT:10\n#EXTINF:2.0,\nc102.ts\n#EXT-X-CUE-OUT-CONT:2/10\n#EXTINF:2.0,\nc103.ts\n\
#EXT-X-CUE-OUT-CONT:4/10\n#EXTINF:2.0,\nc104.ts\n#EXT-X-CUE-OUT-CONT:6/10\n#EXTINF:2.0,\nc105.ts\n";

const MASTER: &str =
    "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n0/index.m3u8\n";

fn now() -> DateTime<Utc> {
    "2026-12-03T18:00:13Z".parse().unwrap()
}

fn config() -> StitcherConfig {
    StitcherConfig {
        channels: vec![ChannelConfig {
            id: "live1".into(),
            origin: format!("{ORIGIN}/master.m3u8"),
            poll_interval_ms: None,
            origin_timeout_ms: 2_000,
            stale_after_secs: 30,
            slate: Vec::new(),
            dash_origin: None,
            dash_ad_codecs: "avc1.4d401e,mp4a.40.2".into(),
        }],
        join_policy: JoinPolicy::RestOfPod,
        ..StitcherConfig::default()
    }
}

/// The channels of [`config`], live1 holding a snapshot of [`MEDIA`] as refreshed at [`now`].
fn channels() -> Channels {
    let config = config();
    let channels = Channels::new(
        &config,
        CreativeLibrary::new(
            interlude_outbound::GuardedClient::new(&interlude_outbound::OutboundConfig::default())
                .unwrap(),
            Duration::from_secs(1),
        ),
    );
    publish(&channels);
    channels
}

/// Publishes a snapshot of [`MEDIA`] as refreshed at [`now`] as live1's.
fn publish(channels: &Channels) {
    let media =
        interlude_stitch::hls::parse_media(MEDIA, &format!("{ORIGIN}/0/index.m3u8")).unwrap();
    let (variants, master) =
        interlude_stitch::hls::parse_master(MASTER, &format!("{ORIGIN}/master.m3u8")).unwrap();
    let mut tracker = BreakTracker::new(500_000);
    tracker.observe(&media.window, &media.observed).unwrap();
    let entry = channels.entry("live1").unwrap();
    entry.channel.publish(ChannelSnapshot {
        renditions: vec![RenditionWindow {
            variant: variants[0].clone(),
            media: Arc::new(media),
            raw: bytes::Bytes::from_static(MEDIA.as_bytes()),
        }],
        breaks: Arc::new(tracker.breaks().to_vec()),
        refreshed_at: Some(now()),
        master: Some(Arc::new(master)),
    });
}

fn settings(base_url: &str) -> RenderSettings<'_> {
    RenderSettings {
        base_url,
        tolerance_micros: 500_000,
        join_policy: JoinPolicy::RestOfPod,
        proxy: false,
    }
}

fn session(joined_msn: u64) -> Session {
    Session::new(
        "s1".into(),
        "live1".into(),
        ViewerContext::default(),
        now(),
        joined_msn,
    )
}

#[test]
fn a_break_seen_undecided_is_fixed_once_and_returned_for_sharing() {
    let channels = channels();
    let entry = channels.entry("live1").unwrap();
    let session = session(100);
    let mut first = String::new();
    let fixed = render::media_playlist(
        entry,
        &session,
        0,
        now(),
        settings("http://ads.test"),
        &mut first,
    )
    .unwrap();
    assert_eq!(fixed.len(), 1, "the open break, decided by rendering");
    let break_id = &fixed[0].0;
    let fixed_decision = session.decision(break_id).expect("fixed in the session");
    // A pod decision that missed the request's timeout lands later: it must not change what was served.
    let late = session.decide(
        break_id,
        super::session::BreakDecision {
            plan: None,
            ads: Vec::new(),
        },
    );
    assert!(
        Arc::ptr_eq(&late, &fixed_decision),
        "the first decision stays the session's"
    );

    let mut again = String::new();
    let fixed = render::media_playlist(
        entry,
        &session,
        0,
        now(),
        settings("http://ads.test"),
        &mut again,
    )
    .unwrap();
    assert!(fixed.is_empty(), "nothing new to share on a refresh");
    assert_eq!(first, again, "a refresh renders the same playlist");
    assert!(first.starts_with("#EXTM3U\n"), "{first}");
    assert!(first.contains("#EXT-X-MEDIA-SEQUENCE:100"), "{first}");
}

#[test]
fn a_stale_snapshot_is_refused_rather_than_served() {
    let channels = channels();
    let entry = channels.entry("live1").unwrap();
    let later = now() + chrono::TimeDelta::seconds(31);
    let err = render::media_playlist(
        entry,
        &session(100),
        0,
        later,
        settings("http://ads.test"),
        &mut String::new(),
    )
    .unwrap_err();
    assert!(matches!(err, StitchError::OriginUnavailable(_)), "{err}");
}

#[test]
fn the_master_playlist_points_every_variant_at_the_session() {
    let channels = channels();
    let master = render::master_playlist(
        channels.entry("live1").unwrap(),
        &session(100),
        "http://ads.test",
    )
    .unwrap();
    assert!(
        master.contains("http://ads.test/s/s1/0/media.m3u8"),
        "{master}"
    );
    assert!(!master.contains("0/index.m3u8"), "{master}");
}

fn sessions(shared: Option<Arc<SharedSessions>>) -> Sessions {
    Sessions::new(
        Arc::new(MemorySessionStore::default()),
        shared,
        None,
        60,
        Arc::new(now),
    )
}

#[tokio::test]
async fn a_draining_node_refuses_new_sessions_and_keeps_serving_its_own() {
    let sessions = sessions(None);
    let kept = sessions
        .create(
            "live1",
            ViewerContext::default(),
            SessionMode::Stitched,
            100,
        )
        .await
        .unwrap();
    sessions.set_draining(true);
    let refused = sessions
        .create(
            "live1",
            ViewerContext::default(),
            SessionMode::Stitched,
            100,
        )
        .await;
    assert!(matches!(refused, Err(StitchError::Draining)));
    let found = sessions.get(&kept.id, |_| true).await.unwrap();
    assert_eq!(found.id, kept.id);
}

#[tokio::test]
async fn a_session_of_another_node_is_adopted_only_for_a_channel_served_here() {
    let share = Arc::new(SharedSessions::new(Arc::new(MemorySessionShare::default())));
    let other_node = sessions(Some(share.clone()));
    let created = other_node
        .create(
            "live1",
            ViewerContext {
                viewer_id: Some("v1".into()),
                ..ViewerContext::default()
            },
            SessionMode::Stitched,
            100,
        )
        .await
        .unwrap();
    let this_node = sessions(Some(share));
    let unknown = this_node.get(&created.id, |c| c != "live1").await;
    assert!(matches!(unknown, Err(StitchError::UnknownSession(_))));
    let adopted = this_node.get(&created.id, |_| true).await.unwrap();
    assert_eq!(adopted.viewer.viewer_id.as_deref(), Some("v1"));
    assert_eq!(this_node.for_channel("live1").len(), 1, "kept locally");
    let (local, shared) = this_node.forget_viewers(&["v1".into()]).await.unwrap();
    assert_eq!((local, shared), (1, 1));
}

#[test]
fn the_decision_spread_is_stable_per_session_and_break_and_within_the_window() {
    let config = StitcherConfig {
        decision_spread_ms: 2_000,
        ..config()
    };
    let decisions = Decisions::new(&config, Arc::new(ConfiguredPodSource::new(&[], 0.5)), None);
    let delays: Vec<Duration> = (0..200)
        .map(|i| decisions.spread_delay(&format!("s{i}"), "b1"))
        .collect();
    assert!(delays.iter().all(|d| *d < Duration::from_secs(2)));
    assert_eq!(delays[7], decisions.spread_delay("s7", "b1"), "stable");
    let early = delays
        .iter()
        .filter(|d| **d < Duration::from_secs(1))
        .count();
    assert!(
        (60..140).contains(&early),
        "spread over the window: {early}/200 in the first half"
    );
}

/// A creative's media named by a third party (a VAST MediaFile) at a private address is not fetched: the
/// creative library goes through the guarded client.
#[tokio::test]
async fn creatives_at_private_addresses_are_refused() {
    let library = CreativeLibrary::new(
        interlude_outbound::GuardedClient::new(&interlude_outbound::OutboundConfig::default())
            .unwrap(),
        Duration::from_secs(1),
    );
    for url in [
        "http://127.0.0.1:9/ad/index.m3u8",
        "https://169.254.169.254/latest/meta-data/x.m3u8",
        "https://10.1.2.3/ad/index.m3u8",
        "file:///etc/passwd",
    ] {
        let err = library.media(url).await.unwrap_err().to_string();
        assert!(err.contains(url), "{err}");
    }
}

/// Hosts the operator configured (creatives, slate, origins) are allowed besides the outbound policy; nothing
/// else is.
#[test]
fn configured_hosts_are_allowed_and_only_they() {
    let rendition = |url: &str| super::config::RenditionConfig {
        bandwidth: 1,
        resolution: None,
        playlist: url.to_owned(),
    };
    let config = StitcherConfig {
        creatives: vec![super::config::CreativeConfig {
            id: "c".into(),
            duration_secs: 15.0,
            renditions: vec![rendition("http://127.0.0.1:8081/ads/c/0/index.m3u8")],
        }],
        channels: vec![ChannelConfig {
            id: "live1".into(),
            origin: "http://[::1]:9000/live/master.m3u8".into(),
            poll_interval_ms: None,
            origin_timeout_ms: 2_000,
            stale_after_secs: 30,
            slate: vec![rendition("https://cdn.example.com/slate/0.m3u8")],
            dash_origin: None,
            dash_ad_codecs: String::new(),
        }],
        ..StitcherConfig::default()
    };
    let outbound = super::service::with_configured_hosts(
        interlude_outbound::OutboundConfig {
            allow: vec!["10.0.0.0/8".into()],
            ..interlude_outbound::OutboundConfig::default()
        },
        &config,
    );
    assert_eq!(
        outbound.allow,
        [
            "10.0.0.0/8",
            "127.0.0.1:8081",
            "cdn.example.com:443",
            "[::1]:9000"
        ]
    );
}

#[tokio::test]
async fn a_node_at_its_session_cap_refuses_new_sessions() {
    let sessions = sessions(None).with_limits(2, None);
    for _ in 0..2 {
        sessions
            .create(
                "live1",
                ViewerContext::default(),
                SessionMode::Stitched,
                100,
            )
            .await
            .unwrap();
    }
    let refused = sessions
        .create(
            "live1",
            ViewerContext::default(),
            SessionMode::Stitched,
            100,
        )
        .await;
    assert!(matches!(refused, Err(StitchError::SessionCap)));
}

#[test]
fn a_client_over_its_creation_rate_is_told_when_to_retry() {
    let limiter = crate::ops::rate_limit::RateLimiter::new(0.01, 2);
    let sessions = sessions(None).with_limits(usize::MAX, limiter);
    let client = Some("192.0.2.9".parse().unwrap());
    sessions.admit_client(client).unwrap();
    sessions.admit_client(client).unwrap();
    match sessions.admit_client(client) {
        Err(StitchError::RateLimited { retry_after_secs }) => {
            assert!(retry_after_secs >= 1, "{retry_after_secs}");
        }
        other => panic!("expected a rate refusal, got {other:?}"),
    }
    sessions
        .admit_client(Some("192.0.2.10".parse().unwrap()))
        .unwrap();
    sessions.admit_client(None).unwrap();
}

#[tokio::test]
async fn only_sessions_seen_within_the_window_count_as_watching_and_expired_ones_are_not_live() {
    assert_eq!(
        super::service::active_window_ms(12),
        36_000,
        "three target durations"
    );
    assert_eq!(
        super::service::active_window_ms(2),
        30_000,
        "never below the floor"
    );
    let sessions = sessions(None);
    let session = sessions
        .create(
            "live1",
            ViewerContext::default(),
            SessionMode::Stitched,
            100,
        )
        .await
        .unwrap();
    let seen = session.last_seen_ms();
    assert!(session.is_watching(seen + 10_000, 10_000));
    assert!(!session.is_watching(seen + 10_001, 10_000));
    assert!(sessions.is_live(&session));
    let copy = Session::new(
        session.id.clone(),
        "live1".into(),
        ViewerContext::default(),
        now(),
        100,
    );
    assert!(
        !sessions.is_live(&copy),
        "another session of the same id is not this one"
    );
    let forgotten = Sessions::new(
        Arc::new(MemorySessionStore::default()),
        None,
        None,
        60,
        Arc::new(now),
    );
    assert!(!forgotten.is_live(&session), "not in this node's store");
}

/// A creative's playlist is fetched once while it is good, and a broken one once per miss window: a creative
/// chosen for every viewer of a break is not refetched (and warned about) per decision.
#[tokio::test]
async fn creative_playlists_are_cached_and_failures_remembered() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new()
        .route(
            "/good.m3u8",
            axum::routing::get(|| async {
                "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\ns0.ts\n#EXTINF:6.0,\ns1.ts\n#EXT-X-ENDLIST\n"
            }),
        )
        .route(
            "/broken.m3u8",
            axum::routing::get(|| async { (axum::http::StatusCode::NOT_FOUND, "gone") }),
        )
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                    next.run(request).await
                }
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let library = CreativeLibrary::new(
        interlude_outbound::GuardedClient::new(&interlude_outbound::OutboundConfig {
            allow: vec!["127.0.0.0/8".into()],
            ..interlude_outbound::OutboundConfig::default()
        })
        .unwrap(),
        Duration::from_secs(5),
    );
    for _ in 0..3 {
        let media = library.media(&format!("{base}/good.m3u8")).await.unwrap();
        assert_eq!(media.urls.len(), 2);
    }
    assert_eq!(
        hits.load(Ordering::Relaxed),
        1,
        "a good playlist is fetched once"
    );
    let first = library
        .media(&format!("{base}/broken.m3u8"))
        .await
        .unwrap_err();
    assert!(matches!(
        first,
        super::creatives::CreativeError::Playlist { .. }
    ));
    for _ in 0..5 {
        let again = library
            .media(&format!("{base}/broken.m3u8"))
            .await
            .unwrap_err();
        assert!(
            matches!(again, super::creatives::CreativeError::Remembered { .. }),
            "{again}"
        );
    }
    assert_eq!(
        hits.load(Ordering::Relaxed),
        2,
        "a failure is fetched once per window"
    );
    assert_eq!(library.len(), 2);
}

/// An operator-started break plays once: after it ends and its start scrolls out of the origin's window, it is
/// not started again at the window's head (it used to replay every window length, forever).
#[test]
fn an_operator_break_on_an_origin_without_cues_plays_once() {
    let channel = super::channel::Channel::new(config().channels[0].clone());
    let (variants, master) =
        interlude_stitch::hls::parse_master(MASTER, &format!("{ORIGIN}/master.m3u8")).unwrap();
    let mut tracker = BreakTracker::new(250_000);
    // A window of six 2 s segments without any cue, sliding one segment per refresh.
    let mut refresh = |first: u64| {
        let mut text = format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
        for msn in first..first + 6 {
            text.push_str(&format!("#EXTINF:2.0,\nc{msn}.ts\n"));
        }
        let media =
            interlude_stitch::hls::parse_media(&text, &format!("{ORIGIN}/0/index.m3u8")).unwrap();
        let observed = channel.with_operator_cues(&media.window, &media.observed, tracker.breaks());
        tracker.observe(&media.window, &observed).unwrap();
        channel.publish(ChannelSnapshot {
            renditions: vec![RenditionWindow {
                variant: variants[0].clone(),
                media: Arc::new(media),
                raw: bytes::Bytes::from(text),
            }],
            breaks: Arc::new(tracker.breaks().to_vec()),
            refreshed_at: Some(now()),
            master: Some(Arc::new(master.clone())),
        });
        tracker.breaks().to_vec()
    };
    refresh(100);
    let started = channel
        .start_break(Duration::from_secs(8))
        .expect("a break can start on a channel with a window and no open break");
    assert_eq!(started.msn, 106, "at the segment after the live edge");
    let mut seen: Vec<(String, u64)> = Vec::new();
    for first in 101..160 {
        for b in refresh(first) {
            if !seen.contains(&(b.id.clone(), b.start_msn)) {
                seen.push((b.id.clone(), b.start_msn));
            }
        }
    }
    assert_eq!(
        seen,
        [(started.break_id.clone(), 106)],
        "one break, started once"
    );
    assert_eq!(
        tracker.breaks()[0].end_msn,
        Some(110),
        "8 s of 2 s segments"
    );
    // With that break over, the operator may start another.
    assert!(channel.start_break(Duration::from_secs(4)).is_some());
}

/// A stitcher of `config` deciding with `pods`, its ads under `http://ads.test`, its beacons kept in memory.
fn builder(
    config: StitcherConfig,
    pods: Arc<dyn interlude_decision::PodSource>,
    clock: super::Clock,
) -> super::StitcherBuilder {
    super::Stitcher::builder(
        config,
        "http://ads.test".into(),
        pods,
        Arc::new(super::beacons::MemoryBeaconSink::default()),
        clock,
    )
}

/// A pod source that never answers.
struct Stuck;

impl interlude_decision::PodSource for Stuck {
    fn pod(&self, _: interlude_decision::PodRequest) -> interlude_decision::PodFuture<'_> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn a_fix_that_loses_to_another_nodes_pod_is_replaced_before_the_playlist_is_answered() {
    let share = Arc::new(SharedSessions::new(Arc::new(MemorySessionShare::default())));
    let config = StitcherConfig {
        decision_timeout_ms: 50,
        ..config()
    };
    let stitcher = builder(config, Arc::new(Stuck), Arc::new(now))
        .shared(Some(share.clone()))
        .build()
        .unwrap();
    // The session joins before the origin is read; then the break appears.
    let session = stitcher
        .create_session("live1", ViewerContext::default())
        .await
        .unwrap();
    publish(&stitcher.channels);
    let break_id = stitcher
        .channels
        .entry("live1")
        .unwrap()
        .channel
        .snapshot()
        .breaks[0]
        .id
        .clone();
    // This node's decision is still running (it holds the break's lock), while another node decided this
    // viewer's break and stored it first.
    let running = session.deciding(&break_id);
    let _running = running.lock().await;
    let theirs = super::session::BreakDecision {
        plan: Some(interlude_stitch::PodPlan::slate_only(10.0).unwrap()),
        ads: Vec::new(),
    };
    share
        .save_decision(&session.id, &break_id, &theirs)
        .await
        .unwrap();

    // The playlist request waits out the decision timeout, the render fixes the break (no slate here: the
    // origin's content), the fix loses to the stored pod, which is what the viewer is served.
    stitcher.decide_pending(&session).await;
    assert_eq!(session.decision(&break_id), None, "still undecided here");
    let mut served = String::new();
    stitcher
        .media_playlist(&session, 0, &mut served)
        .await
        .unwrap();
    assert_eq!(session.decision(&break_id).as_deref(), Some(&theirs));
    let mut again = String::new();
    stitcher
        .media_playlist(&session, 0, &mut again)
        .await
        .unwrap();
    assert_eq!(served, again, "a refresh serves what was served");
    assert_eq!(
        share.load_decision(&session.id, &break_id).await.unwrap(),
        Some(theirs)
    );
}

#[test]
fn a_session_due_back_soonest_is_decided_first_and_none_later_than_its_spread() {
    use super::service::decision_delay;
    let spread = Duration::from_millis(1_500);
    let now = 100_000;
    // Seen 5.8 s ago on a 6 s channel: back in 0.2 s, inside the lead: at once.
    assert_eq!(
        decision_delay(spread, now - 5_800, now, 6_000),
        Duration::ZERO
    );
    // Seen 5 s ago: back in 1 s, decided half a second before that.
    assert_eq!(
        decision_delay(spread, now - 5_000, now, 6_000),
        Duration::from_millis(500)
    );
    // Seen just now: back in 6 s, later than its place in the spread, which it keeps.
    assert_eq!(decision_delay(spread, now, now, 6_000), spread);
    // A clock that went backwards (seen "in the future") or an unknown target duration stay within the spread.
    assert_eq!(decision_delay(spread, now + 60_000, now, 6_000), spread);
    assert_eq!(decision_delay(spread, now - 1_000, now, 0), Duration::ZERO);
}

/// A pod source that decides nothing and remembers the ads it is told were abandoned.
#[derive(Default)]
struct Abandons(std::sync::Mutex<Vec<String>>);

impl interlude_decision::PodSource for Abandons {
    fn pod(&self, _: interlude_decision::PodRequest) -> interlude_decision::PodFuture<'_> {
        Box::pin(async { Ok(interlude_decision::Pod::default()) })
    }

    fn abandoned(&self, ad: &interlude_decision::PodAd) {
        self.0.lock().unwrap().push(ad.ad_instance_id.clone());
    }
}

#[tokio::test]
async fn a_session_that_expires_gives_back_every_ad_its_pods_hold() {
    let pods = Arc::new(Abandons::default());
    let clock_ms = Arc::new(std::sync::atomic::AtomicI64::new(now().timestamp_millis()));
    let read = clock_ms.clone();
    let clock: super::Clock = Arc::new(move || {
        DateTime::from_timestamp_millis(read.load(std::sync::atomic::Ordering::Relaxed)).unwrap()
    });
    let stitcher = builder(config(), pods.clone(), clock).build().unwrap();
    let session = stitcher
        .create_session("live1", ViewerContext::default())
        .await
        .unwrap();
    // Two breaks decided for the viewer, one ad each.
    let configured = ConfiguredPodSource::new(
        &[super::config::CreativeConfig {
            id: "ad10".into(),
            duration_secs: 10.0,
            renditions: Vec::new(),
        }],
        0.5,
    );
    let mut decided = Vec::new();
    for break_id in ["b1", "b2"] {
        let pod = interlude_decision::PodSource::pod(
            &configured,
            interlude_decision::PodRequest {
                channel: "live1".into(),
                session_id: session.id.clone(),
                break_id: break_id.into(),
                duration_secs: Some(10.0),
                viewer: ViewerContext::default(),
            },
        )
        .await
        .unwrap();
        let ads: Vec<_> = pod
            .ads
            .into_iter()
            .map(|ad| super::session::ResolvedAd {
                ad,
                segment_urls: Vec::new(),
                segment_micros: Arc::new([]),
                playlist_urls: Vec::new(),
                maps: Vec::new(),
            })
            .collect();
        decided.extend(ads.iter().map(|a| a.ad.ad_instance_id.clone()));
        session.decide(break_id, super::session::BreakDecision { plan: None, ads });
    }
    assert_eq!(decided.len(), 2);

    // Still within its TTL: nothing is given back.
    stitcher.expire_sessions();
    assert!(pods.0.lock().unwrap().is_empty());
    let ttl_ms = i64::try_from(config().session_ttl_secs * 1000).unwrap();
    clock_ms.fetch_add(ttl_ms + 1, std::sync::atomic::Ordering::Relaxed);
    stitcher.expire_sessions();
    let mut abandoned = pods.0.lock().unwrap().clone();
    abandoned.sort();
    decided.sort();
    assert_eq!(abandoned, decided);
    assert!(stitcher.session(&session.id).await.is_err(), "forgotten");
}
