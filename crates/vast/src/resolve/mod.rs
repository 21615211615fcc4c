//! Wrapper resolution: follow each Wrapper's `VASTAdTagURI` until an InLine ad, merge every wrapper's
//! tracking into it, and report failures with their VAST error code through the Error URIs collected on the
//! way (VAST 4.2, `Wrapper` and the error codes 100, 301, 302, 303).
//!
//! The algorithm is pure: documents come from a [`Fetcher`] the caller supplies (the server's is an HTTP
//! client; tests use a map). Limits are parameters ([`ResolveConfig`]): a depth (wrappers followed per
//! chain, default 5), a per-hop and a total timeout, enforced with `tokio::time` (a paused clock in tests).
//! Pinging the error URIs is the caller's job: the core returns them, `[ERRORCODE]` filled in.
//!
//! The ads of a pod resolve concurrently and keep their order; a wrapper ad that resolves to one ad gives
//! that ad its `sequence`. `allowMultipleAds` (default false) limits a wrapper's answer to its first
//! stand-alone ad (or, if it has none, its first ad); `followAdditionalWrappers="false"` stops the chain at
//! the next Wrapper with code 302.

mod merge;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::macros::expand_error_code;
use crate::model::{Ad, AdBody, Vast};
use crate::parse::parse_vast;

/// Gets the VAST document a `VASTAdTagURI` points to. Implementations do the I/O (and may add macros,
/// headers, cookies); they should not retry, since the resolver's timeouts bound each call.
pub trait Fetcher {
    /// The document at `uri`, or [`Error::Fetch`] with the reason.
    fn fetch(&self, uri: &str) -> impl Future<Output = Result<String>> + Send;
}

/// Limits of one resolution.
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
    /// Depth 5, 3 s per hop (MediaTailor's ad-server timeout), 5 s in all.
    fn default() -> ResolveConfig {
        ResolveConfig {
            max_depth: 5,
            hop_timeout: Duration::from_secs(3),
            total_timeout: Duration::from_secs(5),
        }
    }
}

/// VAST error codes the resolver reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WrapperErrorCode {
    /// 100: a document is not well-formed VAST.
    XmlParse,
    /// 301: a `VASTAdTagURI` timed out or could not be fetched.
    Timeout,
    /// 302: the wrapper limit was reached (or `followAdditionalWrappers` forbade the next one).
    WrapperLimit,
    /// 303: a wrapper led to a response without ads.
    NoAds,
}

impl WrapperErrorCode {
    /// The numeric code for `[ERRORCODE]`.
    pub const fn code(self) -> u16 {
        match self {
            WrapperErrorCode::XmlParse => 100,
            WrapperErrorCode::Timeout => 301,
            WrapperErrorCode::WrapperLimit => 302,
            WrapperErrorCode::NoAds => 303,
        }
    }
}

/// One chain that did not end in an InLine ad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapperFailure {
    /// The code.
    pub code: WrapperErrorCode,
    /// `id` of the top-level ad whose chain failed.
    pub ad_id: Option<String>,
    /// The `VASTAdTagURI`s followed, outermost first; the last is where it failed.
    pub chain: Vec<String>,
    /// What went wrong.
    pub detail: String,
    /// Error URIs to ping: those of every wrapper in the chain, and the root-level ones of an empty
    /// response, with `[ERRORCODE]` filled in (other macros left for the firing party).
    pub pings: Vec<String>,
}

/// The result: the document with every Wrapper replaced by the InLine ad(s) it led to (failed chains
/// removed), and the failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// InLine ads only.
    pub vast: Vast,
    /// Chains that failed.
    pub failures: Vec<WrapperFailure>,
}

/// Resolves every Wrapper of `vast`.
pub async fn resolve<F: Fetcher + Sync>(
    vast: Vast,
    fetcher: &F,
    config: &ResolveConfig,
) -> Resolved {
    let deadline = Instant::now() + config.total_timeout;
    let ctx = Ctx {
        fetcher,
        config,
        deadline,
    };
    let Vast {
        version,
        ads,
        errors,
    } = vast;
    let results = join_all(ads.into_iter().map(|ad| {
        let top_id = ad.id.clone();
        let ctx = &ctx;
        async move { ctx.resolve_ad(ad, Chain::new(top_id)).await }
    }))
    .await;
    let mut out = Resolved {
        vast: Vast {
            version,
            ads: Vec::new(),
            errors,
        },
        failures: Vec::new(),
    };
    for (ads, failures) in results {
        out.vast.ads.extend(ads);
        out.failures.extend(failures);
    }
    out
}

/// Fetches `uri` and resolves what it returns (a third party's VAST tag, e.g. for a line item's creative).
/// If the tag itself fails, the failure has no pings: nothing told us where to report it.
pub async fn resolve_tag<F: Fetcher + Sync>(
    uri: &str,
    fetcher: &F,
    config: &ResolveConfig,
) -> Resolved {
    let started = Instant::now();
    let hop = config.hop_timeout.min(config.total_timeout);
    let failure = |code, detail: String| Resolved {
        vast: Vast::default(),
        failures: vec![WrapperFailure {
            code,
            ad_id: None,
            chain: vec![uri.to_string()],
            detail,
            pings: Vec::new(),
        }],
    };
    let text = match tokio::time::timeout(hop, fetcher.fetch(uri)).await {
        Err(_) => {
            return failure(
                WrapperErrorCode::Timeout,
                format!("no answer within {hop:?}"),
            );
        }
        Ok(Err(e)) => return failure(WrapperErrorCode::Timeout, e.to_string()),
        Ok(Ok(text)) => text,
    };
    let vast = match parse_vast(&text) {
        Ok(v) => v,
        Err(e) => return failure(WrapperErrorCode::XmlParse, e.to_string()),
    };
    let rest = ResolveConfig {
        total_timeout: config.total_timeout.saturating_sub(started.elapsed()),
        ..config.clone()
    };
    resolve(vast, fetcher, &rest).await
}

struct Ctx<'f, F> {
    fetcher: &'f F,
    config: &'f ResolveConfig,
    deadline: Instant,
}

/// Where a chain is: the URIs followed and the Error URIs of the wrappers passed.
#[derive(Clone)]
struct Chain {
    top_id: Option<String>,
    uris: Vec<String>,
    error_uris: Vec<String>,
}

impl Chain {
    fn new(top_id: Option<String>) -> Chain {
        Chain {
            top_id,
            uris: Vec::new(),
            error_uris: Vec::new(),
        }
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
            pings: self
                .error_uris
                .iter()
                .chain(extra_error_uris)
                .map(|u| expand_error_code(u, code.code()))
                .collect(),
        }
    }
}

type Outcome = (Vec<Ad>, Vec<WrapperFailure>);

impl<F: Fetcher + Sync> Ctx<'_, F> {
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
                    return (vec![ad], Vec::new());
                }
                AdBody::Wrapper(w) => w,
            };
            chain
                .error_uris
                .extend(wrapper.common.errors.iter().cloned());
            chain.uris.push(wrapper.vast_ad_tag_uri.clone());
            if chain.uris.len() > self.config.max_depth {
                let detail = format!("more than {} wrappers in one chain", self.config.max_depth);
                return (
                    Vec::new(),
                    vec![chain.fail(WrapperErrorCode::WrapperLimit, detail, &[])],
                );
            }
            let next = match self.fetch(&wrapper.vast_ad_tag_uri).await {
                Ok(doc) => doc,
                Err((code, detail)) => return (Vec::new(), vec![chain.fail(code, detail, &[])]),
            };
            if next.ads.is_empty() {
                let detail = "the response has no ads".to_string();
                return (
                    Vec::new(),
                    vec![chain.fail(WrapperErrorCode::NoAds, detail, &next.errors)],
                );
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
                        return (
                            Vec::new(),
                            vec![chain.fail(WrapperErrorCode::WrapperLimit, detail, &[])],
                        );
                    }
                    self.resolve_ad(next_ad, chain).await
                }
            }))
            .await;
            let (mut ads, mut failures) = (Vec::new(), Vec::new());
            for (a, f) in results {
                ads.extend(a);
                failures.extend(f);
            }
            for ad in &mut ads {
                if let AdBody::InLine(inline) = &mut ad.body {
                    merge::merge_wrapper(inline, &wrapper);
                }
            }
            if let [only] = ads.as_mut_slice() {
                only.sequence = sequence.or(only.sequence);
                only.conditional_ad = conditional_ad.or(only.conditional_ad);
                only.ad_type = only.ad_type.or(ad_type);
            }
            (ads, failures)
        })
    }

    async fn fetch(&self, uri: &str) -> std::result::Result<Vast, (WrapperErrorCode, String)> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err((
                WrapperErrorCode::Timeout,
                "the total timeout ran out".to_string(),
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
        parse_vast(&text).map_err(|e| (WrapperErrorCode::XmlParse, e.to_string()))
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
