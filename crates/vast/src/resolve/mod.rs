//! Wrapper resolution: follow each Wrapper's `VASTAdTagURI` until an InLine ad, merge every wrapper's
//! tracking into it, and report failures with their VAST error code through the Error URIs collected on the
//! way (VAST 4.2 §2.4.4 `Wrapper`, error codes §2.3.6.3: 100–102, 301, 302, 303).
//!
//! The algorithm is pure: documents come from a [`Fetcher`] the caller supplies (the server's is an HTTP
//! client; tests use a map). Limits are parameters: [`ResolveConfig`] holds the depth (wrappers followed
//! per chain, default 7 as MediaTailor) and a per-hop and a total timeout, enforced with `tokio::time` (a
//! paused clock in tests); [`ResolveLimits`] bounds what hostile answers can cost (ads read per document,
//! documents fetched per resolution, Error URIs pinged per failure). Pinging the error URIs is the caller's
//! job: the core returns them, `[ERRORCODE]` filled in.
//!
//! Fetched documents are read with [`parse_vast_lenient`](crate::parse_vast_lenient): an ad of an answer
//! that cannot be read is one failure (pinged through its own Error URIs with the code it earned), and the
//! answer's other ads are used. Only when none is left does the chain fail.
//!
//! The ads of a pod resolve concurrently and keep their order; a wrapper ad that resolves to one ad gives
//! that ad its `sequence`. `allowMultipleAds` (default false) limits a wrapper's answer to its first
//! stand-alone ad (or, if it has none, its first ad); `followAdditionalWrappers="false"` stops the chain at
//! the next Wrapper with code 302.

mod merge;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use crate::error::{Error, Result};
pub use crate::error_code::VastErrorCode;
use crate::macros::expand_error_code;
use crate::model::{Ad, AdBody, Vast};
use crate::parse::{DroppedAd, ParseLimits, Parsed, Warning, parse_vast_lenient_with};

/// Gets the VAST document a `VASTAdTagURI` points to. Implementations do the I/O (and may add macros,
/// headers, cookies); they should not retry, since the resolver's timeouts bound each call.
pub trait Fetcher {
    /// The document at `uri`, or [`Error::Fetch`] with the reason.
    fn fetch(&self, uri: &str) -> impl Future<Output = Result<String>> + Send;
}

/// Depth and time limits of one resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveConfig {
    /// Wrappers followed in one chain before giving up with 302.
    pub max_depth: usize,
    /// Longest wait for one document.
    pub hop_timeout: Duration,
    /// Longest wait for the whole resolution.
    pub total_timeout: Duration,
}

impl Default for ResolveConfig {
    /// Depth 7 (MediaTailor's wrapper limit), 3 s per hop (MediaTailor's ad-server timeout), 5 s in all.
    fn default() -> ResolveConfig {
        ResolveConfig {
            max_depth: 7,
            hop_timeout: Duration::from_secs(3),
            total_timeout: Duration::from_secs(5),
        }
    }
}

/// Bounds on what hostile answers can make one resolution do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveLimits {
    /// How each fetched document is read: ads per document (100), Error URIs kept per dropped ad (16),
    /// warnings per document (100).
    pub parse: ParseLimits,
    /// Documents fetched in one resolution, all chains together (default 100): `allowMultipleAds` lets a
    /// pod of wrappers fan out at every hop. Past it a chain fails with 302.
    pub max_fetches: usize,
    /// Error URIs pinged per failure (default 32); the outermost wrappers' come first.
    pub max_error_pings: usize,
    /// Warnings kept in [`Resolved::warnings`] (default 100).
    pub max_warnings: usize,
}

impl Default for ResolveLimits {
    fn default() -> ResolveLimits {
        ResolveLimits {
            parse: ParseLimits::default(),
            max_fetches: 100,
            max_error_pings: 32,
            max_warnings: 100,
        }
    }
}

/// The VAST error codes; the resolver reports 100–102, 301, 302 and 303, and what an answer's dropped ads
/// earned.
pub type WrapperErrorCode = VastErrorCode;

/// One chain that did not end in an InLine ad, or one ad of an answer that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapperFailure {
    /// The code.
    pub code: WrapperErrorCode,
    /// `id` of the top-level ad whose chain failed (of the dropped ad itself for a tag's own ads).
    pub ad_id: Option<String>,
    /// The `VASTAdTagURI`s followed, outermost first; the last is where it failed.
    pub chain: Vec<String>,
    /// What went wrong.
    pub detail: String,
    /// Error URIs to ping: those of every wrapper in the chain, and the root-level ones of an empty
    /// response (a dropped ad's own, for a dropped ad), with `[ERRORCODE]` filled in (other macros left for
    /// the firing party); at most [`ResolveLimits::max_error_pings`].
    pub pings: Vec<String>,
}

/// Something a fetched document said in a form read leniently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveWarning {
    /// The URI the document came from.
    pub uri: String,
    /// What was read leniently.
    pub warning: Warning,
}

/// The result: the document with every Wrapper replaced by the InLine ad(s) it led to (failed chains
/// removed), the failures, and the warnings of the fetched documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// InLine ads only.
    pub vast: Vast,
    /// Chains that failed, and ads of fetched answers that were dropped.
    pub failures: Vec<WrapperFailure>,
    /// What the fetched documents said in forms read leniently, at most
    /// [`ResolveLimits::max_warnings`].
    pub warnings: Vec<ResolveWarning>,
}

/// Resolves every Wrapper of `vast`, with the default [`ResolveLimits`].
pub async fn resolve<F: Fetcher + Sync>(
    vast: Vast,
    fetcher: &F,
    config: &ResolveConfig,
) -> Resolved {
    resolve_with(vast, fetcher, config, &ResolveLimits::default()).await
}

/// Resolves every Wrapper of `vast` within `limits`.
pub async fn resolve_with<F: Fetcher + Sync>(
    vast: Vast,
    fetcher: &F,
    config: &ResolveConfig,
    limits: &ResolveLimits,
) -> Resolved {
    let ctx = Ctx::new(fetcher, config, limits);
    let Vast {
        version,
        ads,
        errors,
    } = vast;
    let outcome = ctx.resolve_ads(ads).await;
    outcome.into_resolved(
        Vast {
            version,
            ads: Vec::new(),
            errors,
        },
        limits,
    )
}

/// Fetches `uri` and resolves what it returns (a third party's VAST tag, e.g. for a line item's creative),
/// with the default [`ResolveLimits`]. If the tag itself fails, the failure has no pings: nothing told us
/// where to report it; an ad of the tag's answer that cannot be read is reported through its own Error
/// URIs, and the other ads are resolved.
pub async fn resolve_tag<F: Fetcher + Sync>(
    uri: &str,
    fetcher: &F,
    config: &ResolveConfig,
) -> Resolved {
    resolve_tag_with(uri, fetcher, config, &ResolveLimits::default()).await
}

/// [`resolve_tag`] within `limits`.
pub async fn resolve_tag_with<F: Fetcher + Sync>(
    uri: &str,
    fetcher: &F,
    config: &ResolveConfig,
    limits: &ResolveLimits,
) -> Resolved {
    let ctx = Ctx::new(fetcher, config, limits);
    let chain = Chain::new(None, limits.max_error_pings).followed(uri);
    let mut outcome = Outcome::default();
    let parsed = match ctx.fetch(uri).await {
        Ok(parsed) => parsed,
        Err((code, detail)) => {
            outcome.failures.push(chain.fail(code, detail, &[]));
            return outcome.into_resolved(Vast::default(), limits);
        }
    };
    let Parsed {
        vast,
        warnings,
        dropped,
    } = parsed;
    outcome.warn(uri, warnings);
    for d in &dropped {
        outcome.failures.push(chain.dropped(d, d.id.clone()));
    }
    let Vast {
        version,
        ads,
        errors,
    } = vast;
    outcome.extend(ctx.resolve_ads(ads).await);
    outcome.into_resolved(
        Vast {
            version,
            ads: Vec::new(),
            errors,
        },
        limits,
    )
}

struct Ctx<'f, F> {
    fetcher: &'f F,
    config: &'f ResolveConfig,
    limits: &'f ResolveLimits,
    deadline: Instant,
    fetches: AtomicUsize,
}

/// Where a chain is: the URIs followed and the Error URIs of the wrappers passed.
#[derive(Clone)]
struct Chain {
    top_id: Option<String>,
    uris: Vec<String>,
    error_uris: Vec<String>,
    max_pings: usize,
}

impl Chain {
    fn new(top_id: Option<String>, max_pings: usize) -> Chain {
        Chain {
            top_id,
            uris: Vec::new(),
            error_uris: Vec::new(),
            max_pings,
        }
    }

    fn followed(mut self, uri: &str) -> Chain {
        self.uris.push(uri.to_string());
        self
    }

    /// Adds a wrapper's Error URIs, keeping at most as many as a failure may ping.
    fn add_error_uris(&mut self, uris: &[String]) {
        let room = self.max_pings.saturating_sub(self.error_uris.len());
        self.error_uris.extend(uris.iter().take(room).cloned());
    }

    fn pings<'u>(
        &self,
        uris: impl Iterator<Item = &'u String>,
        code: WrapperErrorCode,
    ) -> Vec<String> {
        uris.take(self.max_pings)
            .map(|u| expand_error_code(u, code.code()))
            .collect()
    }

    fn fail(
        &self,
        code: WrapperErrorCode,
        detail: String,
        extra_error_uris: &[String],
    ) -> WrapperFailure {
        WrapperFailure {
            code,
            ad_id: self.top_id.clone(),
            chain: self.uris.clone(),
            detail,
            pings: self.pings(self.error_uris.iter().chain(extra_error_uris), code),
        }
    }

    /// An ad of the last answer that could not be read: reported through its own Error URIs (the chain's
    /// wrappers are told only if the chain fails).
    fn dropped(&self, d: &DroppedAd, ad_id: Option<String>) -> WrapperFailure {
        let which =
            d.id.as_ref()
                .map_or_else(|| format!("Ad[{}]", d.index + 1), |id| format!("ad {id:?}"));
        WrapperFailure {
            code: d.error_code,
            ad_id,
            chain: self.uris.clone(),
            detail: format!("{which} dropped: {}", d.reason),
            pings: self.pings(d.error_uris.iter(), d.error_code),
        }
    }
}

/// What resolving some ads gave.
#[derive(Default)]
struct Outcome {
    ads: Vec<Ad>,
    failures: Vec<WrapperFailure>,
    warnings: Vec<ResolveWarning>,
}

impl Outcome {
    fn failed(failure: WrapperFailure) -> Outcome {
        Outcome {
            failures: vec![failure],
            ..Outcome::default()
        }
    }

    fn extend(&mut self, other: Outcome) {
        self.ads.extend(other.ads);
        self.failures.extend(other.failures);
        self.warnings.extend(other.warnings);
    }

    fn warn(&mut self, uri: &str, warnings: Vec<Warning>) {
        self.warnings
            .extend(warnings.into_iter().map(|warning| ResolveWarning {
                uri: uri.to_string(),
                warning,
            }));
    }

    fn into_resolved(mut self, mut vast: Vast, limits: &ResolveLimits) -> Resolved {
        vast.ads = self.ads;
        if self.warnings.len() > limits.max_warnings {
            let more = self.warnings.len() - limits.max_warnings;
            self.warnings.truncate(limits.max_warnings);
            self.warnings.push(ResolveWarning {
                uri: String::new(),
                warning: Warning {
                    path: String::new(),
                    line: 0,
                    message: format!("{more} more warnings not recorded"),
                },
            });
        }
        Resolved {
            vast,
            failures: self.failures,
            warnings: self.warnings,
        }
    }
}

impl<'f, F: Fetcher + Sync> Ctx<'f, F> {
    fn new(fetcher: &'f F, config: &'f ResolveConfig, limits: &'f ResolveLimits) -> Ctx<'f, F> {
        Ctx {
            fetcher,
            config,
            limits,
            deadline: Instant::now() + config.total_timeout,
            fetches: AtomicUsize::new(0),
        }
    }

    /// Resolves the top-level ads of a document side by side, keeping their order.
    async fn resolve_ads(&self, ads: Vec<Ad>) -> Outcome {
        let results = join_all(ads.into_iter().map(|ad| {
            let chain = Chain::new(ad.id.clone(), self.limits.max_error_pings);
            self.resolve_ad(ad, chain)
        }))
        .await;
        let mut out = Outcome::default();
        for r in results {
            out.extend(r);
        }
        out
    }

    fn resolve_ad<'s>(
        &'s self,
        ad: Ad,
        mut chain: Chain,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send + 's>> {
        Box::pin(async move {
            let Ad {
                id,
                sequence,
                conditional_ad,
                ad_type,
                body,
            } = ad;
            let wrapper = match body {
                AdBody::InLine(inline) => {
                    let ad = Ad {
                        id,
                        sequence,
                        conditional_ad,
                        ad_type,
                        body: AdBody::InLine(inline),
                    };
                    return Outcome {
                        ads: vec![ad],
                        ..Outcome::default()
                    };
                }
                AdBody::Wrapper(w) => w,
            };
            chain.add_error_uris(&wrapper.common.errors);
            chain.uris.push(wrapper.vast_ad_tag_uri.clone());
            if chain.uris.len() > self.config.max_depth {
                let detail = format!("more than {} wrappers in one chain", self.config.max_depth);
                return Outcome::failed(chain.fail(WrapperErrorCode::WrapperLimit, detail, &[]));
            }
            let uri = &wrapper.vast_ad_tag_uri;
            let Parsed {
                vast: next,
                warnings,
                dropped,
            } = match self.fetch(uri).await {
                Ok(parsed) => parsed,
                Err((code, detail)) => return Outcome::failed(chain.fail(code, detail, &[])),
            };
            let mut out = Outcome::default();
            out.warn(uri, warnings);
            for d in &dropped {
                out.failures.push(chain.dropped(d, chain.top_id.clone()));
            }
            if next.ads.is_empty() {
                let failure = match dropped.first() {
                    Some(d) => chain.fail(
                        d.error_code,
                        format!("no ad of the response could be read ({})", d.reason),
                        &[],
                    ),
                    None => chain.fail(
                        WrapperErrorCode::NoAds,
                        "the response has no ads".to_string(),
                        &next.errors,
                    ),
                };
                out.failures.push(failure);
                return out;
            }
            let chosen = choose(next.ads, wrapper.allow_multiple_ads.unwrap_or(false));
            let stop_at_wrappers = wrapper.follow_additional_wrappers == Some(false);
            let results = join_all(chosen.into_iter().map(|next_ad| {
                let chain = chain.clone();
                async move {
                    if stop_at_wrappers && matches!(next_ad.body, AdBody::Wrapper(_)) {
                        let detail =
                            "followAdditionalWrappers is false but the response is a Wrapper"
                                .to_string();
                        return Outcome::failed(chain.fail(
                            WrapperErrorCode::WrapperLimit,
                            detail,
                            &[],
                        ));
                    }
                    self.resolve_ad(next_ad, chain).await
                }
            }))
            .await;
            let mut inner = Outcome::default();
            for r in results {
                inner.extend(r);
            }
            for ad in &mut inner.ads {
                if let AdBody::InLine(inline) = &mut ad.body {
                    merge::merge_wrapper(inline, &wrapper);
                }
            }
            if let [only] = inner.ads.as_mut_slice() {
                only.sequence = sequence.or(only.sequence);
                only.conditional_ad = conditional_ad.or(only.conditional_ad);
                only.ad_type = only.ad_type.or(ad_type);
            }
            out.extend(inner);
            out
        })
    }

    /// Fetches and reads one document within the hop timeout, the total timeout and the fetch budget.
    async fn fetch(&self, uri: &str) -> std::result::Result<Parsed, (WrapperErrorCode, String)> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err((
                WrapperErrorCode::Timeout,
                "the total timeout ran out".to_string(),
            ));
        }
        if self.fetches.fetch_add(1, Ordering::Relaxed) >= self.limits.max_fetches {
            return Err((
                WrapperErrorCode::WrapperLimit,
                format!(
                    "more than {} documents fetched in one resolution",
                    self.limits.max_fetches
                ),
            ));
        }
        let until = (now + self.config.hop_timeout).min(self.deadline);
        let text = match tokio::time::timeout_at(until, self.fetcher.fetch(uri)).await {
            Err(_) => {
                let waited = until.saturating_duration_since(now);
                return Err((
                    WrapperErrorCode::Timeout,
                    format!("no answer within {waited:?}"),
                ));
            }
            Ok(Err(e @ Error::Fetch { .. })) => {
                return Err((WrapperErrorCode::Timeout, e.to_string()));
            }
            Ok(Err(e)) => {
                return Err((
                    WrapperErrorCode::Timeout,
                    format!("fetching {uri} failed: {e}"),
                ));
            }
            Ok(Ok(text)) => text,
        };
        parse_vast_lenient_with(&text, &self.limits.parse)
            .map_err(|e| (e.vast_error_code(), e.to_string()))
    }
}

/// The ads of a wrapper's answer to use: all of them, or the first stand-alone ad (else the first ad).
fn choose(mut ads: Vec<Ad>, allow_multiple: bool) -> Vec<Ad> {
    if allow_multiple {
        return ads;
    }
    let index = ads.iter().position(|a| a.sequence.is_none()).unwrap_or(0);
    if index < ads.len() {
        vec![ads.swap_remove(index)]
    } else {
        Vec::new()
    }
}
