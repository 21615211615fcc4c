//! Hybrid demand: the decision engine's direct-sold pod, third-party VAST tags fetched and resolved, and an
//! OpenRTB 2.6 auction for the time direct demand leaves open, all within a strict time budget.
//!
//! One decision: the engine's direct step says how much of the break is open and which line items' tags to
//! fetch; the tags (through the `vast` crate's wrapper resolution) and the bidders (one POST each, cut off at
//! `tmax`) run concurrently; the engine then decides the whole pod with the resolved ads competing in their
//! tiers, so a programmatic bid outranks house but never a guaranteed line item. Winners' `nurl` and losers'
//! `lurl` and VAST error pixels go to the outbox (fired in the background, deduplicated, retried; called
//! directly without one). A chosen bid is found by its seat, bid id and imp id (never its creative: two bids
//! may carry the same one); its `burl` stays with the ad's bid ([`interlude_decision::WonBid`]) and fires as a
//! billing notice when the impression is counted ([`crate::pixels`]).
//!
//! Everything this module waits on is bounded: a slow bidder or tag server costs at most the budget, and the
//! pod is returned with whatever answered in time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use interlude_decision::engine::{Decision, Engine, Holds, TagRequest};
use interlude_decision::external::{ExternalAd, error_uris, pod_ad_from_vast};
use interlude_decision::openrtb::{
    AcceptedBid, AuctionSettings, BidRequest, BidResponse, LossReason, OPENRTB_VERSION, OpenSlot,
    RefusedBid, accept_bids, bid_request,
};
use interlude_decision::{PodRequest, PodSource};
use interlude_outbound::{GuardedClient, Kind};
use interlude_outbox::{Pixel, PixelContext, PixelEvent};
use interlude_vast::macros::{MacroValues, Unfilled, expand, expand_error_code};
use interlude_vast::{Ad, Fetcher, ResolveConfig};
use serde::{Deserialize, Serialize};

use super::demand::{AuctionTally, Outcome};

/// A programmatic bidder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidderConfig {
    /// Name (the seat when its bids name none).
    pub name: String,
    /// Its OpenRTB endpoint.
    pub url: String,
    /// Its floor CPM (`imp.bidfloor`), when it differs from the auction's.
    #[serde(default)]
    pub floor_cpm: Option<f64>,
    /// Milliseconds it has to answer (`tmax`), when less than the auction's: a slow bidder gets less time.
    #[serde(default)]
    pub tmax_ms: Option<u64>,
    /// Most requests a second it is sent (a token bucket holding one second's worth); over it, the bidder is
    /// left out of the auction and counted in `decision_bidder_throttled_total`. Unset: no cap.
    #[serde(default)]
    pub qps: Option<f64>,
}

impl BidderConfig {
    /// A bidder at `url` with the auction's floor and `tmax` and no cap.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> BidderConfig {
        BidderConfig {
            name: name.into(),
            url: url.into(),
            floor_cpm: None,
            tmax_ms: None,
            qps: None,
        }
    }
}

/// Bidders left out of an auction for being over their QPS cap, by bidder.
pub const BIDDER_THROTTLED: &str = "decision_bidder_throttled_total";

/// A token bucket: `rate` tokens a second, at most `rate` (at least one) held, one taken per request.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: std::time::Instant,
}

impl TokenBucket {
    /// A full bucket of `rate` a second, as of `now`.
    pub fn new(rate: f64, now: std::time::Instant) -> TokenBucket {
        let rate = if rate.is_finite() { rate.max(0.0) } else { 0.0 };
        TokenBucket {
            rate,
            tokens: rate.max(1.0),
            last: now,
        }
    }

    /// Takes a token at `now` if there is one.
    pub fn take(&mut self, now: std::time::Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate.max(1.0));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Where third-party demand comes from and how long it may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemandConfig {
    /// OpenRTB bidders asked for what direct-sold demand leaves of a break; none: no auction.
    pub bidders: Vec<BidderConfig>,
    /// The auction.
    pub auction: AuctionSettings,
    /// Milliseconds to wait for one VAST document of a third-party tag.
    pub vast_hop_timeout_ms: u64,
    /// Milliseconds for a whole wrapper chain.
    pub vast_total_timeout_ms: u64,
    /// Wrappers followed before giving up (VAST error 302).
    pub vast_max_wrappers: usize,
}

impl Default for DemandConfig {
    fn default() -> Self {
        DemandConfig {
            bidders: Vec::new(),
            auction: AuctionSettings::default(),
            vast_hop_timeout_ms: 500,
            vast_total_timeout_ms: 800,
            vast_max_wrappers: 5,
        }
    }
}

/// Fetches VAST documents over HTTP for wrapper resolution.
#[derive(Clone)]
pub struct HttpFetcher {
    client: GuardedClient,
}

impl HttpFetcher {
    /// A fetcher over `client`.
    pub fn new(client: GuardedClient) -> Self {
        HttpFetcher { client }
    }
}

/// VAST documents (tags, wrappers' `VASTAdTagURI`) through the guarded client: https, no private
/// addresses, at most the VAST body cap. The error names the URL without its query (it may carry viewer
/// data) and never the body.
impl Fetcher for HttpFetcher {
    async fn fetch(&self, uri: &str) -> interlude_vast::Result<String> {
        self.client
            .get_text(uri, Kind::Vast)
            .await
            .map_err(|e| interlude_vast::Error::Fetch {
                uri: interlude_outbound::redact(uri),
                reason: e.to_string(),
            })
    }
}

/// A decision with what the third parties did.
#[derive(Debug, Clone, Serialize)]
pub struct HybridDecision {
    /// The decision (pod, unfilled time, verdicts).
    pub decision: Decision,
    /// Bids refused before the pod saw them, and bidders that failed or were cut off.
    pub refused: Vec<RefusedBid>,
    /// Third-party tags that gave no usable ad, with why.
    pub tag_failures: Vec<(String, String)>,
}

/// The engine (swappable on catalog reload) with its third-party demand and the operator's controls.
pub struct Decider {
    engine: ArcSwap<Engine>,
    clock: interlude_events::Clock,
    http: GuardedClient,
    config: DemandConfig,
    controls: std::sync::Mutex<Controls>,
    on_control: std::sync::Mutex<Option<ControlHook>>,
    /// Where notices and error pixels are queued; `None`: called directly, once, without retries.
    outbox: Option<Arc<crate::pixels::PixelOutbox>>,
    /// Each capped bidder's bucket, by bidder name.
    buckets: HashMap<String, std::sync::Mutex<TokenBucket>>,
    /// Auction outcomes for the demand reports, until flushed.
    tally: Arc<AuctionTally>,
}

/// Called with the controls after each local change (to share them with other nodes).
pub type ControlHook = Arc<dyn Fn(&Controls) + Send + Sync>;

/// Operator controls over decisions: kill switches and slate-only channels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controls {
    /// Paused line items and advertisers.
    pub holds: Holds,
    /// Channels whose breaks get slate only.
    pub slate_only: std::collections::BTreeSet<String>,
}

impl Decider {
    /// A decider over `engine`, calling third parties (bidders, VAST tags, notices) through `http`.
    pub fn new(
        engine: Arc<Engine>,
        clock: interlude_events::Clock,
        config: DemandConfig,
        http: GuardedClient,
    ) -> Self {
        let now = std::time::Instant::now();
        let buckets = config
            .bidders
            .iter()
            .filter_map(|b| {
                let qps = b.qps?;
                Some((
                    b.name.clone(),
                    std::sync::Mutex::new(TokenBucket::new(qps, now)),
                ))
            })
            .collect();
        Decider {
            engine: ArcSwap::new(engine),
            clock,
            http,
            config,
            controls: std::sync::Mutex::default(),
            on_control: std::sync::Mutex::default(),
            outbox: None,
            buckets,
            tally: Arc::default(),
        }
    }

    /// The auction outcomes this decider tallies for the demand reports (the application flushes them).
    pub fn tally(&self) -> Arc<AuctionTally> {
        self.tally.clone()
    }

    /// The same decider, firing notices and error pixels through `outbox`.
    pub fn with_outbox(mut self, outbox: Arc<crate::pixels::PixelOutbox>) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// Sets the hook told of every local change of the controls.
    pub fn on_control(&self, hook: ControlHook) {
        if let Ok(mut h) = self.on_control.lock() {
            *h = Some(hook);
        }
    }

    /// Replaces the controls with ones decided elsewhere (another node); the hook is not called.
    pub fn apply_controls(&self, controls: Controls) {
        if let Ok(mut c) = self.controls.lock() {
            if *c != controls {
                self.engine().set_holds(Arc::new(controls.holds.clone()));
                *c = controls;
            }
        }
    }

    /// The operator controls in force.
    pub fn controls(&self) -> Controls {
        self.controls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Changes the controls; holds take effect for the next decision.
    pub fn control(&self, change: impl FnOnce(&mut Controls)) -> Controls {
        let Ok(mut c) = self.controls.lock() else {
            return Controls::default();
        };
        change(&mut c);
        self.engine().set_holds(Arc::new(c.holds.clone()));
        let changed = c.clone();
        drop(c);
        let hook = self.on_control.lock().ok().and_then(|h| h.clone());
        if let Some(hook) = hook {
            hook(&changed);
        }
        changed
    }

    /// The engine deciding now.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    /// Replaces the engine (a reloaded catalog); decisions in flight finish on the old one.
    pub fn swap(&self, engine: Arc<Engine>) {
        // Under the controls' lock, so a hold set during a reload reaches the new engine.
        let controls = self.controls.lock();
        if let Ok(c) = &controls {
            engine.set_holds(Arc::new(c.holds.clone()));
        }
        self.engine.store(engine);
    }

    /// The clock decisions use.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Decides `request`'s pod with third-party demand; `explain` adds every verdict, `serving` sends the
    /// bidders' loss notices and VAST error pixels (a debug decision is not served, so it sends none). Win
    /// notices wait for [`PodSource::served`].
    pub async fn decide(
        &self,
        request: &PodRequest,
        explain: bool,
        serving: bool,
    ) -> HybridDecision {
        let engine = self.engine();
        if let Some(viewer) = &request.viewer.viewer_id {
            // Remote counters (Redis in distributed mode) load this viewer's frequency counts now, so the
            // engine's reads during the decision stay synchronous.
            engine.counters().prefetch(viewer).await;
        }
        let now = self.now();
        let slate_only = self
            .controls
            .lock()
            .is_ok_and(|c| c.slate_only.contains(&request.channel));
        if slate_only {
            return HybridDecision {
                decision: Decision {
                    pod: interlude_decision::Pod::default(),
                    unfilled_ms: request
                        .duration_secs
                        .map_or(0, |s| (s * 1000.0).round() as u32),
                    explanation: Vec::new(),
                },
                refused: Vec::new(),
                tag_failures: Vec::new(),
            };
        }
        if self.config.bidders.is_empty() && !engine.has_tags() {
            // Nothing external to ask for: one walk of the catalog, not a sizing walk and then the real one.
            return HybridDecision {
                decision: engine.decide_with(request, now, explain, &[]),
                refused: Vec::new(),
                tag_failures: Vec::new(),
            };
        }
        let direct = engine.decide_direct(request, now);
        let settings = &self.config.auction;
        let auction = !self.config.bidders.is_empty()
            && direct.ads_left > 0
            && direct.open_ms >= settings.min_ad_secs.saturating_mul(1000);
        if direct.tags.is_empty() && !auction {
            return HybridDecision {
                decision: engine.decide_with(request, now, explain, &[]),
                refused: Vec::new(),
                tag_failures: Vec::new(),
            };
        }
        let slot = OpenSlot {
            duration_ms: direct.open_ms,
            max_ads: direct.ads_left,
            blocked_categories: direct.blocked_categories.clone(),
            blocked_advertisers: direct.advertisers.clone(),
        };
        let auction_id = format!("{}-{}", request.session_id, request.break_id);
        let bid_request = bid_request(&auction_id, request, &slot, settings);
        let (tags, bids) = tokio::join!(
            self.fetch_tags(&engine, &direct.tags, now, &auction_id, serving),
            async {
                if auction {
                    self.auction(&bid_request, serving).await
                } else {
                    (Vec::new(), Vec::new())
                }
            }
        );
        let (mut external, tag_failures) = tags;
        let (accepted, refused) = bids;
        external.extend(accepted.iter().map(|b| b.ad.clone()));
        let decision = engine.decide_with(request, now, explain, &external);
        if serving {
            self.notify_bidders(&accepted, &refused, &decision);
        }
        HybridDecision {
            decision,
            refused,
            tag_failures,
        }
    }

    fn resolve_config(&self) -> ResolveConfig {
        ResolveConfig {
            max_depth: self.config.vast_max_wrappers,
            hop_timeout: Duration::from_millis(self.config.vast_hop_timeout_ms),
            total_timeout: Duration::from_millis(self.config.vast_total_timeout_ms),
        }
    }

    /// Fetches and resolves each tag; the usable ones become their line items' external ads. `decision_id`
    /// (session and break) names the error pixels' ad instance in the outbox.
    async fn fetch_tags(
        &self,
        engine: &Engine,
        tags: &[TagRequest],
        now: DateTime<Utc>,
        decision_id: &str,
        serving: bool,
    ) -> (Vec<ExternalAd>, Vec<(String, String)>) {
        let fetcher = HttpFetcher::new(self.http.clone());
        let config = self.resolve_config();
        let mut values = MacroValues::new();
        values.set_timestamp(now.into(), 0);
        values.set_cachebusting(rand_u32(now));
        let results = join_all(tags.iter().map(|t| {
            let uri = expand(&t.tag, &values, Unfilled::Keep);
            let (fetcher, config) = (&fetcher, &config);
            let key = format!("tag:{decision_id}:{}", t.line_item_id);
            async move {
                let resolved = interlude_vast::resolve_tag(&uri, fetcher, config).await;
                for failure in &resolved.failures {
                    self.ping_all(serving, &key, PixelEvent::Error, failure.pings.clone());
                }
                let Some(ad) = resolved.vast.ads.into_iter().next() else {
                    let why = resolved.failures.first().map_or("no ad".to_owned(), |f| {
                        format!("VAST error {}: {}", f.code.code(), f.detail)
                    });
                    return Err((t.line_item_id.clone(), why));
                };
                self.usable(&ad, &key, serving)
                    .and_then(|p| {
                        engine
                            .tag_ad(t, p)
                            .ok_or_else(|| "line item no longer in the catalog".to_owned())
                    })
                    .map_err(|why| (t.line_item_id.clone(), why))
            }
        }))
        .await;
        let (mut ads, mut failures) = (Vec::new(), Vec::new());
        for r in results {
            match r {
                Ok(ad) => ads.push(ad),
                Err(f) => failures.push(f),
            }
        }
        (ads, failures)
    }

    /// The ad in stitchable form, or its VAST error reported through its Error URIs (`key` names it in the
    /// outbox).
    fn usable(
        &self,
        ad: &Ad,
        key: &str,
        serving: bool,
    ) -> Result<interlude_decision::PodAd, String> {
        pod_ad_from_vast(ad).map_err(|e| {
            self.ping_all(
                serving,
                key,
                PixelEvent::Error,
                error_uris(ad)
                    .iter()
                    .map(|u| expand_error_code(u, e.code))
                    .collect(),
            );
            e.to_string()
        })
    }

    /// Whether `bidder` may be asked now (under its QPS cap); counts it when not.
    fn admit(&self, bidder: &BidderConfig) -> bool {
        let Some(bucket) = self.buckets.get(&bidder.name) else {
            return true;
        };
        let admitted = bucket
            .lock()
            .map(|mut b| b.take(std::time::Instant::now()))
            .unwrap_or(true);
        if !admitted {
            metrics::counter!(BIDDER_THROTTLED, "bidder" => bidder.name.clone()).increment(1);
        }
        admitted
    }

    /// `request` as `bidder` gets it: its own floor and `tmax` (never more than the auction's).
    fn request_for(request: &BidRequest, bidder: &BidderConfig) -> BidRequest {
        let mut r = request.clone();
        if let Some(floor) = bidder.floor_cpm {
            for imp in &mut r.imp {
                imp.bidfloor = floor;
            }
        }
        if let Some(tmax) = bidder.tmax_ms {
            r.tmax = r.tmax.min(tmax);
        }
        r
    }

    /// Asks every bidder under its QPS cap, each with its own floor and cut off at its `tmax`; resolves
    /// wrapper markup within the VAST budget.
    async fn auction(
        &self,
        request: &BidRequest,
        serving: bool,
    ) -> (Vec<AcceptedBid>, Vec<RefusedBid>) {
        // The explainer's auctions are not reported: they serve nothing.
        let tally = |bidder: &str, bid: Option<(&str, Option<&str>)>, outcome: Outcome| {
            if serving {
                self.tally.record(self.now(), bidder, bid, outcome);
            }
        };
        let mut refused = Vec::new();
        let mut asked = Vec::new();
        for bidder in &self.config.bidders {
            if !self.admit(bidder) {
                tally(&bidder.name, None, Outcome::Failed);
                refused.push(RefusedBid::bidder(
                    &bidder.name,
                    "over its QPS cap: not asked".to_owned(),
                ));
                continue;
            }
            let request = Self::request_for(request, bidder);
            match serde_json::to_vec(&request) {
                Ok(body) => {
                    tally(&bidder.name, None, Outcome::Requested);
                    asked.push((bidder, request, body));
                }
                Err(e) => tracing::warn!(error = %e, "Could not encode a bid request."),
            }
        }
        let answers = join_all(asked.into_iter().map(|(bidder, request, body)| {
            async move {
                let tmax = Duration::from_millis(request.tmax);
                let call = async {
                    // The bid body cap bounds what a bidder can make us parse.
                    let response = self
                        .http
                        .post(&bidder.url, Kind::Bid)
                        .header("content-type", "application/json")
                        .header("x-openrtb-version", OPENRTB_VERSION)
                        .body(body)
                        .timeout(tmax)
                        .send()
                        .await
                        .map_err(|e| match e {
                            interlude_outbound::Error::Timeout { .. } => BidderFailure::TimedOut,
                            e => BidderFailure::Failed(e.to_string()),
                        })?;
                    match response.status().as_u16() {
                        204 => Ok(BidResponse::default()),
                        200 => serde_json::from_slice::<BidResponse>(response.body())
                            .map_err(|e| BidderFailure::Failed(format!("bad bid response: {e}"))),
                        s => Err(BidderFailure::Failed(format!("HTTP {s}"))),
                    }
                };
                let outcome = match tokio::time::timeout(tmax, call).await {
                    Ok(r) => r,
                    Err(_) => Err(BidderFailure::TimedOut),
                };
                metrics::counter!(crate::telemetry::metrics::DECISION_BIDDER_RESPONSES, "bidder" => bidder.name.clone(),
                    "outcome" => if outcome.is_ok() { "answered" } else { "failed" })
                .increment(1);
                (bidder, request, outcome)
            }
        }))
        .await;
        let mut accepted = Vec::new();
        for (bidder, request, outcome) in answers {
            let response = match outcome {
                Ok(r) => r,
                Err(failure) => {
                    let (outcome, reason) = match failure {
                        BidderFailure::TimedOut => (
                            Outcome::TimedOut,
                            format!("no answer within tmax ({} ms)", request.tmax),
                        ),
                        BidderFailure::Failed(reason) => (Outcome::Failed, reason),
                    };
                    tally(&bidder.name, None, outcome);
                    tracing::debug!(bidder = %bidder.name, %reason, "Bidder failed.");
                    refused.push(RefusedBid::bidder(&bidder.name, reason));
                    continue;
                }
            };
            if response.seatbid.iter().all(|s| s.bid.is_empty()) {
                tally(&bidder.name, None, Outcome::NoBid);
            }
            if response.id.is_empty() && response.seatbid.is_empty() {
                continue;
            }
            let markup = self.resolve_markup(&response, serving).await;
            let (a, r) = accept_bids(&bidder.name, &request, response, |bid| {
                markup
                    .get(&bid.id)
                    .cloned()
                    .unwrap_or_else(|| Err("no adm (markup by nurl is not supported)".into()))
            });
            for bid in a.iter().filter_map(|b| b.ad.ad.bid.as_ref()).chain(
                r.iter()
                    .filter_map(|r| r.notice.as_ref().map(|(bid, _)| bid)),
            ) {
                tally(
                    &bidder.name,
                    Some((&bid.seat, bid.deal_id.as_deref())),
                    Outcome::Bid,
                );
            }
            accepted.extend(a);
            refused.extend(r);
        }
        (accepted, refused)
    }

    /// Each bid's `adm` as one InLine ad, wrappers resolved.
    async fn resolve_markup(
        &self,
        response: &BidResponse,
        serving: bool,
    ) -> HashMap<String, Result<Ad, String>> {
        let fetcher = HttpFetcher::new(self.http.clone());
        let config = self.resolve_config();
        let bids = response.seatbid.iter().flat_map(|s| s.bid.iter());
        join_all(bids.filter_map(|bid| {
            let adm = bid.adm.as_deref()?;
            let (fetcher, config) = (&fetcher, &config);
            let key = format!("bid:{}:{}", response.id, bid.id);
            Some(async move {
                // Lenient: one unreadable ad in the markup costs that ad (its Error URIs are pinged with
                // the code it earned), not the bid.
                let ad = match interlude_vast::parse_vast_lenient(adm) {
                    Err(e) => Err(format!("adm is not VAST: {e}")),
                    Ok(parsed) => {
                        for dropped in &parsed.dropped {
                            self.ping_all(serving, &key, PixelEvent::Error, dropped.pings());
                        }
                        let resolved = interlude_vast::resolve(parsed.vast, fetcher, config).await;
                        for failure in &resolved.failures {
                            self.ping_all(serving, &key, PixelEvent::Error, failure.pings.clone());
                        }
                        resolved
                            .vast
                            .ads
                            .into_iter()
                            .next()
                            .ok_or_else(|| "adm resolved to no ad".to_owned())
                    }
                };
                (bid.id.clone(), ad)
            })
        }))
        .await
        .into_iter()
        .collect()
    }

    /// Loss notices for the bids not chosen, each with the OpenRTB 2.6 §4.4 macros of its own bid, and the
    /// auction outcomes in the demand tally. A chosen bid is the pod ad whose bid has its seat, bid id and imp
    /// id; its win notice waits until the pod is served ([`PodSource::served`]): a decision another node
    /// stored first, or an ad whose creative does not stitch, is never played, so its bidder must not hear it
    /// won. `burl` waits for the counted impression. An accepted bid left out lost to a higher one (102, or
    /// 103 when a deal bid was chosen); a refused bid says why it was refused.
    fn notify_bidders(
        &self,
        accepted: &[AcceptedBid],
        refused: &[RefusedBid],
        decision: &Decision,
    ) {
        let chosen = |w: &interlude_decision::WonBid| {
            decision.pod.ads.iter().any(|ad| {
                ad.bid.as_ref().is_some_and(|c| {
                    c.seat == w.seat && c.bid_id == w.bid_id && c.imp_id == w.imp_id
                })
            })
        };
        let deal_won = accepted
            .iter()
            .any(|b| b.bid.dealid.is_some() && b.ad.ad.bid.as_ref().is_some_and(&chosen));
        for b in accepted {
            let Some(won) = b.ad.ad.bid.as_ref() else {
                continue;
            };
            let bid = Some((won.seat.as_str(), won.deal_id.as_deref()));
            if chosen(won) {
                self.tally
                    .record(self.now(), &won.bidder, bid, Outcome::Won);
                continue;
            }
            self.tally
                .record(self.now(), &won.bidder, bid, Outcome::Lost);
            let loss = if deal_won && b.bid.dealid.is_none() {
                LossReason::LostToPmpDeal
            } else {
                LossReason::LostToHigherBid
            };
            self.notify(
                &bid_key(won),
                PixelEvent::Lurl,
                b.bid.lurl.as_deref(),
                crate::pixels::auction_of(won, Some(loss.code())),
            );
        }
        for r in refused {
            if let Some((bid, _)) = &r.notice {
                let seat = Some((bid.seat.as_str(), bid.deal_id.as_deref()));
                self.tally
                    .record(self.now(), &bid.bidder, seat, Outcome::Lost);
            }
            if let (Some((bid, lurl)), Some(loss)) = (&r.notice, r.loss) {
                self.notify(
                    &bid_key(bid),
                    PixelEvent::Lurl,
                    lurl.as_deref(),
                    crate::pixels::auction_of(bid, Some(loss.code())),
                );
            }
        }
    }

    /// Queues one notice (`url` as the bidder wrote it) of `key` with its auction's macro values.
    fn notify(
        &self,
        key: &str,
        event: PixelEvent,
        url: Option<&str>,
        auction: interlude_outbox::Auction,
    ) {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return;
        };
        let context = PixelContext {
            event_time_ms: u64::try_from(self.now().timestamp_millis()).ok(),
            auction: Some(auction),
            ..PixelContext::default()
        };
        self.fire(vec![Pixel::new(key, event, url).with_context(context)]);
    }

    /// Fires VAST error pixels (already expanded) of `key` (the bid or tag they are about), when `serving`: a
    /// decision only explained serves nothing, so it reports no error to anyone.
    fn ping_all(&self, serving: bool, key: &str, event: PixelEvent, urls: Vec<String>) {
        if !serving {
            return;
        }
        self.fire(
            urls.into_iter()
                .map(|url| Pixel::new(key, event, url))
                .collect(),
        );
    }

    /// Fires notices or error pixels: through the outbox when there is one, so each (key, event, URL) fires
    /// once, durably and with retries; otherwise called in the background (fire and forget, bounded), their
    /// OpenRTB macros filled here.
    fn fire(&self, pixels: Vec<Pixel>) {
        if pixels.is_empty() {
            return;
        }
        if let Some(outbox) = &self.outbox {
            outbox.enqueue_later(pixels);
            return;
        }
        let http = self.http.clone();
        tokio::spawn(async move {
            for p in pixels {
                let c = &p.context;
                let url = interlude_outbox::expand::expand_openrtb(
                    &p.url_template,
                    c.auction.as_ref(),
                    c.event_time_ms,
                    c.reason,
                );
                // Notices and error pixels: body discarded (up to the pixel cap), 2 s at most each.
                let sent = http
                    .get(&url, Kind::Pixel)
                    .timeout(Duration::from_secs(2))
                    .send_for_status()
                    .await;
                if let Err(e) = sent {
                    tracing::debug!(error = %e, "Notice not delivered.");
                }
            }
        });
    }
}

/// Why a bidder gave no answer to use.
enum BidderFailure {
    /// None within `tmax`.
    TimedOut,
    /// Anything else, said.
    Failed(String),
}

/// The outbox key of a bid's loss notice: the auction, seat, bid and imp (a bid never has an ad instance).
fn bid_key(bid: &interlude_decision::WonBid) -> String {
    format!(
        "bid:{}:{}:{}:{}",
        bid.auction_id, bid.seat, bid.bid_id, bid.imp_id
    )
}

/// A cache-busting number: varies per call, needs no randomness guarantees.
fn rand_u32(now: DateTime<Utc>) -> u32 {
    let nanos = now.timestamp_subsec_nanos();
    nanos.wrapping_mul(2_654_435_761) ^ (now.timestamp() as u32)
}

impl PodSource for Decider {
    fn pod(&self, request: PodRequest) -> interlude_decision::request::PodFuture<'_> {
        Box::pin(async move {
            let d = self.decide(&request, false, true).await;
            tracing::debug!(session = %request.session_id, break_id = %request.break_id,
                ads = d.decision.pod.ads.len(), unfilled_ms = d.decision.unfilled_ms,
                refused = d.refused.len(), "Decided pod.");
            Ok(d.decision.pod)
        })
    }

    /// The win notice of a served ad won in an auction, keyed by its bid: a decision adopted again after a
    /// restart, or the same auction decided again, queues nothing new.
    fn served(&self, ad: &interlude_decision::PodAd) {
        let Some(won) = &ad.bid else {
            return;
        };
        self.notify(
            &bid_key(won),
            PixelEvent::Nurl,
            won.nurl.as_deref(),
            crate::pixels::auction_of(won, None),
        );
    }

    /// Its reservation given back as undelivered. A bid's bidder was sent its win notice when the ad was
    /// served; a loss notice now would contradict it.
    fn abandoned(&self, ad: &interlude_decision::PodAd) {
        self.engine().abandon_ad(ad, self.now());
    }

    /// Its reservation given back, and a bid's bidder told it lost (200, Creative Filtered): the ad will
    /// not play for this viewer, and no win notice will come.
    fn dropped(&self, ad: &interlude_decision::PodAd) {
        self.engine().release_ad(ad, self.now());
        if let Some(won) = &ad.bid {
            self.notify(
                &bid_key(won),
                PixelEvent::Lurl,
                won.lurl.as_deref(),
                crate::pixels::auction_of(won, Some(LossReason::CreativeFiltered.code())),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_bucket_admits_its_rate_and_refills_with_time() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(2.0, t0);
        assert!(bucket.take(t0) && bucket.take(t0));
        assert!(!bucket.take(t0), "two a second, both taken");
        assert!(!bucket.take(t0 + Duration::from_millis(400)));
        assert!(
            bucket.take(t0 + Duration::from_millis(500)),
            "one token back after half a second"
        );
        // A long pause refills to one second's worth, not more.
        let later = t0 + Duration::from_secs(60);
        assert!(bucket.take(later) && bucket.take(later));
        assert!(!bucket.take(later));
        // Under one a second, one request at a time.
        let mut slow = TokenBucket::new(0.5, t0);
        assert!(slow.take(t0));
        assert!(!slow.take(t0 + Duration::from_secs(1)));
        assert!(slow.take(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn a_bidder_gets_its_own_floor_and_no_more_than_the_auctions_tmax() {
        let pod = PodRequest {
            channel: "live1".into(),
            session_id: "s".into(),
            break_id: "b".into(),
            duration_secs: Some(30.0),
            viewer: interlude_decision::ViewerContext::default(),
        };
        let slot = OpenSlot {
            duration_ms: 30_000,
            max_ads: 2,
            blocked_categories: Vec::new(),
            blocked_advertisers: Vec::new(),
        };
        let request = bid_request("a", &pod, &slot, &AuctionSettings::default());
        let bidder = BidderConfig {
            floor_cpm: Some(7.5),
            tmax_ms: Some(120),
            ..BidderConfig::new("dsp", "https://dsp.example/bid")
        };
        let r = Decider::request_for(&request, &bidder);
        assert_eq!((r.imp[0].bidfloor, r.tmax), (7.5, 120));
        let generous = BidderConfig {
            tmax_ms: Some(10_000),
            ..BidderConfig::new("dsp", "https://dsp.example/bid")
        };
        assert_eq!(Decider::request_for(&request, &generous).tmax, 300);
    }
}
