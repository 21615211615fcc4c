//! Every IAB sample (tests/data/samples, copied from the IAB VAST_Samples repository; see
//! tests/data/SOURCES.md) parses; writing it gives a document valid against vast_4.2.xsd; reading that
//! document back gives the same model.

mod common;

use std::path::{Path, PathBuf};

use interlude_vast::{Vast, parse_vast, write_vast};

fn samples() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("samples directory is readable") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "xml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&common::data_dir().join("samples"), &mut out);
    out.sort();
    out
}

fn name(path: &Path) -> String {
    path.strip_prefix(common::data_dir().join("samples"))
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn all_75_iab_samples_are_present() {
    assert_eq!(
        samples().len(),
        75,
        "tests/data/samples should hold the 75 IAB samples"
    );
}

#[test]
fn every_sample_parses_writes_valid_4_2_and_reads_back_the_same_model() {
    let mut failures = Vec::new();
    for path in samples() {
        let text = std::fs::read_to_string(&path).expect("sample is UTF-8");
        let parsed = match parse_vast(&text) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{}: parse: {e}", name(&path)));
                continue;
            }
        };
        assert!(!parsed.ads.is_empty(), "{}: no ads read", name(&path));
        let written = match write_vast(&parsed) {
            Ok(w) => w,
            Err(e) => {
                failures.push(format!("{}: write: {e}", name(&path)));
                continue;
            }
        };
        common::assert_valid_vast_4_2(&written);
        let reread = parse_vast(&written).expect("written VAST parses");
        let expected = Vast {
            version: interlude_vast::WRITTEN_VERSION.to_string(),
            ..parsed
        };
        if reread != expected {
            failures.push(format!(
                "{}: round trip changed the model\n{written}",
                name(&path)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} sample(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
