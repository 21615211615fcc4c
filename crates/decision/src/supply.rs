//! What this platform tells bidders about the supply it sells (OpenRTB 2.6): where the ads run (`site` or
//! `app` with its publisher, §3.2.13–3.2.15), the content (§3.2.16: a live stream, its genre, rating and
//! taxonomy), who is in the supply chain (§3.2.25 `source.schain`, the SupplyChain object), the private
//! marketplace deals on offer (§3.2.11–3.2.12 `pmp.deals`), the video placement (§3.2.7 `plcmt`, `w`/`h`,
//! `rqddurs`, `mincpmpersec`) and the privacy regulations in force (§3.2.3 `regs`). Configuration types with
//! their OpenRTB objects; pure.

use serde::{Deserialize, Serialize};

use crate::PrivacySignals;

/// Where the ads run: an app or a site (OpenRTB requires exactly one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InventoryKind {
    /// A streaming app (CTV, mobile): `app`.
    #[default]
    App,
    /// A web player: `site`.
    Site,
}

/// The inventory (`[decision.demand.auction.inventory]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryConfig {
    /// `app` or `site`.
    pub kind: InventoryKind,
    /// The exchange's id of the app or site.
    pub id: Option<String>,
    /// Its name.
    pub name: Option<String>,
    /// App bundle or store id (`com.example.tv`); apps only.
    pub bundle: Option<String>,
    /// Domain of the app or site (`example.tv`).
    pub domain: Option<String>,
    /// Page URL; sites only.
    pub page: Option<String>,
    /// Publisher id (`publisher.id`): the seller id of the first supply chain node when it is ours.
    pub publisher_id: Option<String>,
    /// Publisher name.
    pub publisher_name: Option<String>,
    /// Publisher domain.
    pub publisher_domain: Option<String>,
    /// Content rating (`content.contentrating`, for instance `TV-PG`).
    pub content_rating: Option<String>,
    /// Content language, ISO 639-1 (`content.language`).
    pub content_language: Option<String>,
    /// IAB content taxonomy categories of the content (`content.cat`), in `cattax`.
    pub content_categories: Vec<String>,
}

/// One node of the supply chain (the SupplyChainNode object of `source.schain`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplyChainNode {
    /// Canonical domain of the system's `sellers.json` (`asi`).
    pub asi: String,
    /// Seller id in that system (`sid`).
    pub sid: String,
    /// 1: the node is involved in the payment flow.
    #[serde(default = "one")]
    pub hp: u8,
    /// The request id in that system (`rid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    /// Business name (`name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Business domain (`domain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

fn one() -> u8 {
    1
}

/// The supply chain (`source.schain`, the SupplyChain object; `[decision.demand.auction.schain]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplyChain {
    /// 1: the chain goes back to the owner of the inventory.
    pub complete: u8,
    /// The nodes, the inventory's owner first.
    pub nodes: Vec<SupplyChainNode>,
    /// Version of the object.
    #[serde(default = "schain_version")]
    pub ver: String,
}

fn schain_version() -> String {
    "1.0".to_owned()
}

/// A private marketplace deal offered in every request (`[[decision.demand.auction.deals]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DealConfig {
    /// The deal id agreed with the buyer (`deal.id`).
    pub id: String,
    /// Floor CPM of the deal (`deal.bidfloor`); a deal bid below it loses with 101.
    pub floor_cpm: f64,
    /// Seats allowed to bid on it (`deal.wseat`); empty: any.
    #[serde(default)]
    pub seats: Vec<String>,
}

/// `Deal` (§3.2.12).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deal {
    pub id: String,
    pub bidfloor: f64,
    pub bidfloorcur: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wseat: Vec<String>,
}

/// `Pmp` (§3.2.11).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pmp {
    /// 0: bids outside the deals are welcome too.
    pub private_auction: u8,
    pub deals: Vec<Deal>,
}

/// `Regs` (§3.2.3) with the 2.6 privacy fields.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Regs {
    /// 1: subject to COPPA.
    pub coppa: u8,
    /// 1: GDPR applies, 0: it does not; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gdpr: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub us_privacy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpp: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpp_sid: Vec<u16>,
}

impl Regs {
    /// The regulations of a viewer's signals.
    pub fn of(privacy: &PrivacySignals) -> Regs {
        Regs {
            coppa: u8::from(privacy.coppa),
            gdpr: privacy.gdpr.map(u8::from),
            us_privacy: privacy.us_privacy.clone(),
            gpp: privacy.gpp.clone(),
            gpp_sid: privacy.gpp_sid.clone(),
        }
    }
}

/// `Publisher` (§3.2.15).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publisher {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

impl Publisher {
    /// The publisher of `inventory`, when it names one.
    pub fn of(inventory: &InventoryConfig) -> Option<Publisher> {
        let p = Publisher {
            id: inventory.publisher_id.clone(),
            name: inventory.publisher_name.clone(),
            domain: inventory.publisher_domain.clone(),
        };
        (p.id.is_some() || p.name.is_some() || p.domain.is_some()).then_some(p)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn regs_carry_the_viewers_signals() {
        let r = Regs::of(&PrivacySignals {
            gdpr: Some(true),
            tc_string: Some("CO".into()),
            us_privacy: Some("1YNN".into()),
            gpp: Some("DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA".into()),
            gpp_sid: vec![2],
            coppa: false,
        });
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["gdpr"], 1);
        assert_eq!(json["coppa"], 0);
        assert_eq!(json["us_privacy"], "1YNN");
        assert_eq!(json["gpp_sid"][0], 2);
        let unknown = serde_json::to_value(Regs::of(&PrivacySignals::default())).unwrap();
        assert!(unknown.get("gdpr").is_none(), "{unknown}");
    }

    #[test]
    fn schain_nodes_default_to_the_payment_flow() {
        let chain: SupplyChain = toml::from_str(
            r#"complete = 1
               nodes = [ { asi = "interlude.example", sid = "pub-1" } ]"#,
        )
        .unwrap();
        assert_eq!(chain.nodes[0].hp, 1);
        assert_eq!(chain.ver, "1.0");
    }
}
