//! The live in-event dashboard: a static web app built into the binary (`/dashboard`, plain JavaScript with
//! uPlot for the charts, vendored under `assets/dashboard/` with its licence) fed by a Server-Sent Events
//! stream (`/v1/dashboard/stream`, one [`Snapshot`] per second; `/v1/dashboard/snapshot` for one).
//!
//! A snapshot is read from the running parts themselves: the stitcher's channels, the event store's totals,
//! quarantine, line item delivery and demand by bidder, the decider's controls, the conditioning queue, and the process's live metrics registry
//! ([`crate::telemetry::metrics::Live`]) for latencies (bucket quantiles), fill seconds, duplicates, lag,
//! load shedding, and the outbox's pixels (fired, failed, retried, latency per host). Rates are the browser's job: it differences successive snapshots.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::stream::{self, Stream};
use interlude_decision::catalog::Catalog;
use interlude_events::Counts;
use serde::Serialize;

use crate::collector::Collector;
use crate::decisioning::decider::Decider;
use crate::stitcher::ChannelSummary;
use crate::stitcher::Stitcher;
use crate::telemetry::metrics::{
    EVENTS_DUPLICATES, EVENTS_LAG, EVENTS_RETRIES, HTTP_REQUEST_DURATION, HTTP_SHED,
    LATENCY_BUCKETS, Live, STITCHER_BREAK_SECONDS, STITCHER_DECISION_DURATION,
    STITCHER_DECISIONS_AHEAD, STITCHER_DECISIONS_ON_REQUEST, quantile,
};

/// Everything the dashboard shows, at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// Channels.
    pub channels: Vec<ChannelSummary>,
    /// Seconds of breaks given to ads and to slate, per channel.
    pub fill: BTreeMap<String, FillSeconds>,
    /// Counted events (two days), by type.
    pub counted: Counts,
    /// Reports that were duplicates of counted events, and retries of the same report (process lifetime).
    pub duplicates: f64,
    /// Retries.
    pub retries: f64,
    /// Quarantined events by reason.
    pub quarantine: BTreeMap<String, u64>,
    /// Event-time lag of the newest committed event, seconds.
    pub lag_secs: Option<f64>,
    /// Pod decision latency (stitcher), milliseconds.
    pub decision_ms: Quantiles,
    /// Pods decided ahead from the cue against those a playlist request waited for (process lifetime).
    pub decisions: DecisionTiming,
    /// Media playlist latency, milliseconds.
    pub playlist_ms: Quantiles,
    /// Requests refused by load shedding, by class.
    pub shed: BTreeMap<String, f64>,
    /// Line items: delivery against goal.
    pub line_items: Vec<LineItemStatus>,
    /// Bidders (two days): auction outcomes and the counted delivery and spend of the ads they won.
    pub demand: Vec<interlude_store::DemandRow>,
    /// Third parties' pixels and notices fired by the server (process lifetime).
    pub pixels: PixelStats,
    /// Creative conditioning, when on.
    pub conditioning: Option<ConditioningStats>,
    /// Operator controls in force.
    pub controls: Option<crate::decisioning::decider::Controls>,
}

/// When the stitcher's pods were decided: ahead, between the cue and the viewer's first playlist showing the
/// break, or on request, while that playlist waited (a break-start herd the node could not decide in time).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DecisionTiming {
    /// Decided ahead.
    pub ahead: f64,
    /// Decided while a playlist request waited.
    pub on_request: f64,
}

/// The outbox's work: pixels and notices fired, retried, failed and given up, and how each host answers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PixelStats {
    /// Delivered (a 2xx or 3xx answer), by event (`impression`, `firstQuartile`, `nurl`, `burl`, `lurl`, …).
    pub fired: BTreeMap<String, u64>,
    /// Failed sends (every attempt), by reason (`4xx`, `5xx`, `timeout`, `refused`, …).
    pub failed: BTreeMap<String, u64>,
    /// Put back for another attempt.
    pub retried: u64,
    /// Given up (dead letters).
    pub dead_lettered: u64,
    /// In the queue now.
    pub queued: Option<f64>,
    /// Per host: sends and answer latency.
    pub hosts: Vec<HostLatency>,
}

/// How one third-party host answers.
#[derive(Debug, Clone, Serialize)]
pub struct HostLatency {
    /// `host:port`.
    pub host: String,
    /// Sends answered or failed.
    pub sends: u64,
    /// Answer latency, milliseconds.
    pub ms: Quantiles,
}

/// Creative conditioning: the queue's jobs by state and the ads skipped for pods, by reason.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConditioningStats {
    /// Jobs by state (`queued`, `running`, `ready`, `failed`); empty when the queue could not be read.
    pub jobs: BTreeMap<String, u64>,
    /// Ads skipped for a pod because they were not conditioned yet, by reason (`NEW_CREATIVE`, …).
    pub skipped: BTreeMap<String, u64>,
}

/// Ad and slate seconds of a channel's breaks.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct FillSeconds {
    /// Given to ads.
    pub ad: f64,
    /// Left to slate.
    pub slate: f64,
}

/// p50 and p99.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Quantiles {
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// One line item's delivery.
#[derive(Debug, Clone, Serialize)]
pub struct LineItemStatus {
    /// Id.
    pub id: String,
    /// Tier.
    pub tier: String,
    /// Counted impressions since its flight start.
    pub delivered: u64,
    /// Its goal in impressions.
    pub goal: u64,
    /// Share of its flight elapsed.
    pub flight_elapsed: f64,
    /// Its pacing mode (`even`, `asap`): only an evenly paced line item has a schedule to be behind or ahead
    /// of; an ASAP one (a sponsorship, house promos, programmatic demand) takes what traffic offers.
    pub pacing: String,
}

/// What the dashboard reads.
#[derive(Clone)]
pub struct Sources {
    /// The stitcher.
    pub stitcher: Arc<Stitcher>,
    /// The collector.
    pub collector: Collector,
    /// The decider, when decisioning from a catalog.
    pub decider: Option<Arc<Decider>>,
    /// The process's live metrics.
    pub metrics: Arc<Live>,
    /// Creative conditioning, when on.
    pub conditioning: Option<Arc<crate::conditioning::Conditioning>>,
    /// The clock.
    pub clock: interlude_events::Clock,
}

impl Sources {
    /// Takes a snapshot.
    pub async fn snapshot(&self) -> Snapshot {
        let now = (self.clock)();
        let live = &self.metrics;
        let mut fill: BTreeMap<String, FillSeconds> = BTreeMap::new();
        for (kind, seconds) in [("ad", true), ("slate", false)] {
            let by_channel =
                live.counter_by_labels(STITCHER_BREAK_SECONDS, "channel", &[("kind", kind)]);
            for (channel, n) in by_channel {
                let f = fill.entry(channel).or_default();
                if seconds {
                    f.ad += n as f64;
                } else {
                    f.slate += n as f64;
                }
            }
        }
        let shed = live
            .counter_by(HTTP_SHED, "class")
            .into_iter()
            .map(|(class, n)| (class, n as f64))
            .collect();
        let reports = self.collector.reports();
        let counters = self.collector.counters();
        let counted = reports
            .report(
                interlude_store::GroupBy::Channel,
                now - TimeDelta::days(2),
                now + TimeDelta::minutes(1),
            )
            .await
            .map(|rows| {
                rows.iter().fold(Counts::default(), |mut t, r| {
                    t.add(&r.counts);
                    t
                })
            })
            .unwrap_or_default();
        let line_items = self
            .decider
            .as_ref()
            .map(|d| {
                let engine = d.engine();
                engine
                    .catalog()
                    .line_items
                    .iter()
                    .map(|l| {
                        let flight = (l.end - l.start).num_seconds().max(1) as f64;
                        LineItemStatus {
                            id: l.id.clone(),
                            tier: format!("{:?}", l.tier).to_lowercase(),
                            delivered: counters.delivered(&l.id, l.start),
                            goal: Catalog::goal_impressions(l),
                            flight_elapsed: ((now - l.start).num_seconds() as f64 / flight)
                                .clamp(0.0, 1.0),
                            pacing: format!("{:?}", l.pacing).to_lowercase(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let ms = |counts: [u64; LATENCY_BUCKETS.len() + 1]| Quantiles {
            p50: quantile(&counts, 0.5).map(|s| s * 1000.0),
            p99: quantile(&counts, 0.99).map(|s| s * 1000.0),
        };
        let playlist = live.buckets(HTTP_REQUEST_DURATION, |key| {
            key.labels()
                .any(|l| l.key() == "route" && l.value().ends_with("media.m3u8"))
        });
        let conditioning = match &self.conditioning {
            Some(c) => Some(conditioning_stats(c, live).await),
            None => None,
        };
        Snapshot {
            at: now,
            channels: self.stitcher.channel_summaries(),
            fill,
            counted,
            duplicates: live.counter(EVENTS_DUPLICATES, &[]) as f64,
            retries: live.counter(EVENTS_RETRIES, &[]) as f64,
            quarantine: reports.quarantine_counts().await.unwrap_or_default(),
            demand: reports
                .demand_report(
                    interlude_store::DemandGroupBy::Bidder,
                    now - TimeDelta::days(2),
                    now + TimeDelta::hours(1),
                )
                .await
                .unwrap_or_default(),
            lag_secs: live.gauge(EVENTS_LAG),
            decision_ms: ms(live.buckets(STITCHER_DECISION_DURATION, |_| true)),
            decisions: DecisionTiming {
                ahead: live.counter(STITCHER_DECISIONS_AHEAD, &[]) as f64,
                on_request: live.counter(STITCHER_DECISIONS_ON_REQUEST, &[]) as f64,
            },
            playlist_ms: ms(playlist),
            shed,
            line_items,
            controls: self.decider.as_ref().map(|d| d.controls()),
            pixels: pixel_stats(live),
            conditioning,
        }
    }
}

/// The outbox's counters and per-host latency from the live registry.
fn pixel_stats(live: &Live) -> PixelStats {
    use interlude_outbox::metrics as om;
    let hosts = live
        .buckets_by(om::SEND_DURATION_SECONDS, "host")
        .into_iter()
        .map(|(host, counts)| HostLatency {
            host,
            sends: counts.iter().sum(),
            ms: Quantiles {
                p50: quantile(&counts, 0.5).map(|s| s * 1000.0),
                p99: quantile(&counts, 0.99).map(|s| s * 1000.0),
            },
        })
        .collect();
    PixelStats {
        fired: live.counter_by(om::FIRED_TOTAL, "event"),
        failed: live.counter_by(om::FAILED_TOTAL, "reason"),
        retried: live.counter(om::RETRIED_TOTAL, &[]),
        dead_lettered: live.counter(om::DEAD_LETTERED_TOTAL, &[]),
        queued: live.gauge(om::QUEUE_DEPTH),
        hosts,
    }
}

/// The conditioning queue's jobs by state, and the skips by reason.
async fn conditioning_stats(
    c: &crate::conditioning::Conditioning,
    live: &Live,
) -> ConditioningStats {
    let mut jobs = BTreeMap::new();
    match c.conditioner().queue().list().await {
        Ok(list) => {
            for job in list {
                let state = match job.state {
                    interlude_condition::JobState::Queued => "queued",
                    interlude_condition::JobState::Running { .. } => "running",
                    interlude_condition::JobState::Ready => "ready",
                    interlude_condition::JobState::Failed { .. } => "failed",
                };
                *jobs.entry(state.to_owned()).or_default() += 1;
            }
        }
        Err(e) => tracing::debug!(error = %e, "Conditioning queue not read for the dashboard."),
    }
    ConditioningStats {
        jobs,
        skipped: live.counter_by(
            crate::telemetry::metrics::STITCHER_CREATIVES_SKIPPED,
            "reason",
        ),
    }
}

fn stream(sources: Sources) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold((sources, true), |(sources, first)| async move {
        if !first {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let snapshot = sources.snapshot().await;
        let event = match serde_json::to_string(&snapshot).ok() {
            Some(json) => Event::default().event("snapshot").data(json),
            None => Event::default().comment("snapshot failed"),
        };
        Some((Ok(event), (sources, false)))
    })
}

const INDEX: &str = include_str!("../../assets/dashboard/index.html");
const APP: &str = include_str!("../../assets/dashboard/app.js");
const UPLOT: &str = include_str!("../../assets/dashboard/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/dashboard/uPlot.min.css");

/// The dashboard's routes: the page (static, open) and its data (snapshot and stream) behind `data_scope`.
/// `EventSource` cannot send headers, so the page passes the read token from its URL fragment
/// (`/dashboard#token=…`, never sent to a server) as the `access_token` query parameter (RFC 6750 §2.3).
pub fn router(sources: Sources, data_scope: crate::edge::auth::Scope) -> Router {
    let js = |body: &'static str| ([(header::CONTENT_TYPE, "text/javascript")], body);
    let data = Router::new()
        .route(
            "/v1/dashboard/snapshot",
            get({
                let s = sources.clone();
                move || async move { axum::Json(s.snapshot().await).into_response() }
            }),
        )
        .route(
            "/v1/dashboard/stream",
            get(move || async move { Sse::new(stream(sources)).keep_alive(KeepAlive::default()) }),
        );
    Router::new()
        .route("/dashboard", get(|| async { Html(INDEX) }))
        .route("/dashboard/app.js", get(move || async move { js(APP) }))
        .route(
            "/dashboard/uPlot.iife.min.js",
            get(move || async move { js(UPLOT) }),
        )
        .route(
            "/dashboard/uPlot.min.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], UPLOT_CSS) }),
        )
        .merge(crate::edge::auth::guard_with_query_token(data, data_scope))
}
