//! The metric names the store records, each with its description ([`describe`] registers them with the
//! installed recorder; the server calls it once at start-up). Names are constants so the dashboard, the
//! alerts and the code cannot drift apart.

/// Gauge: 1 while the embedded store commits, 0 after a commit failed on I/O until a reopen succeeds.
pub const STORE_HEALTHY: &str = "events_store_healthy";
/// Counter: reopens of the embedded database after an I/O failure (successful or not).
pub const STORE_REOPENS: &str = "events_store_reopens_total";
/// Gauge: bytes free for the store's user on the file system of the data directory.
pub const STORE_DISK_FREE: &str = "events_store_disk_free_bytes";
/// Gauge: size of the file system of the data directory.
pub const STORE_DISK_TOTAL: &str = "events_store_disk_total_bytes";
/// Gauge: size of the database file.
pub const STORE_FILE_BYTES: &str = "events_store_file_bytes";
/// Gauge: bytes on disk of the embedded store's dedup state (its LSM tree's segments and journals).
pub const STORE_DEDUP_BYTES: &str = "events_store_dedup_bytes";
/// Gauge, label `table`: entries per table of the embedded store.
pub const STORE_TABLE_ENTRIES: &str = "events_store_table_entries";
/// Gauge: seconds the last open of the embedded store took (repair included).
pub const STORE_OPEN_SECONDS: &str = "events_store_open_seconds";
/// Counter: opens of the embedded store that had to repair the file (the previous process did not close it).
pub const STORE_REPAIRS: &str = "events_store_repairs_total";
/// Counter: reports that repeated an event id already recorded (retries): answered, not logged again.
pub const RETRIES_NOT_LOGGED: &str = "events_retries_not_logged_total";
/// Counter: submissions that waited for the store (busy or unhealthy) through [`crate::Committer::submit_wait`].
pub const SUBMIT_WAITS: &str = "events_submit_waits_total";
/// Counter: submissions [`crate::Committer::submit_wait`] gave up on at their deadline.
pub const SUBMIT_WAIT_TIMEOUTS: &str = "events_submit_wait_timeouts_total";
/// Counter: raw and quarantined events removed by retention.
pub const RETENTION_REMOVED: &str = "events_retention_removed_total";
/// Gauge: raw events older than the retention horizon still stored after the last sweep (the backlog).
pub const RETENTION_BACKLOG: &str = "events_retention_backlog";
/// Counter: dedup keys (event ids, billing keys, session rates) and frequency rows swept after their window.
pub const DEDUP_KEYS_EXPIRED: &str = "events_dedup_keys_expired_total";
/// Histogram: seconds per group commit (processing, writing and fsync).
pub const COMMIT_SECONDS: &str = "events_commit_seconds";
/// Counter: events in committed group commits.
pub const COMMITTED: &str = "events_committed_total";
/// Counter: events in group commits that failed.
pub const COMMIT_FAILURES: &str = "events_commit_failures_total";
/// Counter: pending counter deltas (PostgreSQL outbox rows) applied to Redis after a processor restart.
pub const COUNTER_OUTBOX_REDRIVEN: &str = "events_counter_outbox_redriven_total";

/// Registers every description with the installed recorder.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        STORE_HEALTHY,
        "1 while the embedded event store commits; 0 after an I/O failure until it is reopened"
    );
    describe_counter!(
        STORE_REOPENS,
        "Reopens of the embedded event store after an I/O failure"
    );
    describe_gauge!(
        STORE_DISK_FREE,
        Unit::Bytes,
        "Free bytes on the file system of the event store"
    );
    describe_gauge!(
        STORE_DISK_TOTAL,
        Unit::Bytes,
        "Size of the file system of the event store"
    );
    describe_gauge!(
        STORE_FILE_BYTES,
        Unit::Bytes,
        "Size of the event store's database file"
    );
    describe_gauge!(
        STORE_DEDUP_BYTES,
        Unit::Bytes,
        "Bytes on disk of the event store's dedup state"
    );
    describe_gauge!(
        STORE_TABLE_ENTRIES,
        "Entries per table of the embedded event store"
    );
    describe_gauge!(
        STORE_OPEN_SECONDS,
        Unit::Seconds,
        "Seconds the last open of the event store took, repair included"
    );
    describe_counter!(
        STORE_REPAIRS,
        "Opens of the event store that repaired a file left open by an unclean exit"
    );
    describe_counter!(
        RETRIES_NOT_LOGGED,
        "Retried reports (event id already recorded): answered, not logged again"
    );
    describe_counter!(
        SUBMIT_WAITS,
        "Event submissions that waited for a busy or unhealthy store"
    );
    describe_counter!(
        SUBMIT_WAIT_TIMEOUTS,
        "Event submissions dropped after waiting until their deadline"
    );
    describe_counter!(
        RETENTION_REMOVED,
        "Raw and quarantined events removed by retention"
    );
    describe_gauge!(
        RETENTION_BACKLOG,
        "Raw events past retention still stored after the last sweep"
    );
    describe_counter!(
        DEDUP_KEYS_EXPIRED,
        "Dedup keys and frequency rows swept after their window"
    );
    describe_histogram!(
        COMMIT_SECONDS,
        Unit::Seconds,
        "Seconds per group commit of the event store"
    );
    describe_counter!(COMMITTED, "Events committed");
    describe_counter!(COMMIT_FAILURES, "Events in failed group commits");
    describe_counter!(
        COUNTER_OUTBOX_REDRIVEN,
        "Counter deltas re-applied to Redis from the PostgreSQL outbox"
    );
}
