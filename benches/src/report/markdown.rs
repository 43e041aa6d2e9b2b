//! What the summary says, as one [`Document`]: `summary.md` is its Markdown, and the tables
//! section of `report.html` its HTML.

use super::document::{Document, Table, Text};
use super::explain;
use super::format::{human_rate, runtime_labels};
use super::Summary;
use crate::analysis::Interval;
use common::landed::CountMethod;

use crate::results::Verification;
use crate::runtime::Runtime;

fn interval(i: &Option<Interval>) -> Text {
    match i {
        Some(i) => Text::plain(format!("{} / ", human_rate(i.lower)))
            .then(Text::bold(human_rate(i.estimate)))
            .then(format!(" / {}", human_rate(i.upper))),
        None => "—".into(),
    }
}

fn ratio(i: &Option<Interval>) -> String {
    i.map_or("—".into(), |r| r.fmt_ratio())
}

/// `summary.md`.
pub fn render(s: &Summary) -> String {
    format!(
        "# runtime-bench: tokio vs tokio-uring\n\n{}\n\n{}",
        s.run_line(),
        verdict_lines(s).markdown(),
    ) + &document(s).markdown()
}

/// The pass/fail statement at the top.
pub fn verdict_lines(s: &Summary) -> Document {
    let mut d = Document::default();
    let skipped = s.skipped();
    if s.passed() {
        d.para(Text::bold(if skipped.is_empty() {
            "All workloads verified"
        } else {
            "Every measured run verified"
        }).then(
            ": records in Kafka equal 2xx answers (with a null sink: not counted), no errors, no stalls, clean exits.",
        ));
    } else {
        d.para(
            Text::bold("VERIFICATION FAILED")
                .then(" — these results are not to be trusted as they stand:"),
        );
        let mut problems: Vec<Text> = s.problems.iter().map(|p| Text::plain(p.as_str())).collect();
        if problems.is_empty() {
            problems.push("a workload has no verified runtime".into());
        }
        d.list(problems);
    }
    if !skipped.is_empty() {
        d.para(Text::bold("Not measured").then(" (no ratio is given for them):"));
        d.list(skipped.into_iter().map(Text::plain).collect());
    }
    d
}

/// Every table and list of the summary: the verdicts, then the details.
pub fn document(s: &Summary) -> Document {
    let mut d = Document::default();
    explain::verdicts(s, &mut d);
    explain::efficiency(s, &mut d);
    super::kafka_cost::section(s, &mut d);
    d.blocks.extend(details(s).blocks);
    d
}

/// Everything after the verdicts.
pub fn details(s: &Summary) -> Document {
    let mut d = Document::default();
    throughput(s, &mut d);
    blocks(s, &mut d);
    super::curves::section(s, &mut d);
    latency(s, &mut d);
    explain::mechanism(s, &mut d);
    super::profiles::task_waits(s, &mut d);
    super::profiles::section(s, &mut d);
    explain::ring_setups(s, &mut d);
    super::unit_costs::section(s, &mut d);
    delivery(s, &mut d);
    setup(s, &mut d);
    d
}

fn throughput(s: &Summary, d: &mut Document) {
    d.heading("Throughput (req/s): criterion's 95% interval, lower / estimate / upper");
    let labels = runtime_labels(s);
    let mut head: Vec<String> = vec!["workload".into()];
    head.extend(labels.iter().cloned());
    head.extend(["tokio-uring / tokio".into(), "delivery check".into()]);
    let mut t = Table::new(head);
    for w in &s.workloads {
        let mut row: Vec<Text> = vec![w.spec.name.as_str().into()];
        for l in &labels {
            row.push(match w.runtimes.iter().find(|r| &r.label == l) {
                Some(r) if r.raw.skipped.is_some() => "skipped".into(),
                Some(r) => interval(&r.thrpt),
                None => "".into(),
            });
        }
        let verified = w.runtimes.iter().all(|r| {
            r.raw.skipped.is_some() || r.raw.verification.as_ref().is_some_and(|v| v.passed)
        });
        row.push(ratio(&w.ratio_uring_tokio).into());
        row.push(if verified { "ok" } else { "FAILED" }.into());
        t.rows.push(row);
    }
    d.table(t);
    let per_core: Vec<Text> = s
        .workloads
        .iter()
        .filter(|w| w.ratio_uring_tokio_per_core.is_some())
        .map(|w| format!("{}: {}", w.spec.name, ratio(&w.ratio_uring_tokio_per_core)).into())
        .collect();
    if !per_core.is_empty() {
        d.para("tokio-uring / tokio per-core (same thread-per-core layout, only io_uring vs epoll differs):");
        d.list(per_core);
    }
    d.para("A ratio above 1 means tokio-uring served more requests per second. Where the bracketed bounds include 1, the difference is within the noise of this run.");
}

/// One letter per runtime for the blocks' orders.
fn code(rt: Runtime) -> &'static str {
    match rt {
        Runtime::Tokio => "T",
        Runtime::Uring => "U",
        Runtime::TokioTwin => "W",
        Runtime::TokioPerCore => "P",
        Runtime::UringCoopSingle => "C",
        Runtime::UringSqpoll => "S",
        Runtime::TokioNullSink => "N",
        Runtime::UringNullSink => "M",
    }
}

/// Every block behind each verdict: its rounds' order and its two contrasts.
fn blocks(s: &Summary, d: &mut Document) {
    let with: Vec<_> = s
        .workloads
        .iter()
        .filter_map(|w| Some((w, w.assessment.as_ref()?)))
        .filter(|(_, a)| a.ab.is_some())
        .collect();
    if with.is_empty() {
        return;
    }
    d.heading("The blocks behind each verdict");
    d.para("A block is one set of fresh server processes. Order: its rounds, one group each, every runtime's turn in the order run (T tokio, U tokio-uring, W tokio's twin, P tokio per-core, C and S the tuned rings, N and M tokio's and tokio-uring's null-sink controls); the Latin square puts every runtime in every position once per block. Per block: tokio-uring against both tokio processes, and the twin against tokio (ratios of the block's mean log rates): the verdict's interval is over these rows, not over rounds.");
    let mut t = Table::new([
        "workload",
        "block",
        "order",
        "tokio-uring / tokio",
        "twin / tokio",
    ]);
    for (w, a) in &with {
        let ab = a.ab.as_ref().map_or(&[][..], |e| &e.blocks[..]);
        let aa = a.aa.as_ref().map_or(&[][..], |e| &e.blocks[..]);
        for (b, x) in ab.iter().enumerate() {
            let mut turns: Vec<(usize, usize, &'static str)> = w
                .runtimes
                .iter()
                .flat_map(|r| {
                    r.raw
                        .round_samples
                        .iter()
                        .filter(|t| t.block == b)
                        .map(|t| (t.round, t.position, code(r.runtime())))
                })
                .collect();
            turns.sort_unstable();
            let mut order = String::new();
            for (i, (round, _, c)) in turns.iter().enumerate() {
                if i > 0 && turns[i - 1].0 != *round {
                    order.push(' ');
                }
                order.push_str(c);
            }
            t.row([
                w.spec.name.clone(),
                (b + 1).to_string(),
                order,
                format!("{:.3}", x.exp()),
                aa.get(b).map_or("—".into(), |y| format!("{:.3}", y.exp())),
            ]);
        }
    }
    d.table(t);
    if with.iter().any(|(w, _)| w.paired_uring_tokio.is_some()) {
        d.para("Round by round, for reference (rounds inside one set of processes are not independent replicates, so these intervals are too narrow to decide on): the median of the rounds' tokio-uring / tokio ratios, and the same for the server's CPU per request (below 1: tokio-uring spent less CPU on each request).");
        let mut t = Table::new([
            "workload",
            "rounds",
            "tokio-uring / tokio, req/s",
            "tokio-uring / tokio, server CPU per request",
        ]);
        for (w, _) in &with {
            if let Some(p) = &w.paired_uring_tokio {
                t.row([
                    w.spec.name.clone(),
                    p.ratios.len().to_string(),
                    p.fmt_ratio(),
                    w.paired_cpu_uring_tokio
                        .as_ref()
                        .map_or("—".into(), |c| c.fmt_ratio()),
                ]);
            }
        }
        d.table(t);
    }
}

fn latency(s: &Summary, d: &mut Document) {
    d.heading("Latency (µs) at saturation: a closed-loop pass per runtime");
    let mut t = Table::new([
        "workload",
        "runtime",
        "req/s",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "server CPU µs/req",
    ]);
    for w in &s.workloads {
        for r in &w.runtimes {
            if let Some(l) = &r.latency() {
                t.row([
                    w.spec.name.clone(),
                    r.label.clone(),
                    human_rate(r.latency_pass_rate().unwrap_or(0.0)),
                    l.p50.to_string(),
                    l.p90.to_string(),
                    l.p99.to_string(),
                    l.p999.to_string(),
                    l.max.to_string(),
                    r.raw
                        .latency_pass_cpu_us
                        .map_or("—".into(), |c| format!("{c:.1}")),
                ]);
            }
        }
    }
    d.table(t);
}

fn landed(v: &Verification) -> String {
    v.landed.map_or("not counted".into(), |n| n.to_string())
}

/// The check by request id in a few words: how many records it matched, over what.
fn by_id(v: &Verification) -> String {
    v.ids.as_ref().map_or("—".into(), |c| c.short())
}

fn delivery(s: &Summary, d: &mut Document) {
    d.heading("Delivery check");
    let by_watermarks = s.workloads.iter().flat_map(|w| &w.runtimes).any(|r| {
        r.raw
            .verification
            .as_ref()
            .is_some_and(|v| v.method == CountMethod::Watermarks)
    });
    if by_watermarks {
        d.para("Counted by Watermarks: the embedded broker keeps only the latest ~5 MiB per partition, so its high watermarks count every record, and the records it still holds are read back and matched by request id (column \"by request id\": how many). A count alone cannot tell a duplicate from a record; the ids can, over the records read back. The producer is idempotent (enable.idempotence=true), which makes a real broker drop a resend after a dropped connection; the embedded broker (librdkafka's mock cluster) checks sequences only for transactional producers, so there a resend would land twice and show here as a duplicate by id (none is expected: nothing drops connections during a run).");
    }
    d.para("Every request's body starts with its own id (run, connection, sequence), and the load generator keeps which ids were answered 2xx: reading the topic back, each record is matched to its request, so a lost record and a duplicated one cannot cancel out.");
    let mut t = Table::new([
        "workload",
        "runtime",
        "2xx answers",
        "landed in Kafka",
        "counted by",
        "by request id",
        "errors",
        "non-2xx",
        "stalls",
        "clean exit",
        "result",
    ]);
    for w in &s.workloads {
        for r in &w.runtimes {
            let mut row = vec![w.spec.name.clone(), r.label.clone()];
            match (&r.raw.verification, &r.raw.skipped) {
                (_, Some(why)) => {
                    row.push(format!("skipped: {why}"));
                    row.extend(std::iter::repeat_n(String::new(), 8));
                }
                (Some(v), None) => row.extend([
                    v.ok.to_string(),
                    landed(v),
                    format!("{:?}", v.method),
                    by_id(v),
                    v.errors.to_string(),
                    v.non_2xx.to_string(),
                    v.stalls.to_string(),
                    v.clean_exit.to_string(),
                    if v.passed { "ok" } else { "FAILED" }.into(),
                ]),
                (None, None) => {
                    row.push("no result".into());
                    row.extend(std::iter::repeat_n(String::new(), 7));
                    row.push("FAILED".into());
                }
            }
            t.row(row);
        }
    }
    d.table(t);
}

fn setup(s: &Summary, d: &mut Document) {
    d.heading("Workloads");
    d.list(
        s.workloads
            .iter()
            .map(|w| {
                let flags = w.spec.server_flags();
                let t = Text::code(w.spec.name.as_str()).then(format!(": {}", w.spec.description));
                if flags.is_empty() {
                    t
                } else {
                    t.then(" (server flags: ")
                        .then(Text::code(flags.join(" ")))
                        .then(")")
                }
            })
            .collect(),
    );
    d.heading("Configuration");
    d.para(
        Text::plain("Server flags for every workload: ")
            .then(Text::code(s.setup.server_args.join(" "))),
    );
    // Each server's setup as it announced it (runtime, threads, ring), once per runtime.
    let mut seen: Vec<&str> = Vec::new();
    let mut servers: Vec<Text> = Vec::new();
    for r in s.workloads.iter().flat_map(|w| &w.runtimes) {
        if let (Some(line), false) = (&r.raw.server_ready, seen.contains(&r.label.as_str())) {
            seen.push(&r.label);
            let setup = line
                .split_once(" (")
                .map_or(line.as_str(), |(_, rest)| rest.trim_end_matches(')'));
            servers.push(
                Text::plain(format!("{}: ", r.label))
                    .then(Text::code(setup))
                    .then(" with ")
                    .then(Text::code(r.raw.server_flags.join(" "))),
            );
        }
    }
    if !servers.is_empty() {
        d.para("Each runtime's server, as its readiness line described it, and its flags:");
        d.list(servers);
    }
    d.para("Effective producer configuration:");
    d.list(
        s.setup
            .producer_config
            .iter()
            .map(|(k, v)| Text::code(format!("{k}={v}")))
            .collect(),
    );
    d.heading("Environment");
    let env = serde_json::to_value(&s.env).unwrap_or_default();
    if let Some(map) = env.as_object() {
        d.list(
            map.iter()
                // The calibration has its own section.
                .filter(|(k, _)| k.as_str() != "calibration")
                .map(|(k, v)| Text::plain(format!("{k}: ")).then(Text::code(v.to_string())))
                .collect(),
        );
    }
}
