//! The runner behind `cargo bench`: per workload, blocks of fresh server processes with
//! balanced rounds (`blocks.rs`; the verdict's replicates), then one more set of fresh
//! processes, the mechanism block, with task metrics on (they cost each poll ~0.3 µs, so
//! the verdict blocks run without): a mechanism round (syscalls counted), criterion's
//! samples, the latency curve (`curve.rs`, open-loop passes, cores kept awake by
//! `awake.rs`), a latency pass at saturation and a profiling pass (`profile.rs`: flame
//! graphs). Each process is stopped (SIGTERM: it flushes), and what landed in Kafka is
//! checked per runtime over all its processes (`ledger.rs`, [`crate::results::verify`]).
//!
//! Results land in `results/latest/raw/<workload>/<runtime>.json`; criterion's own estimates
//! in `target/criterion/<workload>/<runtime>/`. [`crate::report`] joins the two.
//! The workloads themselves are in [`crate::workload`].

mod awake;
mod blocks;
mod broker;
mod curve;
mod ledger;
mod profile;
mod scrape;
mod stop;
mod subject;

use criterion::{BenchmarkId, Criterion, Throughput};

use crate::layout::Layout;
use crate::results::{
    assess_efficiency, assess_kafka_cost, assess_rounds, write_json, Paths, RawResult,
};
use crate::server::IoUringUnavailable;
use crate::settings::Settings;
use crate::workload::{Spec, Timing};
use blocks::Purpose;
pub use broker::Broker;
pub use ledger::read_back;
use ledger::Ledger;
use subject::Subject;

/// One runtime of a workload: its results so far and its delivery account (`None` once
/// it was skipped or failed to start).
struct Slot {
    raw: RawResult,
    ledger: Option<Ledger>,
}

/// Runs one workload: `rules.blocks` blocks, each with fresh server processes for every
/// runtime (tokio, tokio-uring and tokio's twin, the A/A control) and a Latin square of
/// rounds (`blocks.rs`); then the mechanism block (fresh processes, task metrics on): a
/// mechanism round with syscalls counted, criterion's samples (for reference), the latency
/// curve, a latency pass and a profiling pass. Every process is stopped with SIGTERM (it flushes), and at the end what
/// landed in Kafka is checked once per runtime over all its processes. Returns the
/// problems found (empty: all verified).
pub fn run_workload(
    c: &mut Criterion,
    spec: &Spec,
    opts: &Settings,
    layout: &Layout,
    broker: &Broker,
    paths: &Paths,
) -> Vec<String> {
    let timing = opts.profile.timing();
    // Every runtime of a workload is measured with the same layout and thread counts.
    let loadgen_threads = layout.loadgen_threads().min(spec.connections);
    let mut problems = Vec::new();
    let mut slots: Vec<Slot> = spec
        .runtimes
        .iter()
        .map(|&runtime| {
            let raw = RawResult::new(
                spec,
                runtime,
                opts.profile,
                (loadgen_threads, layout.server_threads()),
                layout.label(),
            );
            let ledger = Ledger::open(spec, runtime, broker)
                .map_err(|e| problems.push(format!("{}/{}: {e:#}", spec.name, runtime.label())))
                .ok();
            Slot { raw, ledger }
        })
        .collect();
    let blocks = opts.rules.blocks.max(1);
    let mut efficiency_rate = None;
    // Blocks 0..blocks decide the verdicts; one more, the mechanism block, starts fresh
    // processes with task metrics on for everything else.
    for block in 0..=blocks {
        let mechanism = block == blocks;
        let block_started = std::time::Instant::now();
        let mut subjects = start_block(
            spec,
            &mut slots,
            opts,
            (layout, loadgen_threads, mechanism),
            broker,
            &mut problems,
        );
        let mut live: Vec<(&mut RawResult, &mut Subject)> = slots
            .iter_mut()
            .zip(subjects.iter_mut())
            .filter_map(|(slot, s)| Some((&mut slot.raw, s.as_mut()?)))
            .collect();
        let mut ok;
        if mechanism {
            let purpose = Purpose::Mechanism {
                syscalls: opts.count_syscalls,
            };
            ok = blocks::run(&mut live, block, opts.seed, &timing, purpose);
            if ok {
                problems.extend(last_block(c, spec, opts, layout, paths, &mut live, &timing));
            }
        } else {
            ok = blocks::run(&mut live, block, opts.seed, &timing, Purpose::Verdict);
            if block == 0 {
                efficiency_rate = blocks::efficiency_rate(&live, opts.rules.efficiency_load);
            }
            if let (true, Some(rate)) = (ok, efficiency_rate) {
                let purpose = Purpose::Efficiency { rate };
                ok = blocks::run(&mut live, block, opts.seed, &timing, purpose);
            }
        }
        drop(live);
        for (slot, ended) in slots.iter_mut().zip(stop::finish_all(subjects)) {
            if let (Some(e), Some(ledger)) = (ended, slot.ledger.as_mut()) {
                slot.raw.failed_samples += e.failed_samples;
                slot.raw.lives += 1;
                ledger.close_life(e.tally, &e.ids, e.exit, e.failure);
            }
        }
        let took = block_started.elapsed().as_secs_f64();
        if mechanism {
            eprintln!("{}: mechanism block done in {took:.1} s", spec.name);
        } else {
            eprintln!(
                "{}: block {}/{blocks} done in {took:.1} s",
                spec.name,
                block + 1
            );
        }
        if !ok {
            problems.push(if mechanism {
                format!("{}: the mechanism block's load failed", spec.name)
            } else {
                format!(
                    "{}: blocks ended at block {} after a failed load",
                    spec.name,
                    block + 1
                )
            });
            break;
        }
    }
    let of = |rt| slots.iter().find(|s: &&Slot| s.raw.runtime == rt);
    if let Some(a) = assess_rounds(
        |rt| of(rt).map_or(&[][..], |s| &s.raw.round_samples[..]),
        &opts.rules,
    ) {
        eprintln!(
            "{}: {} after {} blocks",
            spec.name,
            a.verdict.text(),
            a.blocks
        );
    }
    if let (Some(a), Some(rate)) = (
        assess_efficiency(
            |rt| of(rt).map_or(&[][..], |s| &s.raw.efficiency_samples[..]),
            &opts.rules,
        ),
        efficiency_rate,
    ) {
        eprintln!(
            "{}: at {rate:.0} req/s: {}",
            spec.name,
            a.verdict.efficiency_text()
        );
    }
    for c in assess_kafka_cost(
        |rt, paced| of(rt).map_or(&[][..], |s| s.raw.turns(paced)),
        &opts.rules,
    ) {
        eprintln!("{}: {}", spec.name, c.line());
    }
    for Slot { mut raw, ledger } in slots {
        if let Some(ledger) = ledger {
            let (tally, v) = ledger.verify(broker);
            eprintln!("{}/{}: {}", spec.name, raw.runtime.label(), v.summary());
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

/// Starts a fresh server process for every runtime still in the workload. A runtime whose
/// kernel forbids io_uring is skipped from then on, with the reason; any other start-up
/// failure is a problem and ends that runtime's part.
fn start_block(
    spec: &Spec,
    slots: &mut [Slot],
    opts: &Settings,
    (layout, loadgen_threads, monitored): (&Layout, usize, bool),
    broker: &Broker,
    problems: &mut Vec<String>,
) -> Vec<Option<Subject>> {
    slots
        .iter_mut()
        .map(|slot| {
            let runtime = slot.raw.runtime;
            let ledger = slot.ledger.as_mut()?;
            match Subject::start(
                spec,
                runtime,
                &ledger.topic,
                broker,
                layout,
                loadgen_threads,
                opts,
                monitored,
            ) {
                Ok(s) => {
                    slot.raw.server_flags = s.flags.clone();
                    slot.raw.server_ready = Some(s.server.ready_line.clone());
                    Some(s)
                }
                Err(e)
                    if runtime.is_uring() && e.downcast_ref::<IoUringUnavailable>().is_some() =>
                {
                    eprintln!("{}/{}: skipped: {e:#}", spec.name, runtime.label());
                    slot.raw.skipped = Some(format!("{e:#}"));
                    slot.ledger = None;
                    None
                }
                Err(e) => {
                    problems.push(format!("{}/{}: {e:#}", spec.name, runtime.label()));
                    ledger.failure.get_or_insert(format!("start-up: {e:#}"));
                    None
                }
            }
        })
        .collect()
}

/// On the mechanism block's processes, after its mechanism round: criterion's samples (for
/// reference; the twin is not sampled), the latency curve, and a latency pass each.
fn last_block(
    c: &mut Criterion,
    spec: &Spec,
    opts: &Settings,
    layout: &Layout,
    paths: &Paths,
    live: &mut [(&mut RawResult, &mut Subject)],
    timing: &Timing,
) -> Vec<String> {
    let mut problems = Vec::new();
    // Criterion's estimates written from here on are this workload's.
    let group_started = std::time::SystemTime::now();
    let mut group = c.benchmark_group(&spec.name);
    group
        .throughput(Throughput::Elements(1))
        .warm_up_time(timing.warm_up)
        .measurement_time(timing.measurement)
        .sample_size(timing.samples);
    for (raw, s) in live.iter_mut() {
        if raw.runtime.is_compared() {
            group.bench_function(BenchmarkId::from_parameter(raw.runtime.label()), |b| {
                b.iter_custom(|iters| s.sample(iters));
            });
        }
    }
    group.finish();
    // Keep this run's estimates with its results: criterion's folder moves on.
    for (raw, _) in live.iter() {
        if raw.runtime.is_compared() {
            if let Err(e) = paths.keep_estimate(&spec.name, raw.runtime, group_started) {
                problems.push(format!(
                    "{}/{}: keeping criterion's estimate: {e}",
                    spec.name,
                    raw.runtime.label()
                ));
            }
        }
    }
    if spec.curve {
        curve::run(live, &opts.curves, layout, &paths.raw_dir(&spec.name));
    }
    for (raw, s) in live.iter_mut() {
        if raw.runtime.is_compared() {
            if let Some((r, sample)) = s.timed_run(timing.latency_pass) {
                raw.latency_pass = Some(r);
                raw.latency_pass_cpu_us = sample.cpu_us_per_request();
            }
        }
    }
    if opts.flamegraphs {
        profile::run(
            live,
            layout,
            &paths.raw_dir(&spec.name),
            timing.profile_pass,
        );
    } else {
        for (raw, _) in live.iter_mut() {
            raw.cpu_profile_skipped = Some("BENCH_FLAMEGRAPHS=0".into());
        }
    }
    problems
}
