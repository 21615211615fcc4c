//! What a creative is, for conditioning: who says which ad it is ([`CreativeKey`], from VAST 4's
//! `UniversalAdId`, else the `Creative@id`/`adId`, else the source URI) and which bytes it is (the SHA-256 of
//! the source file). The key is known when the VAST arrives and is what readiness is asked by; the content
//! hash is known once the file is fetched and names the output directory, so a creative whose file changes
//! under the same id gets new outputs rather than stale ones.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::variant::digest16;

/// The ad-server's name for a creative.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CreativeKey(String);

impl CreativeKey {
    /// `uaid:<registry>:<value>` (IAB VAST 4.1 §3.7.1: the registry and id together identify the creative
    /// across ad servers).
    pub fn universal_ad_id(registry: &str, value: &str) -> CreativeKey {
        CreativeKey(format!("uaid:{}:{}", registry.trim(), value.trim()))
    }

    /// `creative:<id>`, an ad server's own id.
    pub fn creative_id(id: &str) -> CreativeKey {
        CreativeKey(format!("creative:{}", id.trim()))
    }

    /// `url:<digest>`, for a creative that names itself nowhere.
    pub fn source_uri(uri: &str) -> CreativeKey {
        CreativeKey(format!("url:{}", digest16(uri.trim().as_bytes())))
    }

    /// The best key a VAST creative offers: a `UniversalAdId` other than the `unknown` placeholder, else
    /// `adId`, else `id`, else the source URI.
    pub fn from_creative(creative: &interlude_vast::Creative, source_uri: &str) -> CreativeKey {
        let known = |s: &str| !s.trim().is_empty() && !s.trim().eq_ignore_ascii_case("unknown");
        let uaid = creative.universal_ad_ids.iter().find(|u| known(&u.value));
        CreativeKey::from_ids(
            uaid.map(|u| (u.id_registry.as_str(), u.value.as_str())),
            creative.ad_id.as_deref(),
            creative.id.as_deref(),
            source_uri,
        )
    }

    /// The best key among ids already read from a VAST creative (`UniversalAdId` registry and value, `adId`,
    /// `id`), by the same rule as [`CreativeKey::from_creative`].
    pub fn from_ids(
        universal_ad_id: Option<(&str, &str)>,
        ad_id: Option<&str>,
        id: Option<&str>,
        source_uri: &str,
    ) -> CreativeKey {
        let known = |s: &&str| !s.trim().is_empty() && !s.trim().eq_ignore_ascii_case("unknown");
        if let Some((registry, value)) = universal_ad_id.filter(|(_, v)| known(v)) {
            return CreativeKey::universal_ad_id(registry, value);
        }
        match ad_id.filter(known).or(id.filter(known)) {
            Some(id) => CreativeKey::creative_id(id),
            None => CreativeKey::source_uri(source_uri),
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A string taken back from [`CreativeKey::as_str`].
    pub fn from_stored(s: impl Into<String>) -> CreativeKey {
        CreativeKey(s.into())
    }

    /// A single, safe path component for the key: its readable part (ASCII letters, digits, `.`, `-`, `_`,
    /// at most 40) and a digest of the whole key, so two keys that read alike never share a directory.
    pub fn slug(&self) -> String {
        let mut readable: String = self
            .0
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        if readable.is_empty() {
            readable.push('_');
        }
        format!("{readable}-{}", &digest16(self.0.as_bytes())[..8])
    }
}

impl fmt::Display for CreativeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A creative's key and the SHA-256 of its source file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CreativeIdentity {
    /// Who says which ad it is.
    pub key: CreativeKey,
    /// Hex SHA-256 of the source file.
    pub content_sha256: String,
}

impl CreativeIdentity {
    /// The output directory name: `<key slug>-<first 16 hex digits of the content hash>`.
    pub fn dir_name(&self) -> String {
        let content: String = self
            .content_sha256
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(16)
            .collect();
        format!("{}-{content}", self.key.slug())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn universal_ad_id_is_preferred_over_creative_id() {
        let creative = interlude_vast::Creative {
            id: Some("c1".into()),
            ad_id: Some("legacy".into()),
            universal_ad_ids: vec![
                interlude_vast::UniversalAdId {
                    id_registry: "unknown".into(),
                    value: "unknown".into(),
                },
                interlude_vast::UniversalAdId {
                    id_registry: "ad-id.org".into(),
                    value: "ABCD0001000H".into(),
                },
            ],
            ..interlude_vast::Creative::default()
        };
        assert_eq!(
            CreativeKey::from_creative(&creative, "https://x/a.mp4").as_str(),
            "uaid:ad-id.org:ABCD0001000H"
        );
        let bare = interlude_vast::Creative::default();
        assert!(
            CreativeKey::from_creative(&bare, "https://x/a.mp4")
                .as_str()
                .starts_with("url:")
        );
    }

    #[test]
    fn same_key_different_bytes_get_different_directories() {
        let key = CreativeKey::creative_id("c1");
        let a = CreativeIdentity {
            key: key.clone(),
            content_sha256: "aa".repeat(32),
        };
        let b = CreativeIdentity {
            key,
            content_sha256: "bb".repeat(32),
        };
        assert_ne!(a.dir_name(), b.dir_name());
    }

    proptest! {
        #[test]
        fn directory_name_is_one_safe_component(key in "\\PC{0,80}", sha in "[0-9a-f]{64}") {
            let name = CreativeIdentity { key: CreativeKey::creative_id(&key), content_sha256: sha }.dir_name();
            prop_assert!(!name.is_empty() && name != "." && name != "..");
            prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            prop_assert!(name.len() <= 40 + 1 + 8 + 1 + 16);
        }

        #[test]
        fn keys_that_slug_alike_stay_apart(a in "[a-z/]{1,10}", b in "[a-z:]{1,10}") {
            let (ka, kb) = (CreativeKey::creative_id(&a), CreativeKey::creative_id(&b));
            if ka != kb {
                prop_assert_ne!(ka.slug(), kb.slug());
            }
        }
    }
}
