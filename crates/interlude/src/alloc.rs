//! The process's memory allocator, and what it can say about itself.
//!
//! With the default `jemalloc` feature the binary allocates with jemalloc and its background threads: freed
//! pages are returned to the operating system over `dirty_decay_ms` (10 s by default, `muzzy_decay_ms` 0) by
//! jemalloc's own threads, whether or not the process allocates again. The system allocator (glibc) keeps what
//! a burst freed in its per-thread arenas, and only trims the top of the main heap: after a flood of sessions
//! and beacons a node sat at several GB of RSS with no session left (issue 20). `interlude bench memory`
//! measures both.
//!
//! The decay can be tuned at run time through `_RJEM_MALLOC_CONF` (the symbols are prefixed), e.g.
//! `_RJEM_MALLOC_CONF=dirty_decay_ms:5000`. Without the feature (`--no-default-features`) the system
//! allocator serves and [`stats`] answers `None`.

use serde::{Deserialize, Serialize};

#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Which allocator this binary was built with.
pub(crate) fn name() -> &'static str {
    if cfg!(all(feature = "jemalloc", not(target_env = "msvc"))) {
        "jemalloc"
    } else {
        "system"
    }
}

/// jemalloc's own accounting (`stats.*`), refreshed when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stats {
    /// Bytes the program holds (live allocations).
    pub(crate) allocated: u64,
    /// Bytes in pages jemalloc has touched and not yet returned: the allocator's share of the RSS.
    pub(crate) resident: u64,
    /// Bytes of virtual memory kept mapped but returned to the system (not resident).
    pub(crate) retained: u64,
    /// Whether background threads purge (they should: the `background_threads` build feature).
    pub(crate) background_threads: bool,
}

/// jemalloc's statistics now, or `None` with the system allocator (or if jemalloc refused to answer).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
pub(crate) fn stats() -> Option<Stats> {
    use tikv_jemalloc_ctl::{background_thread, epoch, stats};
    // The statistics are a snapshot taken at the last epoch advance.
    epoch::advance().ok()?;
    Some(Stats {
        allocated: stats::allocated::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
        retained: stats::retained::read().ok()? as u64,
        background_threads: background_thread::read().ok()?,
    })
}

/// jemalloc's statistics now, or `None` with the system allocator (or if jemalloc refused to answer).
#[cfg(not(all(feature = "jemalloc", not(target_env = "msvc"))))]
pub(crate) fn stats() -> Option<Stats> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_build_purges_in_the_background() {
        if cfg!(all(feature = "jemalloc", not(target_env = "msvc"))) {
            assert_eq!(super::name(), "jemalloc");
            let stats = super::stats().expect("jemalloc answers its statistics");
            assert!(
                stats.background_threads,
                "background threads enabled at start"
            );
            assert!(stats.resident >= stats.allocated);
        } else {
            assert_eq!(super::name(), "system");
            assert!(super::stats().is_none());
        }
    }
}
