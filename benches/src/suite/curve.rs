//! Latency curves: after a workload's blocks, open-loop passes at fixed
//! fractions of the lower runtime's capacity (the median round rate of tokio or
//! tokio-uring, whichever is lower), the same rates for every runtime, interleaved at each
//! rate (A B, then B A at the next, ...). Each point gets a warm-up pass on its own
//! schedule first (counted in the delivery check, not in the point), then its measured
//! pass; its histograms go to `raw/<workload>/curve/` as `.hgrm` files and one interval log
//! per runtime.

use std::path::Path;

use hdrhistogram::Histogram;

use super::awake::KeepAwake;
use super::Subject;
use crate::analysis::median;
use crate::layout::Layout;
use crate::results::{Curve, CurvePoint, RawResult, RoundSample};
use crate::runtime::Runtime;
use crate::workload::CurvePlan;
use loadgen::{hdr, LoadReport};

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

/// Runs the curve of every runtime but the A/A twin; records it in each one's result and
/// writes the histograms under `raw_dir`.
pub(super) fn run(
    live: &mut [(&mut RawResult, &mut Subject)],
    plan: &CurvePlan,
    layout: &Layout,
    raw_dir: &Path,
) {
    let curved: Vec<usize> = (0..live.len())
        .filter(|&i| live[i].0.runtime != Runtime::TokioTwin)
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
        let mut order = curved.clone();
        if step % 2 == 1 {
            order.reverse();
        }
        for i in order {
            if failed[i] {
                continue;
            }
            let (raw, subject) = &mut live[i];
            let warm = subject.paced_run(rate, plan.warmup);
            let spin0 = awake.as_ref().map(KeepAwake::cpu);
            let measured = warm.and_then(|_| subject.paced_run(rate, plan.duration));
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
            let hgrm = write_histograms(raw_dir, raw.runtime, fraction, &report);
            if let Some(h) = &report.histograms {
                let pct = format!("{:03.0}pct", fraction * 100.0);
                logs[i].push((format!("{pct}-corrected"), h.latency.clone()));
                logs[i].push((format!("{pct}-uncorrected"), h.service.clone()));
            }
            // The load side's share, the spinners' CPU taken out.
            let load_share = sample.load_share.map(|l| {
                let spin = spun.map_or(0.0, |d| d.as_secs_f64())
                    / (sample.wall_s * layout.bench_cores() as f64).max(1e-9);
                (l - spin).max(0.0)
            });
            if let Some(c) = raw.curve.as_mut() {
                let mut p = point(fraction, rate, &report, &sample, hgrm);
                p.load_share = load_share;
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

fn point(
    fraction: f64,
    offered: f64,
    r: &LoadReport,
    sample: &RoundSample,
    hgrm: Vec<String>,
) -> CurvePoint {
    CurvePoint {
        fraction,
        offered,
        achieved: r.rate,
        corrected: r.latency_us,
        uncorrected: r.service_us.unwrap_or_default(),
        schedule: r.schedule.unwrap_or(loadgen::Schedule {
            offered_rate: offered,
            sent: 0,
            behind: 0.0,
            fell_behind: true,
            lag_us: Default::default(),
            client_lag_us: Default::default(),
        }),
        errors: r.errors_total(),
        non_2xx: r.non_2xx(),
        cpu_us_per_request: sample.cpu_us_per_request(),
        server_share: sample.server_share,
        steal: sample.steal,
        load_share: sample.load_share,
        hgrm,
    }
}

/// `tokio-050pct`: a point's file stem.
fn stem(runtime: Runtime, fraction: f64) -> String {
    format!("{}-{:03.0}pct", runtime.label(), fraction * 100.0)
}

/// The point's corrected and uncorrected `.hgrm` files; the names written (relative to
/// the raw folder). A file that cannot be written is reported and left out.
fn write_histograms(
    raw_dir: &Path,
    runtime: Runtime,
    fraction: f64,
    r: &LoadReport,
) -> Vec<String> {
    let Some(h) = &r.histograms else {
        return Vec::new();
    };
    let stem = stem(runtime, fraction);
    let mut written = Vec::new();
    for (suffix, hist) in [("", &h.latency), (".uncorrected", &h.service)] {
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
    let written = std::fs::File::create(&path)
        .and_then(|mut f| hdr::write_hlog(&refs, plan.duration, &comment, &mut f));
    match written {
        Ok(()) => Some(rel),
        Err(e) => {
            eprintln!("latency curve: writing {}: {e}", path.display());
            None
        }
    }
}
