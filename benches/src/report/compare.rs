//! Comparing two runs (e.g. a reference run and `results/latest`): per workload and
//! runtime, the throughput of each, their ratio, and whether the intervals overlap; and the
//! tokio-uring / tokio ratio of each run side by side.

use std::fmt::Write;

use super::{human_rate, Interval, Paired, Summary};

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub workload: String,
    pub runtime: String,
    pub a: Option<Interval>,
    pub b: Option<Interval>,
    /// b / a, conservative bounds.
    pub change: Option<Interval>,
    /// The two runs' intervals overlap: no difference can be claimed.
    pub overlap: Option<bool>,
}

/// Rows for every workload and runtime in either run (one side may be missing).
pub fn rows(a: &Summary, b: &Summary) -> Vec<Row> {
    let mut names: Vec<(String, String)> = Vec::new();
    for s in [a, b] {
        for w in &s.workloads {
            for r in &w.runtimes {
                let key = (w.spec.name.clone(), r.label.clone());
                if !names.contains(&key) {
                    names.push(key);
                }
            }
        }
    }
    let thrpt = |s: &Summary, w: &str, rt: &str| {
        s.workload(w)
            .and_then(|x| x.runtimes.iter().find(|r| r.label == rt))
            .and_then(|r| r.thrpt)
    };
    names
        .into_iter()
        .map(|(w, rt)| {
            let (ta, tb) = (thrpt(a, &w, &rt), thrpt(b, &w, &rt));
            let (change, overlap) = match (ta, tb) {
                (Some(x), Some(y)) => (Some(y.ratio(&x)), Some(x.overlaps(&y))),
                _ => (None, None),
            };
            Row {
                workload: w,
                runtime: rt,
                a: ta,
                b: tb,
                change,
                overlap,
            }
        })
        .collect()
}

/// A workload's verdict in a run, as text (`—` where the run has none).
fn verdict(s: &Summary, w: &str) -> String {
    s.workload(w)
        .and_then(|x| x.assessment.as_ref())
        .map_or("—".into(), |a| a.verdict.text())
}

/// Whether two runs' verdicts agree: the same decision (the same runtime faster, or both
/// equivalent), not the same number.
fn agreement(s: &Summary, t: &Summary, w: &str) -> &'static str {
    use crate::analysis::Verdict as V;
    fn get<'a>(x: &'a Summary, w: &str) -> Option<&'a V> {
        x.workload(w)
            .and_then(|x| x.assessment.as_ref())
            .map(|a| &a.verdict)
    }
    match (get(s, w), get(t, w)) {
        (Some(V::UringFaster { .. }), Some(V::UringFaster { .. }))
        | (Some(V::TokioFaster { .. }), Some(V::TokioFaster { .. }))
        | (Some(V::Equivalent { .. }), Some(V::Equivalent { .. })) => "same",
        (Some(V::Undecided { .. }), _) | (_, Some(V::Undecided { .. })) => "one undecided",
        (Some(_), Some(_)) => "DIFFERENT",
        _ => "missing in one run",
    }
}

/// The comparison as a Markdown table.
pub fn markdown(a_name: &str, a: &Summary, b_name: &str, b: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# {b_name} compared with {a_name}\n");
    for (name, s) in [(a_name, a), (b_name, b)] {
        let _ = writeln!(o, "- {name}: {}", s.run_line());
    }
    let _ = writeln!(o, "\n## Verdicts (from each run's interleaved rounds)\n");
    let _ = writeln!(o, "| workload | {a_name} | {b_name} | agree |");
    let _ = writeln!(o, "|---|---|---|---|");
    let mut seen: Vec<&str> = Vec::new();
    for w in a.workloads.iter().chain(&b.workloads) {
        if seen.contains(&w.spec.name.as_str()) {
            continue;
        }
        seen.push(&w.spec.name);
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            w.spec.name,
            verdict(a, &w.spec.name),
            verdict(b, &w.spec.name),
            agreement(a, b, &w.spec.name)
        );
    }
    let _ = writeln!(o, "\n## Throughput (req/s estimate [95% interval])\n");
    let _ = writeln!(
        o,
        "| workload | runtime | {a_name} | {b_name} | {b_name} / {a_name} | note |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    let cell = |i: &Option<Interval>| match i {
        Some(i) => format!(
            "{} [{}, {}]",
            human_rate(i.estimate),
            human_rate(i.lower),
            human_rate(i.upper)
        ),
        None => "—".into(),
    };
    for r in rows(a, b) {
        let change = r.change.map_or("—".into(), |c| c.fmt_ratio());
        let note = match r.overlap {
            Some(true) => "intervals overlap: no difference shown",
            Some(false) => "",
            None => "missing in one run",
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            r.workload,
            r.runtime,
            cell(&r.a),
            cell(&r.b),
            change,
            note
        );
    }
    let _ = writeln!(o, "\n## tokio-uring / tokio in each run\n");
    let _ = writeln!(
        o,
        "Criterion's estimates, then the interleaved rounds' median.\n"
    );
    let _ = writeln!(
        o,
        "| workload | {a_name} | {b_name} | {a_name}, interleaved | {b_name}, interleaved |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|");
    let ratio = |s: &Summary, w: &str| {
        s.workload(w)
            .and_then(|x| x.ratio_uring_tokio)
            .map_or("—".into(), |r| r.fmt_ratio())
    };
    let paired = |s: &Summary, w: &str| {
        s.workload(w)
            .and_then(|x| x.paired_uring_tokio.as_ref())
            .map_or("—".into(), Paired::fmt_ratio)
    };
    let mut seen = Vec::new();
    for w in a.workloads.iter().chain(&b.workloads) {
        if seen.contains(&w.spec.name) {
            continue;
        }
        seen.push(w.spec.name.clone());
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            w.spec.name,
            ratio(a, &w.spec.name),
            ratio(b, &w.spec.name),
            paired(a, &w.spec.name),
            paired(b, &w.spec.name)
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Paired;
    use crate::server::Runtime;
    use crate::workload::Spec;

    fn summary(tokio: f64, uring: Option<f64>) -> Summary {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "name": "w", "description": "d", "mode": "closed", "depth": 1, "connections": 1,
            "body_size": 100, "server_args": [], "runtimes": ["tokio", "uring"]
        }))
        .expect("spec");
        let mut thrpt = vec![(Runtime::Tokio, tokio)];
        thrpt.extend(uring.map(|u| (Runtime::Uring, u)));
        crate::report::summary::test_summary(spec, &thrpt)
    }

    #[test]
    fn interleaved_ratios_are_shown_beside_criterion_s() {
        let mut a = summary(100_000.0, Some(110_000.0));
        a.workloads[0].paired_uring_tokio =
            Paired::from_rounds(&[1.1, 1.2, 1.0, 1.1, 1.1, 1.2], &[1.0; 6]);
        a.workloads[0].paired_cpu_uring_tokio = Paired::from_rounds(&[9.0; 6], &[10.0; 6]);
        let b = summary(100_000.0, Some(90_000.0));
        let md = markdown("ref", &a, "latest", &b);
        // Columns: criterion ref, criterion latest, interleaved ref, interleaved latest.
        assert!(md.contains("| 1.100 [1.000, 1.200] | — |"), "{md}");
        let report = crate::report::markdown::render(&a);
        assert!(
            report.contains(
                "| w | 6 | 1.100 [1.000, 1.200] | 1.10 1.20 1.00 1.10 1.10 1.20 | 0.900 [0.900, 0.900] |"
            ),
            "{report}"
        );
        assert!(!crate::report::markdown::render(&b)
            .contains("## tokio-uring / tokio from interleaved rounds"));
    }

    #[test]
    fn verdicts_of_two_runs_side_by_side() {
        let rules = crate::analysis::Rules::default();
        let tokio = [100.0; 8];
        let faster = [112.0, 111.0, 113.0, 112.0, 110.0, 114.0, 112.0, 111.0];
        let same = [100.0, 101.0, 99.0, 100.0, 100.5, 99.5, 100.0, 100.0];
        let mut a = summary(100_000.0, Some(110_000.0));
        a.workloads[0].assessment = Some(crate::analysis::assess(
            &tokio,
            &faster,
            &[],
            0,
            None,
            &rules,
        ));
        let mut b = summary(100_000.0, Some(100_000.0));
        b.workloads[0].assessment =
            Some(crate::analysis::assess(&tokio, &same, &[], 0, None, &rules));
        let md = markdown("ref", &a, "latest", &b);
        assert!(
            md.contains("| w | tokio-uring faster by 12.0 % [10.0, 14.0] | equivalent within ±3 % | DIFFERENT |"),
            "{md}"
        );
        assert!(markdown("ref", &a, "again", &a).contains("| same |"));
    }

    #[test]
    fn ratios_and_overlap() {
        let a = summary(100_000.0, Some(90_000.0));
        let b = summary(102_000.0, None);
        let r = rows(&a, &b);
        assert_eq!(r.len(), 2);
        let tokio = &r[0];
        assert_eq!(tokio.runtime, "tokio");
        assert!((tokio.change.expect("change").estimate - 1.02).abs() < 1e-9);
        assert_eq!(tokio.overlap, Some(true));
        let uring = &r[1];
        assert_eq!((uring.change, uring.overlap), (None, None));
        let far = summary(200_000.0, Some(90_000.0));
        assert_eq!(rows(&a, &far)[0].overlap, Some(false));
        let md = markdown("ref", &a, "latest", &b);
        assert!(
            md.contains("| w | tokio | 100.0k [95.0k, 105.0k] | 102.0k [96.9k, 107.1k] | 1.020"),
            "{md}"
        );
        assert!(md.contains("intervals overlap"), "{md}");
        assert!(md.contains("missing in one run"), "{md}");
    }
}
