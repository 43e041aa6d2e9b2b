//! Comparing runs (reference runs, `results/latest`, runs from other machines): each rebuilt
//! from its folder, the first the base. The machines side by side with every difference
//! from the base marked; per workload each run's verdicts, intervals, whether they overlap
//! the base's and agree with it; which verdict differences coincide with which machine
//! differences; what Kafka cost each runtime (`kafka_cost.rs`); criterion's rates and
//! ratios. One [`Document`] (Markdown) and a page
//! (`page.rs`: the same with a forest chart per workload, one row per run).

mod kafka_cost;
mod machines;
mod page;
#[cfg(test)]
mod tests;

use super::document::{Document, Table, Text};
use super::format::human_rate;
use super::Summary;
use crate::analysis::{Assessment, Interval, Paired, Verdict};
pub use machines::{differences, facts};
pub use page::html;

/// One run to compare: its name (the folder, as given) and its rebuilt summary.
#[derive(Debug, Clone)]
pub struct Run {
    pub name: String,
    pub summary: Summary,
}

/// Which of a workload's verdicts to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Rate over the blocks' closed-loop rounds.
    Throughput,
    /// CPU per request over the blocks' paced rounds.
    Efficiency,
}

impl Which {
    const BOTH: [(Which, &'static str, &'static str); 2] = [
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
    ];
}

pub(super) fn assessment<'a>(s: &'a Summary, w: &str, which: Which) -> Option<&'a Assessment> {
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
    use Verdict as V;
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
/// `Some(false)` means the runs measured incompatible ratios. `None` when either has none,
/// or too few blocks for a 95 % interval (a run from before blocks has one: no interval).
pub fn intervals_overlap(s: &Summary, t: &Summary, w: &str, which: Which) -> Option<bool> {
    let ab = |x| {
        assessment(x, w, which)?
            .ab
            .clone()
            .filter(|p| p.confidence >= 0.95)
    };
    Some(ab(s)?.overlaps(&ab(t)?))
}

/// Every workload in any run, in first-seen order.
pub(super) fn workload_names(runs: &[Run]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for w in runs.iter().flat_map(|r| &r.summary.workloads) {
        if !names.contains(&w.spec.name) {
            names.push(w.spec.name.clone());
        }
    }
    names
}

/// What a run's verdicts do against the base's: the workloads where they contradict it
/// (opposite or different decisions, or intervals apart), and how many where one of the
/// two is undecided (not a contradiction: one run could not tell).
fn verdict_changes(base: &Summary, run: &Summary, names: &[String]) -> (Vec<String>, usize) {
    let (mut out, mut undecided) = (Vec::new(), 0);
    for (which, _, _) in Which::BOTH {
        for n in names {
            let agree = agreement(base, run, n, which);
            let apart = intervals_overlap(base, run, n, which) == Some(false);
            let kind = match which {
                Which::Throughput => "",
                Which::Efficiency => " (efficiency)",
            };
            match (agree, apart) {
                ("OPPOSITE" | "DIFFERENT", _) | (_, true) => {
                    let mut s = format!("{n}{kind}: {agree}");
                    if apart {
                        s.push_str(", intervals apart");
                    }
                    out.push(s);
                }
                ("one undecided", false) => undecided += 1,
                _ => {}
            }
        }
    }
    (out, undecided)
}

/// The comparison as one document: [`overview`], then [`details`].
pub fn document(runs: &[Run]) -> Document {
    let mut d = overview(runs);
    d.blocks.extend(details(runs).blocks);
    d
}

/// The runs, what differs from the base (machine and verdicts), the machines side by side.
pub fn overview(runs: &[Run]) -> Document {
    let mut d = Document::default();
    let Some(base) = runs.first() else {
        return d;
    };
    let names = workload_names(runs);
    d.para(
        Text::plain(format!(
            "{} runs, each rebuilt from its folder through this version's analysis; the first, ",
            runs.len()
        ))
        .then(Text::code(&base.name))
        .then(", is the base every other run is compared with."),
    );
    d.list(
        runs.iter()
            .map(|r| Text::code(&r.name).then(format!(": {}", r.summary.run_line())))
            .collect(),
    );
    d.heading("What differs from the base");
    let mut diffs = Vec::new();
    for r in &runs[1..] {
        let machine = differences(&base.summary, &r.summary);
        let (verdicts, undecided) = verdict_changes(&base.summary, &r.summary, &names);
        let mut t = Text::code(&r.name).then(": ");
        t = match machine.is_empty() {
            true => t.then("the same machine and run facts; "),
            false => t
                .then(Text::bold(format!("differs in {}", machine.join("; "))))
                .then("; "),
        };
        t = match verdicts.is_empty() {
            true => t.then("no verdict contradicts the base's"),
            false => t
                .then(Text::bold(format!(
                    "verdicts contradict the base's: {}",
                    verdicts.join("; ")
                )))
                .then(if machine.is_empty() {
                    " (same facts: the runs' own variation, or the code's)"
                } else {
                    " (it may come from what differs)"
                }),
        };
        t = t.then(match undecided {
            0 => ".".to_string(),
            n => format!("; {n} verdict(s) undecided in one of the two."),
        });
        diffs.push(t);
    }
    d.list(diffs);
    d.heading("Machines and runs");
    d.table(machines::table(runs));
    d
}

/// Per workload each run's verdicts against the base's, then criterion's rates and ratios.
pub fn details(runs: &[Run]) -> Document {
    let mut d = Document::default();
    if runs.is_empty() {
        return d;
    }
    let names = workload_names(runs);
    for (which, title, ratio) in Which::BOTH {
        verdict_table(&mut d, runs, &names, which, title, ratio);
    }
    kafka_cost::table(&mut d, runs);
    mechanism_table(&mut d, runs, &names);
    throughput_table(&mut d, runs);
    ratio_table(&mut d, runs, &names);
    d
}

/// Per workload and runtime, each run's medians per request (the "why" table's main
/// columns) and each workload's capacity at the latency objectives: where the machines'
/// costs went, side by side.
fn mechanism_table(d: &mut Document, runs: &[Run], names: &[String]) {
    let any = runs
        .iter()
        .flat_map(|r| &r.summary.workloads)
        .any(|w| w.runtimes.iter().any(|r| r.mechanism.is_some()));
    if !any {
        return;
    }
    d.heading("Why, per run: the server's medians per request, and capacity");
    d.para("Medians over each run's verdict rounds (syscalls from its mechanism round); the capacity column covers the workload's runtimes, on its first row.");
    let mut t = Table::new([
        "workload",
        "run",
        "runtime",
        "server cores µs/req",
        "user µs/req",
        "system µs/req",
        "syscalls/req",
        "context switches/req",
        "limit",
        "capacity at p99 objective",
    ]);
    let num = |x: Option<f64>, digits: usize| x.map_or("—".into(), |v| format!("{v:.digits$}"));
    for n in names {
        for r in runs {
            let Some(w) = r.summary.workload(n) else {
                continue;
            };
            let capacity = super::curves::capacity_cell(&r.summary, w);
            // The capacity cell covers the workload's runtimes: on its first row only.
            for (i, rt) in w
                .runtimes
                .iter()
                .filter(|x| x.mechanism.is_some())
                .enumerate()
            {
                let m = rt.mechanism.as_ref();
                let ctx = m.and_then(|m| Some(m.ctx_voluntary? + m.ctx_involuntary?));
                t.row([
                    Text::plain(n),
                    Text::code(&r.name),
                    Text::plain(&rt.label),
                    Text::plain(num(m.and_then(|m| m.core_us), 2)),
                    Text::plain(num(m.and_then(|m| m.user_us), 2)),
                    Text::plain(num(m.and_then(|m| m.system_us), 2)),
                    Text::plain(num(m.and_then(|m| m.syscalls), 2)),
                    Text::plain(num(ctx, 3)),
                    Text::plain(
                        m.and_then(|m| m.limit)
                            .map_or("—".into(), |l| l.label().to_string()),
                    ),
                    if i == 0 {
                        capacity.clone()
                    } else {
                        Text::plain("")
                    },
                ]);
            }
        }
    }
    d.table(t);
}

/// One verdict table: per workload, each run's verdict and interval, against the base's.
fn verdict_table(
    d: &mut Document,
    runs: &[Run],
    names: &[String],
    which: Which,
    title: &str,
    ratio: &str,
) {
    if !names.iter().any(|n| {
        runs.iter()
            .any(|r| assessment(&r.summary, n, which).is_some())
    }) {
        return;
    }
    d.heading(title);
    let mut t = Table::new([
        "workload",
        "run",
        "verdict",
        ratio,
        "interval overlaps the base's",
        "agrees with the base",
    ]);
    let base = &runs[0].summary;
    for n in names {
        for (i, r) in runs.iter().enumerate() {
            let s = &r.summary;
            let interval = assessment(s, n, which)
                .and_then(|x| x.ab.as_ref().map(|p| p.fmt_ratio()))
                .unwrap_or_else(|| "—".into());
            let (overlap, agree) = if i == 0 {
                ("(base)".to_string(), Text::plain("(base)"))
            } else {
                let o = match intervals_overlap(base, s, n, which) {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "—",
                };
                let a = agreement(base, s, n, which);
                let a = match a {
                    "OPPOSITE" | "DIFFERENT" => Text::bold(a),
                    _ => Text::plain(a),
                };
                (o.to_string(), a)
            };
            t.row([
                Text::plain(n),
                Text::code(&r.name),
                Text::plain(verdict(s, n, which)),
                Text::plain(interval),
                Text::plain(overlap),
                agree,
            ]);
        }
    }
    d.table(t);
}

/// Criterion's req/s per workload and runtime, one column per run, with each later run's
/// ratio to the base and whether their intervals overlap.
fn throughput_table(d: &mut Document, runs: &[Run]) {
    let mut keys: Vec<(String, String)> = Vec::new();
    for w in runs.iter().flat_map(|r| &r.summary.workloads) {
        for rt in &w.runtimes {
            let k = (w.spec.name.clone(), rt.label.clone());
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let thrpt = |s: &Summary, w: &str, rt: &str| {
        s.workload(w)?
            .runtimes
            .iter()
            .find(|r| r.label == rt)?
            .thrpt
    };
    d.heading("Throughput (criterion's req/s estimate [95% interval]; later runs: / the base)");
    let mut t = Table::new(
        ["workload".to_string(), "runtime".to_string()]
            .into_iter()
            .chain(runs.iter().map(|r| r.name.clone())),
    );
    for (w, rt) in keys {
        let base = thrpt(&runs[0].summary, &w, &rt);
        let cells = runs.iter().enumerate().map(|(i, r)| {
            let Some(x) = thrpt(&r.summary, &w, &rt) else {
                return "—".to_string();
            };
            let mut c = fmt_interval(&x);
            if let (true, Some(b)) = (i > 0, base) {
                c.push_str(&format!(" (×{})", x.ratio(&b).fmt_ratio()));
                if !x.overlaps(&b) {
                    c.push_str(", apart");
                }
            }
            c
        });
        let cells: Vec<String> = cells.collect();
        t.row([w, rt].into_iter().chain(cells));
    }
    d.table(t);
}

fn fmt_interval(i: &Interval) -> String {
    format!(
        "{} [{}, {}]",
        human_rate(i.estimate),
        human_rate(i.lower),
        human_rate(i.upper)
    )
}

/// Criterion's tokio-uring / tokio ratio and the rounds' median ratio, per run.
fn ratio_table(d: &mut Document, runs: &[Run], names: &[String]) {
    d.heading("tokio-uring / tokio in each run: criterion, then the rounds' median");
    d.para("For reference: criterion measures one pair of processes one after the other, and rounds inside one set of processes are not independent; the verdicts above come from the blocks.");
    let mut t = Table::new(
        std::iter::once("workload".to_string()).chain(runs.iter().flat_map(|r| {
            [
                format!("{}, criterion", r.name),
                format!("{}, rounds", r.name),
            ]
        })),
    );
    for n in names {
        let cells = runs.iter().flat_map(|r| {
            let w = r.summary.workload(n);
            [
                w.and_then(|x| x.ratio_uring_tokio)
                    .map_or("—".into(), |x| x.fmt_ratio()),
                w.and_then(|x| x.paired_uring_tokio.as_ref())
                    .map_or("—".into(), Paired::fmt_ratio),
            ]
        });
        t.row(std::iter::once(n.clone()).chain(cells));
    }
    d.table(t);
}

/// The comparison as Markdown (what `report --compare` prints).
pub fn markdown(runs: &[Run]) -> String {
    format!("# Runs compared\n\n{}", document(runs).markdown())
}
