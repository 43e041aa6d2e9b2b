//! The results schema: what a run writes to `results/latest/` and what the report, `soak`
//! and `report --compare` read back. Shared by [`crate::suite`] (which writes it),
//! [`crate::report`] and the `soak` binary (which read it or use its pieces), so none of
//! them depends on another.
//!
//! - [`Paths`]: where the workspace, criterion's output and our results live.
//! - [`RawResult`]: one workload x runtime, `raw/<workload>/<runtime>.json`.
//! - [`verify`]: the one delivery check (pure: evidence in, verdict out); [`ids`]: its
//!   record-by-record part, matching what landed to the requests' ids.
//! - [`RoundSample`]: one turn, and the verdicts from a workload's turns (`sample.rs`);
//!   what Kafka costs a runtime, from its turns beside its null-sink control's
//!   (`kafka_cost.rs`).
//! - [`Curve`]: a runtime's latency curve (`curve.rs`).
//! - criterion's files: where its estimates are, the run's kept copies, read as req/s
//!   (`criterion.rs`).

mod criterion;
mod curve;
pub mod ids;
pub mod kafka_cost;
mod sample;
mod tasks;
mod verify;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::runtime::Runtime;
use crate::workload::{Profile, Spec};
pub use criterion::{criterion_estimate, criterion_interval, interval_from};
pub use curve::{Curve, CurvePass, CurvePoint};
pub use kafka_cost::{assess_kafka_cost, KafkaCost};
pub use sample::{assess_efficiency, assess_rounds, limits, rates_by_block, RoundSample};
pub use tasks::{TaskCounts, WAIT_BUCKETS};
pub use verify::{verify, Evidence, Exit, Landed, Verification};

/// Where the workspace, its target dir and our results live.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub criterion: PathBuf,
    pub results: PathBuf,
}

impl Paths {
    /// From this process's environment (`CARGO_TARGET_DIR`, `CRITERION_HOME`,
    /// `BENCH_RESULTS`).
    pub fn discover() -> Self {
        Self::from_vars(&|name: &str| std::env::var(name).ok())
    }

    /// From the variables `var` gives (empty ones count as unset).
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let root = root.canonicalize().unwrap_or(root);
        let target = var("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        let criterion =
            var("CRITERION_HOME").map_or_else(|| target.join("criterion"), PathBuf::from);
        let results =
            var("BENCH_RESULTS").map_or_else(|| root.join("results").join("latest"), PathBuf::from);
        Self {
            root,
            criterion,
            results,
        }
    }

    /// A run's folder `results` (e.g. a reference run's), the rest as [`Paths::discover`].
    pub fn of_run(results: &Path) -> Self {
        Self {
            results: results.to_path_buf(),
            ..Self::discover()
        }
    }

    pub fn raw(&self, workload: &str, runtime: Runtime) -> PathBuf {
        self.raw_dir(workload)
            .join(format!("{}.json", runtime.label()))
    }

    /// `raw/<workload>/<runtime>.criterion.json`: the run's copy of criterion's estimate,
    /// so a report rebuilt later from the results folder reads that run's estimate, not
    /// whatever criterion's folder holds by then.
    pub fn kept_estimate(&self, workload: &str, runtime: Runtime) -> PathBuf {
        self.raw_dir(workload)
            .join(format!("{}.criterion.json", runtime.label()))
    }

    /// Copies criterion's estimate for `workload`/`runtime`, if written at or after
    /// `not_before`, to [`Paths::kept_estimate`]. `Ok(false)`: there was none to keep.
    pub fn keep_estimate(
        &self,
        workload: &str,
        runtime: Runtime,
        not_before: SystemTime,
    ) -> std::io::Result<bool> {
        let Some(src) =
            criterion_estimate(&self.criterion, workload, runtime.label(), Some(not_before))
        else {
            return Ok(false);
        };
        let dest = self.kept_estimate(workload, runtime);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::copy(src, dest).map(|_| true)
    }

    /// `raw/<workload>/`: its runtimes' results and their curves' histograms.
    pub fn raw_dir(&self, workload: &str) -> PathBuf {
        self.results.join("raw").join(workload)
    }
}

/// Everything sent to one server, over criterion's runs, the rounds and the latency pass.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    pub runs: u64,
    pub answered: u64,
    pub ok: u64,
    pub non_2xx: u64,
    /// Of `non_2xx`, the 503s: the server refused the request because its producer queue
    /// was full (backpressure: the broker took records slower than they arrived).
    #[serde(default)]
    pub refused: u64,
    pub errors: u64,
    pub stalls: u64,
}

impl std::ops::AddAssign for Tally {
    /// Sums what was sent to several processes of one runtime (one per block).
    fn add_assign(&mut self, o: Tally) {
        self.runs += o.runs;
        self.answered += o.answered;
        self.ok += o.ok;
        self.non_2xx += o.non_2xx;
        self.refused += o.refused;
        self.errors += o.errors;
        self.stalls += o.stalls;
    }
}

impl Tally {
    /// A run's answers, its warm-up's included: every request it sent reached the server.
    pub fn add(&mut self, r: &loadgen::LoadReport) {
        let w = &r.warmup;
        self.runs += 1;
        self.answered += r.completed + w.answered;
        self.ok += r.ok + w.ok;
        self.non_2xx += r.non_2xx() + (w.answered - w.ok);
        self.refused += r.statuses.get(&503).copied().unwrap_or(0) + w.refused;
        self.errors += r.errors_total() + w.errors;
        self.stalls += u64::from(r.stall.is_some());
    }
}

/// One workload x runtime, as written to `results/latest/raw/`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RawResult {
    pub workload: Spec,
    pub runtime: Runtime,
    pub profile: Profile,
    pub loadgen_threads: usize,
    pub server_threads: usize,
    /// The CPU layout, as [`crate::layout::Layout::label`] says it.
    pub layout: String,
    /// The flags the server got beyond listen, brokers and topic, and its readiness line
    /// (its own account of its setup: runtime, threads, ring).
    #[serde(default)]
    pub server_flags: Vec<String>,
    #[serde(default)]
    pub server_ready: Option<String>,
    /// The fixed-duration pass that gives latency percentiles.
    pub latency_pass: Option<loadgen::LoadReport>,
    /// The server's CPU time per answered request in the latency pass, µs (all its threads).
    #[serde(default)]
    pub latency_pass_cpu_us: Option<f64>,
    /// Every verdict turn in full (block, round, position, rate, CPU, ...), no tracepoints
    /// attached.
    #[serde(default)]
    pub round_samples: Vec<RoundSample>,
    /// The mechanism block's round (fresh processes after the verdict blocks, task metrics
    /// on), with syscall
    /// tracepoints attached (their cost stays out of the verdict).
    #[serde(default)]
    pub mechanism_samples: Vec<RoundSample>,
    /// The paced turns behind the efficiency verdict: every runtime at the same offered
    /// rate, one round per block.
    #[serde(default)]
    pub efficiency_samples: Vec<RoundSample>,
    /// Server processes started for this runtime (one per block).
    #[serde(default)]
    pub lives: usize,
    /// The latency curve (open-loop points), if the workload has one.
    #[serde(default)]
    pub curve: Option<Curve>,
    /// Why the workload's curve was not measured for this runtime.
    #[serde(default)]
    pub curve_skipped: Option<String>,
    /// Where the server's CPU went in the profiling pass (`crate::sampling`).
    #[serde(default)]
    pub cpu_profile: Option<crate::sampling::CpuProfile>,
    /// Why there is no CPU profile (sampling refused, turned off, the pass failed).
    #[serde(default)]
    pub cpu_profile_skipped: Option<String>,
    /// Why syscalls could not be counted (`None`: they were, or no rounds ran).
    #[serde(default)]
    pub syscalls_unavailable: Option<String>,
    pub tally: Tally,
    /// Criterion samples that failed (a stall, an error): criterion was handed a stand-in
    /// time for them, so its estimate for this runtime is not reported.
    #[serde(default)]
    pub failed_samples: u64,
    pub verification: Option<Verification>,
    /// Why this runtime was not measured (e.g. io_uring unavailable).
    pub skipped: Option<String>,
}

impl RawResult {
    /// Its verdict turns: the closed-loop rounds, or with `paced` the efficiency rounds.
    pub fn turns(&self, paced: bool) -> &[RoundSample] {
        match paced {
            true => &self.efficiency_samples,
            false => &self.round_samples,
        }
    }

    /// A result for `runtime` on `spec` with nothing measured yet.
    pub fn new(
        workload: &Spec,
        runtime: Runtime,
        profile: Profile,
        (loadgen_threads, server_threads): (usize, usize),
        layout: String,
    ) -> Self {
        Self {
            workload: workload.clone(),
            runtime,
            profile,
            loadgen_threads,
            server_threads,
            layout,
            server_flags: Vec::new(),
            server_ready: None,
            latency_pass: None,
            latency_pass_cpu_us: None,
            round_samples: Vec::new(),
            mechanism_samples: Vec::new(),
            efficiency_samples: Vec::new(),
            lives: 0,
            curve: None,
            curve_skipped: None,
            cpu_profile: None,
            cpu_profile_skipped: None,
            syscalls_unavailable: None,
            tally: Tally::default(),
            failed_samples: 0,
            verification: None,
            skipped: None,
        }
    }
}

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}
