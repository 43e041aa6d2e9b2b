//! What `cargo bench` measures: the profiles (`BENCH_PROFILE`), their timings, and the
//! workload catalogue. Plain data, shared by the runner ([`crate::suite`]) and the report
//! ([`crate::report`]), which reads it back from `config.json`.
//!
//! To add a workload, add a [`Spec`] to [`catalogue`]; the runner, the delivery check and
//! the report pick it up from there.

mod profile;

use common::kafka::SinkKind;

use crate::runtime::Runtime;
use loadgen::Mode;
pub use profile::{CurvePlan, Profile, Timing};

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

    /// Adds a latency curve.
    fn with_curve(mut self) -> Self {
        self.curve = true;
        self
    }

    fn args(mut self, args: &[&str]) -> Self {
        self.server_args = args.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Whether `runtime`'s servers publish to Kafka in this workload (not a null sink, not
    /// a null-sink control).
    pub fn publishes(&self, runtime: Runtime) -> bool {
        self.sink == SinkKind::Kafka && runtime.kafka_partner().is_none()
    }

    /// Adds the null-sink controls of tokio and tokio-uring: the same servers with
    /// `--sink null` in the same blocks, so what Kafka costs each is measured side by side.
    fn with_kafka_cost(mut self) -> Self {
        for control in [Runtime::TokioNullSink, Runtime::UringNullSink] {
            if !self.runtimes.contains(&control) {
                self.runtimes.push(control);
            }
        }
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
        Spec::new("keepalive-100b-c32", "keep-alive, 100 B POST, 32 connections; with null-sink controls (what Kafka costs)", Mode::Closed, 32, 100).with_curve().with_kafka_cost(),
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
        // What Kafka costs, beside every keep-alive workload (keepalive-100b-c32 has it in
        // every profile).
        v = v
            .into_iter()
            .map(|s| match s.mode {
                Mode::Closed => s.with_kafka_cost(),
                _ => s,
            })
            .collect();
        // A latency curve for every workload.
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

    use loadgen::Mode;

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
        assert!(full.iter().all(|s| s.curve));
    }

    #[test]
    fn every_workload_carries_its_own_a_a_control() {
        for p in [Profile::Quick, Profile::Default, Profile::Full] {
            for s in catalogue(p) {
                assert!(
                    s.runtimes.contains(&Runtime::TokioTwin)
                        && s.runtimes.contains(&Runtime::Uring),
                    "{}: {:?}",
                    s.name,
                    s.runtimes
                );
            }
        }
    }

    #[test]
    fn kafka_cost_controls_run_beside_keep_alive_workloads() {
        for p in [Profile::Quick, Profile::Default] {
            let with: Vec<String> = catalogue(p)
                .into_iter()
                .filter(|s| s.runtimes.contains(&Runtime::TokioNullSink))
                .map(|s| s.name)
                .collect();
            assert_eq!(with, ["keepalive-100b-c32"], "{p:?}");
        }
        for s in catalogue(Profile::Full) {
            let has = s.runtimes.contains(&Runtime::UringNullSink);
            assert_eq!(has, s.mode == Mode::Closed, "{}", s.name);
        }
        let s = &catalogue(Profile::Default)[0];
        assert!(s.publishes(Runtime::Tokio) && !s.publishes(Runtime::TokioNullSink));
        assert_eq!(Runtime::UringNullSink.flavour_args(), ["--sink", "null"]);
        assert_eq!(s.server_flags(), Vec::<String>::new());
    }
}
