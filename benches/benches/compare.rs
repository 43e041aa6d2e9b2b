//! `cargo bench`: tokio vs tokio-uring, workload by workload. See `bench::suite`.
//!
//! Environment: `BENCH_PROFILE=quick|default|full`, `KAFKA_BROKERS=host:port` (a real
//! cluster; default: an embedded broker), `BENCH_RESULTS=dir` (default `results/latest`).
//! A positional argument filters workloads by substring: `cargo bench -- keepalive`;
//! alternatives with `|`: `cargo bench -- 'c256|pipelined'`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use bench::layout::Layout;
use bench::preflight;
use bench::report::{self, Environment, RunSetup};
use bench::results::{write_json, Paths};
use bench::server::{server_binaries, BuildProfile};
use bench::suite::{self, Broker};
use bench::workload::{self, Profile};
use clap::Parser as _;
use criterion::Criterion;
use loadgen::{Mode, RunConfig, Workload};

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cargo bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<bool> {
    // Criterion estimates written before this instant are an earlier run's.
    let started_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .ok();
    let profile = Profile::from_env()?;
    let rules = profile.rules()?;
    let curves = profile.curve_plan()?;
    let count_syscalls = std::env::var("BENCH_SYSCALLS").map_or(true, |v| v != "0");
    // The harness's self-test: server-tokio in every tokio-uring slot.
    let aa = match std::env::var("BENCH_AA").as_deref().map(str::trim) {
        Err(_) | Ok("") | Ok("0") => false,
        Ok("1") => true,
        Ok(other) => anyhow::bail!("BENCH_AA={other}: expected 1 (an A/A run) or 0"),
    };
    let seed = bench::analysis::design::seed_from_env().map_err(anyhow::Error::msg)?;
    // Ring flags for every server-uring of the run (e.g. "--coop-taskrun --single-issuer").
    let uring_flags: Vec<String> = std::env::var("BENCH_URING_FLAGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    // Pin first: every thread started later (load generator, embedded broker) inherits it.
    let layout = Layout::from_env()?;
    layout
        .pin_this_process()
        .context("pinning the bench to its cores")?;
    let paths = Paths::discover();
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let specs: Vec<_> = workload::catalogue(profile)
        .into_iter()
        // Criterion reads the same argument as a regex; `a|b` (alternatives of plain
        // names) selects the same workloads in both.
        .filter(|s| {
            filter
                .as_ref()
                .is_none_or(|f| f.split('|').any(|part| s.name.contains(part)))
        })
        .collect();
    if specs.is_empty() {
        anyhow::bail!("no workload matches {filter:?}");
    }
    let defaults =
        common::config::ServerArgs::try_parse_from(["server"]).context("server defaults")?;
    let loadgen_defaults = RunConfig::new(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        Workload::post("/ingest", 0, 0),
    );
    let needs = preflight::Needs {
        connections: specs.iter().map(|s| s.connections).max().unwrap_or(1),
        backlog: defaults.backlog,
        conn_per_request: specs.iter().any(|s| s.mode == Mode::ConnPerRequest),
        source_addrs: u32::from(loadgen_defaults.source_addrs),
        io_uring: specs
            .iter()
            .any(|s| s.runtimes.iter().any(|r| r.is_uring())),
        port: None,
    };
    let pre = preflight::run(&needs);
    for f in &pre.findings {
        eprintln!("preflight: {f}");
    }
    if pre.failed() {
        anyhow::bail!("preflight failed (see above)");
    }
    // Syscall counting needs tracefs: mounted here if it is not (root), else each server's
    // syscall columns say why they are empty.
    let syscalls_status = if count_syscalls {
        match bench::host::mount_tracefs() {
            Ok(p) => format!("counted with tracepoints ({})", p.display()),
            Err(why) => format!("not available: {why}"),
        }
    } else {
        "not counted (BENCH_SYSCALLS=0)".to_string()
    };
    eprintln!("runtime-bench: syscalls {syscalls_status}");
    eprintln!("runtime-bench: layout {}", layout.label());
    if aa {
        eprintln!("runtime-bench: A/A run (BENCH_AA=1): server-tokio in every tokio-uring slot");
    }
    // Build (or find) the release servers before anything is timed.
    let (tokio_bin, uring_bin) = server_binaries(BuildProfile::Release)?;
    let broker = Broker::from_env()?;
    eprintln!(
        "runtime-bench: profile {}, {} workloads, Kafka {} ({}), servers {} and {}",
        profile.label(),
        specs.len(),
        broker.addr,
        if broker.is_embedded() {
            "embedded"
        } else {
            "KAFKA_BROKERS"
        },
        tokio_bin.display(),
        uring_bin.display()
    );

    // A fresh results folder: a run never mixes with an older one's files.
    if paths.results.exists() {
        std::fs::remove_dir_all(&paths.results)
            .with_context(|| format!("clearing {}", paths.results.display()))?;
    }
    let producer = common::kafka::producer_config(&defaults.producer_settings(&broker.addr));
    let kafka = if broker.is_embedded() {
        "embedded (librdkafka mock cluster)".to_string()
    } else {
        broker.addr.clone()
    };
    let setup = RunSetup {
        started_unix_ms,
        rules: Some(rules),
        aa,
        seed: Some(seed),
        curves: Some(curves.clone()),
        syscalls: syscalls_status.clone(),
        profile: profile.label().into(),
        kafka: kafka.clone(),
        producer_config: common::kafka::effective_config(&producer),
        server_args: {
            let mut a = vec![
                "--listen 127.0.0.1:0".into(),
                format!("--brokers {}", broker.addr),
                "--topic <one per workload and runtime>".into(),
            ];
            if !uring_flags.is_empty() {
                a.push(format!(
                    "server-uring (BENCH_URING_FLAGS): {}",
                    uring_flags.join(" ")
                ));
            }
            a
        },
        workloads: specs.clone(),
    };
    write_json(&paths.results.join("config.json"), &setup)?;
    let mut env = Environment::collect(&paths.root, &pre.host);
    env.profile = profile.label().into();
    env.kafka = kafka;
    env.cpu_layout = layout.label();
    env.preflight = pre.findings;
    if env.io_uring != "available" {
        eprintln!(
            "runtime-bench: io_uring {}; tokio-uring runs will be skipped and reported as such",
            env.io_uring
        );
    }
    write_json(&paths.results.join("env.json"), &env)?;

    let opts = suite::RunOptions {
        profile,
        rules,
        count_syscalls,
        uring_flags,
        curves,
        aa,
        seed,
    };
    let mut c = Criterion::default().configure_from_args();
    let mut problems = Vec::new();
    for spec in &specs {
        problems.extend(suite::run_workload(
            &mut c, spec, &opts, &layout, &broker, &paths,
        ));
    }
    c.final_summary();

    let summary = report::build(&paths.results, Some(&paths.criterion))?;
    report::write(
        &summary,
        &paths.results,
        &paths.criterion.join("report").join("index.html"),
    )?;
    println!(
        "\nruntime-bench: criterion's tokio-uring / tokio ratios (for reference; the verdicts below come from the blocks)"
    );
    for w in &summary.workloads {
        let drift = if w.criterion_drift == Some(true) {
            "  (outside the blocks' interval: one pair of processes, measured one after the other)"
        } else {
            ""
        };
        println!(
            "  {:<26} {}{drift}",
            w.spec.name,
            w.ratio_uring_tokio.map_or("—".into(), |r| r.fmt_ratio())
        );
    }
    // Absolute: a relative BENCH_RESULTS or CRITERION_HOME is taken from the bench's own
    // working directory (cargo runs it in benches/), not from where `cargo bench` was typed.
    let shown = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    println!(
        "runtime-bench: report in {}/ (report.html, summary.md, summary.json, env.json)",
        shown(&paths.results).display()
    );
    println!(
        "runtime-bench: criterion's reports in {}",
        shown(&paths.criterion.join("report").join("index.html")).display()
    );
    if aa {
        println!("\nruntime-bench: A/A RUN (BENCH_AA=1): server-tokio ran in every tokio-uring slot; a \"faster\" verdict below is a false positive");
    }
    println!("\nruntime-bench: verdicts (tokio-uring / tokio, over blocks of fresh processes):");
    for w in &summary.workloads {
        match &w.assessment {
            Some(a) => println!(
                "  {:<26} {}  [{} blocks, ratio {}, A/A floor {}]",
                w.spec.name,
                a.verdict.text(),
                a.blocks,
                a.ab.as_ref().map_or("—".into(), |p| p.fmt_ratio()),
                a.noise_floor
                    .map_or("not measured".into(), |f| format!("±{:.1} %", f * 100.0))
            ),
            None => println!(
                "  {:<26} no verdict: tokio-uring was not measured",
                w.spec.name
            ),
        }
    }
    println!("\nruntime-bench: efficiency (server cores' CPU per request, every runtime paced at one rate, over the same blocks):");
    for w in &summary.workloads {
        match (&w.efficiency, w.efficiency_rate) {
            (Some(a), Some(rate)) => println!(
                "  {:<26} at {} req/s: {}  [A/A floor {}]",
                w.spec.name,
                bench::report::human_rate(rate),
                a.verdict.efficiency_text(),
                a.noise_floor
                    .map_or("not measured".into(), |f| format!("±{:.1} %", f * 100.0))
            ),
            _ if !w.spec.paceable() => println!(
                "  {:<26} not paced (pipelined: the load generator sends a window per connection)",
                w.spec.name
            ),
            _ => println!("  {:<26} not measured", w.spec.name),
        }
    }
    problems.extend(summary.problems.iter().cloned());
    if problems.is_empty() && !summary.passed() {
        problems.push("a workload has no verified runtime".into());
    }
    problems.sort();
    problems.dedup();
    if problems.is_empty() {
        println!("runtime-bench: every workload verified (records in Kafka == 2xx answers, no errors, no stalls)");
        Ok(true)
    } else {
        eprintln!("runtime-bench: VERIFICATION FAILED:");
        for p in &problems {
            eprintln!("  - {p}");
        }
        Ok(false)
    }
}
