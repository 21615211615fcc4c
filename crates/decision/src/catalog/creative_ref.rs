//! A line item's reference to a creative, with its rotation weight or storyboard place.

use serde::{Deserialize, Serialize};

/// A line item's creative: an id, optionally with its rotation weight or its place in a storyboard (the
/// line item–creative association of ad servers). Written as a bare id when neither is set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreativeRef {
    /// The creative id.
    pub id: String,
    /// Weighted rotation: its share against the line item's other weights.
    pub weight: Option<u32>,
    /// Sequential rotation: its place in the storyboard (1 first); a viewer sees the creatives in this order
    /// across breaks.
    pub sequence: Option<u32>,
}

impl From<&str> for CreativeRef {
    fn from(id: &str) -> Self {
        CreativeRef {
            id: id.to_owned(),
            weight: None,
            sequence: None,
        }
    }
}

impl From<String> for CreativeRef {
    fn from(id: String) -> Self {
        CreativeRef {
            id,
            weight: None,
            sequence: None,
        }
    }
}

impl std::ops::Deref for CreativeRef {
    type Target = str;

    fn deref(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Display for CreativeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum CreativeRefForm {
    Id(String),
    Full {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weight: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sequence: Option<u32>,
    },
}

impl Serialize for CreativeRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.weight.is_none() && self.sequence.is_none() {
            CreativeRefForm::Id(self.id.clone()).serialize(s)
        } else {
            CreativeRefForm::Full {
                id: self.id.clone(),
                weight: self.weight,
                sequence: self.sequence,
            }
            .serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for CreativeRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match CreativeRefForm::deserialize(d)? {
            CreativeRefForm::Id(id) => id.into(),
            CreativeRefForm::Full {
                id,
                weight,
                sequence,
            } => CreativeRef {
                id,
                weight,
                sequence,
            },
        })
    }
}
