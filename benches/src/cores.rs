//! Whole-core accounting: what each core did over a turn, whoever did it.
//!
//! A process's own CPU time is not its core's whole cost: loopback TCP receive work runs in
//! softirq context, charged to no process on kernels with `CONFIG_IRQ_TIME_ACCOUNTING` and
//! to whichever task it interrupted on kernels without; the hypervisor steals time from
//! the core. So beside the process figures ([`crate::usage`]) a turn records:
//!
//! - each core's time split into user, system, irq, softirq, steal and idle, from the
//!   `cpuN` lines of `/proc/stat` (USER_HZ ticks: 10 ms, so ±1 tick per core per turn:
//!   ±7 % of a half-busy core over a 0.3 s turn, too coarse for a verdict);
//! - each core's busy time on a microsecond clock where the kernel has a cpuidle driver:
//!   the turn's wall time less the idle residency its states report
//!   (`/sys/devices/system/cpu/cpuN/cpuidle/state*/time`, µs). An idle period in progress
//!   at a reading is not yet counted, so each end can read busy by up to that period (µs
//!   to a few ms on a loaded core). This is the figure [`CoreSplit::busy`] gives when it
//!   exists; the split by kind stays on ticks;
//! - this process's CPU split between the load generator's threads (named `loadgen-*`)
//!   and every other thread (the embedded broker's and the Kafka clients'), from each
//!   thread's `/proc/self/task/TID/schedstat` (the scheduler's clock, ns).

use std::collections::HashMap;

use crate::transport::Transport;

/// One core's counters since boot, in USER_HZ ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    pub user: u64,
    pub system: u64,
    pub idle: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

/// Every core's counters now on `host` (this one, or the servers' over ssh), by core
/// number; `None` if its `/proc/stat` is unreadable.
pub fn per_cpu_on(host: &Transport) -> Option<HashMap<usize, CpuTicks>> {
    host.read_one("/proc/stat").map(|t| parse_per_cpu(&t))
}

/// The `cpuN` lines of `/proc/stat` (not the `cpu` total). Fields: user nice system idle
/// iowait irq softirq steal [guest guest_nice]; nice counts as user, iowait as idle, and
/// guest time is already inside user.
pub fn parse_per_cpu(text: &str) -> HashMap<usize, CpuTicks> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            let cpu: usize = f.next()?.strip_prefix("cpu")?.parse().ok()?;
            let v: Vec<u64> = f.map_while(|x| x.parse().ok()).collect();
            let at = |i: usize| v.get(i).copied();
            Some((
                cpu,
                CpuTicks {
                    user: at(0)? + at(1)?,
                    system: at(2)?,
                    idle: at(3)? + at(4)?,
                    irq: at(5)?,
                    softirq: at(6)?,
                    steal: at(7).unwrap_or(0),
                },
            ))
        })
        .collect()
}

/// A set of cores over an interval: each kind's share of their whole time (the shares sum
/// to 1; `busy` is what ran on them, steal is what the hypervisor took).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CoreSplit {
    pub user: f64,
    pub system: f64,
    pub irq: f64,
    pub softirq: f64,
    pub steal: f64,
    pub idle: f64,
    /// The cores' whole time over the interval, in core-seconds (ticks / USER_HZ, or the
    /// turn's wall time × cores once refined).
    pub core_s: f64,
    /// The busy share from cpuidle residency (µs clock), where the kernel has a cpuidle
    /// driver ([`CoreSplit::refine`]); `None`: `busy` is from ticks.
    #[serde(default)]
    pub busy_fine: Option<f64>,
}

impl CoreSplit {
    /// `cores` between two readings of [`parse_per_cpu`]; `None` if a core is missing or no tick
    /// passed.
    pub fn between(
        before: &HashMap<usize, CpuTicks>,
        after: &HashMap<usize, CpuTicks>,
        cores: &[usize],
    ) -> Option<Self> {
        let mut d = CpuTicks::default();
        for c in cores {
            let (a, b) = (before.get(c)?, after.get(c)?);
            d.user += b.user.saturating_sub(a.user);
            d.system += b.system.saturating_sub(a.system);
            d.idle += b.idle.saturating_sub(a.idle);
            d.irq += b.irq.saturating_sub(a.irq);
            d.softirq += b.softirq.saturating_sub(a.softirq);
            d.steal += b.steal.saturating_sub(a.steal);
        }
        let total = d.user + d.system + d.idle + d.irq + d.softirq + d.steal;
        if total == 0 {
            return None;
        }
        let share = |x: u64| x as f64 / total as f64;
        Some(Self {
            user: share(d.user),
            system: share(d.system),
            irq: share(d.irq),
            softirq: share(d.softirq),
            steal: share(d.steal),
            idle: share(d.idle),
            core_s: total as f64 / crate::usage::clock_ticks() as f64,
            busy_fine: None,
        })
    }

    /// The share of the cores' time something ran on them: from cpuidle residency where
    /// there is one, else from ticks (user, system, irq, softirq).
    pub fn busy(&self) -> f64 {
        self.busy_fine
            .unwrap_or(self.user + self.system + self.irq + self.softirq)
    }

    /// Puts the microsecond figure in: `idle_us` of idle residency over `wall_s` on
    /// `cores` cores.
    pub fn refine(mut self, idle_us: u64, wall_s: f64, cores: usize) -> Self {
        let whole = wall_s * cores as f64;
        if whole > 0.0 {
            self.busy_fine = Some((1.0 - idle_us as f64 / 1e6 / whole).clamp(0.0, 1.0));
            self.core_s = whole;
        }
        self
    }

    /// Core-seconds something ran on them.
    pub fn busy_s(&self) -> f64 {
        self.busy() * self.core_s
    }
}

/// The idle residency of `cores` of `host` so far, µs, summed over their cpuidle states;
/// `None` without a cpuidle driver (then busy time is from ticks only).
pub fn idle_us(host: &Transport, cores: &[usize]) -> Option<u64> {
    let mut paths = Vec::new();
    for c in cores {
        let dir = format!("/sys/devices/system/cpu/cpu{c}/cpuidle");
        let states: Vec<String> = host
            .list(&dir)?
            .into_iter()
            .filter(|n| n.starts_with("state"))
            .map(|n| format!("{dir}/{n}/time"))
            .collect();
        if states.is_empty() {
            return None;
        }
        paths.extend(states);
    }
    host.read(&paths)
        .iter()
        .map(|t| t.as_deref()?.trim().parse::<u64>().ok())
        .sum()
}

/// This process's threads now: thread id -> (a load-generator thread?, CPU ns so far).
pub fn own_threads() -> HashMap<i32, (bool, u64)> {
    threads("self")
}

/// Process `pid`'s threads now (`"self"` or a number), as [`own_threads`] reads them.
pub fn threads(pid: &str) -> HashMap<i32, (bool, u64)> {
    threads_on(&Transport::Local, pid)
}

/// [`threads`] on `host` (the servers' host, possibly over ssh).
pub fn threads_on(host: &Transport, pid: &str) -> HashMap<i32, (bool, u64)> {
    let Some(tasks) = host.list(&format!("/proc/{pid}/task")) else {
        return HashMap::new();
    };
    let paths: Vec<String> = tasks
        .iter()
        .flat_map(|t| ["comm", "schedstat"].map(|f| format!("/proc/{pid}/task/{t}/{f}")))
        .collect();
    let texts = host.read(&paths);
    tasks
        .iter()
        .zip(texts.chunks(2))
        .filter_map(|(t, files)| {
            let tid: i32 = t.parse().ok()?;
            let comm = files[0].as_deref()?;
            let ns = crate::usage::schedstat_ns(files[1].as_deref()?)?;
            Some((tid, (comm.starts_with(loadgen::THREAD_PREFIX), ns)))
        })
        .collect()
}

/// CPU seconds of all the threads between two readings of [`threads`].
pub fn cpu_since(before: &HashMap<i32, (bool, u64)>, after: &HashMap<i32, (bool, u64)>) -> f64 {
    let (loadgen, other) = thread_split(before, after);
    loadgen + other
}

/// CPU seconds between two readings of [`own_threads`]: (load generator, everything else).
/// A thread born in between counts from 0; one that ended in between is missed (the load
/// generator's and the broker's threads live for the whole run).
pub fn thread_split(
    before: &HashMap<i32, (bool, u64)>,
    after: &HashMap<i32, (bool, u64)>,
) -> (f64, f64) {
    let (mut loadgen, mut other) = (0u64, 0u64);
    for (tid, (is_loadgen, ns)) in after {
        let d = ns.saturating_sub(before.get(tid).map_or(0, |b| b.1));
        if *is_loadgen {
            loadgen += d;
        } else {
            other += d;
        }
    }
    (loadgen as f64 / 1e9, other as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  300 10 150 1600 20 0 30 40 0 0
cpu0 100 10 50 800 10 0 10 20 0 0
cpu1 200 0 100 800 10 0 20 20 0 0
intr 12345
ctxt 999
";

    #[test]
    fn parses_each_core_and_not_the_total() {
        let c = parse_per_cpu(STAT);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[&0],
            CpuTicks {
                user: 110,
                system: 50,
                idle: 810,
                irq: 0,
                softirq: 10,
                steal: 20
            }
        );
        assert_eq!(c[&1].user, 200);
    }

    #[test]
    fn splits_a_core_set_into_shares_that_sum_to_one() {
        let before = parse_per_cpu(STAT);
        let mut after = before.clone();
        // Core 1 over 100 ticks: 50 user, 20 system, 10 softirq, 5 steal, 15 idle.
        let c = after.get_mut(&1).expect("cpu1");
        c.user += 50;
        c.system += 20;
        c.softirq += 10;
        c.steal += 5;
        c.idle += 15;
        let s = CoreSplit::between(&before, &after, &[1]).expect("ticks passed");
        assert_eq!(
            (s.user, s.system, s.softirq, s.steal, s.idle),
            (0.5, 0.2, 0.1, 0.05, 0.15)
        );
        assert!((s.busy() - 0.8).abs() < 1e-12);
        assert!((s.core_s - 100.0 / crate::usage::clock_ticks() as f64).abs() < 1e-12);
        // The µs figure, where there is one, is what busy() gives: 0.3 s idle of 1 s.
        let fine = s.refine(300_000, 1.0, 1);
        assert_eq!((fine.busy(), fine.core_s, fine.user), (0.7, 1.0, 0.5));
        assert_eq!(s.refine(5_000_000, 1.0, 1).busy(), 0.0, "clamped");
        // Core 0 saw no tick; both cores together: the same work over 100 ticks.
        assert!(CoreSplit::between(&before, &after, &[0]).is_none());
        assert!(CoreSplit::between(&before, &after, &[1, 7]).is_none());
    }

    #[test]
    fn own_threads_split_by_name_on_a_live_process() {
        // A thread named like the load generator's burns 100 ms of CPU (bounded at 20 s of
        // wall time); the split must put that time on the load-generator side.
        let before = own_threads();
        let h = std::thread::Builder::new()
            .name(format!("{}test", loadgen::THREAD_PREFIX))
            .spawn(|| {
                // SAFETY: gettid has no arguments and cannot fail.
                let me = unsafe { libc::gettid() };
                let t = std::time::Instant::now();
                let mut x = 0u64;
                while own_threads()
                    .get(&me)
                    .is_none_or(|(_, ns)| *ns < 100_000_000)
                    && t.elapsed() < std::time::Duration::from_secs(20)
                {
                    for _ in 0..100_000 {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                }
                // Read while the thread still exists.
                (me, own_threads())
            })
            .expect("spawn");
        let (me, after) = h.join().expect("join");
        assert_eq!(after.get(&me).map(|t| t.0), Some(true), "named loadgen-*");
        let (loadgen, _other) = thread_split(&before, &after);
        assert!(loadgen >= 0.1, "load-generator threads' CPU: {loadgen} s");
    }
}
