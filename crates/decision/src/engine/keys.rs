//! Separation keys as integers: advertisers (by domain, else id) and competitive categories are interned
//! when the engine is built, so a decision's pod search compares numbers. An external ad's advertiser or
//! category the catalog does not know gets a fresh number for that decision only.
//!
//! The engine's string-keyed maps use the event core's non-keyed `FastHash`: ids are short, and SipHash's
//! resistance to chosen keys buys nothing for ids the catalog chose.

use std::collections::HashMap;

/// A map keyed by short ids.
pub(super) type IdMap<V> = HashMap<String, V, interlude_events::FastHash>;

/// The catalog's advertisers and categories, numbered.
#[derive(Debug, Default)]
pub(super) struct Keys {
    advertisers: IdMap<u32>,
    categories: IdMap<u32>,
}

impl Keys {
    fn number(map: &mut IdMap<u32>, name: &str) -> u32 {
        if let Some(&n) = map.get(name) {
            return n;
        }
        let n = map.len() as u32;
        map.insert(name.to_owned(), n);
        n
    }

    /// The number of advertiser `name` (added if new; at engine build).
    pub(super) fn advertiser(&mut self, name: &str) -> u32 {
        Keys::number(&mut self.advertisers, name)
    }

    /// The number of category `name` (added if new; at engine build).
    pub(super) fn category(&mut self, name: &str) -> u32 {
        Keys::number(&mut self.categories, name)
    }
}

/// One decision's view of [`Keys`]: the catalog's numbers, and fresh ones for names it does not know.
#[derive(Debug, Default)]
pub(super) struct Fresh {
    advertisers: Vec<String>,
    categories: Vec<String>,
}

impl Fresh {
    /// Forgets the last decision's fresh names.
    pub(super) fn clear(&mut self) {
        self.advertisers.clear();
        self.categories.clear();
    }

    fn number(known: &IdMap<u32>, fresh: &mut Vec<String>, name: &str) -> u32 {
        if let Some(&n) = known.get(name) {
            return n;
        }
        let k = match fresh.iter().position(|f| f == name) {
            Some(k) => k,
            None => {
                fresh.push(name.to_owned());
                fresh.len() - 1
            }
        };
        (known.len() + k) as u32
    }

    /// The number of advertiser `name` in this decision.
    pub(super) fn advertiser(&mut self, keys: &Keys, name: &str) -> u32 {
        Fresh::number(&keys.advertisers, &mut self.advertisers, name)
    }

    /// The number of category `name` in this decision.
    pub(super) fn category(&mut self, keys: &Keys, name: &str) -> u32 {
        Fresh::number(&keys.categories, &mut self.categories, name)
    }
}
