//! The process's memory allocator, and what it can say about itself.
//!
//! With the default `jemalloc` feature the binary allocates with jemalloc and its background threads: freed
//! pages are returned to the operating system over `dirty_decay_ms` (10 s by default, `muzzy_decay_ms` 0) by
//! jemalloc's own threads, whether or not the process allocates again. The system allocator (glibc) keeps what
//! a burst freed in its per-thread arenas, and only trims the top of the main heap: after a flood of sessions
//! and beacons a node sat at several GB of RSS with no session left (issue 20). `interlude bench memory`
//! measures both.
//!
//! jemalloc is built with `thp:always` (`JEMALLOC_SYS_WITH_MALLOC_CONF` in `.cargo/config.toml`), the only
//! option that makes it zero a reused extent for `calloc` by writing zeros. Without it jemalloc returns the
//! extent's pages to the kernel (`MADV_DONTNEED`) and lets them fault back in as zero pages: in a
//! multithreaded process each call interrupts every core running one of its threads to flush its TLB, each
//! page faults again, and a page first read (the shared zero page) faults a second time, with another flush,
//! when written. redb allocates every page it writes zeroed and copies it, so durable ingestion spent about a
//! sixth of its throughput there (`interlude bench ingest`, docs/performance.md). The option also asks the
//! kernel for transparent huge pages (`MADV_HUGEPAGE`); [`keep_small_pages`] declines them for the process.
//!
//! The decay can be tuned at run time through `_RJEM_MALLOC_CONF` (the symbols are prefixed), e.g.
//! `_RJEM_MALLOC_CONF=dirty_decay_ms:5000`. Without the feature (`--no-default-features`) the system
//! allocator serves and [`stats`] answers `None`.

use serde::{Deserialize, Serialize};

#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Keeps the kernel from backing this process's memory with transparent huge pages (`PR_SET_THP_DISABLE`).
///
/// Why: `thp:always` (see the module documentation) asks for them on every extent jemalloc maps, and a huge
/// page stays resident whole while any of its 4 KiB is in use: RSS at rest rose from 46 to 81 MiB in
/// `interlude bench memory`. The zeroing gain does not need them. Best effort: where the kernel refuses,
/// memory is backed as the system's setting says.
pub(crate) fn keep_small_pages() {
    #[cfg(target_os = "linux")]
    if cfg!(all(feature = "jemalloc", not(target_env = "msvc"))) {
        // Nothing is logged yet at this point; a refusal only leaves the system's default in place.
        let _ = rustix::thread::disable_transparent_huge_pages(true);
    }
}

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
    #[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
    fn jemalloc_zeroes_reused_memory_by_writing() {
        let conf =
            tikv_jemalloc_ctl::config::malloc_conf::read().expect("jemalloc's built-in options");
        assert!(
            conf.trim_end_matches('\0')
                .split(',')
                .any(|o| o == "thp:always"),
            "built without JEMALLOC_SYS_WITH_MALLOC_CONF from .cargo/config.toml: {conf:?}"
        );
    }

    #[test]
    #[cfg(all(target_os = "linux", feature = "jemalloc", not(target_env = "msvc")))]
    fn the_process_declines_huge_pages() {
        super::keep_small_pages();
        assert_eq!(
            rustix::thread::transparent_huge_pages_are_disabled().ok(),
            Some(true)
        );
    }

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
