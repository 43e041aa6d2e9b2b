//! Latency curves: after a workload's blocks, open-loop passes at fixed fractions of the lower
//! runtime's capacity (the median round rate of tokio or tokio-uring, whichever is lower),
//! the same rates for every runtime. Each point is measured in `plan.passes` passes per
//! runtime, order alternating (A B B A at one rate, B A A B at the next); each pass warms
//! up on its own schedule and connections before measuring (the warm-up's answers are
//! counted for the delivery check, not in the point), so no gap lets the queues drain
//! between warm-up and measurement. A point's histograms (all its passes together) go to
//! `raw/<workload>/curve/` as `.hgrm` files and one interval log per runtime.

use std::path::Path;

use hdrhistogram::Histogram;

use super::awake::KeepAwake;
use super::Subject;
use crate::analysis::median;
use crate::layout::Layout;
use crate::results::{Curve, CurvePass, CurvePoint, RawResult, RoundSample};
use crate::runtime::Runtime;
use crate::workload::CurvePlan;
use loadgen::{hdr, Latency, LoadReport, Schedule};

/// The base rate: the lower of tokio's and tokio-uring's median round rates.
fn base_rate(live: &[(&mut RawResult, &mut Subject)]) -> Option<(f64, String)> {
    live.iter()
        .filter(|(r, _)| matches!(r.runtime, Runtime::Tokio | Runtime::Uring))
        .filter_map(|(r, _)| {
            let rates: Vec<f64> = r.round_samples.iter().map(|s| s.rate).collect();
            Some((median(&rates)?, r.runtime.label()))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(rate, label)| {
            (
                rate,
                format!("{label}'s median rate over this workload's blocks, the lower of the two runtimes'"),
            )
        })
}

/// Runs the curve of every compared runtime (not the A/A twin, not the null-sink
/// controls); records it in each one's result and writes the histograms under `raw_dir`.
pub(super) fn run(
    live: &mut [(&mut RawResult, &mut Subject)],
    plan: &CurvePlan,
    layout: &Layout,
    raw_dir: &Path,
) {
    let curved: Vec<usize> = (0..live.len())
        .filter(|&i| live[i].0.runtime.is_compared())
        .collect();
    let Some((base, base_from)) = base_rate(live) else {
        for &i in &curved {
            live[i].0.curve_skipped = Some("no rounds to take the capacity from".into());
        }
        return;
    };
    let (awake, awake_note) = if plan.keep_awake {
        let (a, note) = KeepAwake::start(&layout.cores());
        (Some(a), note)
    } else {
        (None, None)
    };
    if let Some(n) = &awake_note {
        eprintln!("latency curve: keeping cores awake: {n}");
    }
    for &i in &curved {
        live[i].0.curve = Some(Curve {
            base_rate: base,
            base_from: base_from.clone(),
            cores_awake: awake.is_some() && awake_note.is_none(),
            hlog: None,
            points: Vec::new(),
        });
    }
    let mut failed = vec![false; live.len()];
    // Each runtime's histograms, tagged, for its interval log.
    let mut logs: Vec<Vec<(String, Histogram<u64>)>> = vec![Vec::new(); live.len()];
    for (step, &fraction) in plan.fractions.iter().enumerate() {
        let rate = base * fraction;
        let mut passes: Vec<Vec<Pass>> = (0..live.len()).map(|_| Vec::new()).collect();
        for pass in 0..plan.passes.max(1) {
            let mut order = curved.clone();
            if (step + pass) % 2 == 1 {
                order.reverse();
            }
            for i in order {
                if failed[i] {
                    continue;
                }
                let (raw, subject) = &mut live[i];
                let spin0 = awake.as_ref().map(KeepAwake::cpu);
                let measured = subject.paced_run(rate, plan.warmup, plan.duration);
                let spun = awake
                    .as_ref()
                    .map(KeepAwake::cpu)
                    .zip(spin0)
                    .map(|(b, a)| b.saturating_sub(a));
                let Some((report, sample)) = measured else {
                    // The subject holds the failure; its delivery check reports it.
                    failed[i] = true;
                    raw.curve_skipped = Some(format!(
                        "stopped at {:.0} % of the base rate: the load failed (see the delivery check)",
                        fraction * 100.0
                    ));
                    continue;
                };
                // The load side's share, the spinners' CPU taken out.
                let load_share = sample.load_share.map(|l| {
                    let spin = spun.map_or(0.0, |d| d.as_secs_f64())
                        / (sample.wall_s * layout.bench_cores() as f64).max(1e-9);
                    (l - spin).max(0.0)
                });
                passes[i].push(Pass {
                    report,
                    sample,
                    load_share,
                });
            }
        }
        for &i in &curved {
            if failed[i] || passes[i].is_empty() {
                continue;
            }
            let raw = &mut *live[i].0;
            let hists = merged(&passes[i]);
            let mut p = point(fraction, rate, &passes[i], hists.as_ref());
            p.hgrm = write_histograms(raw_dir, raw.runtime, fraction, hists.as_ref());
            if let Some((latency, service)) = hists {
                let pct = format!("{:03.0}pct", fraction * 100.0);
                logs[i].push((format!("{pct}-corrected"), latency));
                logs[i].push((format!("{pct}-uncorrected"), service));
            }
            if let Some(c) = raw.curve.as_mut() {
                c.points.push(p);
            }
        }
    }
    drop(awake);
    for &i in &curved {
        let raw = &mut *live[i].0;
        let hlog = write_hlog(raw_dir, raw.runtime, &logs[i], plan);
        if let Some(c) = raw.curve.as_mut() {
            c.hlog = hlog;
        }
    }
}

/// One measured pass of a point: the load generator's report, what the server and this
/// process used, and the load side's share without the keep-awake spinners.
struct Pass {
    report: LoadReport,
    sample: RoundSample,
    load_share: Option<f64>,
}

/// The passes' corrected and uncorrected histograms added up (`None` if a pass has none).
fn merged(passes: &[Pass]) -> Option<(Histogram<u64>, Histogram<u64>)> {
    let mut it = passes.iter().map(|p| p.report.histograms.as_deref());
    let first = it.next()??;
    let (mut latency, mut service) = (first.latency.clone(), first.service.clone());
    for h in it {
        let h = h?;
        // Same bounds everywhere (the load generator's): addition cannot fail.
        latency.add(&h.latency).ok()?;
        service.add(&h.service).ok()?;
    }
    Some((latency, service))
}

/// A point from its passes: percentiles of all their answers together, rates and CPU over
/// all of them, and the worst pass's schedule, load side and own delay (a point is usable
/// only if every pass was).
fn point(
    fraction: f64,
    offered: f64,
    passes: &[Pass],
    merged: Option<&(Histogram<u64>, Histogram<u64>)>,
) -> CurvePoint {
    let answered: u64 = passes.iter().map(|p| p.report.completed).sum();
    let elapsed: f64 = passes.iter().map(|p| p.report.elapsed_s).sum();
    let (corrected, uncorrected) = match merged {
        Some((l, s)) => (Latency::of(l), Latency::of(s)),
        None => (
            passes[0].report.latency_us,
            passes[0].report.service_us.unwrap_or_default(),
        ),
    };
    let schedules: Vec<Schedule> = passes.iter().filter_map(|p| p.report.schedule).collect();
    let mut schedule = schedules
        .iter()
        .copied()
        .max_by(|a, b| a.behind.total_cmp(&b.behind))
        .unwrap_or(Schedule {
            offered_rate: offered,
            sent: 0,
            behind: 0.0,
            fell_behind: true,
            lag_us: Default::default(),
            client_lag_us: Default::default(),
        });
    if let Some(own) = schedules.iter().max_by_key(|s| s.client_lag_us.p99) {
        schedule.client_lag_us = own.client_lag_us;
    }
    schedule.sent = schedules.iter().map(|s| s.sent).sum();
    let mean = |f: &dyn Fn(&Pass) -> Option<f64>| {
        let v: Vec<f64> = passes.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let server_cpu: Option<f64> = passes
        .iter()
        .map(|p| Some(p.sample.cpu_us_per_request()? * p.sample.answered as f64))
        .sum();
    let all_answered: u64 = passes.iter().map(|p| p.sample.answered).sum();
    CurvePoint {
        fraction,
        offered,
        achieved: if elapsed > 0.0 {
            answered as f64 / elapsed
        } else {
            0.0
        },
        corrected,
        uncorrected,
        schedule,
        errors: passes.iter().map(|p| p.report.errors_total()).sum(),
        non_2xx: passes.iter().map(|p| p.report.non_2xx()).sum(),
        cpu_us_per_request: server_cpu.map(|c| c / all_answered.max(1) as f64),
        server_share: mean(&|p| p.sample.server_share),
        steal: mean(&|p| p.sample.steal),
        load_share: passes
            .iter()
            .filter_map(|p| p.load_share)
            .max_by(f64::total_cmp),
        hgrm: Vec::new(),
        passes: passes
            .iter()
            .map(|p| CurvePass {
                achieved: p.report.rate,
                corrected: p.report.latency_us,
                own_delay_p99: p.report.schedule.map_or(0, |s| s.client_lag_us.p99),
                load_share: p.load_share,
                cpu_us_per_request: p.sample.cpu_us_per_request(),
            })
            .collect(),
    }
}

/// `tokio-050pct`: a point's file stem.
fn stem(runtime: Runtime, fraction: f64) -> String {
    format!("{}-{:03.0}pct", runtime.label(), fraction * 100.0)
}

/// The point's corrected and uncorrected `.hgrm` files (all its passes together); the
/// names written (relative to the raw folder). A file that cannot be written is reported
/// and left out.
fn write_histograms(
    raw_dir: &Path,
    runtime: Runtime,
    fraction: f64,
    merged: Option<&(Histogram<u64>, Histogram<u64>)>,
) -> Vec<String> {
    let Some((latency, service)) = merged else {
        return Vec::new();
    };
    let stem = stem(runtime, fraction);
    let mut written = Vec::new();
    for (suffix, hist) in [("", latency), (".uncorrected", service)] {
        let rel = format!("curve/{stem}{suffix}.hgrm");
        let path = raw_dir.join(&rel);
        let result = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::File::create(&path))
            .and_then(|mut f| hdr::write_hgrm(hist, &mut f));
        match result {
            Ok(()) => written.push(rel),
            Err(e) => eprintln!("latency curve: writing {}: {e}", path.display()),
        }
    }
    written
}

/// Every point's two histograms in one interval log, tagged `<fraction>pct-corrected` and
/// `<fraction>pct-uncorrected`: HdrHistogram's tools can add and re-plot them.
fn write_hlog(
    raw_dir: &Path,
    runtime: Runtime,
    tagged: &[(String, Histogram<u64>)],
    plan: &CurvePlan,
) -> Option<String> {
    if tagged.is_empty() {
        return None;
    }
    let rel = format!("curve/{}.hlog", runtime.label());
    let path = raw_dir.join(&rel);
    let refs: Vec<(&str, &Histogram<u64>)> = tagged.iter().map(|(t, h)| (t.as_str(), h)).collect();
    let comment = format!(
        "runtime-bench latency curve, {}: open-loop points, corrected (from the intended send) and uncorrected",
        runtime.label()
    );
    let written = std::fs::File::create(&path).and_then(|mut f| {
        hdr::write_hlog(
            &refs,
            plan.duration * plan.passes.max(1) as u32,
            &comment,
            &mut f,
        )
    });
    match written {
        Ok(()) => Some(rel),
        Err(e) => {
            eprintln!("latency curve: writing {}: {e}", path.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgen::measurements::Stats;
    use loadgen::{RunConfig, Workload};
    use std::time::Duration;

    /// A paced pass of 1000 answers at `latency_us`, its load generator's own delay
    /// `own_us` for every request, its load side `load` busy.
    fn pass(latency_us: u64, own_us: u64, load: f64) -> Pass {
        let mut cfg = RunConfig::new(([127, 0, 0, 1], 9).into(), Workload::post("/", 10, 1));
        cfg.rate = Some(1000.0);
        cfg.duration = Some(Duration::from_secs(1));
        let mut st = Stats::default();
        let l = Duration::from_micros(latency_us);
        for i in 0..1000u64 {
            let at = Duration::from_millis(i);
            st.sent_on_schedule(at, at, at + Duration::from_micros(own_us), 1);
            st.response(202, l, l, at);
        }
        Pass {
            report: LoadReport::build(&cfg, &st, Duration::from_secs(1), None),
            sample: RoundSample {
                answered: 1000,
                ..RoundSample::default()
            },
            load_share: Some(load),
        }
    }

    #[test]
    fn a_point_is_all_its_passes_and_as_usable_as_its_worst() {
        let passes = [pass(100, 5, 0.5), pass(1000, 400, 0.95)];
        let hists = merged(&passes);
        let p = point(0.5, 1000.0, &passes, hists.as_ref());
        // Percentiles of the 2000 answers together: half at 100 µs, half at 1000 µs.
        assert_eq!(p.corrected.count, 2000);
        assert!(
            p.corrected.p50 >= 99 && p.corrected.p50 <= 101,
            "{:?}",
            p.corrected
        );
        assert!(p.corrected.p99 >= 999, "{:?}", p.corrected);
        assert!((p.achieved - 1000.0).abs() < 1.0, "{}", p.achieved);
        // The worst pass's load side and own delay decide whether the point is usable.
        assert_eq!(p.load_share, Some(0.95));
        assert!(p.schedule.client_lag_us.p99 >= 399);
        assert_eq!(p.schedule.sent, 2000);
        assert!(!p.usable(), "the second pass's load side was at its limit");
        // Each pass is kept, in order, with its own p99: the spread the report shows.
        assert_eq!(p.passes.len(), 2);
        let (lo, hi) = p.p99_spread().expect("two passes");
        assert!(lo <= 101 && hi >= 999, "{lo}..{hi}");
        assert_eq!(p.passes[1].own_delay_p99, p.schedule.client_lag_us.p99);
    }
}
