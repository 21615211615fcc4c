//! Strategies for creatives.

use super::*;

pub fn icon() -> impl Strategy<Value = Icon> {
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

pub fn ad_parameters() -> impl Strategy<Value = AdParameters> {
    (option::of(any::<bool>()), text())
        .prop_map(|(xml_encoded, value)| AdParameters { xml_encoded, value })
}

pub fn delivery() -> impl Strategy<Value = Delivery> {
    prop_oneof![Just(Delivery::Progressive), Just(Delivery::Streaming)]
}

pub fn media_file() -> impl Strategy<Value = MediaFile> {
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

pub fn media_files() -> impl Strategy<Value = MediaFiles> {
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

pub fn linear() -> impl Strategy<Value = Linear> {
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

pub fn non_linear() -> impl Strategy<Value = NonLinear> {
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

pub fn companion() -> impl Strategy<Value = Companion> {
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

pub fn companion_ads() -> impl Strategy<Value = CompanionAds> {
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

pub fn creative() -> impl Strategy<Value = Creative> {
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

pub fn wrapper_creative() -> impl Strategy<Value = WrapperCreative> {
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
