//! What a process used, from /proc, for "who was the limit" and "why": CPU time split into
//! user and system (`/proc/PID/stat`: process level, so threads that exited during a round,
//! such as io_uring workers, still count), context switches (`/proc/PID/task/*/status`),
//! and the host's steal time (`/proc/stat`).

use std::time::Duration;

use crate::transport::Transport;

/// A process's counters at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub user: Duration,
    pub system: Duration,
    /// Summed over the threads alive now (an exited thread's switches are lost).
    pub ctx_voluntary: u64,
    pub ctx_involuntary: u64,
}

impl Usage {
    /// `self - earlier`, saturating.
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
            ctx_voluntary: self.ctx_voluntary.saturating_sub(earlier.ctx_voluntary),
            ctx_involuntary: self.ctx_involuntary.saturating_sub(earlier.ctx_involuntary),
        }
    }

    pub fn cpu(&self) -> Duration {
        self.user + self.system
    }
}

/// USER_HZ: the unit of `/proc/PID/stat` and `/proc/stat` times (100 on Linux).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no memory arguments.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// (utime, stime) from the text of /proc/PID/stat.
fn stat_times(stat: &str) -> Option<(u64, u64)> {
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_ascii_whitespace().skip(11);
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

/// CPU time (user + system) of thread `tid` of this process; `None` if it is gone.
pub fn own_thread_cpu(tid: i32) -> Option<Duration> {
    let (ut, st) =
        stat_times(&std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?)?;
    Some(Duration::from_nanos(
        (ut + st) * 1_000_000_000 / clock_ticks(),
    ))
}

/// `pid`'s usage now; `None` if the process is gone.
pub fn process(pid: u32) -> Option<Usage> {
    process_on(&Transport::Local, pid)
}

/// `pid`'s usage now on `host` (the servers' host, possibly over ssh).
pub fn process_on(host: &Transport, pid: u32) -> Option<Usage> {
    let tasks = host.list(&format!("/proc/{pid}/task")).unwrap_or_default();
    let mut paths = vec![format!("/proc/{pid}/stat")];
    paths.extend(tasks.iter().map(|t| format!("/proc/{pid}/task/{t}/status")));
    let mut texts = host.read(&paths).into_iter();
    let (ut, st) = stat_times(&texts.next()??)?;
    let hz = host.clock_ticks();
    let ticks = |t: u64| Duration::from_nanos(t * 1_000_000_000 / hz);
    let mut u = Usage {
        user: ticks(ut),
        system: ticks(st),
        ..Usage::default()
    };
    for status in texts.flatten() {
        for line in status.lines() {
            let num = |p: &str| {
                line.strip_prefix(p)
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            if let Some(n) = num("voluntary_ctxt_switches:") {
                u.ctx_voluntary += n;
            } else if let Some(n) = num("nonvoluntary_ctxt_switches:") {
                u.ctx_involuntary += n;
            }
        }
    }
    Some(u)
}

/// Nanoseconds `pid`'s threads alive now have run on `host`, from
/// `/proc/PID/task/*/schedstat` (scheduler clock, ns: fine enough to see a server go idle
/// within a few ms, where `/proc/PID/stat` counts 10 ms ticks). `None` if the process is
/// gone.
pub fn on_cpu_ns(host: &Transport, pid: u32) -> Option<u64> {
    let tasks = host.list(&format!("/proc/{pid}/task"))?;
    let paths: Vec<String> = tasks
        .iter()
        .map(|t| format!("/proc/{pid}/task/{t}/schedstat"))
        .collect();
    Some(
        host.read(&paths)
            .iter()
            .flatten()
            .filter_map(|t| schedstat_ns(t))
            .sum(),
    )
}

/// The first field of a `schedstat`: ns the task has run.
pub fn schedstat_ns(text: &str) -> Option<u64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// The first field of a task's `schedstat` (`/proc/PID/task/TID`): ns it has run.
pub fn task_on_cpu_ns(task: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(task.join("schedstat"))
        .ok()?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The host's CPU time so far, for steal: (steal, total) in ticks over all CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostCpu {
    pub steal: u64,
    pub total: u64,
}

impl HostCpu {
    /// From the text of a host's `/proc/stat`.
    pub fn from_stat(text: &str) -> Option<Self> {
        Self::parse(text.lines().next()?)
    }

    /// The `cpu ...` line of /proc/stat.
    fn parse(line: &str) -> Option<Self> {
        let v: Vec<u64> = line
            .strip_prefix("cpu ")?
            .split_ascii_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        Some(Self {
            steal: *v.get(7)?,
            total: v.iter().take(8).sum(),
        })
    }

    /// The share of CPU time stolen by the hypervisor since `earlier` (0..=1).
    pub fn steal_since(&self, earlier: &HostCpu) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        (total > 0).then(|| self.steal.saturating_sub(earlier.steal) as f64 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_name_holding_spaces_and_parens() {
        let stat =
            "1234 (tokio (rt) worker) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(stat_times(stat), Some((250, 75)));
        let h = HostCpu::parse("cpu  100 0 50 800 10 0 5 35 0 0").expect("cpu line");
        assert_eq!(
            h,
            HostCpu {
                steal: 35,
                total: 1000
            }
        );
        let later = HostCpu {
            steal: 45,
            total: 1100,
        };
        assert_eq!(later.steal_since(&h), Some(0.1));
    }

    #[test]
    fn own_usage_grows_with_work_in_user_time() {
        let pid = std::process::id();
        let before = process(pid).expect("own stat");
        let t = std::time::Instant::now();
        let mut x = 0u64;
        // Until this process has used 100 ms more of user CPU (bounded at 20 s of wall time).
        while process(pid).expect("stat").user < before.user + Duration::from_millis(100)
            && t.elapsed() < Duration::from_secs(20)
        {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        let d = process(pid).expect("stat").since(&before);
        assert!(d.user >= Duration::from_millis(100), "{d:?}");
        assert!(d.ctx_voluntary + d.ctx_involuntary < u64::MAX);
        assert!(process(u32::MAX).is_none());
    }
}
