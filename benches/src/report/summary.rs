//! `summary.json`: the schema the report is built into and rendered from (and that
//! `report --compare` reads back).

use std::collections::BTreeMap;

use super::env::Environment;
use super::mechanism::Mechanism;
use crate::analysis::Assessment;
use crate::analysis::{Interval, Paired};
use crate::results::RawResult;
use crate::runtime::Runtime;
use crate::workload::Spec;
use loadgen::Latency;

/// v2: a runtime's entry is its raw result flattened plus what the report derives (v1
/// copied fields one by one). The report is rebuilt from a run's folder, never read back
/// from this file, except for one thing: its criterion intervals, in runs from before a run
/// kept its own copy of criterion's estimates (`legacy.rs`).
pub const SCHEMA: &str = "runtime-bench/summary/v2";

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

/// One runtime of one workload: what the run wrote for it ([`RawResult`], flattened, so the
/// JSON keeps one set of field names) and what the report derives from it and from
/// criterion's files.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RuntimeResult {
    /// The runtime's display name (for readers of the JSON; [`Runtime::label`]).
    pub label: String,
    /// Criterion's throughput interval (from its slope, or mean, estimate).
    pub thrpt: Option<Interval>,
    /// What the server did per request and who was the limit, over the rounds.
    #[serde(default)]
    pub mechanism: Option<Mechanism>,
    #[serde(flatten)]
    pub raw: RawResult,
}

impl RuntimeResult {
    pub fn runtime(&self) -> Runtime {
        self.raw.runtime
    }

    /// Measured, and its delivery check passed.
    pub fn verified(&self) -> bool {
        self.raw.skipped.is_none() && self.raw.verification.as_ref().is_some_and(|v| v.passed)
    }

    /// The latency pass's percentiles.
    pub fn latency(&self) -> Option<Latency> {
        self.raw.latency_pass.as_ref().map(|p| p.latency_us)
    }

    /// The latency pass's achieved rate.
    pub fn latency_pass_rate(&self) -> Option<f64> {
        self.raw.latency_pass.as_ref().map(|p| p.rate)
    }
}

impl WorkloadResult {
    pub fn runtime(&self, runtime: Runtime) -> Option<&RuntimeResult> {
        self.runtimes.iter().find(|r| r.runtime() == runtime)
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WorkloadResult {
    /// The verdict and the rounds behind it (`None`: tokio-uring was not measured).
    #[serde(default)]
    pub assessment: Option<Assessment>,
    /// The efficiency verdict (server cores' CPU per request at one offered rate for
    /// every runtime), and that rate, req/s (`None`: not measured).
    #[serde(default)]
    pub efficiency: Option<Assessment>,
    #[serde(default)]
    pub efficiency_rate: Option<f64>,
    /// What Kafka costs each runtime that ran beside its null-sink control.
    #[serde(default)]
    pub kafka_cost: Vec<crate::results::KafkaCost>,
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
                        .all(|r| r.verified() || r.raw.skipped.is_some())
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
                        r.raw.skipped.as_ref()?
                    ))
                })
            })
            .collect()
    }

    /// One line saying what was run where: when it was measured (runs from before that was
    /// recorded: when this report was generated), profile, Kafka, CPU, cores, kernel,
    /// librdkafka, layout. Plain text (escape it for HTML).
    pub fn run_line(&self) -> String {
        let e = &self.env;
        let when = match self.setup.started() {
            Some(t) => format!("Measured {}", super::utc(t)),
            None => format!("Generated {}", self.generated_at),
        };
        format!(
            "{when} · profile {}{} · Kafka: {} · {} · {} cores · kernel {} · librdkafka {} · layout {}{}",
            self.setup.profile,
            if self.setup.aa { " (A/A RUN: server-tokio in tokio-uring's slot)" } else { "" },
            self.setup.kafka,
            e.cpu_model.as_deref().unwrap_or("unknown CPU"),
            e.cores,
            e.kernel.as_deref().unwrap_or("?"),
            e.librdkafka,
            e.cpu_layout,
            match &e.topology {
                Some(t) if t.kind != "local" => format!(
                    " · topology {}{}",
                    t.description,
                    t.link_rtt_us
                        .map_or(String::new(), |us| format!(", link round trip {us:.0} µs"))
                ),
                _ => String::new(),
            }
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
            label: runtime.label().into(),
            thrpt: Some(Interval {
                lower: est * 0.95,
                estimate: est,
                upper: est * 1.05,
            }),
            mechanism: None,
            raw: RawResult::new(
                &spec,
                runtime,
                crate::workload::Profile::Quick,
                (1, 1),
                "test".into(),
            ),
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
            kafka_cost: Vec::new(),
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
