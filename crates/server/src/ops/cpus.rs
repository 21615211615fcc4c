//! Which CPUs a thread runs on (Linux `sched_setaffinity`). With `server.beacon_cpus`, the beacon listener's
//! threads and the store's writer run on CPUs of their own and every other thread keeps off them.
//!
//! Why: niceness only orders threads that share a CPU. A beacon storm still costs the CPU it runs on its
//! system calls and the kernel's network work for its connections (measured at 40–50 % of a saturated CPU in
//! `bench edge`), which no thread priority defers; on CPUs of their own that cost stays off the playlists'.

use serde::Deserialize;

use crate::error::{Error, Result};

/// A set of CPUs, written as `taskset -c` takes it: `2`, `2-3`, `0,2-3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

impl CpuList {
    /// Parses `list`; `key` names the setting in the error.
    pub fn parse(key: &str, list: &str) -> Result<CpuList> {
        let invalid = |reason: String| Error::ConfigValue {
            key: key.to_owned(),
            reason,
        };
        let mut cpus = Vec::new();
        for part in list.split(',').map(str::trim) {
            let number = |s: &str| {
                s.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n < rustix::thread::CpuSet::MAX_CPU)
                    .ok_or_else(|| invalid(format!("{s:?} in {list:?} is not a CPU number")))
            };
            match part.split_once('-') {
                Some((first, last)) => {
                    let (first, last) = (number(first)?, number(last)?);
                    if first > last {
                        return Err(invalid(format!(
                            "the range {part:?} in {list:?} is backwards"
                        )));
                    }
                    cpus.extend(first..=last);
                }
                None => cpus.push(number(part)?),
            }
        }
        cpus.sort_unstable();
        cpus.dedup();
        Ok(CpuList(cpus))
    }

    /// The CPUs, in order.
    pub fn cpus(&self) -> &[usize] {
        &self.0
    }
}

/// Reads a CPU list setting as text, also when written as a bare number: `INTERLUDE_SERVER__BEACON_CPUS=3`
/// reaches the configuration as the integer 3.
pub fn list_text<'de, D>(deserializer: D) -> std::result::Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Number(u64),
        Text(String),
    }
    Ok(Option::<Text>::deserialize(deserializer)?.map(|t| match t {
        Text::Number(n) => n.to_string(),
        Text::Text(s) => s,
    }))
}

/// Runs the calling thread on `cpus` only. Best effort: a refusal (a CPU not online, a container's cpuset)
/// is logged and the thread keeps the CPUs it had.
pub fn run_on(cpus: &CpuList) {
    let mut set = rustix::thread::CpuSet::new();
    for &cpu in cpus.cpus() {
        set.set(cpu);
    }
    if let Err(error) = rustix::thread::sched_setaffinity(None, &set) {
        tracing::warn!(%error, cpus = ?cpus.cpus(), "Could not pin this thread to its CPUs.");
    }
}

/// Keeps the calling thread off `cpus`, and with it every thread it starts later (they inherit it): it runs on
/// the CPUs it may run on now, less those. Unchanged when that would leave none.
pub fn keep_off(cpus: &CpuList) {
    let Ok(mut set) = rustix::thread::sched_getaffinity(None) else {
        return;
    };
    for &cpu in cpus.cpus() {
        set.unset(cpu);
    }
    if set.count() == 0 {
        tracing::warn!(cpus = ?cpus.cpus(), "Not keeping off the beacon CPUs: no other CPU is allowed.");
        return;
    }
    if let Err(error) = rustix::thread::sched_setaffinity(None, &set) {
        tracing::warn!(%error, "Could not keep this thread off the beacon CPUs.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_read_as_taskset_reads_them() {
        let list = |s| CpuList::parse("server.beacon_cpus", s).map(|l| l.cpus().to_vec());
        assert_eq!(list("1").ok(), Some(vec![1]));
        assert_eq!(list("0, 2-3,2").ok(), Some(vec![0, 2, 3]));
        for bad in ["", "x", "3-1", "1-", "99999"] {
            let error = list(bad).expect_err(bad).to_string();
            assert!(error.contains("server.beacon_cpus"), "{error}");
        }
    }

    #[test]
    fn a_pinned_thread_runs_on_its_cpu_and_a_kept_off_thread_elsewhere() {
        let allowed = rustix::thread::sched_getaffinity(None).expect("affinity");
        let online: Vec<usize> = (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&c| allowed.is_set(c))
            .collect();
        let first = CpuList(vec![online[0]]);
        let pinned = std::thread::spawn({
            let first = first.clone();
            move || {
                run_on(&first);
                rustix::thread::sched_getaffinity(None).map(|s| s.count())
            }
        })
        .join()
        .expect("thread ran");
        assert_eq!(pinned.ok(), Some(1));
        let (cpu, only_one) = (online[0], online.len() == 1);
        let kept_off = std::thread::spawn(move || {
            keep_off(&first);
            rustix::thread::sched_getaffinity(None).map(|s| s.is_set(cpu))
        })
        .join()
        .expect("thread ran");
        // With a single CPU allowed there is nowhere else to go, and the thread keeps it.
        assert_eq!(kept_off.ok(), Some(only_one));
    }
}
