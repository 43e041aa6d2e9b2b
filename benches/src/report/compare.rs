//! Comparing two runs (e.g. a reference run and `results/latest`): per workload and
//! runtime, the throughput of each, their ratio, and whether the intervals overlap; and the
//! tokio-uring / tokio ratio of each run side by side.

use std::fmt::Write;

use super::format::human_rate;
use super::Summary;
use crate::analysis::Assessment;
use crate::analysis::{Interval, Paired};

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

/// Which of a workload's verdicts to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Rate over the blocks' closed-loop rounds.
    Throughput,
    /// CPU per request over the blocks' paced rounds.
    Efficiency,
}

fn assessment<'a>(s: &'a Summary, w: &str, which: Which) -> Option<&'a Assessment> {
    let x = s.workload(w)?;
    match which {
        Which::Throughput => x.assessment.as_ref(),
        Which::Efficiency => x.efficiency.as_ref(),
    }
}

/// A workload's verdict in a run, as text (`—` where the run has none).
fn verdict(s: &Summary, w: &str, which: Which) -> String {
    assessment(s, w, which).map_or("—".into(), |a| match which {
        Which::Throughput => a.verdict.text(),
        Which::Efficiency => a.verdict.efficiency_text(),
    })
}

/// Whether two runs' verdicts agree: the same decision (the same runtime faster, or both
/// equivalent), not the same number. `OPPOSITE`: one says tokio-uring, the other tokio.
pub fn agreement(s: &Summary, t: &Summary, w: &str, which: Which) -> &'static str {
    use crate::analysis::Verdict as V;
    let get = |x| assessment(x, w, which).map(|a| &a.verdict);
    match (get(s), get(t)) {
        (Some(V::UringFaster { .. }), Some(V::UringFaster { .. }))
        | (Some(V::TokioFaster { .. }), Some(V::TokioFaster { .. }))
        | (Some(V::Equivalent { .. }), Some(V::Equivalent { .. })) => "same",
        (Some(V::UringFaster { .. }), Some(V::TokioFaster { .. }))
        | (Some(V::TokioFaster { .. }), Some(V::UringFaster { .. })) => "OPPOSITE",
        (Some(V::Undecided { .. }), _) | (_, Some(V::Undecided { .. })) => "one undecided",
        (Some(_), Some(_)) => "DIFFERENT",
        _ => "missing in one run",
    }
}

/// Whether two runs' verdict intervals (tokio-uring / tokio over blocks) overlap:
/// `Some(false)` means the runs measured incompatible ratios. `None` when either has none.
pub fn intervals_overlap(s: &Summary, t: &Summary, w: &str, which: Which) -> Option<bool> {
    let ab = |x| assessment(x, w, which)?.ab.clone();
    Some(ab(s)?.overlaps(&ab(t)?))
}

/// The machine facts in which two runs differ (CPU model, cores, kernel, layout, Kafka,
/// profile, A/A mode): a comparison across machines is marked, never silent.
pub fn differences(a: &Summary, b: &Summary) -> Vec<String> {
    let facts = |s: &Summary| {
        vec![
            ("CPU", s.env.cpu_model.clone().unwrap_or_default()),
            ("cores", s.env.cores.to_string()),
            ("kernel", s.env.kernel.clone().unwrap_or_default()),
            ("layout", s.env.cpu_layout.clone()),
            ("Kafka", s.setup.kafka.clone()),
            ("profile", s.setup.profile.clone()),
            ("A/A run", s.setup.aa.to_string()),
        ]
    };
    facts(a)
        .into_iter()
        .zip(facts(b))
        .filter(|((_, x), (_, y))| x != y)
        .map(|((name, x), (_, y))| format!("{name}: {x} vs {y}"))
        .collect()
}

/// One verdict table: each run's verdict and interval per workload, side by side.
fn verdict_table(
    o: &mut String,
    (a_name, a): (&str, &Summary),
    (b_name, b): (&str, &Summary),
    which: Which,
    title: &str,
    ratio: &str,
) {
    let named = |s: &Summary| {
        s.workloads
            .iter()
            .any(|w| assessment(s, &w.spec.name, which).is_some())
    };
    if !named(a) && !named(b) {
        return;
    }
    let _ = writeln!(o, "\n## {title}\n");
    let _ = writeln!(
        o,
        "| workload | {a_name} | {a_name}: {ratio} | {b_name} | {b_name}: {ratio} | intervals overlap | verdicts agree |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    let interval = |s: &Summary, w: &str| {
        assessment(s, w, which)
            .and_then(|x| x.ab.as_ref().map(|p| p.fmt_ratio()))
            .unwrap_or_else(|| "—".into())
    };
    let mut seen: Vec<&str> = Vec::new();
    for w in a.workloads.iter().chain(&b.workloads) {
        if seen.contains(&w.spec.name.as_str()) {
            continue;
        }
        seen.push(&w.spec.name);
        let n = &w.spec.name;
        let overlap = match intervals_overlap(a, b, n, which) {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "—",
        };
        let _ = writeln!(
            o,
            "| {n} | {} | {} | {} | {} | {overlap} | {} |",
            verdict(a, n, which),
            interval(a, n),
            verdict(b, n, which),
            interval(b, n),
            agreement(a, b, n, which)
        );
    }
}

/// The comparison as a Markdown table.
pub fn markdown(a_name: &str, a: &Summary, b_name: &str, b: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# {b_name} compared with {a_name}\n");
    for (name, s) in [(a_name, a), (b_name, b)] {
        let _ = writeln!(o, "- {name}: {}", s.run_line());
    }
    let diff = differences(a, b);
    if !diff.is_empty() {
        let _ = writeln!(
            o,
            "\n**The runs differ in: {}.** A difference in verdict may be the machine's.",
            diff.join("; ")
        );
    }
    for (which, title, ratio) in [
        (
            Which::Throughput,
            "Verdicts (from each run's blocks)",
            "tokio-uring / tokio",
        ),
        (
            Which::Efficiency,
            "Efficiency verdicts (CPU per request at a fixed load)",
            "tokio-uring / tokio, requests per core-second",
        ),
    ] {
        verdict_table(&mut o, (a_name, a), (b_name, b), which, title, ratio);
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
        "Criterion's estimates, then the rounds' median ratio (for reference: rounds inside one set of processes are not independent).\n"
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
    use crate::runtime::Runtime;
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
        a.workloads[0].assessment = Some(assessed(&[1.1; 8]));
        let b = summary(100_000.0, Some(90_000.0));
        let md = markdown("ref", &a, "latest", &b);
        // Columns: criterion ref, criterion latest, interleaved ref, interleaved latest.
        assert!(md.contains("| 1.100 [1.000, 1.200] | — |"), "{md}");
        let report = crate::report::markdown::render(&a);
        assert!(
            report.contains("| w | 6 | 1.100 [1.000, 1.200] | 0.900 [0.900, 0.900] |"),
            "{report}"
        );
        // Block 8 of 8: no turns recorded in this hand-made summary, so no order.
        assert!(report.contains("| w | 8 |  | 1.100 | 1.000 |"), "{report}");
        assert!(!crate::report::markdown::render(&b).contains("## The blocks behind each verdict"));
    }

    /// An assessment from blocks where tokio-uring runs at `ratios[b]` × tokio (and the
    /// twin exactly at tokio's rate).
    fn assessed(ratios: &[f64]) -> crate::analysis::Assessment {
        let tokio: Vec<Vec<f64>> = ratios.iter().map(|_| vec![100.0; 3]).collect();
        let uring: Vec<Vec<f64>> = ratios.iter().map(|r| vec![100.0 * r; 3]).collect();
        crate::analysis::assess(
            &tokio,
            &uring,
            &tokio,
            None,
            &crate::analysis::Rules::default(),
        )
    }

    #[test]
    fn verdicts_of_two_runs_side_by_side() {
        let faster = [1.12, 1.11, 1.13, 1.12, 1.10, 1.14, 1.12, 1.11];
        let same = [1.0, 1.01, 0.99, 1.0, 1.005, 0.995, 1.0, 1.0];
        let slower = [0.88, 0.89, 0.87, 0.88, 0.90, 0.86, 0.88, 0.89];
        let mut a = summary(100_000.0, Some(110_000.0));
        a.workloads[0].assessment = Some(assessed(&faster));
        let mut b = summary(100_000.0, Some(100_000.0));
        b.workloads[0].assessment = Some(assessed(&same));
        let md = markdown("ref", &a, "latest", &b);
        assert!(
            md.contains("| w | tokio-uring faster by 12.0 % [11.0, 13.0] | 1.120 [1.110, 1.130] | equivalent within ±3 % | 1.000 [0.995, 1.005] | NO | DIFFERENT |"),
            "{md}"
        );
        assert!(markdown("ref", &a, "again", &a).contains("| yes | same |"));
        let mut c = summary(100_000.0, Some(90_000.0));
        c.workloads[0].assessment = Some(assessed(&slower));
        assert_eq!(agreement(&a, &c, "w", Which::Throughput), "OPPOSITE");
        assert_eq!(
            intervals_overlap(&a, &c, "w", Which::Throughput),
            Some(false)
        );
        // No efficiency verdict in either run: no efficiency table.
        assert!(!md.contains("## Efficiency verdicts"));
        // Efficiency verdicts get their own table, worded as CPU per request.
        a.workloads[0].efficiency = Some(assessed(&faster));
        b.workloads[0].efficiency = Some(assessed(&faster));
        let md = markdown("ref", &a, "latest", &b);
        let eff = &md[md.find("## Efficiency verdicts").expect("efficiency table")..];
        assert!(
            eff.contains("| w | tokio-uring uses 10.7 % less CPU per request [9.9, 11.5] |"),
            "{eff}"
        );
        assert!(eff.contains("| yes | same |"), "{eff}");
        assert_eq!(
            agreement(&a, &c, "w", Which::Efficiency),
            "missing in one run"
        );
    }

    #[test]
    fn runs_from_different_machines_are_marked() {
        let a = summary(100_000.0, Some(110_000.0));
        let mut b = a.clone();
        assert!(differences(&a, &b).is_empty());
        b.env.cpu_model = Some("AMD EPYC".into());
        b.setup.aa = true;
        let d = differences(&a, &b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(markdown("a", &a, "b", &b).contains("**The runs differ in: CPU:"));
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
