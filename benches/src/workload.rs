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
    /// The whole comparison: every workload in blocks of fresh processes (~15 minutes on
    /// 2 cores).
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
    /// Each runtime's measured turn in a block's round (how many blocks: [`Profile::rules`]).
    pub turn: Duration,
    /// Unmeasured load at the start of every turn, so a turn measures a warm server.
    pub turn_warm_up: Duration,
    /// Unmeasured load per runtime once a block's fresh processes are up, before its
    /// first round (their first requests run while producers and connections settle in).
    pub block_warm_up: Duration,
    /// At most this long to wait, before a turn, for the previous turn's server to go idle.
    pub settle_max: Duration,
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
                turn: Duration::from_millis(150),
                turn_warm_up: Duration::from_millis(50),
                block_warm_up: Duration::from_millis(100),
                settle_max: Duration::from_millis(200),
                latency_pass: Duration::from_secs(1),
            },
            // Criterion is kept for reference (its ratio beside the verdict): short, since
            // the verdict's time is better spent on blocks of fresh processes.
            // Turns are short: on the dev VM rounds of 1 s and of 0.3 s varied alike
            // (~10 % SD between rounds in both), so the time goes to more blocks.
            Self::Default | Self::Full => Timing {
                warm_up: Duration::from_secs(1),
                measurement: Duration::from_secs(3),
                samples: 15,
                turn: Duration::from_millis(300),
                turn_warm_up: Duration::from_millis(100),
                block_warm_up: Duration::from_millis(200),
                settle_max: Duration::from_millis(300),
                latency_pass: Duration::from_secs(2),
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
                Duration::from_secs(2),
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

    /// How the verdict is decided and how many blocks it takes, with the environment's
    /// overrides: `BENCH_BLOCKS` (blocks per workload, at least 2), `BENCH_EQUIV_BAND`
    /// (percent). The variables of the earlier adaptive design are refused by name.
    pub fn rules(self) -> Result<Rules> {
        let mut r = match self {
            Self::Quick => Rules {
                blocks: 2,
                ..Rules::default()
            },
            Self::Default | Self::Full => Rules::default(),
        };
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        for gone in ["BENCH_ROUNDS_MAX", "BENCH_ROUND_BUDGET"] {
            if var(gone).is_some() {
                bail!("{gone} is no longer read: a workload runs a fixed number of blocks of fresh processes, set by BENCH_BLOCKS");
            }
        }
        if let Some(v) = var("BENCH_BLOCKS") {
            r.blocks = v
                .trim()
                .parse()
                .ok()
                .filter(|&n: &usize| n >= 2)
                .ok_or_else(|| {
                    anyhow::anyhow!("BENCH_BLOCKS={v}: expected a whole number of blocks, at least 2 (6 or more for a verdict)")
                })?;
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
            // Every workload carries its own A/A control: tokio's twin in every block.
            runtimes: vec![Runtime::Tokio, Runtime::Uring, Runtime::TokioTwin],
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
        Spec::new("keepalive-100b-c32", "keep-alive, 100 B POST, 32 connections", Mode::Closed, 32, 100).with_curve(),
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
        // A latency curve wherever open-loop pacing applies.
        v = v.into_iter().map(Spec::with_curve).collect();
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
