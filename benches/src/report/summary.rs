//! `summary.json`: the schema the report is built into and rendered from (and that
//! `report --compare` reads back).

use std::collections::BTreeMap;

use super::env::Environment;
use super::mechanism::Mechanism;
use super::stats::{Interval, Paired};
use crate::analysis::Assessment;
use crate::results::{Curve, RoundSample, Tally, Verification};
use crate::runtime::Runtime;
use crate::workload::Spec;
use loadgen::Latency;

pub const SCHEMA: &str = "runtime-bench/summary/v1";

impl RunSetup {
    /// When the run started, if recorded.
    pub fn started(&self) -> Option<std::time::SystemTime> {
        self.started_unix_ms
            .map(|ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
    }
}

/// What the run configured, written at its start (config.json).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RunSetup {
    /// When the run started (ms since the Unix epoch): criterion estimates older than this
    /// are an earlier run's. `None` in runs from before it was recorded.
    #[serde(default)]
    pub started_unix_ms: Option<u64>,
    /// How verdicts were decided (band, blocks, level).
    #[serde(default)]
    pub rules: Option<crate::analysis::Rules>,
    /// An A/A run (`BENCH_AA=1`): server-tokio ran in every tokio-uring slot.
    #[serde(default)]
    pub aa: bool,
    /// The seed of the blocks' turn orders (`BENCH_SEED` replays it).
    #[serde(default)]
    pub seed: Option<u64>,
    /// The latency curves' plan (rates, durations, objectives).
    #[serde(default)]
    pub curves: Option<crate::workload::CurvePlan>,
    /// Whether the servers' syscalls were counted, or why not.
    #[serde(default)]
    pub syscalls: String,
    pub profile: String,
    pub kafka: String,
    /// The servers' effective producer configuration (same code path as the servers').
    pub producer_config: BTreeMap<String, String>,
    /// Flags every server got, besides each workload's own.
    pub server_args: Vec<String>,
    pub workloads: Vec<Spec>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RuntimeResult {
    pub runtime: Runtime,
    pub label: String,
    /// Criterion's throughput interval (from its slope, or mean, estimate).
    pub thrpt: Option<Interval>,
    pub latency: Option<Latency>,
    /// The latency pass's achieved rate.
    pub latency_pass_rate: Option<f64>,
    /// The server's CPU µs per request in the latency pass (all its threads).
    #[serde(default)]
    pub cpu_us_per_request: Option<f64>,
    /// Server processes started for this runtime (one per block).
    #[serde(default)]
    pub lives: usize,
    /// What the server did per request and who was the limit, over the rounds.
    #[serde(default)]
    pub mechanism: Option<Mechanism>,
    /// Why syscalls were not counted for this server.
    #[serde(default)]
    pub syscalls_unavailable: Option<String>,
    /// The server's readiness line (its setup in its own words) and its flags.
    #[serde(default)]
    pub server_ready: Option<String>,
    #[serde(default)]
    pub server_flags: Vec<String>,
    /// Every verdict turn in full (block, round, position, ...).
    #[serde(default)]
    pub round_samples: Vec<RoundSample>,
    /// The mechanism round(s), syscalls counted.
    #[serde(default)]
    pub mechanism_samples: Vec<RoundSample>,
    /// The paced turns behind the efficiency verdict.
    #[serde(default)]
    pub efficiency_samples: Vec<RoundSample>,
    /// The latency curve (open-loop points), and why there is none where the workload has
    /// one.
    #[serde(default)]
    pub curve: Option<Curve>,
    #[serde(default)]
    pub curve_skipped: Option<String>,
    pub tally: Tally,
    pub verification: Option<Verification>,
    pub skipped: Option<String>,
}

impl RuntimeResult {
    /// Measured, and its delivery check passed.
    pub fn verified(&self) -> bool {
        self.skipped.is_none() && self.verification.as_ref().is_some_and(|v| v.passed)
    }
}

impl WorkloadResult {
    pub fn runtime(&self, runtime: Runtime) -> Option<&RuntimeResult> {
        self.runtimes.iter().find(|r| r.runtime == runtime)
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WorkloadResult {
    /// The verdict and the rounds behind it (`None`: tokio-uring was not measured).
    #[serde(default)]
    pub assessment: Option<Assessment>,
    /// The efficiency verdict (server cores' CPU per request at one offered rate for
    /// every runtime), and that rate, req/s (`None`: not paced, e.g. pipelined).
    #[serde(default)]
    pub efficiency: Option<Assessment>,
    #[serde(default)]
    pub efficiency_rate: Option<f64>,
    /// Criterion's tokio-uring / tokio estimate falls outside the blocks' interval: its one
    /// pair of processes, measured one runtime after the other, read differently
    /// (their own offsets, or the machine's drift in between).
    #[serde(default)]
    pub criterion_drift: Option<bool>,
    pub spec: Spec,
    pub runtimes: Vec<RuntimeResult>,
    /// tokio-uring / tokio throughput.
    pub ratio_uring_tokio: Option<Interval>,
    /// tokio-uring / tokio per-core throughput (full profile).
    pub ratio_uring_tokio_per_core: Option<Interval>,
    /// tokio-uring / tokio round by round (for reference: rounds are not independent
    /// replicates; the verdict's interval is over blocks, in `assessment`).
    #[serde(default)]
    pub paired_uring_tokio: Option<Paired>,
    /// tokio-uring / tokio server CPU per request from the same rounds (below 1: tokio-uring
    /// spent less CPU on each request).
    #[serde(default)]
    pub paired_cpu_uring_tokio: Option<Paired>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub schema: String,
    pub generated_at: String,
    pub setup: RunSetup,
    pub env: Environment,
    pub workloads: Vec<WorkloadResult>,
    /// Every failed verification or missing result, one line each.
    pub problems: Vec<String>,
}

impl Summary {
    /// No problem, and every runtime of every workload either verified or skipped with a
    /// reason (at least one verified per workload).
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
            && self.workloads.iter().all(|w| {
                w.runtimes.iter().any(RuntimeResult::verified)
                    && w.runtimes
                        .iter()
                        .all(|r| r.verified() || r.skipped.is_some())
            })
    }

    /// Runtimes skipped, as `workload/runtime: why`.
    pub fn skipped(&self) -> Vec<String> {
        self.workloads
            .iter()
            .flat_map(|w| {
                w.runtimes.iter().filter_map(move |r| {
                    Some(format!(
                        "{}/{}: {}",
                        w.spec.name,
                        r.label,
                        r.skipped.as_ref()?
                    ))
                })
            })
            .collect()
    }

    /// One line saying what was run where: time, profile, Kafka, CPU, cores, kernel,
    /// librdkafka, layout. Plain text (escape it for HTML).
    pub fn run_line(&self) -> String {
        let e = &self.env;
        format!(
            "Generated {} · profile {}{} · Kafka: {} · {} · {} cores · kernel {} · librdkafka {} · layout {}",
            self.generated_at,
            self.setup.profile,
            if self.setup.aa { " (A/A RUN: server-tokio in tokio-uring's slot)" } else { "" },
            self.setup.kafka,
            e.cpu_model.as_deref().unwrap_or("unknown CPU"),
            e.cores,
            e.kernel.as_deref().unwrap_or("?"),
            e.librdkafka,
            e.cpu_layout
        )
    }

    pub fn workload(&self, name: &str) -> Option<&WorkloadResult> {
        self.workloads.iter().find(|w| w.spec.name == name)
    }

    pub fn runtime(&self, workload: &str, runtime: Runtime) -> Option<&RuntimeResult> {
        self.workload(workload)?.runtime(runtime)
    }
}

/// A summary of one workload whose runtimes have criterion intervals of ±5 % around the
/// given req/s and nothing else: the base for report tests.
#[cfg(test)]
pub(crate) fn test_summary(spec: Spec, thrpt: &[(Runtime, f64)]) -> Summary {
    let runtimes = thrpt
        .iter()
        .map(|&(runtime, est)| RuntimeResult {
            runtime,
            label: runtime.label().into(),
            thrpt: Some(Interval {
                lower: est * 0.95,
                estimate: est,
                upper: est * 1.05,
            }),
            latency: None,
            latency_pass_rate: None,
            cpu_us_per_request: None,
            lives: 0,
            mechanism: None,
            syscalls_unavailable: None,
            server_ready: None,
            server_flags: Vec::new(),
            round_samples: Vec::new(),
            mechanism_samples: Vec::new(),
            efficiency_samples: Vec::new(),
            curve: None,
            curve_skipped: None,
            tally: Tally::default(),
            verification: None,
            skipped: None,
        })
        .collect();
    Summary {
        schema: SCHEMA.into(),
        generated_at: "t".into(),
        setup: RunSetup::default(),
        env: Environment::default(),
        workloads: vec![WorkloadResult {
            assessment: None,
            efficiency: None,
            efficiency_rate: None,
            criterion_drift: None,
            spec,
            runtimes,
            ratio_uring_tokio: None,
            ratio_uring_tokio_per_core: None,
            paired_uring_tokio: None,
            paired_cpu_uring_tokio: None,
        }],
        problems: vec![],
    }
}
