//! What `cargo bench` measures: the profiles (`BENCH_PROFILE`), their timings, and the
//! workload catalogue. Plain data, shared by the runner ([`crate::suite`]) and the report
//! ([`crate::report`]), which reads it back from `config.json`.
//!
//! To add a workload, add a [`Spec`] to [`catalogue`]; the runner, the delivery check and
//! the report pick it up from there.

use std::time::Duration;

use anyhow::{bail, Result};
use common::kafka::SinkKind;

use crate::analysis::Rules;
use crate::loadgen::Mode;
use crate::server::Runtime;

/// How much to run: `BENCH_PROFILE=quick|default|full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// CI smoke: every default workload, briefly (under 3 minutes with server starts).
    Quick,
    /// The whole comparison with intervals tight enough to read (~10-15 minutes on 2 cores).
    Default,
    /// Default plus sweeps: connections, payload sizes up to 1 MiB, ack modes, tokio
    /// per-core, null sink.
    Full,
}

/// How long each part of a workload's measurement takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Criterion's warm-up per benchmark.
    pub warm_up: Duration,
    /// Criterion's measurement time per benchmark.
    pub measurement: Duration,
    /// Criterion's samples per benchmark.
    pub samples: usize,
    /// Each runtime's turn in an interleaved round (how many rounds: [`Profile::rules`]).
    pub turn: Duration,
    /// The fixed-duration pass that gives latency percentiles at saturation.
    pub latency_pass: Duration,
}

/// The latency curves of a run: open-loop passes at fixed fractions of the lower runtime's
/// capacity (measured by the same workload's interleaved rounds just before), the
/// runtimes interleaved at each rate. Written to `config.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CurvePlan {
    /// Offered rates as fractions of the base capacity, in the order they are run.
    pub fractions: Vec<f64>,
    /// Load on the same schedule before each point's measurement (not recorded).
    pub warmup: Duration,
    /// Each point's measured time per runtime.
    pub duration: Duration,
    /// p99 objectives (µs) for the capacity-at-objective figures
    /// (`BENCH_LATENCY_OBJECTIVES`, e.g. `1ms,10ms`).
    pub objectives_us: Vec<u64>,
    /// Idle-priority spinners keep every core awake during the passes
    /// (`BENCH_CURVE_AWAKE=0` turns them off): see `suite/awake.rs` for why.
    pub keep_awake: bool,
}

impl Profile {
    pub fn from_env() -> Result<Self> {
        match std::env::var("BENCH_PROFILE").as_deref() {
            Err(_) | Ok("") | Ok("default") => Ok(Self::Default),
            Ok("quick") => Ok(Self::Quick),
            Ok("full") => Ok(Self::Full),
            Ok(other) => bail!("BENCH_PROFILE={other}: expected quick, default or full"),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Default => "default",
            Self::Full => "full",
        }
    }

    pub fn timing(self) -> Timing {
        match self {
            Self::Quick => Timing {
                warm_up: Duration::from_millis(500),
                measurement: Duration::from_secs(2),
                samples: 10,
                turn: Duration::from_millis(250),
                latency_pass: Duration::from_secs(1),
            },
            Self::Default | Self::Full => Timing {
                warm_up: Duration::from_secs(3),
                measurement: Duration::from_secs(15),
                samples: 30,
                turn: Duration::from_secs(1),
                latency_pass: Duration::from_secs(5),
            },
        }
    }
}

impl Profile {
    /// The latency curves' plan, with the environment's overrides.
    pub fn curve_plan(self) -> Result<CurvePlan> {
        let (fractions, warmup, duration) = match self {
            Self::Quick => (
                vec![0.5, 1.0],
                Duration::from_millis(250),
                Duration::from_secs(1),
            ),
            Self::Default | Self::Full => (
                vec![0.25, 0.5, 0.75, 0.9, 1.0, 1.1],
                Duration::from_millis(500),
                Duration::from_secs(3),
            ),
        };
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let objectives_us = match var("BENCH_LATENCY_OBJECTIVES") {
            None => vec![1_000, 10_000],
            Some(v) => parse_objectives(&v)?,
        };
        let keep_awake = match var("BENCH_CURVE_AWAKE").as_deref().map(str::trim) {
            None | Some("1") => true,
            Some("0") => false,
            Some(other) => bail!("BENCH_CURVE_AWAKE={other}: expected 1 (default) or 0"),
        };
        Ok(CurvePlan {
            fractions,
            warmup,
            duration,
            objectives_us,
            keep_awake,
        })
    }

    /// How the verdict is decided and how many interleaved rounds it may take, with the
    /// environment's overrides: `BENCH_ROUNDS_MAX` (round pairs), `BENCH_ROUND_BUDGET`
    /// (seconds of rounds per workload), `BENCH_EQUIV_BAND` (percent).
    pub fn rules(self) -> Result<Rules> {
        let mut r = match self {
            Self::Quick => Rules {
                max_rounds: 8,
                budget: Duration::from_secs(10),
                ..Rules::default()
            },
            Self::Default | Self::Full => Rules::default(),
        };
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(v) = var("BENCH_ROUNDS_MAX") {
            r.max_rounds = v
                .trim()
                .parse()
                .ok()
                .filter(|&n: &usize| n >= 1)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "BENCH_ROUNDS_MAX={v}: expected a whole number of rounds, at least 1"
                    )
                })?;
        }
        if let Some(v) = var("BENCH_ROUND_BUDGET") {
            let secs: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .ok_or_else(|| {
                    anyhow::anyhow!("BENCH_ROUND_BUDGET={v}: expected seconds, e.g. 60")
                })?;
            r.budget = Duration::from_secs_f64(secs);
        }
        if let Some(v) = var("BENCH_EQUIV_BAND") {
            let pct: f64 = v
                .trim()
                .trim_end_matches('%')
                .parse()
                .ok()
                .filter(|p: &f64| p.is_finite() && *p > 0.0 && *p < 50.0)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "BENCH_EQUIV_BAND={v}: expected a percentage between 0 and 50, e.g. 3"
                    )
                })?;
            r.band = pct / 100.0;
        }
        Ok(r)
    }
}

/// `1ms,10ms,500us` -> µs, each positive.
fn parse_objectives(v: &str) -> Result<Vec<u64>> {
    v.split(',')
        .map(|part| {
            let d = common::config::parse_duration(part.trim()).map_err(|e| {
                anyhow::anyhow!(
                    "BENCH_LATENCY_OBJECTIVES={v}: {part:?}: {e} (expected e.g. 1ms,10ms)"
                )
            })?;
            let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            if us == 0 {
                bail!("BENCH_LATENCY_OBJECTIVES={v}: {part:?}: an objective must be at least 1us");
            }
            Ok(us)
        })
        .collect()
}

/// One workload: what load, with which server flags.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    /// Criterion group name and folder: `[a-z0-9-]` only.
    pub name: String,
    /// One line for the report.
    pub description: String,
    /// How the load generator offers load.
    #[serde(deserialize_with = "mode_compat::deserialize")]
    pub mode: Mode,
    pub connections: usize,
    pub body_size: usize,
    /// Where the servers publish: with [`SinkKind::Null`] nothing lands, and the delivery
    /// check says "not counted".
    #[serde(default)]
    pub sink: SinkKind,
    /// Extra server flags (e.g. `--ack delivered`).
    pub server_args: Vec<String>,
    pub runtimes: Vec<Runtime>,
    /// Measure a latency curve (open-loop passes) after the rounds.
    #[serde(default)]
    pub curve: bool,
}

impl Spec {
    fn new(
        name: &str,
        description: &str,
        mode: Mode,
        connections: usize,
        body_size: usize,
    ) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            mode,
            connections,
            body_size,
            sink: SinkKind::Kafka,
            server_args: Vec::new(),
            runtimes: vec![Runtime::Tokio, Runtime::Uring],
            curve: false,
        }
    }

    /// Adds a latency curve (open loop sends one request per slot: not for pipelining).
    fn with_curve(mut self) -> Self {
        self.curve = !matches!(self.mode, Mode::Pipelined { .. });
        self
    }

    fn args(mut self, args: &[&str]) -> Self {
        self.server_args = args.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Adds tokio's twin (A/A control) to the interleaved rounds.
    fn with_twin(mut self) -> Self {
        if !self.runtimes.contains(&Runtime::TokioTwin) {
            self.runtimes.push(Runtime::TokioTwin);
        }
        self
    }

    fn sink(mut self, sink: SinkKind) -> Self {
        self.sink = sink;
        self
    }

    /// Every flag the workload gives its servers (besides listen, brokers, topic, threads).
    pub fn server_flags(&self) -> Vec<String> {
        let mut flags = self.server_args.clone();
        if self.sink == SinkKind::Null {
            flags.extend(["--sink".to_string(), "null".to_string()]);
        }
        flags
    }
}

/// The workloads of a profile.
pub fn catalogue(profile: Profile) -> Vec<Spec> {
    let mut v = vec![
        // The A/A control (tokio against a second tokio) rides on this one in every profile.
        Spec::new("keepalive-100b-c32", "keep-alive, 100 B POST, 32 connections", Mode::Closed, 32, 100).with_twin().with_curve(),
        Spec::new("keepalive-100b-c256", "keep-alive, 100 B POST, 256 connections", Mode::Closed, 256, 100),
        Spec::new("conn-per-request-100b", "connection per request (the blog's workload), 100 B POST, 64 concurrent", Mode::ConnPerRequest, 64, 100).with_curve(),
        Spec::new("keepalive-16kib-c32", "keep-alive, 16 KiB POST, 32 connections", Mode::Closed, 32, 16 * 1024),
        Spec::new("pipelined-16-100b-c32", "pipelined depth 16, 100 B POST, 32 connections", Mode::Pipelined { depth: 16 }, 32, 100),
        Spec::new("ack-delivered-100b-c64", "keep-alive, 100 B POST, answered once the broker acked (--ack delivered), 64 connections", Mode::Closed, 64, 100)
            .args(&["--ack", "delivered"])
            .with_curve(),
    ];
    // Quick keeps one short curve, so CI runs the path.
    if profile == Profile::Quick {
        for s in v.iter_mut().skip(1) {
            s.curve = false;
        }
    }
    if profile == Profile::Full {
        for s in &mut v {
            s.runtimes.insert(1, Runtime::TokioPerCore);
        }
        for c in [16, 1024] {
            v.push(Spec::new(
                &format!("keepalive-100b-c{c}"),
                &format!("keep-alive, 100 B POST, {c} connections"),
                Mode::Closed,
                c,
                100,
            ));
        }
        for (label, size) in [
            ("1kib", 1024),
            ("256kib", 256 * 1024),
            ("1mib", 1024 * 1024 - 1024),
        ] {
            v.push(Spec::new(
                &format!("keepalive-{label}-c32"),
                &format!("keep-alive, {label} POST, 32 connections"),
                Mode::Closed,
                32,
                size,
            ));
        }
        v.push(
            Spec::new(
                "ack-delivered-100b-c256",
                "ack delivered, 100 B POST, 256 connections",
                Mode::Closed,
                256,
                100,
            )
            .args(&["--ack", "delivered"]),
        );
        v.push(
            Spec::new(
                "null-sink-100b-c32",
                "keep-alive, 100 B POST, --sink null (no Kafka): the servers' own cost",
                Mode::Closed,
                32,
                100,
            )
            .sink(SinkKind::Null),
        );
        // Every workload of the full profile gets its own noise floor, and a latency curve
        // where open-loop pacing applies.
        v = v.into_iter().map(|s| s.with_twin().with_curve()).collect();
        // Was io_uring given a fair chance? Tuned rings beside the default one.
        for s in &mut v {
            if matches!(
                s.name.as_str(),
                "keepalive-100b-c256" | "conn-per-request-100b" | "pipelined-16-100b-c32"
            ) {
                s.runtimes
                    .extend([Runtime::UringCoopSingle, Runtime::UringSqpoll]);
            }
        }
    }
    v
}

/// Reads `mode` as written now (`{"kind": "pipelined", "depth": 16}`) or as the first
/// results did (`"pipelined-16"`), so `report --compare` still reads the reference runs.
mod mode_compat {
    use serde::{Deserialize, Deserializer};

    use crate::loadgen::Mode;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Typed(Mode),
        Label(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        match Either::deserialize(d)? {
            Either::Typed(m) => Ok(m),
            Either::Label(l) => Mode::from_label(&l)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown load mode {l:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_and_old_labels_still_read() {
        for spec in catalogue(Profile::Full) {
            let json = serde_json::to_string(&spec).expect("json");
            let back: Spec = serde_json::from_str(&json).expect("parse");
            assert_eq!(back.mode, spec.mode, "{json}");
            assert_eq!(back.sink, spec.sink);
        }
        let old = r#"{"name":"p","description":"d","mode":"pipelined-16","depth":16,
            "connections":32,"body_size":100,"server_args":[],"runtimes":["tokio"]}"#;
        let s: Spec = serde_json::from_str(old).expect("old form");
        assert_eq!(s.mode, Mode::Pipelined { depth: 16 });
        assert_eq!(s.sink, SinkKind::Kafka);
    }

    #[test]
    fn curves_where_the_profiles_say() {
        let curved = |p: Profile| -> Vec<String> {
            catalogue(p)
                .into_iter()
                .filter(|s| s.curve)
                .map(|s| s.name)
                .collect()
        };
        assert_eq!(curved(Profile::Quick), ["keepalive-100b-c32"]);
        assert_eq!(
            curved(Profile::Default),
            [
                "keepalive-100b-c32",
                "conn-per-request-100b",
                "ack-delivered-100b-c64"
            ]
        );
        let full = catalogue(Profile::Full);
        assert!(full
            .iter()
            .all(|s| s.curve != matches!(s.mode, Mode::Pipelined { .. })));
    }

    #[test]
    fn objectives_read_as_durations_and_bad_ones_are_named() {
        assert_eq!(
            parse_objectives("1ms, 10ms,500us").expect("ok"),
            [1_000, 10_000, 500]
        );
        let e = parse_objectives("1ms,fast").expect_err("bad").to_string();
        assert!(
            e.contains("BENCH_LATENCY_OBJECTIVES") && e.contains("fast"),
            "{e}"
        );
        assert!(parse_objectives("0ms").is_err());
    }

    #[test]
    fn null_sink_is_a_flag_of_its_own() {
        let null = catalogue(Profile::Full)
            .into_iter()
            .find(|s| s.sink == SinkKind::Null)
            .expect("full has a null-sink workload");
        assert_eq!(null.server_flags(), ["--sink", "null"]);
    }
}
