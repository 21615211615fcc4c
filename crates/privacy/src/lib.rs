//! Interlude's data-minimisation and consent core (pure: no I/O, no clock — callers pass the time).
//!
//! *Minimisation at the edge*: what the collector and the session API keep of a request is a truncated
//! address ([`ip`]: /24 or /48), a coarse location from an operator table ([`geo`]: country and region), a
//! device class and platform ([`ua`]) and, only where consent allows, a rotating pseudonym of the device id
//! ([`pseudonym`]). The raw address, user agent and device id never leave this crate's caller.
//!
//! *Consent*: the signals players send — IAB TCF v2 TC strings ([`tcf`]), GPP strings ([`gpp`], with the US
//! National section in [`usnat`]), US Privacy strings ([`usp`]), `lmt`, `DNT`, `Sec-GPC`, COPPA — are reduced
//! by [`consent::decide`] to one [`ConsentDecision`] whose `reasons` say which signal caused what, and which
//! maps onto the event contract's [`ConsentFlags`](interlude_events::ConsentFlags).
//!
//! [`Privacy`] bundles the tables, the salt schedule and the consent rules for callers: one value, built at
//! start, shared behind an `Arc`.

mod bits;
pub mod config;
pub mod consent;
pub mod error;
pub mod geo;
pub mod gpp;
pub mod ip;
pub mod pseudonym;
pub mod tcf;
#[cfg(test)]
mod testutil;
pub mod ua;
pub mod usnat;
pub mod usp;

use std::net::IpAddr;
use std::time::SystemTime;

use serde::Serialize;

pub use config::{PrivacyConfig, PseudonymConfig};
pub use consent::{ConsentConfig, ConsentDecision, ConsentSignals, Reason};
pub use error::{Error, Result};
pub use geo::{GeoLocation, GeoTable};
pub use gpp::GppString;
pub use ip::{TruncatedIp, truncate_ip};
pub use pseudonym::{EpochSalt, Pseudonym, PseudonymEncoding, SaltSchedule};
pub use tcf::TcString;
pub use ua::{Device, DeviceClass, Platform, UaRules};
pub use usnat::UsNat;
pub use usp::UsPrivacy;

/// What is kept of a request's address and user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Edge<'a> {
    /// The address, truncated (after the geo lookup used the full one).
    pub ip: TruncatedIp,
    /// Country and region, when the table covers the address.
    pub geo: Option<&'a GeoLocation>,
    /// Device class and platform.
    pub device: Device,
}

/// The privacy core, configured: geo table, UA rules, salt schedule and consent rules.
#[derive(Debug, Clone)]
pub struct Privacy {
    geo: GeoTable,
    ua: UaRules,
    salts: SaltSchedule,
    consent: ConsentConfig,
}

impl Privacy {
    /// Build from the configuration, the pseudonym secret (at least 16 bytes; from the environment or a
    /// secret store, never the config file) and the tables.
    pub fn new(
        config: &PrivacyConfig,
        secret: &[u8],
        geo: GeoTable,
        ua: UaRules,
    ) -> Result<Privacy> {
        config.validate()?;
        let salts = SaltSchedule::new(
            secret,
            config.pseudonym.rotation(),
            config.pseudonym.bytes,
            config.pseudonym.encoding,
        )?;
        Ok(Privacy {
            geo,
            ua,
            salts,
            consent: config.consent.clone(),
        })
    }

    /// Minimise a request's address and user agent: geo lookup on the full address, then truncation, then
    /// UA reduction.
    pub fn edge(&self, ip: IpAddr, user_agent: &str) -> Edge<'_> {
        Edge {
            geo: self.geo.lookup(ip),
            ip: truncate_ip(ip),
            device: self.ua.reduce(user_agent),
        }
    }

    /// Reduce consent signals to a decision (see [`consent`]). Set `signals.country` from [`Edge::geo`] so
    /// the GDPR-by-country rule can apply.
    pub fn decide(&self, signals: &ConsentSignals<'_>) -> ConsentDecision {
        consent::decide(&self.consent, signals)
    }

    /// The viewer id to store for `device_id` at `at`: a pseudonym when the decision allows storing one and
    /// the id is not absent or zeroed, [`None`] otherwise.
    pub fn viewer_id(
        &self,
        device_id: &str,
        decision: &ConsentDecision,
        at: SystemTime,
    ) -> Option<Pseudonym> {
        if !decision.store_viewer_id {
            return None;
        }
        self.salts.pseudonym(device_id, at)
    }

    /// The salt schedule (hold an [`EpochSalt`] per epoch to pseudonymise many ids cheaply).
    pub fn salts(&self) -> &SaltSchedule {
        &self.salts
    }

    /// The geo table.
    pub fn geo(&self) -> &GeoTable {
        &self.geo
    }

    /// The consent rules.
    pub fn consent_config(&self) -> &ConsentConfig {
        &self.consent
    }
}
