//! The compact binary form of a [`LogRecord`], as the embedded store's log writes it.
//!
//! Why not JSON: a log record is written once per event, copied into redb's pages and fsynced by the single
//! group committer. As JSON it was about 640 bytes, a third of it field names, and the bytes it costs to write
//! (page allocation and copies, the write to the file, the fsync) were half of the committer's time
//! (`docs/performance.md`). This form holds the same fields in about a third of the bytes and encodes
//! several times faster. The distributed log (Kafka) keeps JSON: other consumers read it.
//!
//! Layout (all integers LEB128 varints unless said otherwise; a string is its byte length, then its UTF-8):
//! `0x01` (this layout; JSON starts with `{`), then the event's fields in the contract's order —
//! `schema_version`, `event_id`, `ad_instance_id`, `event_type` (its contract name), `error_code`?,
//! `source` (one byte: 0 server side, 1 client side, 2 third party), `occurred_at` and `received_at` (each
//! seconds zigzagged, then nanoseconds), `session_id`, `viewer_id`?, `channel`, `live_event_id`?, `break_id`?,
//! `campaign_id`?, `line_item_id`?, `creative_id`, `device`?, `country`?, `region`?, `consent` (one byte of
//! flags), `ad_duration_ms`?, `demand`? (`bidder`, `seat`, `deal_id`?, `price_cpm_micros`, `currency`) — and
//! last the edge verdict? as its JSON. A field marked `?` is a presence byte (0 or 1) and, if 1, the value.
//!
//! Decoding checks every length against what is left and names the field that does not fit; it never panics
//! (see the tests, which decode every truncation and many corruptions of a record).

use chrono::{DateTime, Utc};
use interlude_events::Quarantine;
use interlude_events::contract::{AdEvent, ConsentFlags, Demand, EventSource, EventType};

use crate::log::LogRecord;

/// The first byte of a record in this layout.
pub const LAYOUT: u8 = 0x01;

/// Whether `bytes` is a record in this layout (rather than JSON).
pub fn is_compact(bytes: &[u8]) -> bool {
    bytes.first() == Some(&LAYOUT)
}

/// Appends `event` and its `edge` verdict to `out`.
pub fn encode(event: &AdEvent, edge: Option<&Quarantine>, out: &mut Vec<u8>) {
    out.push(LAYOUT);
    put_str(out, &event.schema_version);
    put_str(out, &event.event_id);
    put_str(out, &event.ad_instance_id);
    put_str(out, event.event_type.as_str());
    put_opt(out, event.error_code, |out, c| put_uint(out, u64::from(c)));
    out.push(match event.source {
        EventSource::ServerSide => 0,
        EventSource::ClientSide => 1,
        EventSource::ThirdParty => 2,
    });
    put_time(out, event.occurred_at);
    put_time(out, event.received_at);
    put_str(out, &event.session_id);
    put_opt_str(out, event.viewer_id.as_deref());
    put_str(out, &event.channel);
    put_opt_str(out, event.live_event_id.as_deref());
    put_opt_str(out, event.break_id.as_deref());
    put_opt_str(out, event.campaign_id.as_deref());
    put_opt_str(out, event.line_item_id.as_deref());
    put_str(out, &event.creative_id);
    put_opt_str(out, event.device.as_deref());
    put_opt_str(out, event.country.as_deref());
    put_opt_str(out, event.region.as_deref());
    let c = &event.consent;
    out.push(
        u8::from(c.store_viewer_id)
            | u8::from(c.personalisation) << 1
            | u8::from(c.opt_out_sale) << 2,
    );
    put_opt(out, event.ad_duration_ms, |out, ms| {
        put_uint(out, u64::from(ms))
    });
    put_opt(out, event.demand.as_ref(), |out, d| {
        put_str(out, &d.bidder);
        put_str(out, &d.seat);
        put_opt_str(out, d.deal_id.as_deref());
        put_uint(out, d.price_cpm_micros);
        put_str(out, &d.currency);
    });
    put_opt(out, edge, |out, q| {
        // Serialising plain data cannot fail; verdicts are rare (invalid traffic), so JSON costs nothing here.
        put_str(out, &serde_json::to_string(q).unwrap_or_default());
    });
}

/// Decodes a record written by [`encode`], or says which field does not decode.
pub fn decode(bytes: &[u8]) -> Result<LogRecord, String> {
    let mut r = Reader { bytes, at: 0 };
    if r.byte("layout")? != LAYOUT {
        return Err("not a compact log record".into());
    }
    let schema_version = r.string("schema_version")?;
    let event_id = r.string("event_id")?;
    let ad_instance_id = r.string("ad_instance_id")?;
    let name = r.str("event_type")?;
    let event_type =
        EventType::parse(name).ok_or_else(|| format!("unknown event_type {name:?}"))?;
    let error_code = r
        .opt("error_code", |r| r.uint("error_code"))?
        .map(|c| u16::try_from(c).map_err(|_| format!("error_code {c} is out of range")))
        .transpose()?;
    let source = match r.byte("source")? {
        0 => EventSource::ServerSide,
        1 => EventSource::ClientSide,
        2 => EventSource::ThirdParty,
        other => return Err(format!("unknown source {other}")),
    };
    let occurred_at = r.time("occurred_at")?;
    let received_at = r.time("received_at")?;
    let session_id = r.string("session_id")?;
    let viewer_id = r.opt_string("viewer_id")?;
    let channel = r.string("channel")?;
    let live_event_id = r.opt_string("live_event_id")?;
    let break_id = r.opt_string("break_id")?;
    let campaign_id = r.opt_string("campaign_id")?;
    let line_item_id = r.opt_string("line_item_id")?;
    let creative_id = r.string("creative_id")?;
    let device = r.opt_string("device")?;
    let country = r.opt_string("country")?;
    let region = r.opt_string("region")?;
    let flags = r.byte("consent")?;
    if flags > 0b111 {
        return Err(format!("unknown consent flags {flags:#04x}"));
    }
    let consent = ConsentFlags {
        store_viewer_id: flags & 1 != 0,
        personalisation: flags & 2 != 0,
        opt_out_sale: flags & 4 != 0,
    };
    let ad_duration_ms = r
        .opt("ad_duration_ms", |r| r.uint("ad_duration_ms"))?
        .map(|ms| u32::try_from(ms).map_err(|_| format!("ad_duration_ms {ms} is out of range")))
        .transpose()?;
    let demand = r.opt("demand", |r| {
        Ok(Demand {
            bidder: r.string("demand.bidder")?,
            seat: r.string("demand.seat")?,
            deal_id: r.opt_string("demand.deal_id")?,
            price_cpm_micros: r.uint("demand.price_cpm_micros")?,
            currency: r.string("demand.currency")?,
        })
    })?;
    let edge = r.opt("edge", |r| {
        let json = r.str("edge")?;
        serde_json::from_str::<Quarantine>(json).map_err(|e| format!("edge: {e}"))
    })?;
    if r.at != bytes.len() {
        return Err(format!("{} bytes after the record", bytes.len() - r.at));
    }
    Ok(LogRecord {
        event: AdEvent {
            schema_version,
            event_id,
            ad_instance_id,
            event_type,
            error_code,
            source,
            occurred_at,
            received_at,
            session_id,
            viewer_id,
            channel,
            live_event_id,
            break_id,
            campaign_id,
            line_item_id,
            creative_id,
            device,
            country,
            region,
            consent,
            ad_duration_ms,
            demand,
        },
        edge,
    })
}

fn put_uint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_opt<T>(out: &mut Vec<u8>, value: Option<T>, put: impl FnOnce(&mut Vec<u8>, T)) {
    match value {
        Some(v) => {
            out.push(1);
            put(out, v);
        }
        None => out.push(0),
    }
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    put_opt(out, s, put_str);
}

fn put_time(out: &mut Vec<u8>, t: DateTime<Utc>) {
    let secs = t.timestamp();
    // Zigzag: small negative and positive numbers both stay short.
    put_uint(out, ((secs << 1) ^ (secs >> 63)) as u64);
    put_uint(out, u64::from(t.timestamp_subsec_nanos()));
}

/// A cursor over a record being decoded.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn truncated(&self, field: &str) -> String {
        format!("truncated at byte {} reading {field}", self.at)
    }

    fn byte(&mut self, field: &str) -> Result<u8, String> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| self.truncated(field))?;
        self.at += 1;
        Ok(b)
    }

    fn uint(&mut self, field: &str) -> Result<u64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte(field)?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(format!("{field} at byte {} is not a varint", self.at))
    }

    fn str(&mut self, field: &str) -> Result<&'a str, String> {
        let len = self.uint(field)?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| self.at.checked_add(len))
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "{field} of {len} bytes at byte {} overruns the record",
                    self.at
                )
            })?;
        let s = std::str::from_utf8(&self.bytes[self.at..end])
            .map_err(|e| format!("{field} at byte {} is not UTF-8: {e}", self.at))?;
        self.at = end;
        Ok(s)
    }

    fn string(&mut self, field: &str) -> Result<String, String> {
        self.str(field).map(str::to_owned)
    }

    fn opt<T>(
        &mut self,
        field: &str,
        read: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match self.byte(field)? {
            0 => Ok(None),
            1 => read(self).map(Some),
            other => Err(format!("{field}: presence byte {other}, not 0 or 1")),
        }
    }

    fn opt_string(&mut self, field: &str) -> Result<Option<String>, String> {
        self.opt(field, |r| r.string(field))
    }

    fn time(&mut self, field: &str) -> Result<DateTime<Utc>, String> {
        let z = self.uint(field)?;
        let secs = (z >> 1) as i64 ^ -((z & 1) as i64);
        let nanos = self.uint(field)?;
        u32::try_from(nanos)
            .ok()
            .and_then(|n| DateTime::from_timestamp(secs, n))
            .ok_or_else(|| format!("{field} {secs} s + {nanos} ns is not a time"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> (AdEvent, Quarantine) {
        let at = DateTime::parse_from_rfc3339("2026-12-05T07:16:39.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let event = AdEvent {
            schema_version: "1.0".into(),
            event_id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
            ad_instance_id: "s1-b1-0".into(),
            event_type: EventType::Midpoint,
            error_code: Some(402),
            source: EventSource::ThirdParty,
            occurred_at: at,
            received_at: at + chrono::Duration::milliseconds(250),
            session_id: "s1".into(),
            viewer_id: Some("viewer ✓".into()),
            channel: "live1".into(),
            live_event_id: Some("final".into()),
            break_id: Some("b1".into()),
            campaign_id: Some("c1".into()),
            line_item_id: Some("li1".into()),
            creative_id: "cr1".into(),
            device: Some("tv".into()),
            country: Some("FR".into()),
            region: Some("IDF".into()),
            consent: ConsentFlags {
                store_viewer_id: true,
                personalisation: false,
                opt_out_sale: true,
            },
            ad_duration_ms: Some(30_000),
            demand: Some(Demand {
                bidder: "dsp".into(),
                seat: "seat 7".into(),
                deal_id: Some("deal".into()),
                price_cpm_micros: 12_500_000,
                currency: "EUR".into(),
            }),
        };
        let edge = Quarantine::BotUserAgent {
            pattern: "bot".into(),
        };
        (event, edge)
    }

    #[test]
    fn every_field_round_trips_and_absent_ones_stay_absent() {
        let (event, edge) = full();
        let mut out = Vec::new();
        encode(&event, Some(&edge), &mut out);
        assert!(is_compact(&out));
        let back = decode(&out).unwrap();
        assert_eq!(back.event, event);
        assert_eq!(back.edge, Some(edge));

        let sparse = AdEvent {
            error_code: None,
            viewer_id: None,
            live_event_id: None,
            break_id: None,
            campaign_id: None,
            line_item_id: None,
            device: None,
            country: None,
            region: None,
            ad_duration_ms: None,
            demand: None,
            consent: ConsentFlags::default(),
            occurred_at: DateTime::from_timestamp(-86_400, 0).unwrap(),
            ..event.clone()
        };
        out.clear();
        encode(&sparse, None, &mut out);
        let back = decode(&out).unwrap();
        assert_eq!(back.event, sparse);
        assert_eq!(back.edge, None);
        // A third of the JSON the log wrote before.
        let json = serde_json::to_vec(&LogRecord {
            event: sparse,
            edge: None,
        })
        .unwrap();
        assert!(
            out.len() * 2 < json.len(),
            "{} vs {}",
            out.len(),
            json.len()
        );
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_naming_where_never_a_panic() {
        let (event, edge) = full();
        let mut out = Vec::new();
        encode(&event, Some(&edge), &mut out);
        for len in 0..out.len() {
            let err = decode(&out[..len]).unwrap_err();
            assert!(!err.is_empty());
        }
        let mut longer = out.clone();
        longer.push(0);
        assert_eq!(decode(&longer).unwrap_err(), "1 bytes after the record");
        // Every byte set to every value: decoded or refused, never a panic.
        for at in 0..out.len() {
            for value in [0x00, 0x01, 0x02, 0x7f, 0x80, 0xc3, 0xff] {
                let mut bad = out.clone();
                bad[at] = value;
                let _ = decode(&bad);
            }
        }
        let mut bad = out.clone();
        bad[0] = b'{';
        assert_eq!(decode(&bad).unwrap_err(), "not a compact log record");
        // A string length past the end names its field.
        let mut bad = vec![LAYOUT];
        put_uint(&mut bad, 1 << 40);
        assert!(
            decode(&bad)
                .unwrap_err()
                .starts_with("schema_version of 1099511627776 bytes")
        );
    }
}
