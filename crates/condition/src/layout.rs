//! Where outputs go: `<root>/<creative identity>/<recipe hash>/<rendition>/…`, content-addressed so that the
//! same bytes conditioned by the same recipe land in the same place whichever worker did it, and a finished
//! rendition is recognised by its marker file even if the queue forgot it.
//!
//! A rendition is written under `<rendition>.partial` and renamed into place when complete, so a directory
//! under its final name is always whole. Scratch files (the fetched source, intermediate encodes) live in
//! `<root>/.work/<job digest>/`.

use std::path::{Path, PathBuf};

use crate::identity::CreativeIdentity;
use crate::variant::digest16;

/// The file in a finished rendition's directory that describes it.
pub const RENDITION_MARKER: &str = "rendition.json";

/// The output tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// A tree under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<identity>/<recipe hash>`, relative to the root.
    pub fn job_rel(identity: &CreativeIdentity, recipe_hash: &str) -> PathBuf {
        PathBuf::from(identity.dir_name()).join(recipe_hash)
    }

    /// `<identity>/<recipe hash>/<rendition>`, relative to the root.
    pub fn rendition_rel(
        identity: &CreativeIdentity,
        recipe_hash: &str,
        rendition: &str,
    ) -> PathBuf {
        Layout::job_rel(identity, recipe_hash).join(rendition)
    }

    /// A finished rendition's directory.
    pub fn rendition_dir(
        &self,
        identity: &CreativeIdentity,
        recipe_hash: &str,
        rendition: &str,
    ) -> PathBuf {
        self.root
            .join(Layout::rendition_rel(identity, recipe_hash, rendition))
    }

    /// Where a rendition is written before it is complete.
    pub fn partial_dir(
        &self,
        identity: &CreativeIdentity,
        recipe_hash: &str,
        rendition: &str,
    ) -> PathBuf {
        self.root
            .join(Layout::job_rel(identity, recipe_hash))
            .join(format!(".{rendition}.partial"))
    }

    /// Scratch space of a job.
    pub fn work_dir(&self, job_id: &str) -> PathBuf {
        self.root.join(".work").join(digest16(job_id.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::CreativeKey;

    #[test]
    fn outputs_are_keyed_by_identity_recipe_and_rendition() {
        let id = CreativeIdentity {
            key: CreativeKey::universal_ad_id("ad-id.org", "ABCD0001000H"),
            content_sha256: "0123456789abcdef".repeat(4),
        };
        let l = Layout::new("/srv/ads");
        let dir = l.rendition_dir(&id, "feedface00000000", "640x360_25_600k");
        assert!(dir.starts_with("/srv/ads"));
        let rel: Vec<String> = dir
            .strip_prefix("/srv/ads")
            .map(|p| p.iter().map(|c| c.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        assert_eq!(rel.len(), 3);
        assert!(
            rel[0].starts_with("uaid_ad-id_org_ABCD0001000H-")
                && rel[0].ends_with("-0123456789abcdef")
        );
        assert_eq!(rel[1..], ["feedface00000000", "640x360_25_600k"]);
        assert_eq!(
            l.partial_dir(&id, "feedface00000000", "640x360_25_600k")
                .file_name(),
            Some(std::ffi::OsStr::new(".640x360_25_600k.partial"))
        );
    }
}
