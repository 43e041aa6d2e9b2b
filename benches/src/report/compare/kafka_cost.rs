//! What Kafka cost each runtime in each run (its null-sink control in the same blocks),
//! side by side: the figure to watch when the publisher changes.

use super::super::document::{Document, Table};
use super::Run;
use crate::results::kafka_cost::{added_us, throughput_cost};

pub(super) fn table(d: &mut Document, runs: &[Run]) {
    if runs
        .iter()
        .all(|r| r.summary.workloads.iter().all(|w| w.kafka_cost.is_empty()))
    {
        return;
    }
    d.heading("What Kafka costs, per run");
    d.para("Each runtime against its null-sink control in the same run's blocks (intervals over blocks, 95 %): the share of throughput Kafka takes, and the server CPU per request it adds (closed-loop rounds, the process's; at the paced rate, its cores').");
    let mut t = Table::new([
        "workload",
        "runtime",
        "run",
        "throughput Kafka takes",
        "added server CPU, µs/req",
        "added at the paced rate, cores µs/req",
    ]);
    for base in &runs[0].summary.workloads {
        for c0 in &base.kafka_cost {
            for run in runs {
                let Some(c) = run
                    .summary
                    .workload(&base.spec.name)
                    .and_then(|w| w.kafka_cost.iter().find(|c| c.runtime == c0.runtime))
                else {
                    continue;
                };
                let or_dash = |e: Option<String>| e.unwrap_or_else(|| "—".into());
                t.row([
                    base.spec.name.clone(),
                    c.runtime.label().to_string(),
                    run.name.clone(),
                    or_dash(c.throughput.as_ref().map(throughput_cost)),
                    or_dash(c.cpu_us.as_ref().map(added_us)),
                    or_dash(c.core_us_at_rate.as_ref().map(added_us)),
                ]);
            }
        }
    }
    d.table(t);
}
