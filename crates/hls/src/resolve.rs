//! Resolving relative URIs against the playlist's own URL (RFC 8216bis §4.1, RFC 3986 §5), so a stitched
//! playlist served from another host still points at the origin's segments.

use url::Url;

use crate::attributes::AttributeList;
use crate::model::{MasterPlaylist, MediaPlaylist};
use crate::{Error, Result};

/// `uri` resolved against `base`.
pub fn resolve(base: &Url, uri: &str) -> Result<String> {
    base.join(uri).map(String::from).map_err(|e| Error::BadUri {
        uri: uri.to_owned(),
        reason: e.to_string(),
    })
}

fn resolve_attr(base: &Url, attrs: &mut AttributeList) -> Result<()> {
    if let Some(uri) = attrs.get("URI").map(str::to_owned) {
        attrs.set_quoted("URI", &resolve(base, &uri)?);
    }
    Ok(())
}

impl MediaPlaylist {
    /// Makes every segment, key and map URI absolute.
    pub fn resolve_uris(&mut self, base: &Url) -> Result<()> {
        for s in &mut self.segments {
            s.uri = resolve(base, &s.uri)?;
            for key in &mut s.keys {
                resolve_attr(base, key)?;
            }
            if let Some(map) = &mut s.map {
                resolve_attr(base, map)?;
            }
        }
        Ok(())
    }
}

impl MasterPlaylist {
    /// Makes every variant, rendition and I-frame playlist URI absolute.
    pub fn resolve_uris(&mut self, base: &Url) -> Result<()> {
        for v in &mut self.variants {
            v.uri = resolve(base, &v.uri)?;
        }
        for a in self
            .media
            .iter_mut()
            .chain(self.i_frame_variants.iter_mut())
            .chain(self.session_keys.iter_mut())
        {
            resolve_attr(base, a)?;
        }
        Ok(())
    }
}
