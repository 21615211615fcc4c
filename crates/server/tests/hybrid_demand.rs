//! Hybrid pods against real HTTP servers on loopback: a third-party VAST tag (a Wrapper to an InLine), a fast
//! OpenRTB bidder whose bid wins a slot and gets its win notice, and a slow bidder cut off at `tmax` while the
//! pod is still returned.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use common::NoCounts;
use interlude_decision::catalog::Catalog;
use interlude_decision::engine::{Engine, Verdict};
use interlude_decision::openrtb::AuctionSettings;
use interlude_decision::{PodRequest, PodSource as _, ViewerContext};
use interlude_server::decisioning::decider::{BidderConfig, Decider, DemandConfig};

/// What the bidders and the tag server saw.
#[derive(Default)]
struct Seen {
    bid_requests: Vec<serde_json::Value>,
    notices: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

fn inline(id: &str, secs: u32, playlist: &str) -> String {
    format!(
        r#"<VAST version="4.2"><Ad id="{id}"><InLine><AdSystem>test</AdSystem><AdTitle>{id}</AdTitle>
        <Impression><![CDATA[https://3p.example/imp/{id}]]></Impression><Creatives><Creative adId="{id}"><Linear>
        <Duration>00:00:{secs:02}</Duration><MediaFiles><MediaFile delivery="streaming"
        type="application/x-mpegURL" width="1280" height="720" bitrate="2500"><![CDATA[{playlist}]]></MediaFile>
        </MediaFiles></Linear></Creative></Creatives></InLine></Ad></VAST>"#
    )
}

/// Serves the router `app` builds from its own base URL.
async fn serve(app: impl FnOnce(String) -> Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = app(base.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn bid_response(request: &serde_json::Value, bid_id: &str, price: f64, base: &str) -> String {
    serde_json::json!({
        "id": request["id"],
        "cur": "USD",
        "seatbid": [{ "bid": [{
            "id": bid_id,
            "impid": request["imp"][0]["id"],
            "price": price,
            "adomain": [format!("{bid_id}.example")],
            "dur": 15,
            "adm": inline(bid_id, 15, &format!("https://cdn.example/{bid_id}/720p.m3u8")),
            "nurl": format!("{base}/win?bid={bid_id}&price=${{AUCTION_PRICE}}"),
        }]}]
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bid_wins_a_slot_a_slow_bidder_is_cut_off_and_a_tag_fills_its_line_item() {
    let seen: Shared = Arc::default();

    // The third-party ad server: a wrapper that points at an inline ad.
    let tags = serve(|base| {
        Router::new()
            .route(
                "/wrapper",
                get(move || async move {
                    format!(
                        r#"<VAST version="4.2"><Ad id="w"><Wrapper><AdSystem>3p</AdSystem>
                        <Impression><![CDATA[https://3p.example/wrapper-imp]]></Impression>
                        <VASTAdTagURI><![CDATA[{base}/inline]]></VASTAdTagURI></Wrapper></Ad></VAST>"#
                    )
                }),
            )
            .route(
                "/inline",
                get(|| async { inline("rival-3p", 20, "https://cdn.example/rival/720p.m3u8") }),
            )
    })
    .await;

    let fast = serve(|base| {
        Router::new()
            .route(
                "/bid",
                post(
                    move |State(seen): State<Shared>, axum::Json(request): axum::Json<serde_json::Value>| async move {
                        seen.lock().unwrap().bid_requests.push(request.clone());
                        (
                            [("content-type", "application/json")],
                            bid_response(&request, "fast1", 20.0, &base),
                        )
                    },
                ),
            )
            .route(
                "/win",
                get(
                    |State(seen): State<Shared>, Query(q): Query<Vec<(String, String)>>| async move {
                        let q: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        seen.lock().unwrap().notices.push(q.join("&"));
                    },
                ),
            )
            .with_state(seen.clone())
    })
    .await;
    let slow = serve(|base| {
        Router::new().route(
            "/bid",
            post(
                move |axum::Json(request): axum::Json<serde_json::Value>| async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    bid_response(&request, "slow1", 90.0, &base)
                },
            ),
        )
    })
    .await;

    let mut catalog =
        Catalog::from_toml(include_str!("../../decision/tests/data/catalog.toml")).unwrap();
    let rival = catalog
        .creatives
        .iter_mut()
        .find(|c| c.id == "rival-20")
        .unwrap();
    rival.vast_tag = Some(format!("{tags}/wrapper?cb=[CACHEBUSTING]"));
    let now: DateTime<Utc> = "2026-11-23T20:00:00Z".parse().unwrap();
    let engine = Arc::new(Engine::new(catalog, Arc::new(NoCounts), 6, 500));
    let decider = Decider::new(
        engine,
        Arc::new(move || now),
        DemandConfig {
            bidders: vec![
                BidderConfig::new("fast", format!("{fast}/bid")),
                BidderConfig::new("slow", format!("{slow}/bid")),
            ],
            auction: AuctionSettings {
                tmax_ms: 300,
                ..AuctionSettings::default()
            },
            ..DemandConfig::default()
        },
        common::loopback_http(),
    );

    // A German viewer: CarCo's guaranteed line item targets FR/BE, so the rival's third-party tag can serve.
    let request = PodRequest {
        channel: "live1".into(),
        session_id: "s1".into(),
        break_id: "b1".into(),
        duration_secs: Some(60.0),
        viewer: ViewerContext {
            viewer_id: Some("v1".into()),
            device: Some("tv".into()),
            country: Some("DE".into()),
            genre: Some("football".into()),
            ..ViewerContext::default()
        },
    };
    let started = Instant::now();
    let d = decider.decide(&request, true, true).await;
    let elapsed = started.elapsed();

    let creatives: Vec<&str> = d
        .decision
        .pod
        .ads
        .iter()
        .map(|a| a.creative_id.as_str())
        .collect();
    assert_eq!(
        creatives,
        ["brewer-15", "rival-3p", "fast1", "promo-10"],
        "{d:#?}"
    );
    // Not waiting for the slow bidder's five seconds is the point; the bound is loose on purpose.
    assert!(
        elapsed < Duration::from_secs(4),
        "the pod took {elapsed:?}: the slow bidder was not cut off"
    );
    assert!(
        d.refused
            .iter()
            .any(|r| r.id == "bidder:slow" && r.reason.contains("tmax")),
        "{:?}",
        d.refused
    );
    let verdict = |id: &str| {
        d.decision
            .explanation
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(verdict("bid:fast:fast1"), Some(Verdict::Chosen));
    assert_eq!(verdict("rival-all"), Some(Verdict::Chosen));

    // The rival's ad carries both the wrapper's and the inline's impressions, and its line item's ids.
    let rival = &d.decision.pod.ads[1];
    assert_eq!(rival.line_item_id.as_deref(), Some("rival-all"));
    assert!(
        rival
            .impression_urls
            .iter()
            .any(|u| u.ends_with("wrapper-imp"))
    );
    assert_eq!(rival.duration_secs, 20.0);

    // What the bidder was asked: the open part of the pod, with direct demand's separation.
    let request = seen.lock().unwrap().bid_requests[0].clone();
    let video = &request["imp"][0]["video"];
    assert_eq!(video["podid"], "b1");
    assert_eq!(video["poddur"], 45, "60 s less the sponsor's 15 s");
    assert_eq!(video["maxseq"], 5);
    assert_eq!(request["tmax"], 300);
    assert_eq!(request["badv"][0], "brewer.example");
    assert!(
        request["bcat"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "beer")
    );
    assert_eq!(request["device"]["geo"]["country"], "DEU");

    // The win notice arrives with the price filled in, once the pod is served (as the stitcher says when it
    // has stored the pod).
    for ad in &d.decision.pod.ads {
        decider.served(ad);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let notices = seen.lock().unwrap().notices.clone();
        if let Some(n) = notices.first() {
            assert_eq!(n, "bid=fast1&price=20.0000");
            break;
        }
        assert!(Instant::now() < deadline, "no win notice");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The demand report once the tally is flushed: the fast bidder asked, bid and won; the slow one timed out.
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn interlude_store::ReportStore> = Arc::new(
        interlude_store::EventStore::open(dir.path(), interlude_events::Policy::default()).unwrap(),
    );
    decider.tally().flush(&store).await;
    let rows = store
        .demand_report(
            interlude_store::DemandGroupBy::Bidder,
            now - chrono::TimeDelta::hours(1),
            now + chrono::TimeDelta::hours(1),
        )
        .await
        .unwrap();
    let outcomes: Vec<(&str, [u64; 7])> = rows
        .iter()
        .map(|r| (r.key.as_str(), r.auctions.as_array()))
        .collect();
    // requests, no bids, timeouts, errors, bids, wins, losses
    assert_eq!(
        outcomes,
        [
            ("fast", [1, 0, 0, 0, 1, 1, 0]),
            ("slow", [1, 0, 1, 0, 0, 0, 0])
        ]
    );
}

/// A bidder that always bids `price` with the shared creative, and records its notices (path and query).
async fn shared_creative_bidder(bid_id: &'static str, price: f64, seen: Shared) -> String {
    serve(move |base| {
        Router::new()
            .route(
                "/bid",
                post(move |axum::Json(request): axum::Json<serde_json::Value>| {
                    let base = base.clone();
                    async move {
                        let response = serde_json::json!({
                            "id": request["id"],
                            "cur": "USD",
                            "seatbid": [{ "bid": [{
                                "id": bid_id,
                                "impid": request["imp"][0]["id"],
                                "price": price,
                                "adomain": [format!("{bid_id}.example")],
                                // Competitive categories are kept apart: only one of the two can be in the pod.
                                "cat": ["IAB2-1"],
                                "crid": "shared-15",
                                "dur": 15,
                                "adm": inline("shared-15", 15, "https://cdn.example/shared/720p.m3u8"),
                                "nurl": format!("{base}/win?bid={bid_id}&price=${{AUCTION_PRICE}}"),
                                "burl": format!("{base}/bill?bid={bid_id}&price=${{AUCTION_PRICE}}"),
                                "lurl": format!("{base}/loss?bid={bid_id}&reason=${{AUCTION_LOSS}}"),
                            }]}]
                        });
                        ([("content-type", "application/json")], response.to_string())
                    }
                }),
            )
            .route(
                "/{notice}",
                get(
                    |State(seen): State<Shared>, uri: axum::http::Uri| async move {
                        seen.lock().unwrap().notices.push(uri.to_string());
                    },
                ),
            )
            .with_state(seen)
    })
    .await
}

/// A decider over the engine tests' catalog at a fixed time, asking `bidders`.
fn decider_asking(bidders: Vec<BidderConfig>) -> Decider {
    let catalog =
        Catalog::from_toml(include_str!("../../decision/tests/data/catalog.toml")).unwrap();
    let now: DateTime<Utc> = "2026-11-23T20:00:00Z".parse().unwrap();
    let engine = Arc::new(Engine::new(catalog, Arc::new(NoCounts), 6, 500));
    Decider::new(
        engine,
        Arc::new(move || now),
        DemandConfig {
            bidders,
            ..DemandConfig::default()
        },
        common::loopback_http(),
    )
}

/// A 60 s break for session `session` of a viewer in Germany watching football on a TV.
fn football_viewer_request(session: &str) -> PodRequest {
    PodRequest {
        channel: "live1".into(),
        session_id: session.into(),
        break_id: "b1".into(),
        duration_secs: Some(60.0),
        viewer: ViewerContext {
            device: Some("tv".into()),
            country: Some("DE".into()),
            genre: Some("football".into()),
            ..ViewerContext::default()
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bids_with_one_creative_notify_the_bidder_that_won_and_tell_the_other_why_it_lost() {
    let (high_seen, low_seen): (Shared, Shared) = (Arc::default(), Arc::default());
    let high = shared_creative_bidder("high", 25.0, high_seen.clone()).await;
    let low = shared_creative_bidder("low", 12.0, low_seen.clone()).await;
    // The loser listed first: matching by creative id would have picked it.
    let decider = decider_asking(vec![
        BidderConfig::new("low", format!("{low}/bid")),
        BidderConfig::new("high", format!("{high}/bid")),
    ]);
    let d = decider
        .decide(&football_viewer_request("s2"), false, true)
        .await;
    let shared: Vec<_> = d
        .decision
        .pod
        .ads
        .iter()
        .filter(|a| a.creative_id == "shared-15")
        .collect();
    assert_eq!(shared.len(), 1, "{:#?}", d.decision.pod);
    // Served (as the stitcher says once the pod is stored): only now does the winner hear of its win.
    for ad in &d.decision.pod.ads {
        decider.served(ad);
    }
    let won = shared[0]
        .bid
        .as_ref()
        .expect("a programmatic ad carries its bid");
    assert_eq!((won.seat.as_str(), won.bid_id.as_str()), ("high", "high"));
    assert!(
        won.burl.as_deref().is_some_and(|b| b.contains("bid=high")),
        "{won:?}"
    );
    assert!(
        !shared[0]
            .impression_urls
            .iter()
            .any(|u| u.contains("/bill")),
        "the burl is not an impression pixel"
    );

    // The winner hears of its win (price filled), the loser of its loss with code 102; nobody is billed at
    // decision time.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (h, l) = (
            high_seen.lock().unwrap().notices.clone(),
            low_seen.lock().unwrap().notices.clone(),
        );
        if !h.is_empty() && !l.is_empty() {
            assert_eq!(h, ["/win?bid=high&price=25.0000"]);
            assert_eq!(l, ["/loss?bid=low&reason=102"]);
            break;
        }
        assert!(Instant::now() < deadline, "notices: high {h:?}, low {l:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_bid_whose_creative_does_not_stitch_hears_it_lost_as_creative_filtered() {
    let seen: Shared = Arc::default();
    let bidder = shared_creative_bidder("only", 25.0, seen.clone()).await;
    let decider = decider_asking(vec![BidderConfig::new("only", format!("{bidder}/bid"))]);
    let d = decider
        .decide(&football_viewer_request("s3"), false, true)
        .await;
    // The stitcher could not play the bid's creative: it leaves the ad out and says so; the rest is served.
    for ad in &d.decision.pod.ads {
        if ad.bid.is_some() {
            decider.dropped(ad);
        } else {
            decider.served(ad);
        }
    }
    assert!(
        d.decision.pod.ads.iter().any(|a| a.bid.is_some()),
        "{:#?}",
        d.decision.pod
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let notices = seen.lock().unwrap().notices.clone();
        if !notices.is_empty() {
            assert_eq!(notices, ["/loss?bid=only&reason=200"], "a loss, and no win");
            break;
        }
        assert!(Instant::now() < deadline, "no loss notice");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
