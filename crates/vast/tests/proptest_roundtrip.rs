//! Random valid models round-trip: write → parse gives the model back, and every written document
//! validates against vast_4.2.xsd (xmllint). "Valid" is what the model can say and VAST 4.2 can carry:
//! trimmed text (the reader trims), non-empty optional values (an empty one reads as absent), no
//! placeholder values (`about:blank`, `unknown`), times inside `xs:time`, URIs without literal macros
//! (libxml2's xs:anyURI refuses `[`; see tests/macros.rs).

mod common;

use interlude_vast::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Text with XML's special characters, a CDATA terminator, CR, tab and non-ASCII, trimmed, non-empty.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 <>&'\"\\]\\r\\té€😀-]{0,24}".prop_map(|s| format!("x{}y", s))
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.:-]{1,12}"
}

/// An absolute URI with a query that needs escaping in XML (`&`, `<`, `"`, spaces) and a percent-escape.
fn uri() -> impl Strategy<Value = String> {
    (
        "[a-z]{1,8}",
        "[a-zA-Z0-9/_.-]{0,16}",
        "[a-zA-Z0-9=&<>\" .~-]{0,20}",
    )
        .prop_map(|(host, path, query)| format!("https://{host}.example/{path}?q={query}%3D&z=1"))
}

fn time_under(hours: u64) -> impl Strategy<Value = Time> {
    (0..hours * 3_600_000).prop_map(Time::from_millis)
}

fn offset() -> impl Strategy<Value = Offset> {
    prop_oneof![
        time_under(100).prop_map(Offset::Time),
        (0u32..=100_000)
            .prop_map(|t| Offset::Percent(Percent::from_thousandths(t).expect("≤ 100%"))),
    ]
}

fn decimal() -> impl Strategy<Value = String> {
    (0u32..100_000, 0u32..100).prop_map(|(i, f)| format!("{i}.{f:02}"))
}

fn click() -> impl Strategy<Value = Click> {
    (option::of(token()), uri()).prop_map(|(id, url)| Click { id, url })
}

fn extension() -> impl Strategy<Value = Extension> {
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

fn unknown() -> impl Strategy<Value = UnknownElement> {
    ("[A-Za-z/\\[\\]0-9]{0,24}", "[A-Z][a-z]{0,6}", text()).prop_map(|(parent, name, t)| {
        UnknownElement {
            parent,
            xml: format!("<{name}><![CDATA[{}]]></{name}>", t.replace("]]>", "")),
        }
    })
}

fn tracking() -> impl Strategy<Value = Tracking> {
    (0..TrackingEvent::ALL.len(), option::of(offset()), uri()).prop_map(|(i, offset, url)| {
        Tracking {
            event: TrackingEvent::ALL[i],
            offset,
            url,
        }
    })
}

fn video_clicks() -> impl Strategy<Value = VideoClicks> {
    (option::of(click()), vec(click(), 0..3), vec(click(), 0..2)).prop_map(
        |(click_through, click_tracking, custom_clicks)| VideoClicks {
            click_through,
            click_tracking,
            custom_clicks,
        },
    )
}

fn resources() -> impl Strategy<Value = Resources> {
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

fn icon() -> impl Strategy<Value = Icon> {
    let x = prop_oneof![
        Just("left".to_string()),
        Just("right".to_string()),
        "[0-9]{1,3}"
    ];
    let y = prop_oneof![
        Just("top".to_string()),
        Just("bottom".to_string()),
        "[0-9]{1,3}"
    ];
    let clicks = (
        vec(
            (
                option::of(0u64..500),
                option::of(0u64..500),
                option::of(text()),
                option::of(uri()),
            ),
            0..2,
        ),
        option::of(uri()),
        vec(click(), 0..2),
    )
        .prop_map(|(images, click_through, click_tracking)| IconClicks {
            fallback_images: images
                .into_iter()
                .map(
                    |(width, height, alt_text, static_resource)| IconClickFallbackImage {
                        width,
                        height,
                        alt_text,
                        static_resource,
                    },
                )
                .collect(),
            click_through,
            click_tracking,
        });
    (
        (
            option::of(token()),
            option::of(0u64..500),
            option::of(0u64..500),
            option::of(x),
        ),
        (
            option::of(y),
            option::of(time_under(24)),
            option::of(time_under(24)),
            option::of(decimal()),
        ),
        (
            resources(),
            option::of(clicks),
            vec(uri(), 0..2),
            option::of(token()),
        ),
    )
        .prop_map(
            |(
                (program, width, height, x_position),
                (y_position, duration, offset, pxratio),
                (resources, icon_clicks, view_tracking, api_framework),
            )| Icon {
                program,
                width,
                height,
                x_position,
                y_position,
                duration,
                offset,
                api_framework,
                pxratio,
                resources,
                icon_clicks,
                view_tracking,
            },
        )
}

fn ad_parameters() -> impl Strategy<Value = AdParameters> {
    (option::of(any::<bool>()), text())
        .prop_map(|(xml_encoded, value)| AdParameters { xml_encoded, value })
}

fn delivery() -> impl Strategy<Value = Delivery> {
    prop_oneof![Just(Delivery::Progressive), Just(Delivery::Streaming)]
}

fn media_file() -> impl Strategy<Value = MediaFile> {
    (
        (
            option::of(token()),
            delivery(),
            token(),
            0u64..4000,
            0u64..3000,
            option::of(token()),
        ),
        (
            option::of(0u64..20_000),
            option::of(0u64..20_000),
            option::of(0u64..20_000),
            option::of(any::<bool>()),
        ),
        (
            option::of(any::<bool>()),
            option::of(0u64..1 << 40),
            option::of(token()),
            option::of(token()),
            uri(),
        ),
    )
        .prop_map(
            |(
                (id, delivery, mime_type, width, height, codec),
                (bitrate, min_bitrate, max_bitrate, scalable),
                (maintain_aspect_ratio, file_size, media_type, api_framework, url),
            )| MediaFile {
                id,
                delivery,
                mime_type,
                width,
                height,
                codec,
                bitrate,
                min_bitrate,
                max_bitrate,
                scalable,
                maintain_aspect_ratio,
                file_size,
                media_type,
                api_framework,
                url,
            },
        )
}

fn media_files() -> impl Strategy<Value = MediaFiles> {
    let cc =
        (option::of(token()), option::of(token()), uri()).prop_map(|(mime_type, language, url)| {
            ClosedCaptionFile {
                mime_type,
                language,
                url,
            }
        });
    let mezzanine = (
        option::of(token()),
        delivery(),
        token(),
        0u64..4000,
        0u64..3000,
        option::of(token()),
        option::of(0u64..1 << 40),
        uri(),
    )
        .prop_map(
            |(id, delivery, mime_type, width, height, codec, file_size, url)| Mezzanine {
                id,
                delivery,
                mime_type,
                width,
                height,
                codec,
                file_size,
                media_type: None,
                url,
            },
        );
    let icf = (
        option::of(token()),
        option::of(token()),
        option::of(any::<bool>()),
        uri(),
    )
        .prop_map(|(mime_type, api_framework, variable_duration, url)| {
            InteractiveCreativeFile {
                mime_type,
                api_framework,
                variable_duration,
                url,
            }
        });
    (
        vec(cc, 0..2),
        vec(media_file(), 1..4),
        vec(mezzanine, 0..2),
        vec(icf, 0..2),
    )
        .prop_map(
            |(closed_caption_files, media_files, mezzanines, interactive_creative_files)| {
                MediaFiles {
                    closed_caption_files,
                    media_files,
                    mezzanines,
                    interactive_creative_files,
                }
            },
        )
}

fn linear() -> impl Strategy<Value = Linear> {
    (
        option::of(offset()),
        time_under(24),
        option::of(ad_parameters()),
        media_files(),
        vec(tracking(), 0..5),
        option::of(video_clicks()),
        vec(icon(), 0..2),
    )
        .prop_map(
            |(skip_offset, duration, ad_parameters, media_files, tracking, video_clicks, icons)| {
                Linear {
                    skip_offset,
                    duration: Some(duration),
                    ad_parameters,
                    media_files,
                    tracking,
                    video_clicks,
                    icons,
                }
            },
        )
}

fn non_linear() -> impl Strategy<Value = NonLinear> {
    (
        (
            option::of(token()),
            0u64..2000,
            0u64..2000,
            option::of(0u64..2000),
            option::of(0u64..2000),
        ),
        (
            option::of(any::<bool>()),
            option::of(any::<bool>()),
            option::of(time_under(24)),
            option::of(token()),
        ),
        (
            resources(),
            option::of(ad_parameters()),
            option::of(uri()),
            vec(click(), 0..2),
        ),
    )
        .prop_map(
            |(
                (id, width, height, expanded_width, expanded_height),
                (scalable, maintain_aspect_ratio, min_suggested_duration, api_framework),
                (resources, ad_parameters, click_through, click_tracking),
            )| NonLinear {
                id,
                width,
                height,
                expanded_width,
                expanded_height,
                scalable,
                maintain_aspect_ratio,
                min_suggested_duration,
                api_framework,
                resources,
                ad_parameters,
                click_through,
                click_tracking,
            },
        )
}

fn companion() -> impl Strategy<Value = Companion> {
    let mode = prop_oneof![
        Just(RenderingMode::Default),
        Just(RenderingMode::EndCard),
        Just(RenderingMode::Concurrent)
    ];
    (
        (
            option::of(token()),
            0u64..2000,
            0u64..2000,
            option::of(0u64..2000),
            option::of(0u64..2000),
            option::of(0u64..2000),
        ),
        (
            option::of(0u64..2000),
            option::of(token()),
            option::of(token()),
            option::of(decimal()),
            option::of(mode),
        ),
        (
            resources(),
            option::of(ad_parameters()),
            option::of(text()),
            option::of(uri()),
            vec(click(), 0..2),
        ),
        (vec(extension(), 0..2), vec(tracking(), 0..2)),
    )
        .prop_map(
            |(
                (id, width, height, asset_width, asset_height, expanded_width),
                (expanded_height, api_framework, ad_slot_id, pxratio, rendering_mode),
                (resources, ad_parameters, alt_text, click_through, click_tracking),
                (creative_extensions, tracking),
            )| Companion {
                id,
                width,
                height,
                asset_width,
                asset_height,
                expanded_width,
                expanded_height,
                api_framework,
                ad_slot_id,
                pxratio,
                rendering_mode,
                resources,
                ad_parameters,
                alt_text,
                click_through,
                click_tracking,
                creative_extensions,
                tracking,
            },
        )
}

fn companion_ads() -> impl Strategy<Value = CompanionAds> {
    let required = prop_oneof![
        Just(CompanionRequired::All),
        Just(CompanionRequired::Any),
        Just(CompanionRequired::None)
    ];
    (option::of(required), vec(companion(), 0..2)).prop_map(|(required, companions)| CompanionAds {
        required,
        companions,
    })
}

fn creative() -> impl Strategy<Value = Creative> {
    let uaid = (
        prop_oneof![Just("ad-id.org"), Just("clearcast.co.uk"), Just("Ad-ID")],
        token(),
    )
        .prop_map(|(r, value)| UniversalAdId {
            id_registry: r.to_string(),
            value,
        });
    let non_linear_ads =
        (vec(tracking(), 0..2), vec(non_linear(), 0..2)).prop_map(|(tracking, non_linears)| {
            NonLinearAds {
                tracking,
                non_linears,
            }
        });
    (
        (
            option::of(token()),
            option::of(0u64..100),
            option::of(token()),
            option::of(token()),
            vec(uaid, 0..3),
        ),
        (
            vec(extension(), 0..2),
            option::of(linear()),
            option::of(non_linear_ads),
            option::of(companion_ads()),
        ),
    )
        .prop_map(
            |(
                (id, sequence, ad_id, api_framework, universal_ad_ids),
                (creative_extensions, linear, non_linear_ads, companion_ads),
            )| Creative {
                id,
                sequence,
                ad_id,
                api_framework,
                universal_ad_ids,
                creative_extensions,
                linear,
                non_linear_ads,
                companion_ads,
            },
        )
}

fn wrapper_creative() -> impl Strategy<Value = WrapperCreative> {
    let linear = (
        option::of(offset()),
        vec(tracking(), 0..3),
        option::of(video_clicks()),
        vec(icon(), 0..2),
    )
        .prop_map(
            |(skip_offset, tracking, video_clicks, icons)| WrapperLinear {
                skip_offset,
                tracking,
                video_clicks,
                icons,
            },
        );
    let nl = (
        vec(tracking(), 0..2),
        vec(
            option::of(click()).prop_map(|click_tracking| WrapperNonLinear { click_tracking }),
            0..2,
        ),
    )
        .prop_map(|(tracking, non_linears)| WrapperNonLinearAds {
            tracking,
            non_linears,
        });
    (
        option::of(token()),
        option::of(0u64..100),
        option::of(token()),
        option::of(linear),
        option::of(nl),
        option::of(companion_ads()),
    )
        .prop_map(
            |(id, sequence, ad_id, linear, non_linear_ads, companion_ads)| WrapperCreative {
                id,
                sequence,
                ad_id,
                api_framework: None,
                linear,
                non_linear_ads,
                companion_ads,
            },
        )
}

fn common() -> impl Strategy<Value = AdCommon> {
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

fn ad() -> impl Strategy<Value = Ad> {
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

fn vast() -> impl Strategy<Value = Vast> {
    prop_oneof![
        9 => vec(ad(), 1..4).prop_map(|ads| Vast { version: WRITTEN_VERSION.into(), ads, errors: vec![] }),
        1 => vec(uri(), 1..3).prop_map(|errors| Vast { version: WRITTEN_VERSION.into(), ads: vec![], errors }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_models_survive_write_and_parse_and_write_valid_vast_4_2(model in vast()) {
        let written = write_vast(&model).expect("a valid model is writable");
        let reread = parse_vast(&written).expect("written VAST parses");
        prop_assert_eq!(&reread, &model, "document:\n{}", written);
        common::assert_valid_vast_4_2(&written);
    }
}
