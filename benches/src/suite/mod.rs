//! The runner behind `cargo bench`: per workload, every runtime's server is started outside
//! the timed part, criterion times `iters` requests through the load generator, then
//! interleaved rounds (`rounds.rs`), the latency curve (`curve.rs`, open-loop passes, cores
//! kept awake by `awake.rs`) and a latency pass at saturation run, each server is stopped
//! (SIGTERM: it flushes), and what landed in Kafka is checked ([`crate::results::verify`]).
//!
//! Results land in `results/latest/raw/<workload>/<runtime>.json`; criterion's own estimates
//! in `target/criterion/<workload>/<runtime>/`. [`crate::report`] joins the two.
//! The workloads themselves are in [`crate::workload`].

mod awake;
mod broker;
mod curve;
mod rounds;
mod subject;

use criterion::{BenchmarkId, Criterion, Throughput};

use crate::analysis::Rules;
use crate::layout::Layout;
use crate::results::{write_json, Paths, RawResult};
use crate::server::IoUringUnavailable;
use crate::workload::{CurvePlan, Profile, Spec};
pub use broker::Broker;
use subject::Subject;

/// What every workload of a run shares.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub profile: Profile,
    /// How verdicts are decided and how many rounds they may take.
    pub rules: Rules,
    /// Count the servers' syscalls (`BENCH_SYSCALLS`, default on).
    pub count_syscalls: bool,
    /// Ring flags for every server-uring (`BENCH_URING_FLAGS`).
    pub uring_flags: Vec<String>,
    /// The latency curves' rates, durations and objectives.
    pub curves: CurvePlan,
    /// The widest A/A noise floor measured so far in the run: the one that holds for a
    /// workload without a twin of its own.
    pub run_floor: std::cell::Cell<Option<f64>>,
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
    opts: &RunOptions,
    layout: &Layout,
    broker: &Broker,
    paths: &Paths,
) -> Vec<String> {
    let (profile, rules) = (opts.profile, &opts.rules);
    let timing = profile.timing();
    // Every runtime of a workload is measured with the same layout and thread counts.
    let loadgen_threads = layout.loadgen_threads().min(spec.connections);
    let mut problems = Vec::new();
    let mut subjects = Vec::new();
    for &runtime in &spec.runtimes {
        let mut raw = RawResult::new(
            spec,
            runtime,
            profile,
            (loadgen_threads, layout.server_threads()),
            layout.label(),
        );
        let subject = match Subject::start(spec, runtime, broker, layout, loadgen_threads, opts) {
            Ok(s) => Some(s),
            Err(e) if runtime.is_uring() && e.downcast_ref::<IoUringUnavailable>().is_some() => {
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

    // Criterion's estimates written from here on are this workload's.
    let group_started = std::time::SystemTime::now();
    let mut group = c.benchmark_group(&spec.name);
    group
        .throughput(Throughput::Elements(1))
        .warm_up_time(timing.warm_up)
        .measurement_time(timing.measurement)
        .sample_size(timing.samples);
    for (raw, subject) in &mut subjects {
        if let (Some(s), true) = (subject, raw.runtime.is_compared()) {
            group.bench_function(BenchmarkId::from_parameter(raw.runtime.label()), |b| {
                b.iter_custom(|iters| s.sample(iters));
            });
        }
    }
    group.finish();
    // Keep this run's estimates with its results: criterion's folder moves on.
    for (raw, subject) in &subjects {
        if subject.is_some() && raw.runtime.is_compared() {
            if let Err(e) = paths.keep_estimate(&spec.name, raw.runtime, group_started) {
                problems.push(format!(
                    "{}/{}: keeping criterion's estimate: {e}",
                    spec.name,
                    raw.runtime.label()
                ));
            }
        }
    }

    let mut live: Vec<(&mut RawResult, &mut Subject)> = subjects
        .iter_mut()
        .filter_map(|(raw, s)| Some((raw, s.as_mut()?)))
        .collect();
    let run_floor = opts.run_floor.get();
    let taken = rounds::run(&mut live, timing.turn, run_floor, rules);
    if taken > 0 {
        let a = rounds::assessment(&live, run_floor, rules);
        if !a.floor_borrowed {
            if let Some(f) = a.noise_floor {
                opts.run_floor.set(Some(run_floor.map_or(f, |r| r.max(f))));
            }
        }
        eprintln!(
            "{}: {} after {taken} interleaved rounds",
            spec.name,
            a.verdict.text()
        );
    }
    if spec.curve {
        curve::run(&mut live, &opts.curves, layout, &paths.raw_dir(&spec.name));
    }
    for (raw, s) in &mut live {
        if raw.runtime.is_compared() {
            if let Some((r, sample)) = s.timed_run(timing.latency_pass) {
                raw.latency_pass = Some(r);
                raw.latency_pass_cpu_us = sample.cpu_us_per_request();
            }
        }
        raw.syscalls_unavailable = s.syscalls.as_ref().err().cloned();
        raw.server_flags = s.flags.clone();
        raw.server_ready = Some(s.server.ready_line.clone());
    }

    for (mut raw, subject) in subjects {
        if let Some(s) = subject {
            raw.failed_samples = s.failed_samples;
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
