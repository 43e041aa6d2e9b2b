//! The latency curves as document sections: each runtime's capacity at the p99
//! objectives, and every point (offered and achieved rate, corrected and uncorrected
//! percentiles, how the schedule was kept, errors, server CPU). The charts are in
//! `curve_chart.rs`.

use super::document::{Document, Table, Text};
use super::format::{fmt_us, human_rate};
use super::summary::{RuntimeResult, WorkloadResult};
use super::Summary;
use crate::analysis::capacity::Capacity;
use crate::results::CurvePoint;

/// The objectives of the run (µs).
pub fn objectives(s: &Summary) -> Vec<u64> {
    s.setup
        .curves
        .as_ref()
        .map_or_else(|| vec![1_000, 10_000], |c| c.objectives_us.clone())
}

/// Runtimes of a workload that have a curve.
fn curved(w: &WorkloadResult) -> impl Iterator<Item = &RuntimeResult> {
    w.runtimes.iter().filter(|r| r.raw.curve.is_some())
}

fn capacity(r: &RuntimeResult, objective_us: u64) -> Option<Capacity> {
    r.raw.curve.as_ref()?.capacity_at(objective_us)
}

/// The verdict table's cell: per objective, each runtime's capacity (short form).
pub fn capacity_cell(s: &Summary, w: &WorkloadResult) -> Text {
    let parts: Vec<String> = objectives(s)
        .into_iter()
        .filter_map(|obj| {
            let each: Vec<String> = curved(w)
                .map(|r| {
                    let c = capacity(r, obj).map_or("—".into(), |c| short(&c));
                    format!("{} {c}", r.label)
                })
                .collect();
            (!each.is_empty()).then(|| format!("≤ {}: {}", fmt_us(obj), each.join(", ")))
        })
        .collect();
    if parts.is_empty() {
        "no curve".into()
    } else {
        parts.join("; ").into()
    }
}

/// `12.3k~` (interpolated), `≥20.0k`, `<3.0k`, `4.0k–6.0k`.
fn short(c: &Capacity) -> String {
    match *c {
        Capacity::AtLeast { rate } => format!("≥{}", human_rate(rate)),
        Capacity::Below { rate } => format!("<{}", human_rate(rate)),
        Capacity::Interpolated { rate, .. } => format!("{}~", human_rate(rate)),
        Capacity::Between { met, missed } => {
            format!("{}–{}", human_rate(met), human_rate(missed))
        }
        Capacity::Unmeasured { .. } => "not measured".into(),
    }
}

/// The section: how the curves were made, the capacities, then every point.
pub fn section(s: &Summary, d: &mut Document) {
    let with_curves: Vec<&WorkloadResult> = s.workloads.iter().filter(|w| w.spec.curve).collect();
    if with_curves.is_empty() {
        return;
    }
    d.heading("Latency under a fixed load: open-loop curves");
    let plan = s.setup.curves.as_ref();
    d.para(format!(
        "Each point is measured in open-loop passes: requests sent on a fixed schedule at the offered rate whether or not earlier answers came back, {}, at fractions ({}) of a base rate: the lower runtime's median rate in this workload's interleaved rounds. At each rate the runtimes ran back to back, in alternating order (A B B A, then B A A B at the next rate); a point's percentiles are of all its passes' answers, and “p99 by pass” shows how far the passes differed. Corrected latency is measured from each request's intended send time (what a client with that arrival rate would see; wrk2's correction for coordinated omission); uncorrected is the service time from the actual send. “Load generator's delay” is the part of the wait the load generator caused itself (its connection was free, it was late to send); “load side CPU” is how busy the load generator's and embedded broker's cores were (the keep-awake spinners excluded): near 100 % the point measures the client too. A point that fell more than 1 % of its length behind its schedule, or had errors, is marked and not read as the server's latency at that rate. Cores were {} during the passes.",
        plan.map_or("—".into(), |p| format!(
            "{} × {:.1} s measured per runtime, each pass after {:.2} s of warm-up in the same run (same schedule and connections, no pause between)",
            p.passes,
            p.duration.as_secs_f64(),
            p.warmup.as_secs_f64()
        )),
        plan.map_or("—".into(), |p| p
            .fractions
            .iter()
            .map(|f| format!("{:.0} %", f * 100.0))
            .collect::<Vec<_>>()
            .join(", ")),
        if with_curves
            .iter()
            .flat_map(|w| curved(w))
            .all(|r| r.raw.curve.as_ref().is_some_and(|c| c.cores_awake))
        {
            "kept awake by idle-priority spinners (on a VM an idle core's wake-up through the hypervisor would otherwise dominate the lower rates; BENCH_CURVE_AWAKE=0 measures without them)"
        } else {
            "left to idle (BENCH_CURVE_AWAKE=0, or the spinners could not start): on a VM the lower rates then include each idle core's wake-up"
        }
    ));
    let objectives = objectives(s);
    let mut head = vec!["workload".to_string(), "runtime".to_string()];
    head.extend(
        objectives
            .iter()
            .map(|o| format!("capacity at p99 ≤ {}", fmt_us(*o))),
    );
    let mut t = Table::new(head);
    for w in &with_curves {
        for r in &w.runtimes {
            let mut row: Vec<Text> = vec![w.spec.name.as_str().into(), r.label.as_str().into()];
            match (&r.raw.curve, &r.raw.curve_skipped, &r.raw.skipped) {
                (Some(_), _, _) => {
                    for &o in &objectives {
                        row.push(
                            capacity(r, o)
                                .map_or("—".into(), |c| c.text(human_rate))
                                .into(),
                        );
                    }
                }
                (None, Some(why), _) | (None, None, Some(why)) => {
                    row.push(format!("no curve: {why}").into());
                }
                (None, None, None) => continue,
            }
            t.row(row);
        }
    }
    d.table(t);
    d.para("Capacity: the highest offered rate whose corrected p99 stayed within the objective, walking up the curve until the first point that missed it (or could not be used); between two measured points it is interpolated on log latency and labelled so.");
    for w in &with_curves {
        points_table(w, d);
    }
}

/// Every point of a workload's curves, rate by rate.
fn points_table(w: &WorkloadResult, d: &mut Document) {
    let runtimes: Vec<&RuntimeResult> = curved(w).collect();
    if runtimes.is_empty() {
        return;
    }
    let base = runtimes[0].raw.curve.as_ref().map_or(0.0, |c| c.base_rate);
    d.para(Text::bold(w.spec.name.as_str()).then(format!(
            " — base rate {} req/s ({}); latencies in µs, corrected / uncorrected",
            human_rate(base),
            runtimes[0]
                .raw.curve
                .as_ref()
                .map_or(String::new(), |c| c.base_from.clone())
        )));
    let mut t = Table::new([
        "offered",
        "runtime",
        "achieved",
        "p50",
        "p90",
        "p99",
        "p99 by pass",
        "p99.9",
        "max",
        "load generator's delay p99",
        "load side CPU",
        "server CPU µs/req",
        "note",
    ]);
    let n = runtimes
        .iter()
        .filter_map(|r| r.raw.curve.as_ref().map(|c| c.points.len()))
        .max()
        .unwrap_or(0);
    for i in 0..n {
        for r in &runtimes {
            let Some(p) = r.raw.curve.as_ref().and_then(|c| c.points.get(i)) else {
                continue;
            };
            let pair = |c: u64, u: u64| format!("{c} / {u}");
            t.row([
                format!("{} ({:.0} %)", human_rate(p.offered), p.fraction * 100.0),
                r.label.clone(),
                human_rate(p.achieved),
                pair(p.corrected.p50, p.uncorrected.p50),
                pair(p.corrected.p90, p.uncorrected.p90),
                pair(p.corrected.p99, p.uncorrected.p99),
                by_pass(p),
                pair(p.corrected.p999, p.uncorrected.p999),
                pair(p.corrected.max, p.uncorrected.max),
                p.schedule.client_lag_us.p99.to_string(),
                p.load_share
                    .map_or("—".into(), |l| format!("{:.0} %", l * 100.0)),
                p.cpu_us_per_request
                    .map_or("—".into(), |c| format!("{c:.1}")),
                p.unusable_because().map_or_else(
                    || "ok".to_string(),
                    |why| format!("NOT the server's latency: {why}"),
                ),
            ]);
        }
    }
    d.table(t);
}

/// Each pass's corrected p99 in the order run, and the spread: `980 · 1120 (±7 %)`.
fn by_pass(p: &CurvePoint) -> String {
    let p99s: Vec<String> = p
        .passes
        .iter()
        .map(|x| x.corrected.p99.to_string())
        .collect();
    match p.p99_spread() {
        Some((lo, hi)) if lo > 0 => format!(
            "{} (±{:.0} %)",
            p99s.join(" · "),
            (hi - lo) as f64 / (hi + lo) as f64 * 100.0
        ),
        _ if p99s.is_empty() => "—".into(),
        _ => p99s.join(" · "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::{test_summary, RunSetup, SCHEMA};
    use crate::results::{Curve, CurvePass};
    use crate::runtime::Runtime;
    use crate::workload::{catalogue, Profile};
    use loadgen::{Latency, Schedule};

    fn lat(p99: u64) -> Latency {
        Latency {
            count: 1000,
            mean: p99 as f64 / 3.0,
            p50: p99 / 4,
            p90: p99 / 2,
            p99,
            p999: p99 * 2,
            max: p99 * 3,
        }
    }

    fn point(fraction: f64, p99: u64, behind: f64) -> CurvePoint {
        CurvePoint {
            fraction,
            offered: 10_000.0 * fraction,
            achieved: 10_000.0 * fraction / (1.0 + behind),
            corrected: lat(p99),
            uncorrected: lat(p99 / 2),
            schedule: Schedule {
                offered_rate: 10_000.0 * fraction,
                sent: 1000,
                behind,
                fell_behind: behind > 0.01,
                lag_us: lat(p99 / 2),
                client_lag_us: lat(10),
            },
            errors: 0,
            non_2xx: 0,
            cpu_us_per_request: Some(20.0),
            server_share: None,
            steal: None,
            load_share: Some(0.5),
            hgrm: Vec::new(),
            passes: [9, 11]
                .map(|tenths| CurvePass {
                    achieved: 10_000.0 * fraction,
                    corrected: lat(p99 * tenths / 10),
                    own_delay_p99: 10,
                    load_share: Some(0.5),
                    cpu_us_per_request: Some(20.0),
                })
                .to_vec(),
        }
    }

    /// One workload with curves: tokio meets 1 ms up to 7.5k and crosses between 7.5k and
    /// 9k; tokio-uring's 9k point fell behind its schedule.
    fn summary() -> Summary {
        let spec = catalogue(Profile::Default).remove(0);
        let curve = |pts: Vec<CurvePoint>| Curve {
            base_rate: 10_000.0,
            base_from: "test".into(),
            cores_awake: true,
            hlog: None,
            points: pts,
        };
        let mut base = test_summary(spec, &[(Runtime::Tokio, 1.0), (Runtime::Uring, 1.0)]);
        for r in &mut base.workloads[0].runtimes {
            r.raw.curve = Some(curve(match r.runtime() {
                Runtime::Tokio => vec![
                    point(0.5, 400, 0.0),
                    point(0.75, 500, 0.0),
                    point(0.9, 2000, 0.0),
                ],
                _ => vec![
                    point(0.5, 300, 0.0),
                    point(0.75, 600, 0.0),
                    point(0.9, 800, 0.2),
                ],
            }));
        }
        base.setup = RunSetup {
            curves: Some(Profile::Default.curve_plan()),
            ..base.setup
        };
        assert_eq!(base.schema, SCHEMA);
        base
    }

    #[test]
    fn capacities_and_unusable_points_are_reported_as_such() {
        let s = summary();
        let w = &s.workloads[0];
        let mut cell_doc = Document::default();
        cell_doc.para(capacity_cell(&s, w));
        let cell = cell_doc.markdown();
        // tokio: ln(1000) is halfway between ln(500) and ln(2000): 7.5k + 0.5 x 1.5k.
        assert!(cell.contains("tokio 8.2k~"), "{cell}");
        assert!(cell.contains("tokio-uring 7.5k–9.0k"), "{cell}");
        assert!(cell.contains("≤ 10 ms: tokio ≥9.0k"), "{cell}");
        let mut d = Document::default();
        section(&s, &mut d);
        let md = d.markdown();
        assert!(
            md.contains("8.2k (interpolated between 7.5k and 9.0k)"),
            "{md}"
        );
        assert!(
            md.contains("NOT the server's latency: fell behind its schedule by 20.0 % (held up by the server)"),
            "{md}"
        );
        assert!(
            md.contains("2000 / 1000"),
            "corrected / uncorrected side by side: {md}"
        );
        assert!(
            md.contains("1800 · 2200 (±10 %)"),
            "each pass's p99 and their spread: {md}"
        );
        let svg = super::super::curve_chart::charts(&s);
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(
            svg.matches(r#"fill="white""#).count(),
            3,
            "the fell-behind point is hollow on each of its three percentile lines"
        );
        assert!(svg.contains("objective 1 ms") && svg.contains("objective 10 ms"));
    }

    #[test]
    fn a_busy_load_side_or_a_slow_client_makes_a_point_unusable() {
        let ok = point(0.5, 400, 0.0);
        assert!(ok.usable(), "{:?}", ok.unusable_because());
        // On schedule, but the load side's cores were 93 % busy.
        let busy = CurvePoint {
            load_share: Some(0.93),
            ..point(0.5, 400, 0.0)
        };
        assert!(!busy.usable());
        assert!(busy
            .unusable_because()
            .is_some_and(|w| w.contains("load side's cores were 93 % busy")));
        // The load generator's own delay p99 (150 µs) over a quarter of the p99 (400 µs).
        let mut slow = point(0.5, 400, 0.0);
        slow.schedule.client_lag_us = lat(150);
        assert!(!slow.usable());
        assert!(slow
            .unusable_because()
            .is_some_and(|w| w.contains("own delay (p99 150 µs)")));
        // Exactly a quarter is still the server's.
        slow.schedule.client_lag_us = lat(100);
        assert!(slow.usable(), "{:?}", slow.unusable_because());
    }
}
