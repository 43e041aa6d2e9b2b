//! "What Kafka costs": each runtime beside its null-sink control in the same blocks, as a
//! throughput share and server CPU per request, with intervals over blocks.

use super::document::{Document, Table, Text};
use super::format::human_rate;
use super::Summary;
use crate::results::kafka_cost::{added_us, throughput_cost};
use crate::sampling::{breakdown::KAFKA_STEPS, CpuProfile};

pub fn section(s: &Summary, d: &mut Document) {
    if s.workloads.iter().all(|w| w.kafka_cost.is_empty()) {
        return;
    }
    d.heading("What Kafka costs");
    d.para(
        Text::plain("Each runtime ran beside its null-sink control: the same server with ")
            .then(Text::code("--sink null"))
            .then(" (it parses, routes and answers every request, and publishes nowhere), a fresh process of each in every block, in the same Latin square of rounds as the runtimes. Per block, the Kafka server against its control (mean log rate; mean CPU per request), the signed-rank interval over blocks (95 %). The server's CPU is its process's (librdkafka's threads included; the broker runs on the load side's core); at the paced rate it is the server cores' busy time, softirq included."),
    );
    let mut t = Table::new([
        "workload",
        "runtime",
        "req/s: Kafka / null sink",
        "throughput Kafka takes",
        "server CPU µs/req: Kafka / null sink",
        "added per request, µs (user, system)",
        "added at the paced rate, cores µs/req",
        "turns",
    ]);
    let mut caveats = Vec::new();
    for w in &s.workloads {
        for c in &w.kafka_cost {
            let pair = |a: Option<f64>, b: Option<f64>, f: &dyn Fn(f64) -> String| {
                format!("{} / {}", a.map_or("—".into(), f), b.map_or("—".into(), f))
            };
            let split = match (c.user_us, c.system_us) {
                (Some(u), Some(sys)) => format!(" ({u:+.2}, {sys:+.2})"),
                _ => String::new(),
            };
            let blocks = c.throughput.as_ref().map_or(0, |e| e.blocks.len());
            if let Some(why) = c.throughput_caveat() {
                caveats.push(Text::plain(format!(
                    "{} / {}: {why}",
                    w.spec.name,
                    c.runtime.label()
                )));
            }
            t.row([
                Text::plain(w.spec.name.as_str()),
                c.runtime.label().into(),
                pair(c.kafka_rate, c.null_rate, &|r| human_rate(r)).into(),
                Text::bold(c.throughput.as_ref().map_or("—".into(), throughput_cost)),
                pair(c.kafka_cpu_us, c.null_cpu_us, &|v| format!("{v:.2}")).into(),
                Text::bold(c.cpu_us.as_ref().map_or("—".into(), added_us)).then(split),
                c.core_us_at_rate
                    .as_ref()
                    .map_or("—".into(), added_us)
                    .into(),
                format!(
                    "{blocks} blocks, {} of {} server-limited",
                    c.limits.server,
                    c.limits.turns()
                )
                .into(),
            ]);
        }
    }
    d.table(t);
    let floors: Vec<Text> = s
        .workloads
        .iter()
        .filter(|w| !w.kafka_cost.is_empty())
        .filter_map(|w| {
            let aa = w.assessment.as_ref()?.aa.as_ref()?;
            Some(Text::plain(format!(
                "{}: two copies of tokio (the A/A control) measured {:+.1} % apart in the same blocks",
                w.spec.name,
                (aa.estimate.exp() - 1.0) * 100.0
            )))
        })
        .collect();
    if !floors.is_empty() {
        d.para("For scale, the same blocks' A/A control:");
        d.list(floors);
    }
    if !caveats.is_empty() {
        d.para("Where the server was not the limit in most turns, the throughput share is partly the load side's (an embedded broker shares the load generator's core, and works only for the Kafka server); the CPU per request is the server's either way:");
        d.list(caveats);
    }
    path_section(s, d);
}

/// Where the Kafka runtime's samples went along the Kafka path, in µs of the server's
/// cores per request of its profiling pass, beside its null-sink control's.
pub fn path_section(s: &Summary, d: &mut Document) {
    let mut cols: Vec<(String, &CpuProfile)> = Vec::new();
    for w in &s.workloads {
        for c in &w.kafka_cost {
            for rt in [c.runtime, c.control] {
                let Some(p) = w.runtime(rt).and_then(|r| r.raw.cpu_profile.as_ref()) else {
                    continue;
                };
                if !p.breakdown.kafka_path.is_empty() && p.rate > 0.0 {
                    cols.push((format!("{} {}", w.spec.name, rt.label()), p));
                }
            }
        }
    }
    if cols.is_empty() {
        return;
    }
    d.para("Where it goes: the profiling pass's samples of each server (the whole server process on its cores: every thread, user and kernel), split by thread and by what the chain was doing for the publisher, in µs of CPU per request at the pass's rate. A null-sink control shows what the same server spends without Kafka; the difference of the totals is Kafka's cost in that pass (one pair of processes, so noisier than the blocks above).");
    let mut head = vec!["step".to_string()];
    head.extend(cols.iter().map(|(l, _)| l.clone()));
    let mut t = Table::new(head);
    let us = |p: &CpuProfile, n: u64| n as f64 * p.period_us / (p.rate * p.duration_s);
    for step in KAFKA_STEPS {
        let row: Vec<f64> = cols
            .iter()
            .map(|(_, p)| {
                let n = p
                    .breakdown
                    .kafka_path
                    .iter()
                    .find(|(q, _)| q == step)
                    .map_or(0, |(_, n)| *n);
                us(p, n)
            })
            .collect();
        if row.iter().all(|v| *v == 0.0) {
            continue;
        }
        let mut cells = vec![Text::plain(*step)];
        cells.extend(row.iter().map(|v| Text::plain(format!("{v:.2}"))));
        t.row(cells);
    }
    let mut total = vec![Text::bold("total")];
    total.extend(
        cols.iter()
            .map(|(_, p)| Text::bold(format!("{:.2}", us(p, p.breakdown.samples)))),
    );
    t.row(total);
    d.table(t);
}
