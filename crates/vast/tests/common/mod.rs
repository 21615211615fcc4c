//! Helpers shared by the integration tests: schema validation with xmllint, test data paths.
#![allow(dead_code, unreachable_pub)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `tests/data` of this crate.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
}

/// Validates `xml` against the IAB's `vast_4.2.xsd` with xmllint; panics with xmllint's report if it is
/// invalid, and with instructions if xmllint is missing (a missing validator must fail, not skip).
pub fn assert_valid_vast_4_2(xml: &str) {
    if let Some(report) = vast_4_2_schema_errors(xml) {
        panic!("written VAST fails vast_4.2.xsd:\n{report}\n--- document ---\n{xml}");
    }
}

/// xmllint's report if `xml` is not valid against `vast_4.2.xsd`; panics with instructions if xmllint is
/// missing.
pub fn vast_4_2_schema_errors(xml: &str) -> Option<String> {
    let xsd = data_dir().join("xsd").join("vast_4.2.xsd");
    let child = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run xmllint ({e}): install Debian's libxml2-utils (`apt-get install libxml2-utils`; \
             scripts/test.sh does it on a fresh machine). Written VAST must be schema-checked."
        ),
    };
    child
        .stdin
        .take()
        .expect("stdin was piped")
        .write_all(xml.as_bytes())
        .expect("xmllint reads the document");
    let out = child.wait_with_output().expect("xmllint runs");
    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
}
