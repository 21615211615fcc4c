//! Creative selection for stitching: the rendition that matches a content variant, HLS first, and the
//! reasons when none does.

use interlude_vast::select::{Mismatch, Rejected, Unverified};
use interlude_vast::{
    ContentVariant, Delivery, Rendition, Selection, StitchPolicy, parse_vast, select,
    select_media_file,
};

fn variant_720p() -> ContentVariant {
    ContentVariant {
        bandwidth: 3_000_000,
        width: 1280,
        height: 720,
        codecs: vec!["avc1.64001f".into(), "mp4a.40.2".into()],
        frame_rate: Some(29.97),
    }
}

fn rendition(uri: &str, mime: &str, delivery: Delivery, kbps: u64, w: u64, h: u64) -> Rendition {
    Rendition {
        uri: uri.into(),
        mime_type: mime.into(),
        delivery,
        bandwidth: Some(kbps * 1000),
        width: w,
        height: h,
        codecs: vec!["avc1.64001f".into(), "mp4a.40.2".into()],
        frame_rate: Some(29.97),
        api_framework: None,
    }
}

#[test]
fn an_hls_rendition_is_preferred_over_a_matching_mp4() {
    let candidates = [
        rendition("mp4", "video/mp4", Delivery::Progressive, 2800, 1280, 720),
        rendition(
            "hls",
            "application/x-mpegURL",
            Delivery::Streaming,
            2500,
            1280,
            720,
        ),
    ];
    let chosen = select(&candidates, &variant_720p(), &StitchPolicy::default());
    assert_eq!(chosen.rendition().map(|r| r.uri.as_str()), Some("hls"));
    assert!(
        matches!(chosen, Selection::Selected { index: 1, ref unverified, .. } if unverified.is_empty())
    );
}

#[test]
fn among_fitting_renditions_the_closest_size_then_the_highest_bitrate_wins() {
    let candidates = [
        rendition("small", "video/mp4", Delivery::Progressive, 900, 1200, 675),
        rendition(
            "exact-low",
            "video/mp4",
            Delivery::Progressive,
            1500,
            1280,
            720,
        ),
        rendition(
            "exact-high",
            "video/mp4",
            Delivery::Progressive,
            3200,
            1280,
            720,
        ),
        rendition(
            "too-big",
            "video/mp4",
            Delivery::Progressive,
            4000,
            1280,
            720,
        ),
    ];
    let chosen = select(&candidates, &variant_720p(), &StitchPolicy::default());
    assert_eq!(
        chosen.rendition().map(|r| r.uri.as_str()),
        Some("exact-high")
    );
}

#[test]
fn a_creative_with_no_conditioned_rendition_is_flagged_with_every_reason() {
    let mut hevc = rendition(
        "hevc",
        "application/x-mpegURL",
        Delivery::Streaming,
        2000,
        1280,
        720,
    );
    hevc.codecs = vec!["hvc1.1.6.L93.B0".into()];
    let mut pal = rendition("pal", "video/mp4", Delivery::Progressive, 2000, 1280, 720);
    pal.frame_rate = Some(25.0);
    let square = rendition("square", "video/mp4", Delivery::Progressive, 2000, 720, 720);
    let mut vpaid = rendition(
        "vpaid",
        "application/javascript",
        Delivery::Progressive,
        100,
        1280,
        720,
    );
    vpaid.api_framework = Some("VPAID".into());
    let webm = rendition("webm", "video/webm", Delivery::Progressive, 2000, 1280, 720);
    let Selection::NotConditioned { rejected, .. } = select(
        &[hevc, pal, square, vpaid, webm],
        &variant_720p(),
        &StitchPolicy::default(),
    ) else {
        panic!("nothing fits");
    };
    let reasons: Vec<(usize, String)> = rejected
        .iter()
        .map(
            |Rejected {
                 index, mismatches, ..
             }| {
                let text: Vec<String> = mismatches.iter().map(ToString::to_string).collect();
                (*index, text.join("; "))
            },
        )
        .collect();
    assert_eq!(
        reasons,
        [
            (
                0,
                "codec hvc1.1.6.L93.B0 does not match the content's avc1.64001f".to_string()
            ),
            (
                1,
                "frame rate 25 fps does not match the content's 29.97 fps".to_string()
            ),
            (
                2,
                "resolution 720x720 does not match the content's 1280x720".to_string()
            ),
            (3, "interactive creative (VPAID) needs a client".to_string()),
            (4, "container \"video/webm\" cannot be stitched".to_string()),
        ]
    );
}

#[test]
fn vast_media_files_say_nothing_of_frame_rate_which_is_reported_unverified() {
    let xml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/samples/VAST_4.2_Samples/Inline_Linear_Tag-test.xml"
    ))
    .expect("sample");
    let vast = parse_vast(&xml).expect("valid");
    let creative = &vast.ads[0].inline().expect("InLine").creatives[0];
    let Selection::Selected {
        rendition,
        unverified,
        ..
    } = select_media_file(creative, &variant_720p(), &StitchPolicy::default())
    else {
        panic!("the 1280x720 H.264 MP4 fits");
    };
    assert_eq!(rendition.width, 1280);
    assert_eq!(unverified, [Unverified::FrameRate]);
    // A 480p variant gets the 854x480 file.
    let sd = ContentVariant {
        bandwidth: 1_600_000,
        width: 854,
        height: 480,
        ..variant_720p()
    };
    let chosen = select_media_file(creative, &sd, &StitchPolicy::default());
    assert_eq!(chosen.rendition().map(|r| r.height), Some(480));
}

#[test]
fn an_unconditioned_creative_points_at_its_mezzanine() {
    let xml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/samples/VAST_4.1_Samples/SSAI_stitching_mezzanine_file_support-test.xml"
    ))
    .expect("sample");
    let vast = parse_vast(&xml).expect("valid");
    let creative = &vast.ads[0].inline().expect("InLine").creatives[0];
    let uhd = ContentVariant {
        bandwidth: 15_000_000,
        width: 3840,
        height: 2160,
        ..variant_720p()
    };
    let selection = select_media_file(creative, &uhd, &StitchPolicy::default());
    // The ad waits for its mezzanine's transcode: 407 for its Error URIs.
    assert_eq!(selection.vast_error_code().map(|c| c.code()), Some(407));
    let Selection::NotConditioned {
        rejected,
        mezzanine,
    } = selection
    else {
        panic!("no 4K rendition");
    };
    assert_eq!(rejected.len(), 3);
    assert!(
        rejected
            .iter()
            .all(|r| matches!(r.mismatches[0], Mismatch::Resolution { .. }))
    );
    assert!(mezzanine.is_some_and(|m| m.starts_with("rtsp://pilot.iabtechlab.com/rawvideo")));
}

#[test]
fn a_creative_with_no_fitting_media_file_and_no_mezzanine_earns_403() {
    let no_mezzanine = Selection::NotConditioned {
        rejected: Vec::new(),
        mezzanine: None,
    };
    assert_eq!(
        no_mezzanine.vast_error_code(),
        Some(interlude_vast::VastErrorCode::NoSupportedMediaFile)
    );
}
