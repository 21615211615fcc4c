//! Privacy at the edge of the server: what the session API and the collector keep of a request (see
//! `docs/privacy.md` for every field), built on the pure `interlude-privacy` core.
//!
//! - Sessions: the viewer's consent signals (TCF, GPP, US Privacy, `lmt`, `DNT`, `Sec-GPC`, COPPA) are reduced
//!   to one decision; the device id becomes a rotating keyed-hash pseudonym only when that decision allows
//!   storing one, and audience segments are kept for targeting only with consent to personalise (the
//!   decision engine enforces it and explains it). Country and region come from the operator's geo table
//!   (looked up on the full address, which is then truncated), device class and platform from the user agent.
//! - Beacons: the sender's address is truncated to /24 or /48 before anything sees it; device class and
//!   coarse geography are filled from the edge when the event lacks them; a viewer id reported without
//!   consent to store it is dropped. The raw address and user agent are never stored.

use std::net::IpAddr;
use std::path::PathBuf;

use interlude_decision::ViewerContext;
use interlude_events::Envelope;
use interlude_events::contract::ConsentFlags;
use interlude_privacy::{
    ConsentConfig, ConsentDecision, ConsentSignals, GeoTable, Privacy, PrivacyConfig,
    PseudonymConfig, UaRules,
};
use serde::{Deserialize, Serialize};

/// The `[privacy]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacySettings {
    /// CSV of `cidr,country[,region]` rows for coarse geography (longest prefix wins); unset: no lookup.
    pub geo_table: Option<PathBuf>,
    /// Consent rules.
    pub consent: ConsentConfig,
    /// Device-id pseudonyms (rotation period, length). The secret comes from `INTERLUDE_PRIVACY_SECRET`.
    pub pseudonym: PseudonymConfig,
    /// How long each class of data is kept.
    pub retention: Retention,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        let core = PrivacyConfig::default();
        PrivacySettings {
            geo_table: None,
            consent: core.consent,
            pseudonym: core.pseudonym,
            retention: Retention::default(),
        }
    }
}

/// Retention per data class, enforced by compaction (the embedded store's sweeper, the processors' expiry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Days the raw event log keeps events (embedded log; on Kafka set the topic's `retention.ms` to match).
    pub raw_events_days: u32,
    /// Days quarantined events are kept for investigation.
    pub quarantine_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            raw_events_days: 30,
            quarantine_days: 30,
        }
    }
}

/// The consent signals a player sends with a session request (query parameters or JSON body fields, with the
/// names of the IAB macros).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SignalParams {
    /// `gdpr`: 1 when GDPR applies, 0 when not.
    pub gdpr: Option<String>,
    /// `gdpr_consent`: the TCF v2 TC string.
    pub gdpr_consent: Option<String>,
    /// `gpp`: the GPP string.
    pub gpp: Option<String>,
    /// `gpp_sid`: applicable GPP section ids.
    pub gpp_sid: Option<String>,
    /// `us_privacy`: the US Privacy string.
    pub us_privacy: Option<String>,
    /// `lmt`: limit ad tracking (1).
    pub lmt: Option<String>,
    /// `coppa`: subject to COPPA (1).
    pub coppa: Option<String>,
    /// `device_id`: the device's advertising id (IFA); kept only as a pseudonym, only with consent.
    pub device_id: Option<String>,
}

/// The privacy edge, configured.
#[derive(Debug, Clone)]
pub struct EdgePrivacy {
    core: Privacy,
}

/// The environment variable holding the pseudonym secret.
pub const SECRET_VARIABLE: &str = "INTERLUDE_PRIVACY_SECRET";

/// The development secret used when `INTERLUDE_PRIVACY_SECRET` is unset: only under `--insecure-dev`, as
/// [`crate::InterludeConfig::require_secrets`] refuses to serve without the variable otherwise.
const DEV_SECRET: &[u8] = b"interlude-development-pseudonym-secret";

impl EdgePrivacy {
    /// Builds the edge from the configuration; the secret from `INTERLUDE_PRIVACY_SECRET`. Errors name the key.
    pub fn from_settings(settings: &PrivacySettings) -> Result<Self, crate::error::ConfigError> {
        let geo = match &settings.geo_table {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    crate::error::ConfigError::new(
                        "privacy.geo_table",
                        format!("reading {}: {e}", path.display()),
                    )
                })?;
                GeoTable::from_csv(&text).map_err(|e| {
                    crate::error::ConfigError::new(
                        "privacy.geo_table",
                        format!("{}: {e}", path.display()),
                    )
                })?
            }
            None => GeoTable::default(),
        };
        let secret = match std::env::var(SECRET_VARIABLE) {
            Ok(s) => s.into_bytes(),
            Err(_) => {
                tracing::warn!(
                    "INTERLUDE_PRIVACY_SECRET is not set: device-id pseudonyms use the public development secret."
                );
                DEV_SECRET.to_vec()
            }
        };
        let config = PrivacyConfig {
            consent: settings.consent.clone(),
            pseudonym: settings.pseudonym.clone(),
        };
        let core = Privacy::new(&config, &secret, geo, UaRules::builtin())
            .map_err(|e| crate::error::ConfigError::new("privacy", e.to_string()))?;
        Ok(EdgePrivacy { core })
    }

    /// The pure core.
    pub fn core(&self) -> &Privacy {
        &self.core
    }

    /// Applies the viewer's consent and the edge's minimisation to a session's viewer context; returns the
    /// context to keep and the consent decision (with its reasons, for explanations).
    pub fn viewer(
        &self,
        mut viewer: ViewerContext,
        signals: &SignalParams,
        headers: &axum::http::HeaderMap,
        client: Option<IpAddr>,
        now: std::time::SystemTime,
        child_directed_content: bool,
    ) -> (ViewerContext, ConsentDecision) {
        let (user_agent, ip) = (user_agent(headers), client);
        let edge = ip.map(|ip| self.core.edge(ip, user_agent.as_deref().unwrap_or("")));
        if let Some(geo) = edge.as_ref().and_then(|e| e.geo) {
            viewer.country = Some(geo.country.clone());
            viewer.region = geo.region.clone();
        }
        if let Some(edge) = &edge {
            if viewer.device.is_none() {
                viewer.device = Some(edge.device.class.as_str().to_owned());
            }
            if viewer.platform.is_none() {
                viewer.platform = Some(edge.device.platform.as_str().to_owned());
            }
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let flag = |v: &Option<String>| {
            v.as_deref()
                .is_some_and(|v| matches!(v.trim(), "1" | "true"))
        };
        let consent_signals = ConsentSignals {
            gdpr_applies: signals.gdpr.as_deref().and_then(|g| match g.trim() {
                "1" | "true" => Some(true),
                "0" | "false" => Some(false),
                _ => None,
            }),
            tc_string: signals.gdpr_consent.as_deref(),
            gpp: signals.gpp.as_deref(),
            gpp_sid: signals.gpp_sid.as_deref(),
            us_privacy: signals.us_privacy.as_deref(),
            lmt: flag(&signals.lmt),
            dnt: header("dnt") == Some("1"),
            gpc: header("sec-gpc") == Some("1"),
            coppa: flag(&signals.coppa),
            child_directed_content,
            country: viewer.country.as_deref(),
        };
        let decision = self.core.decide(&consent_signals);
        // The player's id (a device IFA, or an id of its own) is never kept as sent.
        let raw = signals.device_id.as_deref().or(viewer.viewer_id.as_deref());
        viewer.viewer_id = raw
            .and_then(|id| self.core.viewer_id(id, &decision, now))
            .map(|p| p.as_str().to_owned());
        viewer.consent = Some(decision.personalisation);
        viewer.opt_out_sale = decision.opt_out_sale;
        viewer.privacy = privacy_signals(signals, &decision, consent_signals.coppa);
        (viewer, decision)
    }

    /// Every pseudonym `device_id` had over the last `days` (one per salt epoch): what deletion looks for.
    pub fn pseudonyms_over(&self, device_id: &str, days: u32) -> Vec<String> {
        let now = std::time::SystemTime::now();
        let step = self.core_rotation();
        let epochs = (u64::from(days) * 86_400).div_ceil(step.as_secs().max(1)) + 1;
        let mut out: Vec<String> = (0..=epochs)
            .filter_map(|k| {
                let at = now.checked_sub(step * u32::try_from(k).unwrap_or(u32::MAX))?;
                self.core.salts().pseudonym(device_id, at)
            })
            .map(|p| p.as_str().to_owned())
            .collect();
        out.dedup();
        out
    }

    fn core_rotation(&self) -> std::time::Duration {
        self.core.salts().rotation()
    }

    /// Minimises one beacon before validation and storage: truncated address, device and geography from
    /// the edge where the event has none, no viewer id without consent to store it.
    pub fn minimise(&self, envelope: &mut Envelope) {
        if let Some(ip) = envelope.ip {
            let edge = self
                .core
                .edge(ip, envelope.user_agent.as_deref().unwrap_or(""));
            let event = &mut envelope.event;
            if let (None, Some(geo)) = (&event.country, edge.geo) {
                event.country = Some(geo.country.clone());
            }
            if event.device.is_none() && envelope.user_agent.is_some() {
                event.device = Some(edge.device.class.as_str().to_owned());
            }
            envelope.ip = Some(edge.ip.addr());
        }
        minimise_ids(&mut envelope.event.viewer_id, &envelope.event.consent);
    }
}

/// The signals passed on to bidders (OpenRTB 2.6 `regs`, `user.consent`): whether GDPR applies as decided,
/// and the player's strings only when they parse (an unexpanded macro or garbage is no signal to forward).
fn privacy_signals(
    signals: &SignalParams,
    decision: &ConsentDecision,
    coppa: bool,
) -> interlude_decision::PrivacySignals {
    let valid = |v: &Option<String>, parses: fn(&str) -> bool| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty() && parses(s))
            .map(str::to_owned)
    };
    let gpp = valid(&signals.gpp, |s| {
        interlude_privacy::GppString::parse(s).is_ok()
    });
    interlude_decision::PrivacySignals {
        gdpr: Some(decision.gdpr_applies),
        tc_string: valid(&signals.gdpr_consent, |s| {
            interlude_privacy::TcString::parse(s).is_ok()
        }),
        us_privacy: valid(&signals.us_privacy, |s| {
            interlude_privacy::UsPrivacy::parse(s).is_ok()
        }),
        gpp_sid: gpp
            .as_ref()
            .and(signals.gpp_sid.as_deref())
            .map(interlude_privacy::gpp::parse_sid_list)
            .unwrap_or_default(),
        gpp,
        coppa: coppa || decision.child_directed,
    }
}

/// A viewer id travels only with consent to store it.
pub fn minimise_ids(viewer_id: &mut Option<String>, consent: &ConsentFlags) {
    if !consent.store_viewer_id {
        *viewer_id = None;
    }
}

/// The consent flags an event of this viewer carries.
pub fn flags_of(viewer: &ViewerContext) -> ConsentFlags {
    ConsentFlags {
        store_viewer_id: viewer.viewer_id.is_some(),
        personalisation: viewer.consent.unwrap_or(false) && viewer.viewer_id.is_some(),
        opt_out_sale: viewer.opt_out_sale,
    }
}

/// The sender's user agent. (Its address is [`crate::edge::client::ClientIp`]: the socket peer, or what a
/// trusted proxy saw; never a header a client can write.)
pub fn user_agent(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
