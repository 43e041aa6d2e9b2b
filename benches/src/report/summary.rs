//! `summary.json`: the schema the report is built into and rendered from (and that
//! `report --compare` reads back).

use std::collections::BTreeMap;

use super::env::Environment;
use super::stats::{Interval, Paired};
use crate::loadgen::Latency;
use crate::results::{Tally, Verification};
use crate::server::Runtime;
use crate::workload::Spec;

pub const SCHEMA: &str = "runtime-bench/summary/v1";

/// What the run configured, written at its start (config.json).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RunSetup {
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
    /// Achieved req/s in each interleaved round.
    #[serde(default)]
    pub rounds: Vec<f64>,
    /// The server's CPU µs per request in each interleaved round (`None`: not readable).
    #[serde(default)]
    pub rounds_cpu_us: Vec<Option<f64>>,
    pub tally: Tally,
    pub verification: Option<Verification>,
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WorkloadResult {
    pub spec: Spec,
    pub runtimes: Vec<RuntimeResult>,
    /// tokio-uring / tokio throughput.
    pub ratio_uring_tokio: Option<Interval>,
    /// tokio-uring / tokio per-core throughput (full profile).
    pub ratio_uring_tokio_per_core: Option<Interval>,
    /// tokio-uring / tokio from the interleaved rounds.
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
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line saying what was run where: time, profile, Kafka, CPU, cores, kernel,
    /// librdkafka, layout. Plain text (escape it for HTML).
    pub fn run_line(&self) -> String {
        let e = &self.env;
        format!(
            "Generated {} · profile {} · Kafka: {} · {} · {} cores · kernel {} · librdkafka {} · layout {}",
            self.generated_at,
            self.setup.profile,
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
        self.workload(workload)?
            .runtimes
            .iter()
            .find(|r| r.runtime == runtime)
    }
}
