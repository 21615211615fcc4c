//! Merging a Wrapper into the InLine ad it led to: the wrapper's impressions, errors, viewability and
//! verification URIs, its linear/non-linear/companion tracking and click tracking, and its icons, so that
//! every ad server in the chain is told what happened (VAST 4.2, `Wrapper`: "the video player must
//! combine the tracking resources of the Wrapper with those of the InLine ad").
//!
//! The InLine's own entries come first, then those of the wrappers from the innermost out. What belongs to
//! the wrapper document alone is not merged: its `Pricing`, its `BlockedAdCategories` (a request-time
//! constraint) and its unknown elements.

use crate::model::*;

/// Adds what `wrapper` tracks to `inline`.
pub(crate) fn merge_wrapper(inline: &mut InLine, wrapper: &Wrapper) {
    let (to, from) = (&mut inline.common, &wrapper.common);
    to.errors.extend(from.errors.iter().cloned());
    to.impressions.extend(from.impressions.iter().cloned());
    to.ad_verifications
        .extend(from.ad_verifications.iter().cloned());
    to.extensions.extend(from.extensions.iter().cloned());
    if let Some(vi) = &from.viewable_impression {
        let into = to
            .viewable_impression
            .get_or_insert_with(ViewableImpression::default);
        into.viewable.extend(vi.viewable.iter().cloned());
        into.not_viewable.extend(vi.not_viewable.iter().cloned());
        into.view_undetermined
            .extend(vi.view_undetermined.iter().cloned());
    }
    for wc in &wrapper.creatives {
        if let Some(wl) = &wc.linear {
            merge_linear(&mut inline.creatives, wl);
        }
        if let Some(wn) = &wc.non_linear_ads {
            merge_non_linear(&mut inline.creatives, wn);
        }
        if let Some(ads) = &wc.companion_ads {
            merge_companions(&mut inline.creatives, ads);
        }
    }
}

fn merge_linear(creatives: &mut [Creative], wl: &WrapperLinear) {
    for linear in creatives.iter_mut().filter_map(|c| c.linear.as_mut()) {
        linear.tracking.extend(wl.tracking.iter().cloned());
        if let Some(wclicks) = &wl.video_clicks {
            let clicks = linear.video_clicks.get_or_insert_with(VideoClicks::default);
            clicks
                .click_tracking
                .extend(wclicks.click_tracking.iter().cloned());
            clicks
                .custom_clicks
                .extend(wclicks.custom_clicks.iter().cloned());
        }
        // An icon program the InLine already shows keeps the InLine's icon.
        for icon in &wl.icons {
            let taken =
                icon.program.is_some() && linear.icons.iter().any(|i| i.program == icon.program);
            if !taken {
                linear.icons.push(icon.clone());
            }
        }
    }
}

fn merge_non_linear(creatives: &mut [Creative], wn: &WrapperNonLinearAds) {
    for ads in creatives
        .iter_mut()
        .filter_map(|c| c.non_linear_ads.as_mut())
    {
        ads.tracking.extend(wn.tracking.iter().cloned());
        let clicks = wn
            .non_linears
            .iter()
            .filter_map(|n| n.click_tracking.as_ref());
        for click in clicks {
            for nl in &mut ads.non_linears {
                nl.click_tracking.push(click.clone());
            }
        }
    }
}

/// A wrapper companion without a resource only tracks: its tracking goes to every InLine companion. One
/// with a resource is an extra companion to show: it is added.
fn merge_companions(creatives: &mut Vec<Creative>, ads: &CompanionAds) {
    for wc in &ads.companions {
        if wc.resources.is_empty() {
            for c in creatives
                .iter_mut()
                .filter_map(|c| c.companion_ads.as_mut())
                .flat_map(|a| a.companions.iter_mut())
            {
                c.tracking.extend(wc.tracking.iter().cloned());
                c.click_tracking.extend(wc.click_tracking.iter().cloned());
            }
            continue;
        }
        match creatives.iter_mut().find_map(|c| c.companion_ads.as_mut()) {
            Some(inline_ads) => inline_ads.companions.push(wc.clone()),
            None => creatives.push(Creative {
                companion_ads: Some(CompanionAds {
                    required: ads.required,
                    companions: vec![wc.clone()],
                }),
                ..Creative::default()
            }),
        }
    }
}
