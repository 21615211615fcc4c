//! Frequency caps and what else a decision reads of the viewer's past (storyboard progress, the previous
//! break), from one read of the viewer's history per decision.
//!
//! The history is resolved once against the catalog (line item, campaign, advertiser, creative indexes and
//! whether it was this session), and every cap of every candidate is then a scan of a few dozen entries in
//! memory. Caps count a line item, a campaign, an advertiser, each creative, or the current session
//! ([`CapScope`]). Engines built over the older per-line-item [`Counters`] read them per line item instead,
//! each read memoised for the decision; creative and session caps need the history and do not apply there.

use std::cell::RefCell;

use chrono::{DateTime, TimeDelta, Utc};
use interlude_events::{Counters, ViewerHour};

use super::Engine;
use super::prepare::stable_hash;
use crate::catalog::{CapScope, FrequencyCap};
use crate::history::ViewerHistory;
use crate::reservation::CapClaim;

const NONE: u32 = u32::MAX;

/// One resolved entry of the viewer's history.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen {
    line_item: u32,
    campaign: u32,
    advertiser: u32,
    creative: u32,
    /// In the session being decided.
    this_session: bool,
    /// Hash of the break id (0 when unknown).
    break_hash: u64,
    at: i64,
    count: u32,
}

/// The viewer's counts, as this decision sees them.
pub(super) enum CapView<'a> {
    /// No id or no consent to count the viewer across sessions: no caps apply.
    Off,
    /// From the viewer's history.
    History(Vec<Seen>),
    /// From per-line-item counters, memoised: (line item, since, count).
    Counters {
        counters: &'a dyn Counters,
        viewer: &'a str,
        memo: RefCell<Vec<(u32, i64, u64)>>,
    },
}

impl Engine {
    /// The catalog indexes of line item `id`, its campaign and its advertiser ([`NONE`] where it has none), as
    /// a history entry names them; `None` for a line item the catalog no longer has.
    fn owners_of(&self, id: &str) -> Option<(u32, u32, u32)> {
        let &i = self.by_id.get(id)?;
        let p = self.prepared.get(i)?;
        Some((
            i as u32,
            p.campaign.map_or(NONE, |c| c as u32),
            p.advertiser_index.map_or(NONE, |a| a as u32),
        ))
    }

    /// Resolves `history` (of the viewer deciding in `session`) against the catalog.
    pub(super) fn resolve_history(&self, history: &ViewerHistory, session: &str) -> Vec<Seen> {
        history
            .impressions
            .iter()
            .filter_map(|h| {
                let (line_item, campaign, advertiser) = self.owners_of(&h.line_item_id)?;
                Some(Seen {
                    line_item,
                    campaign,
                    advertiser,
                    creative: h
                        .creative_id
                        .as_ref()
                        .and_then(|c| self.creative_by_id.get(c))
                        .map_or(NONE, |&c| c as u32),
                    this_session: h.session_id.as_deref() == Some(session),
                    break_hash: h.break_id.as_deref().map_or(0, |b| stable_hash(&[b])),
                    at: h.at.timestamp(),
                    count: h.count,
                })
            })
            .collect()
    }

    /// A viewer's hour buckets (from counters that read them in one go) as history entries. A bucket's time
    /// is its last second, so `at >= since` holds exactly when the bucket's hour is at or after `since`'s
    /// hour: the per-line-item counters' rule (whole hours), kept so both seams count the same.
    pub(super) fn resolve_hours(&self, hours: &[ViewerHour]) -> Vec<Seen> {
        hours
            .iter()
            .filter_map(|h| {
                let (line_item, campaign, advertiser) = self.owners_of(&h.line_item_id)?;
                Some(Seen {
                    line_item,
                    campaign,
                    advertiser,
                    creative: NONE,
                    this_session: false,
                    break_hash: 0,
                    at: h.hour + 3599,
                    count: u32::try_from(h.impressions).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    /// Impressions matching `key` since `since` (Unix seconds), per `caps`. Counters answer line items only.
    fn count(
        &self,
        caps: &CapView<'_>,
        since: i64,
        key: &dyn Fn(&Seen) -> bool,
        line_items: &[usize],
    ) -> u64 {
        match caps {
            CapView::Off => 0,
            CapView::History(seen) => seen
                .iter()
                .filter(|s| s.at >= since && key(s))
                .map(|s| u64::from(s.count))
                .sum(),
            CapView::Counters {
                counters,
                viewer,
                memo,
            } => line_items
                .iter()
                .map(|&j| {
                    if let Some(&(_, _, n)) = memo
                        .borrow()
                        .iter()
                        .find(|(a, b, _)| (*a, *b) == (j as u32, since))
                    {
                        return n;
                    }
                    let at = DateTime::from_timestamp(since, 0).unwrap_or_default();
                    let n = self
                        .catalog
                        .line_items
                        .get(j)
                        .map_or(0, |li| counters.viewer_impressions(viewer, &li.id, at));
                    memo.borrow_mut().push((j as u32, since, n));
                    n
                })
                .sum(),
        }
    }

    /// Impressions counted against `cap` of line item `i` (`of_campaign`: the campaign's cap) for this viewer
    /// at `now`. Creative caps are counted per creative ([`Engine::creative_count`]).
    fn cap_count(
        &self,
        caps: &CapView<'_>,
        i: usize,
        cap: &FrequencyCap,
        of_campaign: bool,
        now: DateTime<Utc>,
    ) -> u64 {
        let Some(p) = self.prepared.get(i) else {
            return 0;
        };
        let (li, campaign) = (i as u32, p.campaign.map_or(NONE, |c| c as u32));
        let advertiser = p.advertiser_index.map_or(NONE, |a| a as u32);
        let since = window_start(cap, now);
        let own = |s: &Seen| {
            if of_campaign {
                s.campaign == campaign
            } else {
                s.line_item == li
            }
        };
        let owners: &[usize] = if of_campaign { &p.siblings } else { &[i] };
        match cap.scope {
            CapScope::Own => self.count(caps, since, &own, owners),
            CapScope::Session => match caps {
                CapView::History(_) => {
                    self.count(caps, since, &|s| s.this_session && own(s), owners)
                }
                _ => 0,
            },
            CapScope::Advertiser => {
                let all = p
                    .advertiser_index
                    .and_then(|a| self.by_advertiser.get(a))
                    .map_or(&[][..], Vec::as_slice);
                self.count(caps, since, &|s| s.advertiser == advertiser, all)
            }
            CapScope::Creative => 0,
        }
    }

    /// Whether a cap of line item `i` (its own, its campaign's, its advertiser's or a session cap) is reached
    /// for this viewer at `now`. Creative caps are checked per creative ([`Engine::creative_capped`]).
    pub(super) fn capped(&self, caps: &CapView<'_>, i: usize, now: DateTime<Utc>) -> bool {
        let Some(p) = self.prepared.get(i) else {
            return false;
        };
        if p.caps.is_empty() || matches!(caps, CapView::Off) {
            return false;
        }
        if let CapView::History(seen) = caps
            && seen.is_empty()
        {
            return false;
        }
        p.caps.iter().any(|&(cap, of_campaign)| {
            self.cap_count(caps, i, &cap, of_campaign, now) >= u64::from(cap.max)
        })
    }

    /// The caps a reservation of line item `i` with `creative` for the viewer of `session` counts against,
    /// each with what this decision counted of the viewer's past: pending holds of other decisions of the
    /// same viewer (other sessions, other nodes) are added by the [`crate::reservation::Reservations`]
    /// store, atomically. None when caps are off for the viewer.
    pub(super) fn cap_claims(
        &self,
        caps: &CapView<'_>,
        i: usize,
        creative: Option<usize>,
        session: &str,
        now: DateTime<Utc>,
    ) -> Vec<CapClaim> {
        let (Some(p), Some(l)) = (self.prepared.get(i), self.catalog.line_items.get(i)) else {
            return Vec::new();
        };
        if matches!(caps, CapView::Off) {
            return Vec::new();
        }
        let mut claims = Vec::with_capacity(p.caps.len());
        for &(cap, of_campaign) in &p.caps {
            let owner = if of_campaign {
                format!("campaign:{}", l.campaign)
            } else {
                format!("line_item:{}", l.id)
            };
            let (key, seen) = match cap.scope {
                CapScope::Own => (owner, self.cap_count(caps, i, &cap, of_campaign, now)),
                CapScope::Session => (
                    format!("session:{session}:{owner}"),
                    self.cap_count(caps, i, &cap, of_campaign, now),
                ),
                CapScope::Advertiser => (
                    format!("advertiser:{}", p.advertiser_id),
                    self.cap_count(caps, i, &cap, of_campaign, now),
                ),
                CapScope::Creative => {
                    let Some((c, spot)) =
                        creative.and_then(|c| Some((c, self.catalog.creatives.get(c)?)))
                    else {
                        continue;
                    };
                    (
                        format!("creative:{}", spot.id),
                        self.creative_count(caps, c, &cap, now),
                    )
                }
            };
            claims.push(CapClaim {
                key,
                max: cap.max,
                seen,
            });
        }
        claims
    }

    /// Impressions of `creative` counted against the creative cap `cap` at `now` (history only).
    fn creative_count(
        &self,
        caps: &CapView<'_>,
        creative: usize,
        cap: &FrequencyCap,
        now: DateTime<Utc>,
    ) -> u64 {
        let CapView::History(seen) = caps else {
            return 0;
        };
        let since = window_start(cap, now);
        seen.iter()
            .filter(|s| s.at >= since && s.creative == creative as u32)
            .map(|s| u64::from(s.count))
            .sum()
    }

    /// Whether a creative cap of line item `i` is reached for `creative`.
    pub(super) fn creative_capped(
        &self,
        caps: &CapView<'_>,
        i: usize,
        creative: usize,
        now: DateTime<Utc>,
    ) -> bool {
        if !matches!(caps, CapView::History(_)) {
            return false;
        }
        let Some(p) = self.prepared.get(i) else {
            return false;
        };
        p.caps
            .iter()
            .filter(|(cap, _)| cap.scope == CapScope::Creative)
            .any(|(cap, _)| self.creative_count(caps, creative, cap, now) >= u64::from(cap.max))
    }

    /// How many impressions of line item `i` the viewer has had (the storyboard's progress).
    pub(super) fn seen_line_item(&self, caps: &CapView<'_>, i: usize, now: DateTime<Utc>) -> u64 {
        let since =
            (now - TimeDelta::hours(i64::from(self.longest_window_hours.max(24)))).timestamp();
        self.count(caps, since, &|s| s.line_item == i as u32, &[i])
    }

    /// The advertisers (indexes) of the viewer's previous break in this session, other than `current`.
    pub(super) fn previous_break(&self, caps: &CapView<'_>, current: &str) -> Vec<u32> {
        let CapView::History(seen) = caps else {
            return Vec::new();
        };
        let current = stable_hash(&[current]);
        let Some(last) = seen
            .iter()
            .filter(|s| s.this_session && s.break_hash != 0 && s.break_hash != current)
            .max_by_key(|s| s.at)
        else {
            return Vec::new();
        };
        seen.iter()
            .filter(|s| s.this_session && s.break_hash == last.break_hash)
            .map(|s| s.advertiser)
            .collect()
    }
}

fn window_start(cap: &FrequencyCap, now: DateTime<Utc>) -> i64 {
    now.timestamp() - i64::from(cap.window_hours) * 3600
}
