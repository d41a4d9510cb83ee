//! CPU time and resident memory of processes, read from Linux `/proc`.

use std::fs;

/// Clock ticks per second of `/proc` CPU times (`USER_HZ`, 100 on every Linux architecture the
/// generator runs on).
pub const TICKS_PER_SECOND: u64 = 100;

/// User plus system CPU time of process `pid` (all its threads), in clock ticks; `None` when the
/// process is gone or `/proc` is unreadable.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat)
}

/// User plus system CPU time of this process, in clock ticks.
pub fn self_cpu_ticks() -> Option<u64> {
    cpu_ticks(std::process::id())
}

/// The resident set size (`VmRSS`) of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

/// Machine-wide CPU time from `/proc/stat`, in clock ticks over all cores since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemTicks {
    /// Everything but idle and iowait.
    pub busy: u64,
    /// User time of processes with a positive nice value (background jobs that yield the CPU
    /// to normal-priority processes such as the benchmark).
    pub niced: u64,
    /// Busy plus idle.
    pub total: u64,
}

/// Machine-wide CPU time from `/proc/stat`.
pub fn system_ticks() -> Option<SystemTicks> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    parse_system_ticks(&stat)
}

/// The number of online cores, from `/proc/stat`'s `cpuN` lines.
pub fn cores() -> usize {
    fs::read_to_string("/proc/stat")
        .map(|s| {
            s.lines()
                .filter(|l| {
                    l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit)
                })
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last
    // ')'. Field 3 is the state, fields 14 and 15 are utime and stime.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn parse_system_ticks(stat: &str) -> Option<SystemTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .take(8) // user nice system idle iowait irq softirq steal (guest time is inside user)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let total: u64 = values.iter().sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Some(SystemTicks {
        busy: total - idle,
        niced: values.get(1).copied().unwrap_or(0),
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let stat = "42 (my (odd) cmd) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 3 0 5 0";
        assert_eq!(parse_cpu_ticks(stat), Some(280));
    }

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tx\nVmPeak:\t  1 kB\nVmRSS:\t    2048 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
    }

    #[test]
    fn parses_system_line() {
        let stat = "cpu  10 1 5 100 4 0 2 0 0 0\ncpu0 5 0 2 50 2 0 1 0 0 0\n";
        assert_eq!(
            parse_system_ticks(stat),
            Some(SystemTicks {
                busy: 18,
                niced: 1,
                total: 122
            })
        );
    }

    #[test]
    fn reads_own_process() {
        assert!(self_cpu_ticks().is_some());
        assert!(rss_bytes(std::process::id()).is_some_and(|r| r > 0));
        assert!(system_ticks().is_some());
        assert!(cores() >= 1);
    }
}
