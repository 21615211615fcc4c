//! Strategies for random valid VAST models (see tests/proptest_roundtrip.rs for what "valid" means).
#![allow(unreachable_pub)]

mod creative;

pub use creative::*;
use interlude_vast::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Text with XML's special characters, a CDATA terminator, CR, tab and non-ASCII, trimmed, non-empty.
pub fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 <>&'\"\\]\\r\\té€😀-]{0,24}".prop_map(|s| format!("x{}y", s))
}

pub fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.:-]{1,12}"
}

/// An absolute URI with a query that needs escaping in XML (`&`, `<`, `"`, spaces) and a percent-escape.
pub fn uri() -> impl Strategy<Value = String> {
    (
        "[a-z]{1,8}",
        "[a-zA-Z0-9/_.-]{0,16}",
        "[a-zA-Z0-9=&<>\" .~-]{0,20}",
    )
        .prop_map(|(host, path, query)| format!("https://{host}.example/{path}?q={query}%3D&z=1"))
}

pub fn time_under(hours: u64) -> impl Strategy<Value = Time> {
    (0..hours * 3_600_000).prop_map(Time::from_millis)
}

pub fn offset() -> impl Strategy<Value = Offset> {
    prop_oneof![
        time_under(100).prop_map(Offset::Time),
        (0u32..=100_000)
            .prop_map(|t| Offset::Percent(Percent::from_thousandths(t).expect("≤ 100%"))),
    ]
}

pub fn decimal() -> impl Strategy<Value = String> {
    (0u32..100_000, 0u32..100).prop_map(|(i, f)| format!("{i}.{f:02}"))
}

pub fn click() -> impl Strategy<Value = Click> {
    (option::of(token()), uri()).prop_map(|(id, url)| Click { id, url })
}

pub fn extension() -> impl Strategy<Value = Extension> {
    (option::of(token()), vec(("[a-z]{1,6}", text()), 0..3)).prop_map(
        |(extension_type, children)| Extension {
            extension_type,
            xml: children
                .iter()
                .map(|(name, t)| {
                    format!(
                        "<{name} k=\"v\">{}</{name}>",
                        t.replace('&', "&amp;")
                            .replace('<', "&lt;")
                            .replace('>', "&gt;")
                    )
                })
                .collect(),
        },
    )
}

pub fn unknown() -> impl Strategy<Value = UnknownElement> {
    ("[A-Za-z/\\[\\]0-9]{0,24}", "[A-Z][a-z]{0,6}", text()).prop_map(|(parent, name, t)| {
        UnknownElement {
            parent,
            xml: format!("<{name}><![CDATA[{}]]></{name}>", t.replace("]]>", "")),
        }
    })
}

pub fn tracking() -> impl Strategy<Value = Tracking> {
    (0..TrackingEvent::ALL.len(), option::of(offset()), uri()).prop_map(|(i, offset, url)| {
        Tracking {
            event: TrackingEvent::ALL[i],
            offset,
            url,
        }
    })
}

pub fn video_clicks() -> impl Strategy<Value = VideoClicks> {
    (option::of(click()), vec(click(), 0..3), vec(click(), 0..2)).prop_map(
        |(click_through, click_tracking, custom_clicks)| VideoClicks {
            click_through,
            click_tracking,
            custom_clicks,
        },
    )
}

pub fn resources() -> impl Strategy<Value = Resources> {
    (
        vec(text(), 0..2),
        vec(uri(), 0..2),
        vec((token(), uri()), 0..2),
    )
        .prop_map(|(html, iframe, s)| Resources {
            html,
            iframe,
            static_resources: s
                .into_iter()
                .map(|(creative_type, url)| StaticResource { creative_type, url })
                .collect(),
        })
}

pub fn common() -> impl Strategy<Value = AdCommon> {
    let model = prop_oneof![
        Just(PricingModel::Cpc),
        Just(PricingModel::Cpm),
        Just(PricingModel::Cpe),
        Just(PricingModel::Cpv)
    ];
    let pricing = (model, "[A-Z]{3}", decimal()).prop_map(|(model, currency, value)| Pricing {
        model,
        currency,
        value,
    });
    let vi = (
        option::of(token()),
        vec(uri(), 0..2),
        vec(uri(), 0..2),
        vec(uri(), 0..2),
    )
        .prop_map(
            |(id, viewable, not_viewable, view_undetermined)| ViewableImpression {
                id,
                viewable,
                not_viewable,
                view_undetermined,
            },
        );
    let verification = (
        option::of(token()),
        vec(
            (option::of(token()), option::of(any::<bool>()), uri()),
            0..2,
        ),
        vec((option::of(token()), option::of(token()), uri()), 0..2),
        vec((token(), uri()), 0..2),
        option::of(text()),
    )
        .prop_map(
            |(vendor, js, exe, tracking, verification_parameters)| Verification {
                vendor,
                javascript_resources: js
                    .into_iter()
                    .map(
                        |(api_framework, browser_optional, url)| JavaScriptResource {
                            api_framework,
                            browser_optional,
                            url,
                        },
                    )
                    .collect(),
                executable_resources: exe
                    .into_iter()
                    .map(|(api_framework, resource_type, url)| ExecutableResource {
                        api_framework,
                        resource_type,
                        url,
                    })
                    .collect(),
                tracking: tracking
                    .into_iter()
                    .map(|(event, url)| VerificationTracking { event, url })
                    .collect(),
                verification_parameters,
            },
        );
    let ad_system =
        (text(), option::of(token())).prop_map(|(name, version)| AdSystem { name, version });
    (
        (
            option::of(ad_system),
            vec(uri(), 0..3),
            vec(
                click().prop_map(|c| Impression {
                    id: c.id,
                    url: c.url,
                }),
                0..3,
            ),
        ),
        (
            option::of(pricing),
            option::of(vi),
            vec(verification, 0..2),
            vec(extension(), 0..2),
            vec(unknown(), 0..2),
        ),
    )
        .prop_map(
            |(
                (ad_system, errors, impressions),
                (pricing, viewable_impression, ad_verifications, extensions, unknown),
            )| AdCommon {
                ad_system,
                errors,
                impressions,
                pricing,
                viewable_impression,
                ad_verifications,
                extensions,
                unknown,
            },
        )
}

pub fn ad() -> impl Strategy<Value = Ad> {
    let inline = (
        (
            common(),
            option::of(token()),
            option::of(text()),
            option::of(text()),
        ),
        (
            vec((uri(), token()), 0..2),
            vec(creative(), 1..3),
            option::of(text()),
            option::of(0u64..100_000),
            option::of((option::of(token()), uri())),
        ),
    )
        .prop_map(
            |(
                (common, ad_serving_id, ad_title, advertiser),
                (categories, creatives, description, expires, survey),
            )| {
                AdBody::InLine(Box::new(InLine {
                    common,
                    ad_serving_id,
                    ad_title,
                    advertiser,
                    categories: categories
                        .into_iter()
                        .map(|(authority, value)| Category { authority, value })
                        .collect(),
                    creatives,
                    description,
                    expires,
                    survey: survey.map(|(mime_type, url)| Survey { mime_type, url }),
                }))
            },
        );
    let wrapper = (
        (
            common(),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
        ),
        (
            vec((option::of(uri()), text()), 0..2),
            vec(wrapper_creative(), 0..2),
            uri(),
        ),
    )
        .prop_map(
            |(
                (common, follow_additional_wrappers, allow_multiple_ads, fallback_on_no_ad),
                (blocked, creatives, vast_ad_tag_uri),
            )| {
                AdBody::Wrapper(Box::new(Wrapper {
                    common,
                    follow_additional_wrappers,
                    allow_multiple_ads,
                    fallback_on_no_ad,
                    blocked_ad_categories: blocked
                        .into_iter()
                        .map(|(authority, value)| BlockedAdCategories { authority, value })
                        .collect(),
                    creatives,
                    vast_ad_tag_uri,
                }))
            },
        );
    let ad_type = prop_oneof![
        Just(AdType::Video),
        Just(AdType::Audio),
        Just(AdType::Hybrid)
    ];
    (
        option::of(token()),
        option::of(1u64..10),
        option::of(any::<bool>()),
        option::of(ad_type),
        prop_oneof![3 => inline, 1 => wrapper],
    )
        .prop_map(|(id, sequence, conditional_ad, ad_type, body)| Ad {
            id,
            sequence,
            conditional_ad,
            ad_type,
            body,
        })
}

pub fn vast() -> impl Strategy<Value = Vast> {
    prop_oneof![
        9 => vec(ad(), 1..4).prop_map(|ads| Vast { version: WRITTEN_VERSION.into(), ads, errors: vec![] }),
        1 => vec(uri(), 1..3).prop_map(|errors| Vast { version: WRITTEN_VERSION.into(), ads: vec![], errors }),
    ]
}
