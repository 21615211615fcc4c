//! The IAB US Privacy string v1 (CCPA; "US Privacy String" specification v1.0): four characters — Version
//! (`1`), Explicit Notice/Opportunity to Opt Out, Opt-Out Sale, LSPA Covered Transaction — each of the last
//! three `Y`, `N` or `-` (not applicable). `1---` means the CCPA does not apply. Also the GPP `uspv1` section
//! (id 6), which carries the same four characters.

use serde::Serialize;

use crate::error::{Error, Result};

/// One flag of the string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UspFlag {
    /// `Y`.
    Yes,
    /// `N`.
    No,
    /// `-`: not applicable.
    NotApplicable,
}

/// A decoded US Privacy string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UsPrivacy {
    /// Specification version (1).
    pub version: u8,
    /// Explicit notice / opportunity to opt out given.
    pub notice: UspFlag,
    /// The viewer opted out of the sale of personal information.
    pub opt_out_sale: UspFlag,
    /// The publisher is a signatory of the IAB Limited Service Provider Agreement.
    pub lspa_covered: UspFlag,
}

impl UsPrivacy {
    /// Decode. Letters are accepted in either case (players send `1ynn` too).
    pub fn parse(text: &str) -> Result<UsPrivacy> {
        let text = text.trim();
        let err = |position: usize, reason: &str| Error::UsPrivacy {
            value: text.chars().take(16).collect(),
            position,
            reason: reason.to_string(),
        };
        let b = text.as_bytes();
        if b.len() != 4 {
            return Err(err(
                b.len().min(4),
                &format!("{} characters, exactly 4 expected", text.chars().count()),
            ));
        }
        if b[0] != b'1' {
            return Err(err(0, "version must be 1"));
        }
        let flag = |i: usize| match b[i] {
            b'Y' | b'y' => Ok(UspFlag::Yes),
            b'N' | b'n' => Ok(UspFlag::No),
            b'-' => Ok(UspFlag::NotApplicable),
            _ => Err(err(i, "must be Y, N or -")),
        };
        Ok(UsPrivacy {
            version: 1,
            notice: flag(1)?,
            opt_out_sale: flag(2)?,
            lspa_covered: flag(3)?,
        })
    }

    /// Whether the viewer opted out of sale.
    pub fn opted_out(&self) -> bool {
        self.opt_out_sale == UspFlag::Yes
    }

    /// Whether the string says the CCPA does not apply (`1---`).
    pub fn not_applicable(&self) -> bool {
        self.notice == UspFlag::NotApplicable
            && self.opt_out_sale == UspFlag::NotApplicable
            && self.lspa_covered == UspFlag::NotApplicable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specification_examples_decode() {
        // Strings in the US Privacy String v1.0 format: "1YNN" notice given, not opted out, not LSPA covered
        // (also the uspv1 section of iabgpp-java's GppModelTest); "1YYY" opted out; "1---" the
        // specification's value for "CCPA does not apply".
        let ynn = UsPrivacy::parse("1YNN").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ynn.notice, UspFlag::Yes);
        assert!(!ynn.opted_out());
        assert_eq!(ynn.lspa_covered, UspFlag::No);
        assert!(
            UsPrivacy::parse("1YYY")
                .unwrap_or_else(|e| panic!("{e}"))
                .opted_out()
        );
        assert!(
            UsPrivacy::parse("1---")
                .unwrap_or_else(|e| panic!("{e}"))
                .not_applicable()
        );
        assert!(
            UsPrivacy::parse("1yyn")
                .unwrap_or_else(|e| panic!("{e}"))
                .opted_out()
        );
    }

    #[test]
    fn errors_name_the_position() {
        assert!(matches!(
            UsPrivacy::parse("2YNN"),
            Err(Error::UsPrivacy { position: 0, .. })
        ));
        assert!(matches!(
            UsPrivacy::parse("1YXN"),
            Err(Error::UsPrivacy { position: 2, .. })
        ));
        assert!(matches!(
            UsPrivacy::parse("1YN"),
            Err(Error::UsPrivacy { position: 3, .. })
        ));
        assert!(UsPrivacy::parse("1Y\u{e9}").is_err());
    }
}
