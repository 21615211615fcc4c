//! Catalog loading: the example parses and validates; each kind of mistake is refused with its path.

use interlude_decision::catalog::{Catalog, CatalogError, MediaFile};

const EXAMPLE: &str = include_str!("data/catalog.toml");

#[test]
fn the_example_catalog_loads() {
    let catalog = Catalog::from_toml(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(catalog.line_items.len(), 4);
    let carco = &catalog.line_items[1];
    assert_eq!(
        Catalog::goal_impressions(carco),
        5_000_000,
        "120,000 at 24 CPM"
    );
}

fn refused(edit: impl Fn(&mut Catalog)) -> String {
    let mut catalog = Catalog::from_toml(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    edit(&mut catalog);
    match catalog.validate() {
        Err(CatalogError::Invalid { path, reason }) => format!("{path}: {reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn mistakes_are_refused_with_their_path() {
    assert_eq!(
        refused(|c| c.line_items[2].campaign = "nope".into()),
        "line_items[2].campaign: no campaign \"nope\""
    );
    assert_eq!(
        refused(|c| c.line_items[0].end = c.line_items[0].start),
        "line_items[0].end: must be after start"
    );
    assert_eq!(
        refused(|c| c.line_items[3].cpm = -1.0),
        "line_items[3].cpm: must be a non-negative number"
    );
    assert_eq!(
        refused(|c| c.line_items[1].creatives.push("brewer-15".into())),
        "line_items[1].creatives[2]: creative \"brewer-15\" belongs to \"brewer\", the campaign to \"carco\""
    );
    assert_eq!(
        refused(|c| c.creatives[0].duration_secs = 0.0),
        "creatives[0].duration_secs: must be > 0"
    );
    assert_eq!(
        refused(|c| c.creatives[4].renditions.clear()),
        "creatives[4].renditions: needs renditions, media_files to condition, or a vast_tag for third-party demand"
    );
    assert_eq!(
        refused(|c| c.advertisers[1].id = "brewer".into()),
        "advertisers[1].id: duplicates \"brewer\""
    );
    assert_eq!(
        refused(|c| c.campaigns[1].frequency_caps[0].window_hours = 0),
        "campaigns[1].frequency_caps[0].window_hours: must be > 0"
    );
}

#[test]
fn a_typo_in_a_key_is_refused_by_name() {
    let text = EXAMPLE.replace("first_in_pod = true", "first_in_pd = true");
    match Catalog::from_toml(&text) {
        Err(CatalogError::Parse(message)) => assert!(message.contains("first_in_pd"), "{message}"),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

fn mp4(url: &str) -> MediaFile {
    MediaFile {
        url: url.into(),
        mime_type: "video/mp4".into(),
        width: 1280,
        height: 720,
        bitrate_kbps: Some(4000),
        mezzanine: false,
    }
}

#[test]
fn media_files_are_checked_one_by_one() {
    let files = |c: &mut Catalog, files: Vec<MediaFile>| {
        c.creatives[4].renditions.clear();
        c.creatives[4].media_files = files;
    };
    assert_eq!(
        refused(|c| files(
            c,
            vec![mp4("https://cdn.example/a.mp4"), mp4("ftp://x/a.mp4")]
        )),
        "creatives[4].media_files[1].url: \"ftp://x/a.mp4\" is not an http(s) URL"
    );
    assert_eq!(
        refused(|c| {
            let mut f = mp4("https://cdn.example/a.mp4");
            f.mime_type = "application/javascript".into();
            files(c, vec![f]);
        }),
        "creatives[4].media_files[0].type: \"application/javascript\" is not a video type (empty only for a mezzanine)"
    );
    assert_eq!(
        refused(|c| files(c, vec![mp4("https://cdn.example/a.mp4"); 17])),
        "creatives[4].media_files: at most 16 files"
    );
    assert_eq!(
        refused(|c| {
            files(c, vec![mp4("https://cdn.example/a.mp4")]);
            c.creatives[4].vast_tag = Some("https://ads.example/vast".into());
        }),
        "creatives[4].media_files: a creative supplied by a vast_tag takes its files from the tag"
    );
}

#[test]
fn a_creative_offered_as_files_is_a_conditioning_source_mezzanine_first() {
    let mut catalog = Catalog::from_toml(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    let creative = &mut catalog.creatives[4];
    assert_eq!(
        creative.conditioning_source(),
        None,
        "HLS renditions: nothing to condition"
    );
    creative.renditions.clear();
    let mut master = mp4("https://cdn.example/master.mov");
    master.mime_type = String::new();
    master.mezzanine = true;
    creative.media_files = vec![mp4("https://cdn.example/a.mp4"), master];
    catalog.validate().unwrap_or_else(|e| panic!("{e}"));
    let source = catalog.creatives[4]
        .conditioning_source()
        .unwrap_or_else(|| panic!("a source"));
    assert_eq!(
        source.creative_id.as_deref(),
        Some(catalog.creatives[4].id.as_str())
    );
    let uris: Vec<&str> = source.files.iter().map(|f| f.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "https://cdn.example/master.mov",
            "https://cdn.example/a.mp4"
        ]
    );
    assert!(source.files.iter().all(|f| f.progressive));
}

#[test]
fn media_files_are_read_from_toml() {
    let text = format!(
        "{EXAMPLE}\n[[creatives]]\nid = \"mp4-only\"\nadvertiser = \"brewer\"\nduration_secs = 15.0\napproved = true\n\
         media_files = [{{ url = \"https://cdn.example/spot.mp4\", type = \"video/mp4\", width = 1280, height = 720 }}]\n"
    );
    let catalog = Catalog::from_toml(&text).unwrap_or_else(|e| panic!("{e}"));
    let c = catalog
        .creatives
        .last()
        .unwrap_or_else(|| panic!("a creative"));
    assert_eq!(
        c.media_files,
        vec![MediaFile {
            bitrate_kbps: None,
            ..mp4("https://cdn.example/spot.mp4")
        }]
    );
}
