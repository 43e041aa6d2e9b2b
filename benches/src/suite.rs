//! The comparison suite behind `cargo bench`: profiles, workloads, and the runner that, per
//! workload and runtime, starts the server outside the timed part, lets criterion time
//! `iters` requests through the load generator, runs a fixed-duration latency pass, stops
//! the server (SIGTERM: it flushes), and verifies what landed in Kafka.
//!
//! Results land in `results/latest/raw/<workload>/<runtime>.json`; criterion's own estimates
//! in `target/criterion/<workload>/<runtime>/`. [`crate::report`] joins the two.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use common::embedded::EmbeddedKafka;
use common::landed::{CountMethod, TopicReader};
use criterion::{BenchmarkId, Criterion, Throughput};

use crate::layout::Layout;
use crate::loadgen::{self, LoadError, Mode, RunConfig, Workload};
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
    pub tally: Tally,
    pub verification: Option<Verification>,
    /// Why this runtime was not measured (e.g. io_uring unavailable).
    pub skipped: Option<String>,
}

/// Runs one workload for each of its runtimes as a criterion group. Returns the problems
/// found (empty: all verified).
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
    let mut group = c.benchmark_group(&spec.name);
    group
        .throughput(Throughput::Elements(1))
        .warm_up_time(warm_up)
        .measurement_time(measurement)
        .sample_size(samples);
    for &runtime in &spec.runtimes {
        let mut raw = RawResult {
            workload: spec.clone(),
            runtime,
            profile,
            loadgen_threads,
            server_threads: layout.server_threads(),
            layout: layout.label(),
            latency_pass: None,
            tally: Tally::default(),
            verification: None,
            skipped: None,
        };
        match measure(&mut group, spec, runtime, broker, layout, pass, &mut raw) {
            Ok(()) => {}
            Err(e)
                if runtime == Runtime::Uring
                    && format!("{e:#}").contains("io_uring unavailable") =>
            {
                eprintln!("{}/{}: skipped: {e:#}", spec.name, runtime.label());
                raw.skipped = Some(format!("{e:#}"));
            }
            Err(e) => problems.push(format!("{}/{}: {e:#}", spec.name, runtime.label())),
        }
        if let Some(v) = &raw.verification {
            for p in &v.problems {
                problems.push(format!("{}/{}: {p}", spec.name, runtime.label()));
            }
        }
        if let Err(e) = write_json(&paths.raw(&spec.name, runtime), &raw) {
            problems.push(format!(
                "{}/{}: writing raw result: {e:#}",
                spec.name,
                runtime.label()
            ));
        }
    }
    group.finish();
    problems
}

fn measure(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    spec: &Spec,
    runtime: Runtime,
    broker: &Broker,
    layout: &Layout,
    pass: Duration,
    raw: &mut RawResult,
) -> Result<()> {
    let loadgen_threads = raw.loadgen_threads;
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

    let load = |requests: Option<u64>, duration: Option<Duration>| {
        let mut l = RunConfig::new(server.addr, Workload::post("/ingest", spec.body_size, 1));
        l.mode = spec.load_mode();
        l.connections = spec.connections;
        l.threads = loadgen_threads;
        l.requests = requests;
        l.duration = duration;
        l.server_pid = Some(server.pid());
        l
    };
    let tally = RefCell::new(Tally::default());
    let failure = RefCell::new(None::<String>);
    group.bench_function(BenchmarkId::from_parameter(runtime.label()), |b| {
        b.iter_custom(|iters| {
            if failure.borrow().is_some() {
                // Already failed: do not hammer a broken server; criterion still needs a time.
                return Duration::from_secs(1);
            }
            match loadgen::run(&load(Some(iters), None)) {
                Ok(r) => {
                    tally.borrow_mut().add(&r);
                    Duration::from_secs_f64(r.elapsed_s.max(1e-9))
                }
                Err(LoadError::Stalled(r)) | Err(LoadError::TimeLimit { report: r, .. }) => {
                    tally.borrow_mut().add(&r);
                    *failure.borrow_mut() = Some(r.stall_summary());
                    Duration::from_secs(1)
                }
                Err(e) => {
                    *failure.borrow_mut() = Some(e.to_string());
                    Duration::from_secs(1)
                }
            }
        })
    });
    if failure.borrow().is_none() {
        match loadgen::run(&load(None, Some(pass))) {
            Ok(r) => {
                tally.borrow_mut().add(&r);
                raw.latency_pass = Some(r);
            }
            Err(LoadError::Stalled(r)) => {
                tally.borrow_mut().add(&r);
                *failure.borrow_mut() = Some(r.stall_summary());
                raw.latency_pass = Some(*r);
            }
            Err(e) => *failure.borrow_mut() = Some(e.to_string()),
        }
    }
    let exit = server.stop(Duration::from_secs(60));
    let tally = *tally.borrow();
    raw.tally = tally;
    let landed = reader
        .as_ref()
        .map(TopicReader::count)
        .transpose()?
        .unwrap_or(tally.ok)
        - before;
    let mut problems = Vec::new();
    if let Some(f) = failure.borrow().as_ref() {
        problems.push(f.clone());
    }
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
    raw.verification = Some(Verification {
        ok: tally.ok,
        landed,
        method: broker.method(),
        errors: tally.errors,
        non_2xx: tally.non_2xx,
        stalls: tally.stalls,
        clean_exit,
        passed: problems.is_empty(),
        problems,
    });
    Ok(())
}

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}
