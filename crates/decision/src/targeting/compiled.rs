//! Targeting expressions compiled for one break plan: every value an expression names is interned to an
//! integer once, and a viewer's facts are looked up once, so matching a line item compares integers instead
//! of strings. The answer is [`Expr::matches`]'s (codes compared in their normalised case, as there).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Expr, Facts, Field, WEEKDAYS};

/// Fields, as indexes.
const FIELDS: usize = 12;

fn slot(field: Field) -> usize {
    field as usize
}

fn slot_of_position() -> usize {
    slot(Field::PodPosition)
}

/// A viewer value no expression names.
const UNKNOWN: u32 = u32::MAX;

/// One compiled node.
#[derive(Debug, Clone)]
enum Op {
    Const(bool),
    /// Children at `ops[start..start + len]` (indexes into `children`).
    All(u32, u32),
    Any(u32, u32),
    Not(u32),
    /// The field has one of the ids at `ids[start..start + len]` (sorted).
    Is(u8, u32, u32),
    /// A key-value pair among `ids[start..start + len]` (sorted).
    Kv(u32, u32),
    Between(u8, f64, f64),
    /// Hours at `ids[start..start + len]` (sorted; none: any hour), weekdays as a mask with bit 7 set
    /// (0: any day).
    Daypart(u32, u32, u8),
}

/// Expressions compiled against one dictionary of values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Compiled {
    ops: Vec<Op>,
    children: Vec<u32>,
    ids: Vec<u32>,
    values: [HashMap<String, u32>; FIELDS],
    /// Key-value pairs, by key then value.
    kvs: HashMap<String, HashMap<String, u32>>,
    next: u32,
}

/// A viewer's facts as ids of a [`Compiled`] dictionary.
#[derive(Debug, Clone, Default)]
pub(crate) struct ViewerKeys {
    /// Per field, its ids (with each value's number, for ranges) at `ids[start..start + len]`.
    fields: [(u32, u32); FIELDS],
    ids: Vec<(u32, f64)>,
    kvs: Vec<u32>,
    hour: Option<u32>,
    weekday: Option<u8>,
}

impl Compiled {
    fn intern(&mut self, field: Field, value: &str) -> u32 {
        let value = field.normalise(value);
        if let Some(&id) = self.values[slot(field)].get(value.as_ref()) {
            return id;
        }
        let id = self.next;
        self.next += 1;
        self.values[slot(field)].insert(value.into_owned(), id);
        id
    }

    fn intern_kv(&mut self, key: &str, value: &str) -> u32 {
        if let Some(&id) = self.kvs.get(key).and_then(|m| m.get(value)) {
            return id;
        }
        let id = self.next;
        self.next += 1;
        self.kvs
            .entry(key.to_owned())
            .or_default()
            .insert(value.to_owned(), id);
        id
    }

    /// Compiles `expr` (dayparts in a fixed time zone evaluated at `now`); returns its root.
    pub(crate) fn compile(&mut self, expr: &Expr, now: DateTime<Utc>) -> u32 {
        let op = match expr {
            Expr::All(items) | Expr::Any(items) => {
                let kids: Vec<u32> = items.iter().map(|e| self.compile(e, now)).collect();
                let start = self.children.len() as u32;
                self.children.extend(&kids);
                if matches!(expr, Expr::All(_)) {
                    Op::All(start, kids.len() as u32)
                } else {
                    Op::Any(start, kids.len() as u32)
                }
            }
            Expr::Not(e) => Op::Not(self.compile(e, now)),
            Expr::Is { field, values } => {
                let mut ids: Vec<u32> = values.iter().map(|v| self.intern(*field, v)).collect();
                ids.sort_unstable();
                ids.dedup();
                let start = self.ids.len() as u32;
                self.ids.extend(&ids);
                Op::Is(slot(*field) as u8, start, ids.len() as u32)
            }
            Expr::Kv { key, values } => {
                let mut ids: Vec<u32> = values.iter().map(|v| self.intern_kv(key, v)).collect();
                ids.sort_unstable();
                ids.dedup();
                let start = self.ids.len() as u32;
                self.ids.extend(&ids);
                Op::Kv(start, ids.len() as u32)
            }
            Expr::Between { field, min, max } => Op::Between(slot(*field) as u8, *min, *max),
            Expr::Daypart {
                timezone: Some(_), ..
            } => Op::Const(expr.matches(&Facts::default().at(now))),
            Expr::Daypart {
                timezone: None,
                hours,
                weekdays,
            } => {
                let mut h = hours.clone();
                h.sort_unstable();
                let start = self.ids.len() as u32;
                self.ids.extend(&h);
                let d = weekdays
                    .iter()
                    .filter_map(|w| WEEKDAYS.iter().position(|d| d == w))
                    .fold(0u8, |m, d| m | 1 << d);
                let d = if weekdays.is_empty() { 0 } else { d | 1 << 7 };
                Op::Daypart(start, h.len() as u32, d)
            }
        };
        self.ops.push(op);
        (self.ops.len() - 1) as u32
    }

    /// A viewer's `facts` as ids of this dictionary, into `keys`.
    pub(crate) fn keys(&self, facts: &Facts, keys: &mut ViewerKeys) {
        keys.ids.clear();
        keys.kvs.clear();
        keys.fields = [(0, 0); FIELDS];
        keys.hour = None;
        keys.weekday = None;
        // As `Expr::matches`: the first hour and weekday facts are the viewer's clock.
        keys.hour = facts
            .values()
            .iter()
            .find(|(f, _)| *f == Field::Hour)
            .and_then(|(_, v)| v.parse().ok());
        keys.weekday = facts
            .values()
            .iter()
            .find(|(f, _)| *f == Field::Weekday)
            .and_then(|(_, v)| WEEKDAYS.iter().position(|d| d == v))
            .map(|d| d as u8);
        // Facts list a field's values together or apart: gather them field by field.
        for field in 0..FIELDS {
            let start = keys.ids.len() as u32;
            for (_, v) in facts.values().iter().filter(|(f, _)| slot(*f) == field) {
                let id = self.values[field]
                    .get(v.as_str())
                    .copied()
                    .unwrap_or(UNKNOWN);
                keys.ids.push((id, v.parse::<f64>().unwrap_or(f64::NAN)));
            }
            keys.fields[field] = (start, keys.ids.len() as u32 - start);
        }
        for (k, v) in facts.key_values() {
            if let Some(&id) = self.kvs.get(k.as_str()).and_then(|m| m.get(v.as_str())) {
                keys.kvs.push(id);
            }
        }
    }

    /// The ids of the pod positions `first` and `last` (never matching when no expression names them).
    pub(crate) fn position_ids(&self) -> [u32; 2] {
        ["first", "last"].map(|p| {
            self.values[slot(Field::PodPosition)]
                .get(p)
                .copied()
                .unwrap_or(UNKNOWN)
        })
    }

    /// Whether the expression at `root` holds for the viewer with `keys`.
    pub(crate) fn matches(&self, root: u32, keys: &ViewerKeys) -> bool {
        self.matches_in_slot(root, keys, &[])
    }

    /// Whether the expression at `root` holds for the viewer with `keys` in a pod slot whose positions
    /// (ids from [`Compiled::position_ids`]) are `slot`.
    pub(crate) fn matches_in_slot(&self, root: u32, keys: &ViewerKeys, slot: &[u32]) -> bool {
        let Some(op) = self.ops.get(root as usize) else {
            return false;
        };
        let kids = |start: u32, len: u32| &self.children[start as usize..(start + len) as usize];
        let ids = |start: u32, len: u32| &self.ids[start as usize..(start + len) as usize];
        match *op {
            Op::Const(b) => b,
            Op::All(s, n) => kids(s, n)
                .iter()
                .all(|&c| self.matches_in_slot(c, keys, slot)),
            Op::Any(s, n) => kids(s, n)
                .iter()
                .any(|&c| self.matches_in_slot(c, keys, slot)),
            Op::Not(c) => !self.matches_in_slot(c, keys, slot),
            Op::Is(field, s, n) => {
                let (start, len) = keys.fields[field as usize];
                let accepted = ids(s, n);
                let known = |id: &u32| *id != UNKNOWN && accepted.binary_search(id).is_ok();
                keys.ids[start as usize..(start + len) as usize]
                    .iter()
                    .any(|(id, _)| known(id))
                    || (field as usize == slot_of_position() && slot.iter().any(known))
            }
            Op::Kv(s, n) => {
                let accepted = ids(s, n);
                keys.kvs.iter().any(|id| accepted.binary_search(id).is_ok())
            }
            Op::Between(field, min, max) => {
                let (start, len) = keys.fields[field as usize];
                keys.ids[start as usize..(start + len) as usize]
                    .iter()
                    .any(|(_, x)| (min..=max).contains(x))
            }
            Op::Daypart(s, n, days) => {
                (n == 0
                    || keys
                        .hour
                        .is_some_and(|h| ids(s, n).binary_search(&h).is_ok()))
                    && (days == 0 || keys.weekday.is_some_and(|d| days & (1 << d) != 0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Rng, herd, realistic_catalog};

    #[test]
    fn compiled_expressions_agree_with_the_expressions_on_a_realistic_book() {
        let now: DateTime<Utc> = "2026-11-23T20:00:00Z".parse().unwrap_or_default();
        let catalog = realistic_catalog(now, 2_000, 3);
        let herd = herd(&catalog, 300, now, 4);
        let mut compiled = Compiled::default();
        let mut exprs: Vec<(Expr, u32)> = catalog
            .line_items
            .iter()
            .filter_map(|l| l.targeting.clone())
            .map(|e| {
                let root = compiled.compile(&e, now);
                (e, root)
            })
            .collect();
        // Odd shapes the book does not have: ranges over text, any, empty lists, mixed case.
        let mut rng = Rng::new(9);
        for e in [
            Expr::Between {
                field: Field::Country,
                min: 0.0,
                max: 9.0,
            },
            Expr::Any(Vec::new()),
            Expr::All(Vec::new()),
            Expr::Is {
                field: Field::Country,
                values: vec!["fr".into(), "De".into()],
            },
            Expr::Daypart {
                timezone: None,
                hours: vec![25, 20, 3],
                weekdays: vec!["mon".into(), "sun".into(), "Tue".into()],
            },
        ] {
            let root = compiled.compile(&e, now);
            exprs.push((e, root));
        }
        let mut keys = ViewerKeys::default();
        for r in &herd.requests {
            let mut facts = Facts::default()
                .at(now)
                .with(Field::Country, r.viewer.country.clone().unwrap_or_default())
                .with(Field::Device, r.viewer.device.clone().unwrap_or_default())
                .with(Field::Hour, rng.below(24).to_string())
                .with(Field::Weekday, WEEKDAYS[rng.below(7)])
                .with(Field::BreakDuration, "120");
            for s in &r.viewer.segments {
                facts = facts.with(Field::Segment, s.clone());
            }
            if let Some(region) = &r.viewer.region {
                facts = facts.with(Field::Region, region.clone());
            }
            for (k, v) in &r.viewer.key_values {
                facts = facts.with_kv(k.clone(), v.clone());
            }
            compiled.keys(&facts, &mut keys);
            let [first, last] = compiled.position_ids();
            for (e, root) in &exprs {
                assert_eq!(
                    compiled.matches(*root, &keys),
                    e.matches(&facts),
                    "{e:?} {facts:?}"
                );
                for (ids, names) in [
                    (&[first, last][..], &["first", "last"][..]),
                    (&[first][..], &["first"][..]),
                    (&[last][..], &["last"][..]),
                ] {
                    let mut f = facts.clone();
                    for n in names {
                        f = f.with(Field::PodPosition, *n);
                    }
                    assert_eq!(compiled.matches_in_slot(*root, &keys, ids), e.matches(&f));
                }
            }
        }
    }
}
