//! Pod decisions per second with third-party demand in the pod, against the same decisions with direct-sold
//! demand only, in the same run, alternated in short slices (A/B/A/B) so machine drift cannot fake the ratio.
//!
//! Both applications are built by `App::build` and served over HTTP on loopback; the load is `GET /v1/vast` for
//! distinct viewers (the path a client-side player or an SSAI vendor takes). The measured one has:
//! - a VAST ad server over HTTPS (own CA, `outbound.ca_file`) behind a standard line item's `vast_tag`;
//! - a fast DSP over HTTPS, bidding on every request with InLine markup;
//! - a DSP that answers only after [`SLOW_DSP_MS`], far past `tmax` (every auction waits its cut-off).
//!
//! The baseline has the same direct-sold line items and neither. What the figures say: the cost of
//! third-party demand per decision, and whether a decision's latency stays inside its budget (the auction's
//! `tmax`, then at most the VAST chain's) at the 99th percentile while a bidder never answers in time.
//!
//! Run: `cargo bench -p interlude-server --bench demand` (`DEMAND_BENCH_SECS`, `DEMAND_BENCH_CONNECTIONS`
//! change the size; `DEMAND_BENCH_OUT=<file>` also writes the figures as JSON, as `scripts/bench.sh` does).
//! Results are in `docs/performance.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::tls::{TlsServer, test_ca};
use interlude_decision::openrtb::AuctionSettings;
use interlude_loadgen::{LoadReport, LoadSpec};
use interlude_server::decisioning::decider::{BidderConfig, DemandConfig};
use interlude_server::{App, InterludeConfig};

/// The auction's `tmax`.
const TMAX_MS: u64 = 150;
/// How long the slow DSP takes to answer: every auction is cut off at `tmax` without it.
const SLOW_DSP_MS: u64 = 1_000;
/// Length of one A or B slice.
const SLICE_SECS: f64 = 2.0;
/// Distinct viewers the load cycles through.
const VIEWERS: usize = 10_000;

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An InLine ad of 15 s with an impression pixel and an HLS media file, served from `base`.
fn inline(id: &str, base: &str) -> String {
    format!(
        r#"<VAST version="4.2"><Ad id="{id}"><InLine><AdSystem>3p</AdSystem><AdTitle>{id}</AdTitle>
        <Impression><![CDATA[{base}/imp?cb=[CACHEBUSTING]]]></Impression>
        <Creatives><Creative adId="{id}"><UniversalAdId idRegistry="ad-id.org">{id}</UniversalAdId>
        <Linear><Duration>00:00:15</Duration>
        <TrackingEvents><Tracking event="complete"><![CDATA[{base}/t/complete]]></Tracking></TrackingEvents>
        <MediaFiles><MediaFile delivery="streaming" type="application/x-mpegURL" width="640" height="360"
        bitrate="800"><![CDATA[{base}/{id}/index.m3u8]]></MediaFile></MediaFiles></Linear></Creative></Creatives>
        </InLine></Ad></VAST>"#
    )
}

/// Direct-sold line items (guaranteed and standard, some capped, two competing categories), and, when `tag` is
/// given, a standard line item whose creative is that third-party tag.
fn catalog(tag: Option<&str>) -> String {
    let mut out = String::from(
        r#"
[[advertisers]]
id = "carco"
categories = ["auto"]

[[advertisers]]
id = "brewer"
categories = ["beer"]

[[campaigns]]
id = "carco-q4"
advertiser = "carco"
frequency_caps = [{ max = 3, window_hours = 24 }]

[[campaigns]]
id = "brewer-q4"
advertiser = "brewer"
"#,
    );
    for (i, (campaign, advertiser, tier)) in [
        ("carco-q4", "carco", "guaranteed"),
        ("brewer-q4", "brewer", "standard"),
    ]
    .into_iter()
    .enumerate()
    {
        out.push_str(&format!(
            r#"
[[line_items]]
id = "direct-{i}"
campaign = "{campaign}"
tier = "{tier}"
start = "2020-01-01T00:00:00Z"
end = "2100-01-01T00:00:00Z"
goal = {{ impressions = 100000000 }}
cpm = {cpm}
frequency_caps = [{{ max = 2, window_hours = 1 }}]
creatives = ["direct-{i}-15"]

[[creatives]]
id = "direct-{i}-15"
advertiser = "{advertiser}"
duration_secs = 15.0
approved = true
renditions = [{{ bandwidth = 800000, resolution = "640x360", playlist = "https://cdn.example.com/direct-{i}/360p.m3u8" }}]
"#,
            cpm = 20 + i
        ));
    }
    if let Some(tag) = tag {
        out.push_str(&format!(
            r#"
[[advertisers]]
id = "tp"
categories = []

[[campaigns]]
id = "tp-q4"
advertiser = "tp"

[[line_items]]
id = "tp-all"
campaign = "tp-q4"
tier = "standard"
start = "2020-01-01T00:00:00Z"
end = "2100-01-01T00:00:00Z"
goal = {{ impressions = 100000000 }}
cpm = 10.0
creatives = ["tp-15"]

[[creatives]]
id = "tp-15"
advertiser = "tp"
duration_secs = 15.0
approved = true
vast_tag = "{tag}"
"#
        ));
    }
    out
}

/// A DSP bidding on every request, answering after `delay`.
async fn dsp(tls: Arc<rustls::ServerConfig>, name: &'static str, delay: Duration) -> TlsServer {
    TlsServer::start_delayed(
        tls,
        Arc::new(move |base: &str, path: &str, body: &[u8]| {
            if path != "/bid" {
                return (path.ends_with(".m3u8")).then(|| {
                    "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na.ts\n#EXT-X-ENDLIST\n"
                        .to_owned()
                });
            }
            let request: serde_json::Value = serde_json::from_slice(body).ok()?;
            Some(
                serde_json::json!({
                    "id": request["id"],
                    "cur": "USD",
                    "seatbid": [{ "seat": name, "bid": [{
                        "id": format!("{name}-bid"),
                        "impid": request["imp"][0]["id"],
                        "price": 12.0,
                        "adomain": [format!("{name}.example")],
                        "crid": format!("{name}-15"),
                        "dur": 15,
                        "adm": inline(&format!("{name}-15"), base),
                        "nurl": format!("{base}/win?price=${{AUCTION_PRICE}}"),
                        "lurl": format!("{base}/loss?reason=${{AUCTION_LOSS}}"),
                    }]}]
                })
                .to_string(),
            )
        }),
        delay,
    )
    .await
}

/// An application built from `config` serving on a loopback port; its base URL.
async fn serve(config: InterludeConfig) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = App::build(&config, Arc::new(chrono::Utc::now))
        .await
        .expect("the application builds");
    tokio::spawn(async move { app.serve_on(listener, std::future::pending()).await });
    base
}

fn config(dir: &Path, name: &str, catalog_text: &str) -> InterludeConfig {
    let catalog = dir.join(format!("{name}.toml"));
    std::fs::write(&catalog, catalog_text).unwrap();
    let mut config = InterludeConfig {
        server: interlude_server::ServerConfig {
            insecure_dev: true,
            ..interlude_server::ServerConfig::default()
        },
        ..InterludeConfig::default()
    };
    config.events.data_dir = dir.join(format!("{name}-events"));
    config.decision.catalog = Some(catalog);
    config
}

fn urls(base: &str) -> Vec<String> {
    let (devices, countries) = (["tv", "mobile", "desktop"], ["FR", "DE", "GB", "US", "BE"]);
    (0..VIEWERS)
        .map(|i| {
            format!(
                "{base}/v1/vast?channel=live1&duration=60&device={}&country={}&session=bench-{i}&viewer=v{i}",
                devices[i % devices.len()],
                countries[i % countries.len()]
            )
        })
        .collect()
}

async fn slice(targets: &[String], connections: usize, secs: f64) -> LoadReport {
    let spec = LoadSpec {
        targets: targets.to_vec(),
        connections,
        duration: Duration::from_secs_f64(secs),
        timeout: Duration::from_secs(10),
    };
    let report = interlude_loadgen::run(&spec).await.expect("load runs");
    assert_eq!(
        report.ok, report.requests,
        "failures under load: {:?}",
        report.by_status
    );
    report
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let secs = env("DEMAND_BENCH_SECS", 16.0);
    let connections = env("DEMAND_BENCH_CONNECTIONS", 256.0) as usize;
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, tls) = test_ca();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();

    let ads = TlsServer::start(
        tls.clone(),
        Arc::new(|base: &str, path: &str, _: &[u8]| match path {
            "/vast" => Some(inline("tag-15", base)),
            p if p.ends_with(".m3u8") => Some(
                "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na.ts\n#EXT-X-ENDLIST\n".to_owned(),
            ),
            _ => None,
        }),
    )
    .await;
    let fast = dsp(tls.clone(), "fast", Duration::ZERO).await;
    let slow = dsp(tls, "slow", Duration::from_millis(SLOW_DSP_MS)).await;

    let baseline = serve(config(dir.path(), "direct", &catalog(None))).await;
    let mut with_demand = config(
        dir.path(),
        "demand",
        &catalog(Some(&format!("{}/vast", ads.base()))),
    );
    with_demand.decision.demand = DemandConfig {
        bidders: vec![
            BidderConfig::new("fast", format!("{}/bid", fast.base())),
            BidderConfig::new("slow", format!("{}/bid", slow.base())),
        ],
        auction: AuctionSettings {
            tmax_ms: TMAX_MS,
            ..AuctionSettings::default()
        },
        ..DemandConfig::default()
    };
    let budget_ms = TMAX_MS.max(with_demand.decision.demand.vast_total_timeout_ms);
    with_demand.outbound.allow = vec![
        ads.addr.to_string(),
        fast.addr.to_string(),
        slow.addr.to_string(),
    ];
    with_demand.outbound.ca_file = Some(ca_file);
    with_demand.outbound.built_in_roots = false;
    let measured = serve(with_demand).await;

    // One decision each first: the measured pod must hold the third parties' ads, or the bench measures
    // nothing of them.
    let http = reqwest::Client::new();
    let sample = http
        .get(&urls(&measured)[0])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for id in ["tag-15", "fast-15"] {
        assert!(sample.contains(id), "no {id} in the pod:\n{sample}");
    }
    let direct = http
        .get(&urls(&baseline)[0])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(direct.contains("direct-"), "no direct ad:\n{direct}");

    let (a_urls, b_urls) = (urls(&baseline), urls(&measured));
    let count = (secs / SLICE_SECS).ceil().max(2.0) as usize;
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let a = slice(&a_urls, connections, SLICE_SECS).await;
        let b = slice(&b_urls, connections, SLICE_SECS).await;
        pairs.push((a, b));
    }
    let rate = |r: &LoadReport| r.requests_per_sec;
    let ratios: Vec<f64> = pairs.iter().map(|(a, b)| rate(b) / rate(a)).collect();
    let med = |f: fn(&LoadReport) -> f64, side: usize| {
        median(
            pairs
                .iter()
                .map(|p| f(if side == 0 { &p.0 } else { &p.1 }))
                .collect(),
        )
    };
    println!(
        "Pod decisions over HTTP (GET /v1/vast, {VIEWERS} viewers, {connections} connections, {count} A/B pairs of {SLICE_SECS} s)"
    );
    for (side, name) in [(0, "direct only"), (1, "+ tag, fast DSP, slow DSP")] {
        println!(
            "  {name:<26} {:>8.0} decisions/s  p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms",
            med(rate, side),
            med(|r| r.latency.p50_us as f64 / 1000.0, side),
            med(|r| r.latency.p99_us as f64 / 1000.0, side),
            pairs
                .iter()
                .map(|p| if side == 0 { &p.0 } else { &p.1 })
                .map(|r| r.latency.max_us as f64 / 1000.0)
                .fold(0.0, f64::max),
        );
    }
    println!(
        "  ratio with demand / direct only: {:.3} (median of pairs {:.3?})",
        median(ratios.clone()),
        ratios
    );
    println!(
        "  budget: tmax {TMAX_MS} ms, VAST chain {budget_ms} ms; the slow DSP answers after {SLOW_DSP_MS} ms"
    );
    println!(
        "  win and loss notices the fast DSP received: {}",
        fast.hits.lock().unwrap().len()
    );
    if let Ok(path) = std::env::var("DEMAND_BENCH_OUT") {
        let side = |side: usize| {
            serde_json::json!({
                "decisions_per_sec": med(rate, side),
                "p50_us": med(|r| r.latency.p50_us as f64, side),
                "p99_us": med(|r| r.latency.p99_us as f64, side),
            })
        };
        let json = serde_json::json!({
            "connections": connections,
            "viewers": VIEWERS,
            "pairs": ratios,
            "ratio": median(ratios.clone()),
            "direct_only": side(0),
            "with_demand": side(1),
            "tmax_ms": TMAX_MS,
            "budget_ms": budget_ms,
            "slow_dsp_ms": SLOW_DSP_MS,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    }
}
