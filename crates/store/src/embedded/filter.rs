//! A split-block Bloom filter over every key of one dedup kind: the question "could fjall hold this key?"
//! answered with one cache line, before fjall is asked.
//!
//! Why: nearly every key of a herd of new beacons is absent, and fjall answers "absent" by checking the Bloom
//! filter of each of its segments (8–12 per kind on a busy store), each with up to seven probes and a
//! division per probe. That was a third of the group committer's time (`docs/performance.md`). One filter
//! over all keys, with every probe of a key in one 64-byte block, answers the same question with one cache
//! miss; the few keys it cannot rule out (it has no false negatives; about 0.2 % false positives at its
//! sizing) go on to fjall as before.
//!
//! The layout is the split-block filter of Parquet's Bloom filter specification (`parquet-format`,
//! `BloomFilter.md`), widened to 512-bit blocks of eight 64-bit words: a key's hash picks a block with its
//! high half, and each of eight odd multipliers applied to its low half picks one bit in one word.
//!
//! The words are atomics so that the thread that writes the overlay to fjall can add keys while the group
//! committer reads: a filter is shared, never locked. Keys cannot be removed; expired keys stay as set bits
//! (false positives, which cost a fjall lookup, never a wrong answer) until the filter is rebuilt.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

/// Words of a block: one cache line.
const WORDS: usize = 8;
/// Bits of filter per key it is sized for. With 16, a full split-block filter of 512-bit blocks answers
/// "maybe" for about 0.2 % of absent keys.
const BITS_PER_KEY: u64 = 16;
/// One odd multiplier per word: the bit of word `i` is the top six bits of the hash's low half times `SALT[i]`.
const SALT: [u32; WORDS] = [
    0x47b6_137b,
    0x4497_4d91,
    0x8824_ad5b,
    0xa2b7_289d,
    0x7054_95c7,
    0x2df1_424b,
    0x9efc_4947,
    0x5c6b_fb31,
];

/// The hash of a key, which the filter and the overlay's hash tables share (computed once per key by a
/// commit's prefetch).
///
/// Seeded at random once per process: ids are chosen by clients, and keys that collide would share one
/// chain of an overlay table (a fixed, published seed would let a producer choose them). Filters and
/// overlays live in memory and are rebuilt at each start, so nothing depends on the seed across runs.
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    static STATE: LazyLock<foldhash::quality::RandomState> = LazyLock::new(Default::default);
    STATE.hash_one(key)
}

/// A filter sized for a number of keys; more can be added, at a growing false-positive rate.
#[derive(Debug)]
pub(crate) struct KeyFilter {
    words: Box<[AtomicU64]>,
    blocks: u64,
    capacity: u64,
    added: AtomicU64,
}

impl KeyFilter {
    /// An empty filter for `capacity` keys (at least one block).
    pub(crate) fn new(capacity: u64) -> Self {
        let blocks = (capacity.saturating_mul(BITS_PER_KEY) / (64 * WORDS as u64)).max(1);
        let words = (0..blocks.saturating_mul(WORDS as u64))
            .map(|_| AtomicU64::new(0))
            .collect();
        KeyFilter {
            words,
            blocks,
            capacity,
            added: AtomicU64::new(0),
        }
    }

    /// The first word of `h`'s block, and the bit of each of its words.
    fn place(&self, h: u64) -> (usize, [u64; WORDS]) {
        // The high half scaled to the block count: no division.
        let block = ((h >> 32) * self.blocks) >> 32;
        let low = h as u32;
        let bits = SALT.map(|salt| 1u64 << (low.wrapping_mul(salt) >> 26));
        (block as usize * WORDS, bits)
    }

    /// Adds the keys of these hashes ([`key_hash`]).
    pub(crate) fn insert(&self, hashes: impl Iterator<Item = u64>) {
        let mut added = 0;
        for h in hashes {
            self.set(h);
            added += 1;
        }
        // Once per call: the count is shared by the threads that add.
        self.added.fetch_add(added, Ordering::Relaxed);
    }

    /// [`Self::may_contain`], adding the key when it was not there: for a lookup whose key will most likely
    /// be added soon after, while its block is in cache (see `dedup::Reader::get_or_mark`).
    pub(crate) fn may_contain_or_insert(&self, h: u64) -> bool {
        let absent = self.set(h);
        if absent {
            self.added.fetch_add(1, Ordering::Relaxed);
        }
        !absent
    }

    /// Sets the bits of `h`; whether any was unset (the key was not there).
    fn set(&self, h: u64) -> bool {
        let (first, bits) = self.place(h);
        let mut unset = false;
        for (word, bit) in self.words[first..first + WORDS].iter().zip(bits) {
            // Relaxed: readers see the key through the overlay's lock, under which commits add their keys and
            // builds end (see `dedup::Filters`), not through these words; a key marked early by a lookup is at
            // worst a false positive. A bit already set needs no locked write; one that is not needs it, as
            // threads add to a filter being built together (a commit, a spill, the build's scan).
            if word.load(Ordering::Relaxed) & bit == 0 {
                word.fetch_or(bit, Ordering::Relaxed);
                unset = true;
            }
        }
        unset
    }

    /// Whether the key of hash `h` ([`key_hash`]) may have been added: `false` means it was not.
    pub(crate) fn may_contain(&self, h: u64) -> bool {
        let (first, bits) = self.place(h);
        self.words[first..first + WORDS]
            .iter()
            .zip(bits)
            .all(|(word, bit)| word.load(Ordering::Relaxed) & bit != 0)
    }

    /// Whether more keys were added than it was sized for (it should be rebuilt, larger or without the
    /// expired keys).
    pub(crate) fn is_full(&self) -> bool {
        self.added.load(Ordering::Relaxed) > self.capacity
    }

    /// Keys added (each once per call that found it absent).
    #[cfg(test)]
    pub(crate) fn added(&self) -> u64 {
        self.added.load(Ordering::Relaxed)
    }

    /// Bytes of memory it holds.
    pub(crate) fn bytes(&self) -> u64 {
        self.blocks * (8 * WORDS as u64)
    }
}

/// One kind's filter as a stack of [`KeyFilter`]s: keys are added to the newest, and every layer is consulted.
///
/// Why: a filter is sized when it is made, and one that has been given more keys than it was sized for must
/// be replaced by a larger one. Built from a scan of fjall, that replacement re-read every stored key each
/// time the store doubled: on a store growing under load, the scan took 15–21 % of the machine's CPU
/// (`docs/performance.md`). A new, larger layer on top needs no scan, and the full one stays as it is; the
/// price is one more probe per absent key, and the false positives of the layers add up. Past
/// [`Layered::MAX_LAYERS`] the kind is rebuilt from a scan as before, into one layer, which also drops the
/// expired keys' bits.
#[derive(Debug, Clone)]
pub(crate) struct Layered {
    /// Newest first; never empty.
    layers: Vec<Arc<KeyFilter>>,
}

impl Layered {
    /// Layers at most before a rebuild from a scan. With each new layer sized for twice the keys then
    /// stored, four layers cover growth by a factor of about 27 from the first.
    pub(crate) const MAX_LAYERS: usize = 4;

    /// One empty layer for `capacity` keys.
    pub(crate) fn new(capacity: u64) -> Self {
        Layered {
            layers: vec![Arc::new(KeyFilter::new(capacity))],
        }
    }

    fn newest(&self) -> &KeyFilter {
        &self.layers[0]
    }

    /// These layers under a new empty one for `capacity` keys (the older layers shared, not copied).
    pub(crate) fn grown(&self, capacity: u64) -> Self {
        let mut layers = Vec::with_capacity(self.layers.len() + 1);
        layers.push(Arc::new(KeyFilter::new(capacity)));
        layers.extend(self.layers.iter().cloned());
        Layered { layers }
    }

    /// Adds the keys of these hashes ([`key_hash`]) to the newest layer.
    pub(crate) fn insert(&self, hashes: impl Iterator<Item = u64>) {
        self.newest().insert(hashes);
    }

    /// Whether the key of hash `h` may have been added to any layer.
    pub(crate) fn may_contain(&self, h: u64) -> bool {
        self.layers.iter().any(|layer| layer.may_contain(h))
    }

    /// [`KeyFilter::may_contain_or_insert`] on the newest layer, unless an older one may hold the key (its
    /// bits there stay set, so the key is never missed).
    pub(crate) fn may_contain_or_insert(&self, h: u64) -> bool {
        self.layers[1..].iter().any(|layer| layer.may_contain(h))
            || self.newest().may_contain_or_insert(h)
    }

    /// Whether the newest layer was given more keys than it was sized for.
    pub(crate) fn is_full(&self) -> bool {
        self.newest().is_full()
    }

    /// The layers, newest first.
    pub(crate) fn layers(&self) -> &[Arc<KeyFilter>] {
        &self.layers
    }

    /// Keys the layers are sized for, together.
    pub(crate) fn capacity(&self) -> u64 {
        self.layers.iter().map(|layer| layer.capacity).sum()
    }

    /// Bytes of memory the layers hold.
    pub(crate) fn bytes(&self) -> u64 {
        self.layers.iter().map(|layer| layer.bytes()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> Vec<u8> {
        format!(
            "{i:08x}-7c1e-4b9a-9d2f-{:012x}",
            i.wrapping_mul(0x9e37_79b9)
        )
        .into_bytes()
    }

    #[test]
    fn every_added_key_is_found_and_few_others_are() {
        let filter = KeyFilter::new(100_000);
        filter.insert((0..100_000).map(|i| key_hash(&key(i))));
        assert!((0..100_000).all(|i| filter.may_contain(key_hash(&key(i)))));
        assert!(!filter.is_full());
        let false_positives = (100_000..1_100_000)
            .filter(|i| filter.may_contain(key_hash(&key(*i))))
            .count();
        // About 0.2 % expected at 16 bits per key; 1 % would mean the blocks or bits are badly spread.
        assert!(false_positives < 10_000, "{false_positives} of 1,000,000");
        filter.insert(std::iter::once(key_hash(b"one more")));
        assert!(filter.is_full());
    }

    #[test]
    fn a_lookup_that_marks_finds_the_key_the_next_time_and_counts_it_once() {
        let filter = KeyFilter::new(10_000);
        let absent = (0..10_000)
            .filter(|i| !filter.may_contain_or_insert(key_hash(&key(*i))))
            .count();
        // Each key was new but for a false positive now and then among those already marked.
        assert!(absent > 9_900, "{absent}");
        assert_eq!(filter.added(), absent as u64);
        assert!((0..10_000).all(|i| filter.may_contain_or_insert(key_hash(&key(i)))));
        assert!((0..10_000).all(|i| filter.may_contain(key_hash(&key(i)))));
        assert_eq!(filter.added(), absent as u64);
    }

    #[test]
    fn a_grown_filter_finds_the_keys_of_every_layer_and_adds_only_to_the_newest() {
        let first = Layered::new(1_000);
        first.insert((0..1_000).map(|i| key_hash(&key(i))));
        assert!(!first.is_full());
        first.insert(std::iter::once(key_hash(&key(1_000))));
        assert!(first.is_full());
        let grown = first.grown(4_000);
        assert!(!grown.is_full());
        assert_eq!(grown.layers().len(), 2);
        assert!(Arc::ptr_eq(&grown.layers()[1], &first.layers()[0]));
        assert_eq!(grown.capacity(), 5_000);
        // Keys in the old layer are found, and not added again when marked.
        assert!((0..=1_000).all(|i| grown.may_contain_or_insert(key_hash(&key(i)))));
        assert_eq!(grown.layers()[0].added(), 0);
        // New keys go to the new layer; the old one is left as it was.
        let absent = (2_000..5_000)
            .filter(|i| !grown.may_contain_or_insert(key_hash(&key(*i))))
            .count();
        // Absent but for the false positives of the old layer (about 0.2 %) and of the new one's own marks.
        assert!(absent > 2_950, "{absent}");
        assert_eq!(grown.layers()[0].added(), absent as u64);
        assert_eq!(grown.layers()[1].added(), 1_001);
        assert!(
            (0..=1_000)
                .chain(2_000..5_000)
                .all(|i| grown.may_contain(key_hash(&key(i))))
        );
        assert_eq!(grown.bytes(), first.bytes() + grown.layers()[0].bytes());
    }

    #[test]
    fn a_tiny_filter_still_has_a_block_and_no_false_negatives() {
        let filter = KeyFilter::new(0);
        assert_eq!(filter.bytes(), 64);
        assert!(!filter.may_contain(key_hash(b"absent")));
        filter.insert((0..1000).map(|i| key_hash(&key(i))));
        assert!((0..1000).all(|i| filter.may_contain(key_hash(&key(i)))));
    }
}
