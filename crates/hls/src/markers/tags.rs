//! The marker tags that sit on a segment (everything but `EXT-X-DATERANGE`), one dialect per function.
//!
//! Forms read, with where they are documented (samples in tests/data, sources in tests/data/SOURCES.md):
//! - `EXT-X-CUE-OUT`: `30`, `30.000`, `DURATION=30[,ID=…]`, nothing (AWS Elemental/MediaConvert/MediaLive
//!   "Elemental", MediaTailor, Google DAI, Wowza, Broadpeak), and `<duration>,<attributes>` such as
//!   `177.100,SignalID=…` (Adobe SSAI, Elemental with attributes);
//! - `EXT-X-CUE-OUT-CONT`: `ElapsedTime=…,Duration=…[,SCTE35=…]` (SCTE-35 enhanced), `elapsed/duration`
//!   (Elemental), `elapsed/duration,<attributes>` (Adobe SSAI); `EXT-X-CUE-SPAN:TIMEFROMSIGNAL=PT6S`;
//! - `EXT-X-CUE-IN`, bare or `<duration>,<attributes>`;
//! - `EXT-X-CUE:TYPE="SpliceOut"|"SpliceIn"|"scte35",ID=…,DURATION=…,TIME=…[,ELAPSED=…][,CUE="…"]` and
//!   `EXT-X-CUE-CONT:ID=…,AVAIL-DUR-ELAPSED=…` (Adobe Primetime, MediaLive "Adobe", Azure Media Services);
//! - `EXT-OATCLS-SCTE35`, `EXT-X-SPLICEPOINT-SCTE35` (a bare section); `EXT-X-SCTE35` / `EXT-SCTE35`
//!   (`CUE=`, `CUE-OUT=YES|CONT`, `CUE-IN=YES`, `DURATION`, `ELAPSED`, `ID`).

use super::{Cue, Decoded, Dialect, Read, Signal, decode, iso_duration, undecodable};
use crate::attributes::AttributeList;
use crate::model::Tag;

/// A leading decimal before the first comma (`30.000` of `30.000,SignalID=7`), and what follows it.
fn lead_number(value: &str) -> (Option<f64>, &str) {
    let (head, rest) = value.split_once(',').unwrap_or((value, ""));
    match head.trim().parse::<f64>() {
        Ok(n) => (Some(n), rest),
        Err(_) => (None, value),
    }
}

/// The first of `names` that is present as a number.
fn number(attrs: &AttributeList, names: &[&str]) -> Option<f64> {
    names.iter().find_map(|n| attrs.get_f64(n))
}

/// The first of `names` that is present and not empty (`SignalID=` is written empty).
fn text<'a>(attrs: &'a AttributeList, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| attrs.get(n).filter(|v| !v.trim().is_empty()))
}

const IDS: &[&str] = &["ID", "SignalID", "SIGNALID", "BREAKID"];
const CUES: &[&str] = &["SCTE35", "CUE"];

struct At<'a> {
    segment: usize,
    line: Option<usize>,
    tag: &'a str,
}

impl At<'_> {
    fn cue(&self, signal: Signal, dialect: Dialect, id: Option<&str>) -> Cue {
        Cue {
            segment: self.segment,
            signal,
            dialect,
            id: id.map(str::to_owned),
            scte35: None,
            event_id: None,
            warning: None,
            line: self.line,
        }
    }

    /// Adds the carried SCTE-35 cue: its event id, and a warning when it does not decode. The tag's own
    /// attributes decide the signal (the cue only fills a missing duration).
    fn with_scte35(&self, mut cue: Cue, scte35: Option<&str>) -> Cue {
        let Some(text) = scte35 else {
            return cue;
        };
        cue.scte35 = Some(text.to_owned());
        match decode(text) {
            Decoded::Start { duration, event_id } => {
                cue.event_id = event_id;
                if let Signal::Out { duration: d @ None } = &mut cue.signal {
                    *d = duration;
                }
            }
            Decoded::End { event_id } => cue.event_id = event_id,
            Decoded::Neither => {}
            Decoded::Invalid(reason) => {
                cue.warning = Some(undecodable(
                    self.line,
                    self.segment,
                    self.tag,
                    &reason,
                    "used the tag's other attributes",
                ));
            }
        }
        cue
    }
}

pub(super) fn read_tag(segment: usize, line: Option<usize>, tag: &Tag) -> Read {
    let value = tag.value.as_deref().unwrap_or("").trim();
    let at = At {
        segment,
        line,
        tag: &tag.name,
    };
    match tag.name.as_str() {
        "EXT-X-CUE-OUT" => cue_out(&at, value),
        "EXT-X-CUE-OUT-CONT" => cue_out_cont(&at, value),
        "EXT-X-CUE-SPAN" => match AttributeList::parse(value) {
            Ok(attrs) => {
                let elapsed = attrs.get("TIMEFROMSIGNAL").and_then(iso_duration);
                let signal = Signal::Cont {
                    elapsed,
                    duration: None,
                };
                Read::Cue(at.cue(signal, Dialect::CueOut, text(&attrs, IDS)))
            }
            Err(_) => Read::Nothing,
        },
        "EXT-X-CUE-IN" => {
            let (_, rest) = lead_number(value);
            let attrs = AttributeList::parse(rest).unwrap_or_default();
            Read::Cue(at.cue(Signal::In, Dialect::CueOut, text(&attrs, IDS)))
        }
        "EXT-X-CUE" => adobe_cue(&at, value),
        "EXT-X-CUE-CONT" => adobe_cue_cont(&at, value),
        "EXT-OATCLS-SCTE35" => section(&at, Dialect::Oatcls, value),
        "EXT-X-SPLICEPOINT-SCTE35" => section(&at, Dialect::SplicePoint, value),
        "EXT-X-SCTE35" | "EXT-SCTE35" => x_scte35(&at, value),
        _ => Read::Nothing,
    }
}

/// `EXT-X-CUE-OUT`: `30`, `30.000,SignalID=…`, `DURATION=30,ID=…`, or nothing. The stated duration is kept as
/// written (packagers round it down; allowing for that is the stitcher's business).
fn cue_out(at: &At<'_>, value: &str) -> Read {
    let (lead, rest) = lead_number(value);
    let attrs = AttributeList::parse(rest).unwrap_or_default();
    let duration = lead.or_else(|| number(&attrs, &["DURATION", "Duration", "duration"]));
    let cue = at.cue(Signal::Out { duration }, Dialect::CueOut, text(&attrs, IDS));
    Read::Cue(at.with_scte35(cue, text(&attrs, CUES)))
}

/// `elapsed/duration`, with an optional attribute list after a comma.
fn slash_form(value: &str) -> Option<(Option<f64>, Option<f64>, &str)> {
    let (head, rest) = value.split_once(',').unwrap_or((value, ""));
    let (e, d) = head.split_once('/')?;
    Some((e.trim().parse().ok(), d.trim().parse().ok(), rest))
}

/// `EXT-X-CUE-OUT-CONT`: `ElapsedTime=…,Duration=…[,SCTE35=…]`, `elapsed/duration[,attributes]`, or bare.
fn cue_out_cont(at: &At<'_>, value: &str) -> Read {
    let (elapsed, duration, attrs) = match slash_form(value) {
        Some((e, d, rest)) => (e, d, AttributeList::parse(rest).unwrap_or_default()),
        None => {
            let Ok(attrs) = AttributeList::parse(value) else {
                return Read::Nothing;
            };
            let e = number(
                &attrs,
                &["ElapsedTime", "ELAPSEDTIME", "Elapsed", "ELAPSED"],
            );
            let d = number(&attrs, &["Duration", "DURATION"]);
            (e, d, attrs)
        }
    };
    let cue = at.cue(
        Signal::Cont { elapsed, duration },
        Dialect::CueOut,
        text(&attrs, IDS),
    );
    Read::Cue(at.with_scte35(cue, text(&attrs, CUES)))
}

/// `EXT-X-CUE` (Adobe Primetime; MediaLive's "Adobe" style; Azure Media Services' legacy form with the whole
/// section in `CUE=`). `TYPE` is `SpliceOut` or `SpliceIn`, or `scte35` when `CUE` says which; a repeated
/// `SpliceOut` with `ELAPSED` marks a segment inside the break. `DURATION=0` means the duration is unknown.
fn adobe_cue(at: &At<'_>, value: &str) -> Read {
    let Ok(attrs) = AttributeList::parse(value) else {
        return Read::Nothing;
    };
    let kind = attrs.get("TYPE").unwrap_or("").trim().to_ascii_lowercase();
    let duration = number(&attrs, &["DURATION"]).filter(|d| *d > 0.0);
    let elapsed = number(&attrs, &["ELAPSED", "AVAIL-DUR-ELAPSED"]);
    let out = |duration| match elapsed {
        Some(_) => Signal::Cont { elapsed, duration },
        None => Signal::Out { duration },
    };
    let id = text(&attrs, IDS);
    let by_type = match kind.as_str() {
        "spliceout" => Some(out(duration)),
        "splicein" => Some(Signal::In),
        // `scte35` without a readable cue: a duration still says a break starts.
        "scte35" => duration.map(|_| out(duration)),
        _ => None,
    };
    let Some(section) = text(&attrs, &["CUE"]) else {
        return by_type.map_or(Read::Nothing, |s| Read::Cue(at.cue(s, Dialect::Cue, id)));
    };
    let mut cue = match decode(section) {
        Decoded::Start {
            duration: d,
            event_id,
        } => {
            // A `SpliceOut` states its own duration; `scte35` leaves it to the cue.
            let stated = if kind == "spliceout" {
                duration.or(d)
            } else {
                d.or(duration)
            };
            let mut c = at.cue(out(stated), Dialect::Cue, id);
            c.event_id = event_id;
            c
        }
        Decoded::End { event_id } => {
            let mut c = at.cue(Signal::In, Dialect::Cue, id);
            c.event_id = event_id;
            c
        }
        Decoded::Neither => match by_type.filter(|_| kind != "scte35") {
            Some(s) => at.cue(s, Dialect::Cue, id),
            None => return Read::Nothing,
        },
        Decoded::Invalid(reason) => match by_type {
            Some(s) => {
                let mut c = at.cue(s, Dialect::Cue, id);
                c.warning = Some(undecodable(
                    at.line,
                    at.segment,
                    at.tag,
                    &reason,
                    "used the tag's other attributes",
                ));
                c
            }
            None => {
                return Read::Warning(undecodable(
                    at.line,
                    at.segment,
                    at.tag,
                    &reason,
                    "and the tag says nothing else about a break",
                ));
            }
        },
    };
    cue.scte35 = Some(section.to_owned());
    Read::Cue(cue)
}

/// `EXT-X-CUE-CONT:ID=…,AVAIL-DUR-ELAPSED=…` (Adobe Primetime), also seen as `elapsed/duration`.
fn adobe_cue_cont(at: &At<'_>, value: &str) -> Read {
    if let Some((elapsed, duration, _)) = slash_form(value) {
        return Read::Cue(at.cue(Signal::Cont { elapsed, duration }, Dialect::Cue, None));
    }
    let Ok(attrs) = AttributeList::parse(value) else {
        return Read::Nothing;
    };
    let signal = Signal::Cont {
        elapsed: number(&attrs, &["AVAIL-DUR-ELAPSED", "ELAPSED"]),
        duration: number(&attrs, &["DURATION"]).filter(|d| *d > 0.0),
    };
    Read::Cue(at.cue(signal, Dialect::Cue, text(&attrs, IDS)))
}

/// A tag whose whole value is an SCTE-35 section: the section alone says whether it is a break start, an
/// end or neither (a program boundary, which is not a break). One that does not decode is reported.
fn section(at: &At<'_>, dialect: Dialect, value: &str) -> Read {
    super::from_section(at.segment, at.line, at.tag, dialect, None, value, None)
}

/// `value` with the attributes separated by commas: x9k3 (a threefive-based segmenter) writes
/// `CUE="…" CUE-OUT="YES" DURATION=90.0` and `CUE="…" ,CUE-OUT=YES`. Outside quoted strings, whitespace
/// before a comma or the end is dropped, and whitespace before another `NAME=` becomes a comma; any other
/// whitespace is kept.
fn comma_separated(value: &str) -> String {
    let value = value.trim();
    let mut out = String::with_capacity(value.len() + 4);
    let mut quoted = false;
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted && c.is_whitespace() {
            let after = rest.trim_start();
            let name_len = after
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'))
                .unwrap_or(after.len());
            if after.is_empty() || after.starts_with(',') {
                rest = after;
                continue;
            }
            if name_len > 0 && after[name_len..].starts_with('=') && !out.ends_with(',') {
                out.push(',');
                rest = after;
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `EXT-X-SCTE35` / `EXT-SCTE35`: explicit `CUE-OUT` / `CUE-IN` flags win; without them the cue decides, and
/// a cue that does not decode falls back to `DURATION` (a break start) when there is one.
fn x_scte35(at: &At<'_>, value: &str) -> Read {
    let Ok(attrs) = AttributeList::parse(&comma_separated(value)) else {
        return Read::Nothing;
    };
    let id = text(&attrs, IDS).map(str::to_owned);
    let duration = attrs.get_f64("DURATION");
    let flag = |name| attrs.get(name).map(str::to_ascii_uppercase);
    let explicit = match (flag("CUE-OUT").as_deref(), flag("CUE-IN").as_deref()) {
        (Some("YES"), _) => Some(Signal::Out { duration }),
        (Some("CONT"), _) => Some(Signal::Cont {
            elapsed: attrs.get_f64("ELAPSED"),
            duration,
        }),
        (_, Some("YES")) => Some(Signal::In),
        _ => None,
    };
    match (text(&attrs, &["CUE"]), explicit) {
        (Some(cue), Some(signal)) => {
            let c = at.cue(signal, Dialect::Scte35Tag, id.as_deref());
            Read::Cue(at.with_scte35(c, Some(cue)))
        }
        (Some(cue), None) => super::from_section(
            at.segment,
            at.line,
            at.tag,
            Dialect::Scte35Tag,
            id,
            cue,
            duration.map(|d| Signal::Out { duration: Some(d) }),
        ),
        (None, Some(signal)) => Read::Cue(at.cue(signal, Dialect::Scte35Tag, id.as_deref())),
        (None, None) => Read::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::comma_separated;

    #[test]
    fn space_separated_attributes_get_commas_and_quoted_spaces_stay() {
        assert_eq!(
            comma_separated(r#"CUE="/DA x==" CUE-OUT="YES" DURATION=90.02 "#),
            r#"CUE="/DA x==",CUE-OUT="YES",DURATION=90.02"#
        );
        assert_eq!(
            comma_separated(r#"CUE="/DA==" ,CUE-OUT=YES "#),
            r#"CUE="/DA==",CUE-OUT=YES"#
        );
        assert_eq!(comma_separated("A=1, B=2"), "A=1, B=2");
        assert_eq!(comma_separated("TIME=12 34,X=1"), "TIME=12 34,X=1");
    }
}
