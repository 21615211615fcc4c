//! Targeting: boolean expressions (all / any / not) over what is known of a viewer and the content, and an index
//! that finds the line items whose expression can match without evaluating every one.
//!
//! The index is the conjunctive-clause method of boolean-expression indexing used by ad servers: each
//! expression that must satisfy some `field ∈ {values}` at its top level (under `all`) is filed under each of
//! those values of its most selective such clause; the rest (expressions with no required positive clause,
//! e.g. a bare `not`) are always candidates. Matching a viewer looks up its own values, then evaluates only the
//! candidates. With line items targeted by country, channel or device, as they are, a viewer meets a few dozen
//! candidates out of tens of thousands.

pub(crate) mod compiled;
mod load;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// What an expression can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// ISO 3166-1 alpha-2 country.
    Country,
    /// ISO 3166-2 region or DMA code.
    Region,
    /// Device class.
    Device,
    /// Platform.
    Platform,
    /// Channel id.
    Channel,
    /// Live event or programme id.
    Content,
    /// Content genre.
    Genre,
    /// Audience segment (a viewer has any number).
    Segment,
    /// Daypart: the hour of the day in the viewer's time zone, `0` to `23`.
    Hour,
    /// Daypart: the day of the week in the viewer's time zone, `mon` to `sun`.
    Weekday,
    /// The break's planned length in whole seconds (`Is` for exact lengths, `Between` for a range).
    BreakDuration,
    /// The ad's place in the pod: `first`, `last` (a pod's only ad is both). Known per slot, so never used to
    /// file an expression in the index.
    PodPosition,
}

impl Field {
    /// Codes compared without regard to case, normalised to the case the standards write them in: ISO 3166
    /// country and region codes upper case; device, platform, weekday and position tokens lower case. Ids
    /// (channels, content, segments, key-values) are compared exactly.
    pub fn normalise(self, value: &str) -> std::borrow::Cow<'_, str> {
        let upper = matches!(self, Field::Country | Field::Region);
        let lower = matches!(
            self,
            Field::Device | Field::Platform | Field::Weekday | Field::PodPosition
        );
        if upper && value.bytes().any(|b| b.is_ascii_lowercase()) {
            value.to_ascii_uppercase().into()
        } else if lower && value.bytes().any(|b| b.is_ascii_uppercase()) {
            value.to_ascii_lowercase().into()
        } else {
            value.into()
        }
    }
}

/// The weekdays as daypart targeting writes them.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A targeting expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Expr {
    /// Every sub-expression holds (true when empty).
    All(Vec<Expr>),
    /// At least one sub-expression holds (false when empty).
    Any(Vec<Expr>),
    /// The sub-expression does not hold.
    Not(Box<Expr>),
    /// The field has one of the values (codes compare without regard to case, see [`Field::normalise`]).
    Is {
        /// The field.
        field: Field,
        /// Accepted values.
        values: Vec<String>,
    },
    /// The custom key-value `key` has one of the values.
    Kv {
        /// The key.
        key: String,
        /// Accepted values.
        values: Vec<String>,
    },
    /// The numeric field (the break's length, the hour) is within `[min, max]`.
    Between {
        /// The field.
        field: Field,
        /// Lowest accepted value.
        min: f64,
        /// Highest accepted value.
        max: f64,
    },
    /// A daypart: the clock at decision time, in `timezone` (an IANA name, checked at catalog load) or, when
    /// absent, in the viewer's own time zone. An empty list accepts any hour or day.
    Daypart {
        /// IANA time zone; absent: the viewer's.
        #[serde(default)]
        timezone: Option<String>,
        /// Accepted hours, 0 to 23.
        #[serde(default)]
        hours: Vec<u32>,
        /// Accepted weekdays, `mon` to `sun`.
        #[serde(default)]
        weekdays: Vec<String>,
    },
}

impl Eq for Expr {}

impl std::hash::Hash for Expr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Expr::All(items) | Expr::Any(items) => items.hash(state),
            Expr::Not(e) => e.hash(state),
            Expr::Is { field, values } => (field, values).hash(state),
            Expr::Kv { key, values } => (key, values).hash(state),
            Expr::Between { field, min, max } => (field, min.to_bits(), max.to_bits()).hash(state),
            Expr::Daypart {
                timezone,
                hours,
                weekdays,
            } => (timezone, hours, weekdays).hash(state),
        }
    }
}

/// What is known when matching: each field's values (several for segments), custom key-values, and the
/// time of the decision (for dayparts in a fixed time zone).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Facts {
    values: Vec<(Field, String)>,
    kvs: Vec<(String, String)>,
    at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Facts {
    /// Adds a value of a field (codes normalised, see [`Field::normalise`]).
    pub fn with(mut self, field: Field, value: impl Into<String>) -> Self {
        let value: String = value.into();
        let value = match field.normalise(&value) {
            std::borrow::Cow::Borrowed(_) => value,
            std::borrow::Cow::Owned(v) => v,
        };
        self.values.push((field, value));
        self
    }

    /// Sets the time of the decision.
    pub fn at(mut self, now: chrono::DateTime<chrono::Utc>) -> Self {
        self.at = Some(now);
        self
    }

    /// Adds a custom key-value.
    pub fn with_kv(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.kvs.push((key.into(), value.into()));
        self
    }

    /// The field values and key-values known, for index lookups.
    pub fn values(&self) -> &[(Field, String)] {
        &self.values
    }

    /// The custom key-values known.
    pub fn key_values(&self) -> &[(String, String)] {
        &self.kvs
    }

    /// The time of the decision, when set.
    pub fn time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.at
    }

    fn has(&self, field: Field, values: &[String]) -> bool {
        // Facts are normalised; expressions are when the catalog loads, but one built by hand may not be.
        let codes = matches!(
            field,
            Field::Country
                | Field::Region
                | Field::Device
                | Field::Platform
                | Field::Weekday
                | Field::PodPosition
        );
        self.values.iter().any(|(f, v)| {
            *f == field
                && values
                    .iter()
                    .any(|w| w == v || (codes && w.eq_ignore_ascii_case(v)))
        })
    }

    fn has_kv(&self, key: &str, values: &[String]) -> bool {
        self.kvs
            .iter()
            .any(|(k, v)| k == key && values.iter().any(|w| w == v))
    }
}

impl Expr {
    /// Whether the expression holds for `facts`.
    pub fn matches(&self, facts: &Facts) -> bool {
        match self {
            Expr::All(items) => items.iter().all(|e| e.matches(facts)),
            Expr::Any(items) => items.iter().any(|e| e.matches(facts)),
            Expr::Not(e) => !e.matches(facts),
            Expr::Is { field, values } => facts.has(*field, values),
            Expr::Kv { key, values } => facts.has_kv(key, values),
            Expr::Between { field, min, max } => facts.values.iter().any(|(f, v)| {
                *f == *field && v.parse::<f64>().is_ok_and(|x| (*min..=*max).contains(&x))
            }),
            Expr::Daypart {
                timezone,
                hours,
                weekdays,
            } => {
                let (hour, weekday) = match timezone {
                    Some(tz) => {
                        let (Some(at), Ok(tz)) = (facts.at, tz.parse::<chrono_tz::Tz>()) else {
                            return false;
                        };
                        let (h, d) = local_clock(at, tz);
                        (Some(h), Some(d))
                    }
                    None => (
                        facts
                            .values
                            .iter()
                            .find(|(f, _)| *f == Field::Hour)
                            .and_then(|(_, v)| v.parse::<u32>().ok()),
                        facts
                            .values
                            .iter()
                            .find(|(f, _)| *f == Field::Weekday)
                            .and_then(|(_, v)| WEEKDAYS.iter().copied().find(|d| d == v)),
                    ),
                };
                (hours.is_empty() || hour.is_some_and(|h| hours.contains(&h)))
                    && (weekdays.is_empty()
                        || weekday.is_some_and(|d| weekdays.iter().any(|w| w == d)))
            }
        }
    }

    /// Whether the expression tests the ad's place in the pod (known per slot only).
    pub fn is_positional(&self) -> bool {
        match self {
            Expr::All(items) | Expr::Any(items) => items.iter().any(Expr::is_positional),
            Expr::Not(e) => e.is_positional(),
            Expr::Is { field, .. } | Expr::Between { field, .. } => *field == Field::PodPosition,
            Expr::Kv { .. } | Expr::Daypart { .. } => false,
        }
    }

    /// The expression with what is fixed for a whole break substituted (`known` holds the values of the
    /// fields for which `fixed` is true, and the time): `Ok(true)`/`Ok(false)` when that decides it, else the
    /// residual expression over what depends on the viewer.
    pub fn partial(&self, known: &Facts, fixed: &dyn Fn(Field) -> bool) -> Result<bool, Expr> {
        match self {
            Expr::Is { field, .. } | Expr::Between { field, .. } if fixed(*field) => {
                Ok(self.matches(known))
            }
            Expr::Daypart {
                timezone: Some(_), ..
            } if known.at.is_some() => Ok(self.matches(known)),
            Expr::Is { .. } | Expr::Between { .. } | Expr::Kv { .. } | Expr::Daypart { .. } => {
                Err(self.clone())
            }
            Expr::Not(e) => match e.partial(known, fixed) {
                Ok(b) => Ok(!b),
                Err(r) => Err(Expr::Not(Box::new(r))),
            },
            Expr::All(items) => {
                let mut rest = Vec::new();
                for e in items {
                    match e.partial(known, fixed) {
                        Ok(true) => {}
                        Ok(false) => return Ok(false),
                        Err(r) => rest.push(r),
                    }
                }
                match rest.len() {
                    0 => Ok(true),
                    1 => Err(rest.remove(0)),
                    _ => Err(Expr::All(rest)),
                }
            }
            Expr::Any(items) => {
                let mut rest = Vec::new();
                for e in items {
                    match e.partial(known, fixed) {
                        Ok(true) => return Ok(true),
                        Ok(false) => {}
                        Err(r) => rest.push(r),
                    }
                }
                match rest.len() {
                    0 => Ok(false),
                    1 => Err(rest.remove(0)),
                    _ => Err(Expr::Any(rest)),
                }
            }
        }
    }

    /// The narrowest positive `field ∈ values` clause every match must satisfy, to file the expression under
    /// in an index; `None` when there is none (a candidate for every viewer).
    pub fn narrowest_required(&self) -> Option<(Field, &[String])> {
        self.required_clauses()
            .into_iter()
            .min_by_key(|(_, values)| values.len())
    }

    /// The positive `field ∈ values` clauses every match must satisfy (those directly at the top or under
    /// nested `all`s).
    fn required_clauses(&self) -> Vec<(Field, &[String])> {
        match self {
            // The pod position is known per slot, never when looking a viewer up.
            Expr::Is { field, values } if *field != Field::PodPosition => {
                vec![(*field, values.as_slice())]
            }
            Expr::All(items) => items.iter().flat_map(Expr::required_clauses).collect(),
            _ => Vec::new(),
        }
    }
}

/// Line items' expressions, indexed. `T` identifies a line item (an index into the catalog, an id).
///
/// Identical expressions are stored once and evaluated once per viewer: a real book repeats the same targeting
/// across the line items of a campaign, and run-of-network exclusions across many campaigns.
#[derive(Debug, Clone)]
pub struct TargetingIndex<T> {
    ids: Vec<T>,
    /// Distinct expressions, and the line items (indexes into `ids`) that use each.
    exprs: Vec<(Expr, Vec<usize>)>,
    /// Expressions filed under a value of a required clause.
    by_value: HashMap<Field, HashMap<String, Vec<usize>>>,
    /// Expressions without a required positive clause: candidates for every viewer.
    always: Vec<usize>,
}

impl<T: Clone> TargetingIndex<T> {
    /// Indexes `entries`.
    pub fn build(entries: Vec<(T, Expr)>) -> Self {
        let mut ids = Vec::with_capacity(entries.len());
        let mut exprs: Vec<(Expr, Vec<usize>)> = Vec::new();
        let mut seen: HashMap<Expr, usize> = HashMap::new();
        for (line_item, (id, expr)) in entries.into_iter().enumerate() {
            ids.push(id);
            match seen.get(&expr) {
                Some(&e) => exprs[e].1.push(line_item),
                None => {
                    seen.insert(expr.clone(), exprs.len());
                    exprs.push((expr, vec![line_item]));
                }
            }
        }
        let mut by_value: HashMap<Field, HashMap<String, Vec<usize>>> = HashMap::new();
        let mut always = Vec::new();
        for (e, (expr, _)) in exprs.iter().enumerate() {
            // The clause with the fewest values files the expression in the fewest places and keeps it out of
            // the most viewers' candidates.
            match expr.narrowest_required() {
                Some((field, values)) => {
                    for v in values {
                        by_value
                            .entry(field)
                            .or_default()
                            .entry(field.normalise(v).into_owned())
                            .or_default()
                            .push(e);
                    }
                }
                None => always.push(e),
            }
        }
        TargetingIndex {
            ids,
            exprs,
            by_value,
            always,
        }
    }

    /// Number of indexed line items.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Number of distinct expressions.
    pub fn distinct_expressions(&self) -> usize {
        self.exprs.len()
    }

    /// The line items whose expression holds for `facts`, in index order (the order they were given).
    pub fn matching(&self, facts: &Facts) -> Vec<T> {
        // A bitmap marks candidate expressions: no sort, no hashing of candidate ids.
        let mut marked = vec![false; self.exprs.len()];
        for &e in &self.always {
            marked[e] = true;
        }
        for (field, value) in &facts.values {
            if let Some(list) = self.by_value.get(field).and_then(|m| m.get(value.as_str())) {
                for &e in list {
                    marked[e] = true;
                }
            }
        }
        let mut hits: Vec<usize> = self
            .exprs
            .iter()
            .zip(marked)
            .filter(|((expr, _), m)| *m && expr.matches(facts))
            .flat_map(|((_, line_items), _)| line_items.iter().copied())
            .collect();
        hits.sort_unstable();
        hits.into_iter()
            .filter_map(|i| self.ids.get(i).cloned())
            .collect()
    }

    /// The same answer by evaluating every line item's expression: the reference the index is tested against.
    pub fn matching_by_scan(&self, facts: &Facts) -> Vec<T> {
        let mut hits: Vec<usize> = self
            .exprs
            .iter()
            .flat_map(|(expr, line_items)| {
                line_items
                    .iter()
                    .copied()
                    .filter(move |_| expr.matches(facts))
            })
            .collect();
        hits.sort_unstable();
        hits.into_iter()
            .filter_map(|i| self.ids.get(i).cloned())
            .collect()
    }
}

/// The hour and weekday of `at` in `tz`.
pub fn local_clock(at: chrono::DateTime<chrono::Utc>, tz: chrono_tz::Tz) -> (u32, &'static str) {
    use chrono::{Datelike, Timelike};
    let local = at.with_timezone(&tz);
    let day = WEEKDAYS[local.weekday().num_days_from_monday() as usize];
    (local.hour(), day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is(field: Field, values: &[&str]) -> Expr {
        Expr::Is {
            field,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    #[test]
    fn expressions_combine_as_boolean_algebra() {
        let e = Expr::All(vec![
            is(Field::Country, &["FR", "BE"]),
            Expr::Not(Box::new(is(Field::Device, &["mobile"]))),
            Expr::Any(vec![
                is(Field::Segment, &["sports-fans"]),
                Expr::Kv {
                    key: "tier".into(),
                    values: vec!["premium".into()],
                },
            ]),
        ]);
        let fan_on_tv = Facts::default()
            .with(Field::Country, "FR")
            .with(Field::Device, "tv")
            .with(Field::Segment, "cinema")
            .with(Field::Segment, "sports-fans");
        assert!(e.matches(&fan_on_tv));
        let on_mobile = fan_on_tv.clone().with(Field::Device, "mobile");
        assert!(!e.matches(&on_mobile), "NOT device=mobile");
        let premium_de = Facts::default()
            .with(Field::Country, "DE")
            .with_kv("tier", "premium");
        assert!(!e.matches(&premium_de), "country must be FR or BE");
        assert!(Expr::All(vec![]).matches(&Facts::default()));
        assert!(!Expr::Any(vec![]).matches(&Facts::default()));
    }

    #[test]
    fn the_index_files_under_the_narrowest_required_clause() {
        let index = TargetingIndex::build(vec![
            (0, is(Field::Country, &["FR"])),
            (
                1,
                Expr::All(vec![
                    is(Field::Device, &["tv", "mobile", "web"]),
                    is(Field::Channel, &["live1"]),
                ]),
            ),
            (2, Expr::Not(Box::new(is(Field::Country, &["FR"])))),
            (
                3,
                Expr::Any(vec![
                    is(Field::Country, &["DE"]),
                    is(Field::Channel, &["live1"]),
                ]),
            ),
            (4, is(Field::Country, &["FR"])),
        ]);
        assert_eq!(index.len(), 5);
        assert_eq!(
            index.distinct_expressions(),
            4,
            "line items 0 and 4 share one expression"
        );
        assert_eq!(
            index.always,
            vec![2, 3],
            "no required positive clause: always a candidate"
        );
        assert_eq!(
            index
                .by_value
                .get(&Field::Channel)
                .and_then(|m| m.get("live1")),
            Some(&vec![1])
        );
        let viewer = Facts::default()
            .with(Field::Country, "FR")
            .with(Field::Device, "tv")
            .with(Field::Channel, "live1");
        assert_eq!(index.matching(&viewer), vec![0, 1, 3, 4]);
        assert_eq!(index.matching(&viewer), index.matching_by_scan(&viewer));
    }

    #[test]
    fn expressions_read_from_toml() {
        #[derive(Deserialize)]
        struct LineItem {
            targeting: Expr,
        }
        let text = r#"
            [targeting]
            all = [
              { is = { field = "country", values = ["FR"] } },
              { not = { is = { field = "genre", values = ["kids"] } } },
              { kv = { key = "stadium", values = ["parc-des-princes"] } },
            ]
        "#;
        let li: LineItem = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        let facts = Facts::default()
            .with(Field::Country, "FR")
            .with(Field::Genre, "football")
            .with_kv("stadium", "parc-des-princes");
        assert!(li.targeting.matches(&facts));
    }
}
