//! The lines `cargo bench` prints at the end: criterion's ratios for reference, where the
//! reports are, the verdicts, the efficiency verdicts and what Kafka costs (the same
//! assessments the report renders).

use std::path::Path;

use super::Summary;

/// Prints the summary's verdicts; `results` and `criterion_index` are where the reports are.
pub fn print(summary: &Summary, results: &Path, criterion_index: &Path) {
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
    let shown = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    println!(
        "runtime-bench: report in {}/ (report.html, summary.md, summary.json, env.json)",
        shown(results).display()
    );
    println!(
        "runtime-bench: criterion's reports in {}",
        shown(criterion_index).display()
    );
    if summary.setup.aa {
        println!("\nruntime-bench: A/A RUN (BENCH_AA=1): server-tokio ran in every tokio-uring slot; a \"faster\" verdict below is a false positive");
    }
    let floor =
        |f: Option<f64>| f.map_or("not measured".into(), |f| format!("±{:.1} %", f * 100.0));
    println!("\nruntime-bench: verdicts (tokio-uring / tokio, over blocks of fresh processes):");
    for w in &summary.workloads {
        match &w.assessment {
            Some(a) => println!(
                "  {:<26} {}  [{} blocks, ratio {}, A/A floor {}]",
                w.spec.name,
                a.verdict.text(),
                a.blocks,
                a.ab.as_ref().map_or("—".into(), |p| p.fmt_ratio()),
                floor(a.noise_floor)
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
                super::human_rate(rate),
                a.verdict.efficiency_text(),
                floor(a.noise_floor)
            ),
            _ => println!("  {:<26} not measured", w.spec.name),
        }
    }
    if summary.workloads.iter().any(|w| !w.kafka_cost.is_empty()) {
        println!("\nruntime-bench: what Kafka costs (each runtime against its --sink null control, same blocks):");
        for w in &summary.workloads {
            for c in &w.kafka_cost {
                println!("  {:<26} {}", w.spec.name, c.line());
            }
        }
    }
}
