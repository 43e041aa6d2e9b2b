//! CPU profiles of a server under load: where each runtime's CPU goes, from inside.
//!
//! [`capture`] samples the server's cores on the software CPU clock while a load runs
//! (`probe::sampler`: `perf_event_open`, no hardware PMU needed), then names every frame of the
//! server's samples while the server still runs (`symbols.rs`: `/proc/kallsyms`,
//! `blazesym`), and folds them (`stacks.rs`). `flame.rs` draws flame graphs (and the
//! differential one) with `inferno`; `breakdown.rs` sums the samples by part (network
//! stack, io_uring, runtime, our code, Kafka client) for the report.
//!
//! User call chains are unwound by frame pointers: every crate of this workspace is built
//! with `-C force-frame-pointers=yes` (`.cargo/config.toml`); the C library and librdkafka
//! are not, so a chain through them ends early, and the record says what share of user
//! frames could not be named.

pub mod breakdown;
pub mod flame;
pub mod stacks;
pub mod symbols;

use std::collections::HashMap;
use std::time::Duration;

use probe::sampler::Collected;

use crate::transport::Transport;
use breakdown::Breakdown;
use stacks::{Stacks, IDLE, OTHER};

/// How often each core is sampled: every 250 µs of its time (4 kHz).
pub const PERIOD: Duration = Duration::from_micros(250);

/// A runtime's CPU profile on a workload, as a run records it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CpuProfile {
    /// The folded stacks and the flame graph, relative to the workload's raw folder.
    pub folded: Option<String>,
    pub svg: Option<String>,
    /// The differential flame graph: on tokio-uring's profile against tokio's, on a
    /// null-sink control's the Kafka-publishing runtime's against it.
    #[serde(default)]
    pub differential_svg: Option<String>,
    /// The sampled cores, and how often they were sampled (µs of CPU time).
    pub cpus: Vec<usize>,
    pub period_us: f64,
    /// Samples on those cores: the server's, the idle task's, other processes'; and
    /// samples the kernel dropped.
    pub server_samples: u64,
    pub idle_samples: u64,
    pub other_samples: u64,
    pub lost: u64,
    /// Of the server's user frames, the share no symbol was found for.
    pub unknown_user_share: f64,
    /// The profiling pass: its length, rate, and the server's CPU per request over it.
    pub duration_s: f64,
    pub rate: f64,
    pub cpu_us_per_request: Option<f64>,
    pub breakdown: Breakdown,
}

/// What [`capture`] returns: the folded stacks (the server's under `root`) and counts.
#[derive(Debug, Clone)]
pub struct Captured {
    pub stacks: Stacks,
    pub lost: u64,
    pub unknown_user_share: f64,
}

impl Captured {
    /// The record of this capture, without its files and pass figures.
    pub fn record(&self, root: &str, cpus: &[usize]) -> CpuProfile {
        let count = |r: &str| self.stacks.under(r).total();
        CpuProfile {
            cpus: cpus.to_vec(),
            period_us: PERIOD.as_secs_f64() * 1e6,
            server_samples: count(root),
            idle_samples: count(IDLE),
            other_samples: count(OTHER),
            lost: self.lost,
            unknown_user_share: self.unknown_user_share,
            breakdown: Breakdown::of(&self.stacks, root),
            ..CpuProfile::default()
        }
    }
}

/// Samples `cpus` of the servers' host (`host`: this one, or another over ssh) while
/// `load` runs, then names the frames of process `pid` (which must still be running) and
/// folds them under `root`. The load runs whatever happens to the sampling; the first
/// value says why there is no profile, if there is none.
pub fn capture<R>(
    host: &Transport,
    cpus: &[usize],
    pid: u32,
    root: &str,
    load: impl FnOnce() -> R,
) -> (Result<Captured, String>, R) {
    let sampling = host.start_sampling(cpus, PERIOD, Duration::from_secs(120));
    let r = load();
    let captured = sampling
        .and_then(|s| s.finish())
        .and_then(|c| name(host, &c, pid, root));
    (captured, r)
}

/// Names the frames of `pid`'s samples and folds every sample.
fn name(host: &Transport, c: &Collected, pid: u32, root: &str) -> Result<Captured, String> {
    let addrs = Stacks::user_addresses(&c.samples, pid);
    let names: HashMap<u64, Vec<String>> = match host {
        _ if addrs.is_empty() => HashMap::new(),
        Transport::Local => symbols::user_frames(pid, &addrs)?,
        Transport::Ssh(h) => {
            let maps = host
                .read_one(&format!("/proc/{pid}/maps"))
                .ok_or_else(|| format!("/proc/{pid}/maps on {}: unreadable", h.target()))?;
            symbols::user_frames_of_copies(&maps, &addrs, |there| h.local_copy(there))?
        }
    };
    let unknown = addrs
        .iter()
        .filter(|a| names.get(a).is_none_or(|n| n[0] == "[unknown]"))
        .count();
    let kernel = host
        .read_one("/proc/kallsyms")
        .and_then(|t| symbols::Kallsyms::parse(&t));
    let threads = stacks::thread_names(host, pid);
    Ok(Captured {
        stacks: Stacks::fold(&c.samples, (pid, root), &threads, &names, kernel.as_ref()),
        lost: c.lost,
        unknown_user_share: unknown as f64 / addrs.len().max(1) as f64,
    })
}

#[cfg(test)]
mod tests;
