//! The live in-event dashboard: a static web app built into the binary (`/dashboard`, plain JavaScript with
//! uPlot for the charts, vendored under `assets/dashboard/` with its licence) fed by a Server-Sent Events
//! stream (`/v1/dashboard/stream`, one [`Snapshot`] per second; `/v1/dashboard/snapshot` for one).
//!
//! A snapshot is read from the running parts themselves: the stitcher's channels, the event store's totals,
//! quarantine and line item delivery, the decider's controls, and the process's own Prometheus registry for
//! latencies (histogram quantiles), fill seconds, duplicates, lag and load shedding. Rates are the browser's
//! job: it differences successive snapshots.

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
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;

use crate::collector::Collector;
use crate::decisioning::decider::Decider;
use crate::stitcher::ChannelSummary;
use crate::stitcher::Stitcher;

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
    /// Media playlist latency, milliseconds.
    pub playlist_ms: Quantiles,
    /// Requests refused by load shedding, by class.
    pub shed: BTreeMap<String, f64>,
    /// Line items: delivery against goal.
    pub line_items: Vec<LineItemStatus>,
    /// Operator controls in force.
    pub controls: Option<crate::decisioning::decider::Controls>,
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
}

/// One sample of the Prometheus text format.
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, &'a str)>,
    value: f64,
}

fn samples(text: &str) -> Vec<Sample<'_>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (head, value) = l.rsplit_once(' ')?;
            let value: f64 = value.trim().parse().ok()?;
            let (name, labels) = match head.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (head, ""),
            };
            let labels = labels
                .split(',')
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.trim(), v.trim().trim_matches('"')))
                })
                .collect();
            Some(Sample {
                name,
                labels,
                value,
            })
        })
        .collect()
}

fn label<'a>(s: &Sample<'a>, key: &str) -> Option<&'a str> {
    s.labels.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// Quantile `q` of histogram `name` (summed over the series `keep` accepts), in milliseconds, interpolated
/// linearly inside the bucket it falls in.
fn quantile(
    all: &[Sample<'_>],
    name: &str,
    keep: impl Fn(&Sample<'_>) -> bool,
    q: f64,
) -> Option<f64> {
    let bucket = format!("{name}_bucket");
    let mut by_le: BTreeMap<u64, f64> = BTreeMap::new();
    for s in all.iter().filter(|s| s.name == bucket && keep(s)) {
        let le = label(s, "le")?;
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().ok()?
        };
        *by_le.entry(bound.to_bits()).or_default() += s.value;
    }
    let mut buckets: Vec<(f64, f64)> = by_le
        .into_iter()
        .map(|(b, c)| (f64::from_bits(b), c))
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut previous = (0.0, 0.0);
    for (bound, count) in buckets {
        if count >= rank {
            if !bound.is_finite() {
                return Some(previous.0 * 1000.0);
            }
            let share = if count > previous.1 {
                (rank - previous.1) / (count - previous.1)
            } else {
                1.0
            };
            return Some((previous.0 + (bound - previous.0) * share) * 1000.0);
        }
        previous = (bound, count);
    }
    None
}

fn sum(all: &[Sample<'_>], name: &str) -> f64 {
    all.iter().filter(|s| s.name == name).map(|s| s.value).sum()
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
    /// The process's metrics.
    pub metrics: PrometheusHandle,
    /// The clock.
    pub clock: interlude_events::Clock,
}

impl Sources {
    /// Takes a snapshot.
    pub fn snapshot(&self) -> Snapshot {
        let now = (self.clock)();
        let text = self.metrics.render();
        let all = samples(&text);
        let mut fill: BTreeMap<String, FillSeconds> = BTreeMap::new();
        for s in all
            .iter()
            .filter(|s| s.name == "stitcher_break_seconds_total")
        {
            if let (Some(c), Some(k)) = (label(s, "channel"), label(s, "kind")) {
                let f = fill.entry(c.to_owned()).or_default();
                if k == "ad" {
                    f.ad += s.value;
                } else {
                    f.slate += s.value;
                }
            }
        }
        let mut shed = BTreeMap::new();
        for s in all.iter().filter(|s| s.name == "http_shed_total") {
            if let Some(c) = label(s, "class") {
                *shed.entry(c.to_owned()).or_insert(0.0) += s.value;
            }
        }
        // Snapshots are taken on a blocking thread; the reports may be remote (PostgreSQL).
        let runtime = tokio::runtime::Handle::current();
        let reports = self.collector.reports();
        let counters = self.collector.counters();
        let counted = runtime
            .block_on(reports.report(
                interlude_store::GroupBy::Channel,
                now - TimeDelta::days(2),
                now + TimeDelta::minutes(1),
            ))
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
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let playlist =
            |s: &Sample<'_>| label(s, "route").is_some_and(|r| r.ends_with("media.m3u8"));
        Snapshot {
            at: now,
            channels: self.stitcher.channel_summaries(),
            fill,
            counted,
            duplicates: sum(&all, "events_duplicates_total"),
            retries: sum(&all, "events_retries_total"),
            quarantine: runtime
                .block_on(reports.quarantine_counts())
                .unwrap_or_default(),
            lag_secs: all
                .iter()
                .find(|s| s.name == "events_lag_seconds")
                .map(|s| s.value),
            decision_ms: Quantiles {
                p50: quantile(&all, "stitcher_decision_seconds", |_| true, 0.5),
                p99: quantile(&all, "stitcher_decision_seconds", |_| true, 0.99),
            },
            playlist_ms: Quantiles {
                p50: quantile(&all, "http_request_duration_seconds", playlist, 0.5),
                p99: quantile(&all, "http_request_duration_seconds", playlist, 0.99),
            },
            shed,
            line_items,
            controls: self.decider.as_ref().map(|d| d.controls()),
        }
    }
}

fn stream(sources: Sources) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold((sources, true), |(sources, first)| async move {
        if !first {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let snapshot = tokio::task::spawn_blocking({
            let s = sources.clone();
            move || s.snapshot()
        })
        .await
        .ok();
        let event = match snapshot.and_then(|s| serde_json::to_string(&s).ok()) {
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

/// The dashboard's routes.
pub fn router(sources: Sources) -> Router {
    let js = |body: &'static str| ([(header::CONTENT_TYPE, "text/javascript")], body);
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
        .route(
            "/v1/dashboard/snapshot",
            get({
                let s = sources.clone();
                move || async move { axum::Json(s.snapshot()).into_response() }
            }),
        )
        .route(
            "/v1/dashboard/stream",
            get(move || async move { Sse::new(stream(sources)).keep_alive(KeepAlive::default()) }),
        )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn histogram_quantiles_interpolate_within_buckets() {
        let text = "# TYPE x histogram\n\
            x_bucket{route=\"/a\",le=\"0.001\"} 0\n\
            x_bucket{route=\"/a\",le=\"0.01\"} 50\n\
            x_bucket{route=\"/a\",le=\"0.1\"} 100\n\
            x_bucket{route=\"/a\",le=\"+Inf\"} 100\n\
            x_bucket{route=\"/b\",le=\"0.001\"} 0\n\
            x_bucket{route=\"/b\",le=\"0.01\"} 0\n\
            x_bucket{route=\"/b\",le=\"0.1\"} 0\n\
            x_bucket{route=\"/b\",le=\"+Inf\"} 0\n";
        let all = samples(text);
        let p50 = quantile(&all, "x", |_| true, 0.5).unwrap();
        assert!((p50 - 10.0).abs() < 1e-9, "{p50}");
        let p99 = quantile(&all, "x", |s| label(s, "route") == Some("/a"), 0.99).unwrap();
        assert!((p99 - 98.2).abs() < 1e-6, "{p99}");
        assert_eq!(
            quantile(&all, "x", |s| label(s, "route") == Some("/b"), 0.5),
            None
        );
    }
}
