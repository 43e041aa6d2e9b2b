//! The comparison suite behind `cargo bench`: profiles, workloads, and the runner that, per
//! workload and runtime, starts the server outside the timed part, lets criterion time
//! `iters` requests through the load generator, runs a fixed-duration latency pass, stops
//! the server (SIGTERM: it flushes), and verifies what landed in Kafka.
//!
//! Results land in `results/latest/raw/<workload>/<runtime>.json`; criterion's own estimates
//! in `target/criterion/<workload>/<runtime>/`. [`crate::report`] joins the two.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use common::embedded::EmbeddedKafka;
use common::landed::{CountMethod, TopicReader};
use criterion::{BenchmarkId, Criterion, Throughput};

use crate::layout::Layout;
use crate::loadgen::{self, LoadError, Mode, RunConfig, Session, Workload};
use crate::server::{Runtime, ServerConfig, ServerProcess};

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

    /// Interleaved rounds per workload and the length of each runtime's turn in a round.
    pub fn rounds(self) -> (usize, Duration) {
        match self {
            Self::Quick => (4, Duration::from_millis(250)),
            Self::Default | Self::Full => (10, Duration::from_secs(1)),
        }
    }

    /// (warm-up, measurement, samples, latency pass) for each criterion benchmark.
    pub fn timing(self) -> (Duration, Duration, usize, Duration) {
        match self {
            Self::Quick => (
                Duration::from_millis(500),
                Duration::from_secs(2),
                10,
                Duration::from_secs(1),
            ),
            Self::Default => (
                Duration::from_secs(3),
                Duration::from_secs(15),
                30,
                Duration::from_secs(5),
            ),
            Self::Full => (
                Duration::from_secs(3),
                Duration::from_secs(15),
                30,
                Duration::from_secs(5),
            ),
        }
    }
}

/// One workload: what load, with which server flags.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    /// Criterion group name and folder: `[a-z0-9-]` only.
    pub name: String,
    /// One line for the report.
    pub description: String,
    pub mode: String,
    pub depth: usize,
    pub connections: usize,
    pub body_size: usize,
    /// Extra server flags (e.g. `--ack delivered`).
    pub server_args: Vec<String>,
    pub runtimes: Vec<Runtime>,
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
            mode: mode.label(),
            depth: match mode {
                Mode::Pipelined { depth } => depth,
                _ => 1,
            },
            connections,
            body_size,
            server_args: Vec::new(),
            runtimes: vec![Runtime::Tokio, Runtime::Uring],
        }
    }

    fn args(mut self, args: &[&str]) -> Self {
        self.server_args = args.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn load_mode(&self) -> Mode {
        match self.mode.as_str() {
            "conn-per-request" => Mode::ConnPerRequest,
            m if m.starts_with("pipelined") => Mode::Pipelined { depth: self.depth },
            _ => Mode::Closed,
        }
    }
}

/// The workloads of a profile.
pub fn workloads(profile: Profile) -> Vec<Spec> {
    let mut v = vec![
        Spec::new("keepalive-100b-c32", "keep-alive, 100 B POST, 32 connections", Mode::Closed, 32, 100),
        Spec::new("keepalive-100b-c256", "keep-alive, 100 B POST, 256 connections", Mode::Closed, 256, 100),
        Spec::new("conn-per-request-100b", "connection per request (the blog's workload), 100 B POST, 64 concurrent", Mode::ConnPerRequest, 64, 100),
        Spec::new("keepalive-16kib-c32", "keep-alive, 16 KiB POST, 32 connections", Mode::Closed, 32, 16 * 1024),
        Spec::new("pipelined-16-100b-c32", "pipelined depth 16, 100 B POST, 32 connections", Mode::Pipelined { depth: 16 }, 32, 100),
        Spec::new("ack-delivered-100b-c64", "keep-alive, 100 B POST, answered once the broker acked (--ack delivered), 64 connections", Mode::Closed, 64, 100)
            .args(&["--ack", "delivered"]),
    ];
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
            .args(&["--sink", "null"]),
        );
    }
    v
}

/// Where the workspace, its target dir and our results live.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub criterion: PathBuf,
    pub results: PathBuf,
}

impl Paths {
    pub fn discover() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let root = root.canonicalize().unwrap_or(root);
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        let criterion = std::env::var_os("CRITERION_HOME")
            .map_or_else(|| target.join("criterion"), PathBuf::from);
        let results = std::env::var_os("BENCH_RESULTS")
            .map_or_else(|| root.join("results").join("latest"), PathBuf::from);
        Self {
            root,
            criterion,
            results,
        }
    }

    pub fn raw(&self, workload: &str, runtime: Runtime) -> PathBuf {
        self.results
            .join("raw")
            .join(workload)
            .join(format!("{}.json", runtime.label()))
    }
}

/// The broker the suite publishes to: embedded in this process, or `KAFKA_BROKERS`.
pub struct Broker {
    embedded: Option<EmbeddedKafka>,
    pub addr: String,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Broker({}, embedded: {})",
            self.addr,
            self.embedded.is_some()
        )
    }
}

/// Partitions per topic: several, since each mock partition keeps only ~5 MiB.
const PARTITIONS: i32 = 6;

impl Broker {
    pub fn from_env() -> Result<Self> {
        match std::env::var("KAFKA_BROKERS") {
            Ok(addr) if !addr.trim().is_empty() => Ok(Self {
                embedded: None,
                addr,
            }),
            _ => {
                // The harness asks librdkafka for a mock cluster; the "setup" topic only
                // exists so the cluster has one before the first workload makes its own.
                let e = EmbeddedKafka::start("runtime-bench-setup", 1)
                    .context("starting the embedded Kafka broker")?;
                let addr = e.bootstrap().to_string();
                Ok(Self {
                    embedded: Some(e),
                    addr,
                })
            }
        }
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    pub fn method(&self) -> CountMethod {
        CountMethod::for_broker(self.is_embedded())
    }

    /// Creates `topic` (fresh per workload and runtime, so counts do not mix).
    pub fn topic(&self, topic: &str) -> Result<()> {
        match &self.embedded {
            Some(e) => e
                .create_topic(topic, PARTITIONS)
                .with_context(|| format!("creating topic {topic}")),
            None => {
                common::kafka::ensure_topic(&self.addr, topic, PARTITIONS, Duration::from_secs(30))
                    .with_context(|| format!("creating topic {topic} on {}", self.addr))
            }
        }
    }
}

/// Everything sent to one server, over criterion's runs and the latency pass.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    pub runs: u64,
    pub answered: u64,
    pub ok: u64,
    pub non_2xx: u64,
    pub errors: u64,
    pub stalls: u64,
}

impl Tally {
    fn add(&mut self, r: &loadgen::Report) {
        self.runs += 1;
        self.answered += r.completed;
        self.ok += r.ok;
        self.non_2xx += r.non_2xx();
        self.errors += r.errors_total();
        self.stalls += u64::from(r.stall.is_some());
    }
}

/// The delivery check after a workload.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Verification {
    /// 2xx answers the load generator got.
    pub ok: u64,
    /// Records that landed in the topic, counted by `method`.
    pub landed: u64,
    pub method: CountMethod,
    pub errors: u64,
    pub non_2xx: u64,
    pub stalls: u64,
    /// The server exited 0 after SIGTERM.
    pub clean_exit: bool,
    pub passed: bool,
    /// What differed, when not passed.
    pub problems: Vec<String>,
}

/// One workload x runtime, as written to `results/latest/raw/`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RawResult {
    pub workload: Spec,
    pub runtime: Runtime,
    pub profile: Profile,
    pub loadgen_threads: usize,
    pub server_threads: usize,
    /// The CPU layout, as [`Layout::label`] says it.
    pub layout: String,
    /// The fixed-duration pass that gives latency percentiles.
    pub latency_pass: Option<loadgen::Report>,
    /// The server's CPU time per answered request in the latency pass, µs (all its threads).
    #[serde(default)]
    pub latency_pass_cpu_us: Option<f64>,
    /// Achieved req/s in each interleaved round (see [`run_workload`]), in round order.
    #[serde(default)]
    pub rounds: Vec<f64>,
    /// The server's CPU µs per answered request in each interleaved round (`None` where it
    /// could not be read), index for index with `rounds`.
    #[serde(default)]
    pub rounds_cpu_us: Vec<Option<f64>>,
    pub tally: Tally,
    pub verification: Option<Verification>,
    /// Why this runtime was not measured (e.g. io_uring unavailable).
    pub skipped: Option<String>,
}

/// Runs one workload for each of its runtimes as a criterion group. Returns the problems
/// found (empty: all verified).
///
/// Every runtime's server is started first and stays up for the whole workload, so that
/// after criterion has measured each in turn, the runtimes can be measured again in
/// interleaved rounds (A B, B A, A B, ...): a drift in the machine's speed (noisy
/// neighbours on a VM) then lands on both sides of each round's ratio instead of on
/// whichever runtime happened to run during it. Then a latency pass each, then each server
/// is stopped (SIGTERM: it flushes) and what landed in Kafka is checked.
pub fn run_workload(
    c: &mut Criterion,
    spec: &Spec,
    profile: Profile,
    layout: &Layout,
    broker: &Broker,
    paths: &Paths,
) -> Vec<String> {
    let (warm_up, measurement, samples, pass) = profile.timing();
    // Every runtime of a workload is measured with the same layout and thread counts.
    let loadgen_threads = layout.loadgen_threads().min(spec.connections);
    let mut problems = Vec::new();
    let mut subjects = Vec::new();
    for &runtime in &spec.runtimes {
        let mut raw = RawResult {
            workload: spec.clone(),
            runtime,
            profile,
            loadgen_threads,
            server_threads: layout.server_threads(),
            layout: layout.label(),
            latency_pass: None,
            latency_pass_cpu_us: None,
            rounds: Vec::new(),
            rounds_cpu_us: Vec::new(),
            tally: Tally::default(),
            verification: None,
            skipped: None,
        };
        let subject = match Subject::start(spec, runtime, broker, layout, loadgen_threads, pass) {
            Ok(s) => Some(s),
            Err(e)
                if runtime == Runtime::Uring
                    && format!("{e:#}").contains("io_uring unavailable") =>
            {
                eprintln!("{}/{}: skipped: {e:#}", spec.name, runtime.label());
                raw.skipped = Some(format!("{e:#}"));
                None
            }
            Err(e) => {
                problems.push(format!("{}/{}: {e:#}", spec.name, runtime.label()));
                None
            }
        };
        subjects.push((raw, subject));
    }

    let mut group = c.benchmark_group(&spec.name);
    group
        .throughput(Throughput::Elements(1))
        .warm_up_time(warm_up)
        .measurement_time(measurement)
        .sample_size(samples);
    for (raw, subject) in &mut subjects {
        if let Some(s) = subject {
            group.bench_function(BenchmarkId::from_parameter(raw.runtime.label()), |b| {
                b.iter_custom(|iters| s.sample(iters));
            });
        }
    }
    group.finish();

    let (rounds, turn) = profile.rounds();
    let mut live: Vec<(&mut RawResult, &mut Subject)> = subjects
        .iter_mut()
        .filter_map(|(raw, s)| Some((raw, s.as_mut()?)))
        .collect();
    if live.len() > 1 {
        for round in 0..rounds {
            // A B, B A, A B...: neither runtime always goes first.
            let order: Vec<usize> = if round % 2 == 0 {
                (0..live.len()).collect()
            } else {
                (0..live.len()).rev().collect()
            };
            for i in order {
                let (raw, s) = &mut live[i];
                if let Some((r, cpu)) = s.timed_run(turn) {
                    raw.rounds.push(r.rate);
                    raw.rounds_cpu_us.push(cpu);
                }
            }
        }
    }
    for (raw, s) in &mut live {
        if let Some((r, cpu)) = s.timed_run(pass) {
            raw.latency_pass = Some(r);
            raw.latency_pass_cpu_us = cpu;
        }
    }

    for (mut raw, subject) in subjects {
        if let Some(s) = subject {
            let (tally, v) = s.finish(broker.method());
            for p in &v.problems {
                problems.push(format!("{}/{}: {p}", spec.name, raw.runtime.label()));
            }
            raw.tally = tally;
            raw.verification = Some(v);
        }
        if let Err(e) = write_json(&paths.raw(&spec.name, raw.runtime), &raw) {
            problems.push(format!(
                "{}/{}: writing raw result: {e:#}",
                spec.name,
                raw.runtime.label()
            ));
        }
    }
    problems
}

/// One runtime's server under test, with its load-generator session and its Kafka topic.
struct Subject {
    server: ServerProcess,
    session: Session,
    reader: Option<TopicReader>,
    /// Records in the topic before any load (0 for a fresh topic, but counted, not assumed).
    before: u64,
    tally: Tally,
    /// The first failure (stall, time limit, load-generator error): later loads are skipped.
    failure: Option<String>,
}

impl Subject {
    /// Creates the topic, starts the server (waiting for its readiness line) and opens the
    /// load generator's connections.
    fn start(
        spec: &Spec,
        runtime: Runtime,
        broker: &Broker,
        layout: &Layout,
        loadgen_threads: usize,
        pass: Duration,
    ) -> Result<Self> {
        let topic = format!(
            "bench-{}-{}-{}",
            spec.name,
            runtime.label(),
            std::process::id()
        );
        let null_sink = spec.server_args.iter().any(|a| a == "null");
        if !null_sink {
            broker.topic(&topic)?;
        }
        let mut cfg = ServerConfig::new(runtime);
        cfg.brokers = Some(broker.addr.clone());
        cfg.topic = topic.clone();
        cfg.args = spec.server_args.clone();
        cfg.args
            .extend(["--threads".to_string(), layout.server_threads().to_string()]);
        cfg.cpus = layout.server_cpus();
        let server = ServerProcess::start(&cfg)?;
        let reader = if null_sink {
            None
        } else {
            Some(TopicReader::new(&broker.addr, &topic, broker.method())?)
        };
        let before = reader
            .as_ref()
            .map(TopicReader::count)
            .transpose()?
            .unwrap_or(0);
        let mut load = RunConfig::new(server.addr, Workload::post("/ingest", spec.body_size, 1));
        load.mode = spec.load_mode();
        load.connections = spec.connections;
        load.threads = loadgen_threads;
        load.requests = None;
        load.duration = Some(pass);
        load.server_pid = Some(server.pid());
        // One session for everything sent to this server: each criterion sample times
        // requests over connections that are already open and warm.
        let session = Session::start(&load)?;
        Ok(Self {
            server,
            session,
            reader,
            before,
            tally: Tally::default(),
            failure: None,
        })
    }

    /// One criterion sample: `iters` requests, timed by the load generator.
    fn sample(&mut self, iters: u64) -> Duration {
        if self.failure.is_some() {
            // Already failed: do not hammer a broken server; criterion still needs a time.
            return Duration::from_secs(1);
        }
        self.load(Some(iters), None)
            .map_or(Duration::from_secs(1), |r| {
                Duration::from_secs_f64(r.elapsed_s.max(1e-9))
            })
    }

    /// A fixed-duration run (an interleaved round's turn, or the latency pass), with the
    /// server's CPU µs per answered request over it.
    fn timed_run(&mut self, duration: Duration) -> Option<(loadgen::Report, Option<f64>)> {
        if self.failure.is_some() {
            return None;
        }
        let before = self.server.cpu_time();
        let report = self.load(None, Some(duration))?;
        let cpu = match (before, self.server.cpu_time()) {
            (Some(a), Some(b)) if report.completed > 0 => {
                Some(b.saturating_sub(a).as_secs_f64() * 1e6 / report.completed as f64)
            }
            _ => None,
        };
        Some((report, cpu))
    }

    /// Runs a load, counts what it got, and remembers the first failure. A stalled run's
    /// report is still returned (and counted): it says what was measured before the stall.
    fn load(
        &mut self,
        requests: Option<u64>,
        duration: Option<Duration>,
    ) -> Option<loadgen::Report> {
        match self.session.run(requests, duration) {
            Ok(r) => {
                self.tally.add(&r);
                Some(r)
            }
            Err(LoadError::Stalled(r)) | Err(LoadError::TimeLimit { report: r, .. }) => {
                self.tally.add(&r);
                self.failure = Some(r.stall_summary());
                None
            }
            Err(e) => {
                self.failure = Some(e.to_string());
                None
            }
        }
    }

    /// Closes the load generator's connections, stops the server (SIGTERM: it flushes) and
    /// checks that every 2xx answer has its record in Kafka.
    fn finish(self, method: CountMethod) -> (Tally, Verification) {
        let Self {
            server,
            session,
            reader,
            before,
            tally,
            failure,
        } = self;
        drop(session);
        let exit = server.stop(Duration::from_secs(60));
        let mut problems: Vec<String> = failure.into_iter().collect();
        let landed = match reader.as_ref().map(TopicReader::count).transpose() {
            Ok(n) => n.unwrap_or(tally.ok).saturating_sub(before),
            Err(e) => {
                problems.push(format!("counting the records in Kafka: {e:#}"));
                0
            }
        };
        if tally.errors > 0 {
            problems.push(format!(
                "{} requests failed without an answer",
                tally.errors
            ));
        }
        if tally.non_2xx > 0 {
            problems.push(format!("{} answers were not 2xx", tally.non_2xx));
        }
        if landed != tally.ok {
            problems.push(format!(
                "{} records landed in Kafka but {} requests were answered 2xx",
                landed, tally.ok
            ));
        }
        let clean_exit = matches!(&exit, Ok(s) if s.success());
        if !clean_exit {
            problems.push(match exit {
                Ok(s) => format!("server exited with {s} after SIGTERM"),
                Err(e) => format!("{e:#}"),
            });
        }
        let passed = problems.is_empty();
        (
            tally,
            Verification {
                ok: tally.ok,
                landed,
                method,
                errors: tally.errors,
                non_2xx: tally.non_2xx,
                stalls: tally.stalls,
                clean_exit,
                passed,
                problems,
            },
        )
    }
}

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}
