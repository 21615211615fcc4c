//! Small nouns every service shares: one clock type, one stable hash, one boxed future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Where a service reads the time: the system clock in production, a fake one in tests, so a two-minute live
/// channel runs in a millisecond test.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// A boxed, sendable future: what object-safe async traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// FNV-1a (64-bit) over `parts`, a zero byte between parts so `("ab", "c")` and `("a", "bc")` differ.
///
/// Stable across processes, builds and platforms (unlike `std`'s `DefaultHasher`), so every node draws the
/// same value for the same ids: where in the spread window a session's decision falls, which creative a
/// rotation picks, the pacing draw. Not for maps an attacker fills.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut parts = parts.iter();
    let first = parts
        .next()
        .map_or(FNV_OFFSET, |p| fnv1a(FNV_OFFSET, p.as_bytes()));
    parts.fold(first, |h, p| stable_hash_more(h, p))
}

/// [`stable_hash`] of the parts already hashed into `h`, and one more: `stable_hash(&[a, b]) ==
/// stable_hash_more(stable_hash(&[a]), b)`, so a caller hashes a shared prefix (a session) once.
pub fn stable_hash_more(h: u64, part: &str) -> u64 {
    fnv1a(fnv1a(h, &[0]), part.as_bytes())
}

/// A fast, non-keyed hasher for in-memory maps of trusted keys (the Fx hash of rustc: multiply and rotate per
/// word). Not for maps an attacker fills: it has no protection against collision flooding.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

impl FastHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`FastHasher`]s.
pub type FastHash = std::hash::BuildHasherDefault<FastHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hash_is_fnv1a_with_separators_between_parts() {
        // FNV-1a of "a", a zero byte, "b".
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in [b'a', 0, b'b'] {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        assert_eq!(stable_hash(&["a", "b"]), h);
        assert_eq!(
            stable_hash(&["a", "b"]),
            stable_hash_more(stable_hash(&["a"]), "b")
        );
        assert_ne!(stable_hash(&["ab", "c"]), stable_hash(&["a", "bc"]));
    }
}
