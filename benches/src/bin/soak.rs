//! `soak`: one server at saturation for a long time (default 10 minutes), with the
//! per-second timeline, the server's RSS sampled every 5 s, and the delivery check at the
//! end. Connection-per-request against tokio-uring reproduces the blog's stall conditions
//! (connection churn at saturation on 2 cores).
//!
//! `cargo run --release -p runtime-bench --bin soak -- --runtime tokio-uring --mode conn-per-request`
//!
//! Writes `<out>/<runtime>-<mode>.json` (summary and the load generator's report) and
//! `<out>/<runtime>-<mode>.csv` (second, answered, errors, rss_kib). Exit 1 if any
//! criterion failed: a stall, an error, a lost record, or RSS growth of 10% or more after
//! warm-up. `KAFKA_BROKERS` selects a real cluster, as for `cargo bench` (default: embedded).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use bench::results::{verify, Evidence, Exit, Tally};
use bench::runtime::Runtime;
use bench::server::{ServerConfig, ServerProcess};
use bench::settings::Settings;
use bench::suite::{read_back, Broker};
use clap::{Parser, ValueEnum};
use common::config::{parse_duration, ServerArgs};
use common::landed::TopicReader;
use loadgen::ids::Ids;
use loadgen::{self, LoadError, Mode, RunConfig, Workload};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RuntimeArg {
    Tokio,
    TokioPerCore,
    TokioUring,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    Closed,
    ConnPerRequest,
}

/// Hold a server at saturation and watch it.
#[derive(Debug, Parser)]
struct Args {
    #[arg(long, value_enum)]
    runtime: RuntimeArg,
    #[arg(long, value_enum, default_value_t = ModeArg::Closed)]
    mode: ModeArg,
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    duration: Duration,
    /// RSS growth is measured from the end of this warm-up.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    warmup: Duration,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    #[arg(long, default_value_t = 1)]
    loadgen_threads: usize,
    #[arg(long, default_value = "results/soak")]
    out: PathBuf,
}

#[derive(Debug, serde::Serialize)]
struct SoakSummary {
    runtime: String,
    mode: String,
    duration_s: f64,
    connections: usize,
    answered: u64,
    ok: u64,
    rate: f64,
    errors: u64,
    stalls: u64,
    landed: u64,
    lost: i64,
    rss_after_warmup_kib: u64,
    rss_max_after_warmup_kib: u64,
    rss_end_kib: u64,
    rss_growth_pct: f64,
    min_answered_per_s: u64,
    passed: bool,
    problems: Vec<String>,
    loadgen: loadgen::LoadReport,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(a: Args) -> Result<bool> {
    let runtime = match a.runtime {
        RuntimeArg::Tokio => Runtime::Tokio,
        RuntimeArg::TokioPerCore => Runtime::TokioPerCore,
        RuntimeArg::TokioUring => Runtime::Uring,
    };
    let (mode, mode_label) = match a.mode {
        ModeArg::Closed => (Mode::Closed, "keepalive"),
        ModeArg::ConnPerRequest => (Mode::ConnPerRequest, "conn-per-request"),
    };
    let total = a.warmup + a.duration;
    let mut load = RunConfig::new(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        Workload::post("/ingest", 100, 1),
    );
    let needs = bench::preflight::Needs {
        connections: a.connections,
        backlog: ServerArgs::try_parse_from(["server"])?.backlog,
        conn_per_request: mode == Mode::ConnPerRequest,
        source_addrs: u32::from(load.source_addrs),
        io_uring: runtime == Runtime::Uring,
        port: None,
    };
    bench::preflight::check(&needs)?;
    // The same broker as `cargo bench`: embedded, or the cluster KAFKA_BROKERS names.
    let settings = Settings::from_env()?;
    let broker = Broker::start(settings.brokers.as_deref())?;
    let topic = format!(
        "soak-{}-{mode_label}-{}",
        runtime.label(),
        std::process::id()
    );
    broker.topic(&topic)?;
    let mut cfg = ServerConfig::new(runtime);
    cfg.brokers = Some(broker.addr.clone());
    cfg.topic = topic.clone();
    let server = ServerProcess::start(&cfg)?;
    let reader = TopicReader::new(&broker.addr, &topic, broker.method())?;
    let before = reader.count()?;
    eprintln!(
        "soak: {} {mode_label}, {} connections, {:?} warm-up + {:?}, server pid {}",
        runtime.label(),
        a.connections,
        a.warmup,
        a.duration,
        server.pid()
    );

    let pid = server.pid();
    let sampler = RssSampler::start(pid);
    // One run, the whole time measured (warm-up is only for the RSS baseline), so every
    // request sent is in the delivery check.
    load.addr = server.addr;
    load.mode = mode;
    load.connections = a.connections;
    load.threads = a.loadgen_threads;
    load.duration = Some(total);
    load.time_limit = total + Duration::from_secs(60);
    load.server_pid = Some(pid);
    load.progress = true;
    let (report, stall) = match loadgen::run(&load) {
        Ok(r) => (r, false),
        Err(LoadError::Stalled(r)) => (*r, true),
        Err(LoadError::TimeLimit { report, .. }) => (*report, true),
        Err(e) => return Err(e.into()),
    };
    let stderr_tail = server.stderr();
    let exit = match server.stop(Duration::from_secs(60)) {
        Ok(s) if s.success() => Exit::Clean,
        Ok(s) => Exit::Unclean(format!("unclean exit: {s}\n{stderr_tail}")),
        Err(e) => Exit::Unclean(format!("{e:#}")),
    };
    // Counted, and read back by request id (every record, or what the broker still holds).
    let (landed, ids) = read_back(
        &reader,
        before,
        report.ids.as_ref().unwrap_or(&Ids::default()),
    );
    let mut tally = Tally::default();
    tally.add(&report);

    let samples = sampler.stop();
    let rss = Rss::after(&samples, a.warmup.as_secs_f64());
    let (base, max_after, end, growth) = (rss.base, rss.max_after, rss.end, rss.growth_pct);
    let min_per_s = report
        .timeline
        .iter()
        .take(report.timeline.len().saturating_sub(1))
        .map(|s| s.answered)
        .min()
        .unwrap_or(0);

    let verification = verify(Evidence {
        tally,
        landed,
        method: broker.method(),
        exit,
        failure: stall.then(|| report.stall_summary()),
        ids,
    });
    let mut problems = verification.problems.clone();
    if growth >= 10.0 {
        problems.push(format!(
            "server RSS grew {growth:.1}% after warm-up ({base} -> {max_after} KiB)"
        ));
    }
    let summary = SoakSummary {
        runtime: runtime.label().into(),
        mode: mode_label.into(),
        duration_s: report.elapsed_s,
        connections: a.connections,
        answered: report.completed,
        ok: report.ok,
        rate: report.rate,
        errors: report.errors_total(),
        stalls: u64::from(stall),
        landed: verification.landed.unwrap_or(0),
        lost: report.ok as i64 - verification.landed.unwrap_or(0) as i64,
        rss_after_warmup_kib: base,
        rss_max_after_warmup_kib: max_after,
        rss_end_kib: end,
        rss_growth_pct: growth,
        min_answered_per_s: min_per_s,
        passed: problems.is_empty(),
        problems: problems.clone(),
        loadgen: report.clone(),
    };
    write_outputs(
        &a.out,
        &format!("{}-{mode_label}", runtime.label()),
        &summary,
        &samples,
    )?;
    println!(
        "| {} | {mode_label} | {:.0} s | {} | {:.0} | {} | {} | {} | {} | {} -> {} KiB ({:+.1}%) | {} |",
        runtime.label(),
        report.elapsed_s,
        report.completed,
        report.rate,
        min_per_s,
        report.errors_total(),
        u64::from(stall),
        summary.lost,
        base,
        max_after,
        growth,
        if summary.passed { "pass" } else { "FAIL" }
    );
    for p in &problems {
        eprintln!("soak: FAILED: {p}");
    }
    Ok(summary.passed)
}

/// Samples a process's RSS every 5 s on a thread of its own until stopped.
struct RssSampler {
    done: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(f64, u64)>>>,
    handle: std::thread::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::<(f64, u64)>::new()));
        let handle = {
            let (done, samples) = (done.clone(), samples.clone());
            std::thread::spawn(move || {
                let start = Instant::now();
                while !done.load(Ordering::Relaxed) {
                    if let (Some(r), Ok(mut s)) = (rss_kib(pid), samples.lock()) {
                        s.push((start.elapsed().as_secs_f64(), r));
                    }
                    let tick = Instant::now();
                    while tick.elapsed() < Duration::from_secs(5) && !done.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })
        };
        Self {
            done,
            samples,
            handle,
        }
    }

    /// Stops sampling; (seconds since start, RSS KiB) per sample.
    fn stop(self) -> Vec<(f64, u64)> {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.handle.join();
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// RSS after the warm-up: its first sample, the highest, the last, and the growth.
struct Rss {
    base: u64,
    max_after: u64,
    end: u64,
    growth_pct: f64,
}

impl Rss {
    fn after(samples: &[(f64, u64)], warm_s: f64) -> Self {
        let after = || samples.iter().filter(|(t, _)| *t >= warm_s).map(|s| s.1);
        let base = after().next().unwrap_or(0);
        let max_after = after().max().unwrap_or(0);
        let growth_pct = if base > 0 {
            (max_after as f64 - base as f64) / base as f64 * 100.0
        } else {
            0.0
        };
        Self {
            base,
            max_after,
            end: samples.last().map_or(0, |s| s.1),
            growth_pct,
        }
    }
}

/// `<out>/<stem>.json` (the summary) and `<out>/<stem>.csv` (the timeline with RSS).
fn write_outputs(
    out: &std::path::Path,
    stem: &str,
    summary: &SoakSummary,
    samples: &[(f64, u64)],
) -> Result<()> {
    std::fs::create_dir_all(out)?;
    bench::results::write_json(&out.join(format!("{stem}.json")), summary)?;
    let mut csv = String::from("second,answered,errors,rss_kib\n");
    for s in &summary.loadgen.timeline {
        let rss = samples
            .iter()
            .rev()
            .find(|(t, _)| *t <= s.second as f64 + 1.0)
            .map_or(0, |x| x.1);
        csv.push_str(&format!("{},{},{},{rss}\n", s.second, s.answered, s.errors));
    }
    std::fs::write(out.join(format!("{stem}.csv")), csv)?;
    Ok(())
}
