//! Where a set of CPUs spent a stretch of time, from `/proc/stat` (proc(5)): in user code, in system calls,
//! in interrupt and softirq handling (the kernel's network receive and transmit work), or idle, with how much
//! of it one process used. Benchmarks quote it beside a latency to show what else the server's CPUs did.

use std::ops::Sub;

/// Clock ticks (`USER_HZ`) summed over the CPUs measured, and the process's own.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct CpuTicks {
    user: u64,
    system: u64,
    irq: u64,
    softirq: u64,
    idle: u64,
    other: u64,
    process: u64,
}

impl Sub for CpuTicks {
    type Output = CpuTicks;
    fn sub(self, before: CpuTicks) -> CpuTicks {
        CpuTicks {
            user: self.user.saturating_sub(before.user),
            system: self.system.saturating_sub(before.system),
            irq: self.irq.saturating_sub(before.irq),
            softirq: self.softirq.saturating_sub(before.softirq),
            idle: self.idle.saturating_sub(before.idle),
            other: self.other.saturating_sub(before.other),
            process: self.process.saturating_sub(before.process),
        }
    }
}

impl std::ops::AddAssign for CpuTicks {
    fn add_assign(&mut self, more: CpuTicks) {
        self.user += more.user;
        self.system += more.system;
        self.irq += more.irq;
        self.softirq += more.softirq;
        self.idle += more.idle;
        self.other += more.other;
        self.process += more.process;
    }
}

impl CpuTicks {
    /// The process's ticks (user and system).
    pub(crate) fn process(&self) -> u64 {
        self.process
    }

    /// The shares of the measured time, in percent: user, system, irq + softirq, idle, and the process's
    /// (of one CPU's time: above 100 when it ran on several).
    pub(crate) fn shares(&self) -> serde_json::Value {
        let total = (self.user + self.system + self.irq + self.softirq + self.idle + self.other)
            .max(1) as f64;
        let pct = |t: u64| (t as f64 * 1000.0 / total).round() / 10.0;
        serde_json::json!({
            "user_pct": pct(self.user),
            "system_pct": pct(self.system),
            "irq_softirq_pct": pct(self.irq + self.softirq),
            "idle_pct": pct(self.idle),
            "process_pct": pct(self.process),
        })
    }
}

/// The ticks so far of `cpus` (`None`: every CPU, the `cpu` line) and of process `pid`, from `/proc/stat`
/// text `stat` and `/proc/<pid>/stat` text `process`.
fn parse(stat: &str, process: &str, cpus: Option<&[usize]>) -> CpuTicks {
    let mut t = CpuTicks::default();
    for line in stat.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(name) = fields.next() else { continue };
        let wanted = match (name.strip_prefix("cpu"), cpus) {
            (Some(""), None) => true,
            (Some(n), Some(cpus)) if !n.is_empty() => n.parse().is_ok_and(|n| cpus.contains(&n)),
            _ => false,
        };
        if !wanted {
            continue;
        }
        // user nice system idle iowait irq softirq steal (guest time is already inside user).
        let v: Vec<u64> = fields.take(8).map(|f| f.parse().unwrap_or(0)).collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        t.user += at(0) + at(1);
        t.system += at(2);
        t.idle += at(3) + at(4);
        t.irq += at(5);
        t.softirq += at(6);
        t.other += at(7);
    }
    // After the command name in parentheses (which may hold spaces): utime and stime are fields 14 and 15.
    if let Some((_, rest)) = process.rsplit_once(')') {
        let v: Vec<u64> = rest
            .split_ascii_whitespace()
            .skip(11)
            .take(2)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        t.process = v.iter().sum();
    }
    t
}

/// The ticks so far of `cpus` and of process `pid` (zeros where `/proc` cannot be read).
pub(crate) fn sample(cpus: Option<&[usize]>, pid: u32) -> CpuTicks {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let process = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    parse(&stat, &process, cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 5 50 1000 10 1 20 0 0 0\n\
        cpu0 60 5 30 400 5 1 15 0 0 0\n\
        cpu1 40 0 20 600 5 0 5 0 0 0\n\
        intr 12345\n";
    const PROCESS: &str = "4242 (tokio (runtime)) S 1 2 3 4 5 6 7 8 9 10 70 11 0 0 20 0";

    #[test]
    fn one_cpu_is_read_from_its_own_line_and_the_process_after_its_parenthesised_name() {
        let t = parse(STAT, PROCESS, Some(&[0]));
        assert_eq!(
            (t.user, t.system, t.idle, t.irq, t.softirq),
            (65, 30, 405, 1, 15)
        );
        assert_eq!(t.process, 81);
        let all = parse(STAT, PROCESS, None);
        assert_eq!((all.user, all.softirq, all.idle), (105, 20, 1010));
    }

    #[test]
    fn shares_are_of_the_time_measured() {
        let before = parse(STAT, PROCESS, Some(&[1]));
        let mut after = before;
        after.user += 30;
        after.softirq += 50;
        after.idle += 20;
        after.process += 25;
        let s = (after - before).shares();
        assert_eq!(s["irq_softirq_pct"], 50.0);
        assert_eq!(s["process_pct"], 25.0);
        assert_eq!(s["idle_pct"], 20.0);
    }
}
