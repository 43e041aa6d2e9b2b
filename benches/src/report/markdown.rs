//! summary.md: the comparison as tables.

use std::fmt::Write;

use super::{human_rate, Interval, Summary};

fn interval(i: &Option<Interval>) -> String {
    match i {
        Some(i) => format!(
            "{} / **{}** / {}",
            human_rate(i.lower),
            human_rate(i.estimate),
            human_rate(i.upper)
        ),
        None => "—".into(),
    }
}

fn ratio(i: &Option<Interval>) -> String {
    i.map_or("—".into(), |r| r.fmt_ratio())
}

pub fn render(s: &Summary) -> String {
    let mut o = String::new();
    let e = &s.env;
    let _ = writeln!(o, "# runtime-bench: tokio vs tokio-uring\n");
    let _ = writeln!(o, "{}\n", s.run_line());
    if s.passed() {
        let _ = writeln!(o, "**All workloads verified**: records in Kafka equal 2xx answers, no errors, no stalls.\n");
    } else {
        let _ = writeln!(
            o,
            "**VERIFICATION FAILED** — these results are not to be trusted as they stand:\n"
        );
        for p in &s.problems {
            let _ = writeln!(o, "- {p}");
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(
        o,
        "## Throughput (req/s): criterion's 95% interval, lower / **estimate** / upper\n"
    );
    let labels: Vec<String> = runtime_labels(s);
    let _ = write!(o, "| workload |");
    for l in &labels {
        let _ = write!(o, " {l} |");
    }
    let _ = writeln!(o, " tokio-uring / tokio | delivery check |");
    let _ = writeln!(o, "|---|{}---|---|", "---|".repeat(labels.len()));
    for w in &s.workloads {
        let _ = write!(o, "| {} |", w.spec.name);
        for l in &labels {
            let cell = match w.runtimes.iter().find(|r| &r.label == l) {
                Some(r) if r.skipped.is_some() => "skipped".into(),
                Some(r) => interval(&r.thrpt),
                None => "".into(),
            };
            let _ = write!(o, " {cell} |");
        }
        let verified = w
            .runtimes
            .iter()
            .all(|r| r.skipped.is_some() || r.verification.as_ref().is_some_and(|v| v.passed));
        let _ = writeln!(
            o,
            " {} | {} |",
            ratio(&w.ratio_uring_tokio),
            if verified { "ok" } else { "FAILED" }
        );
    }
    if s.workloads
        .iter()
        .any(|w| w.ratio_uring_tokio_per_core.is_some())
    {
        let _ = writeln!(o, "\ntokio-uring / tokio per-core (same thread-per-core layout, only io_uring vs epoll differs):\n");
        for w in s
            .workloads
            .iter()
            .filter(|w| w.ratio_uring_tokio_per_core.is_some())
        {
            let _ = writeln!(
                o,
                "- {}: {}",
                w.spec.name,
                ratio(&w.ratio_uring_tokio_per_core)
            );
        }
    }
    let _ = writeln!(o, "\nA ratio above 1 means tokio-uring served more requests per second. Where the bracketed bounds include 1, the difference is within the noise of this run.\n");

    if s.workloads.iter().any(|w| w.paired_uring_tokio.is_some()) {
        let _ = writeln!(o, "## tokio-uring / tokio from interleaved rounds\n");
        let _ = writeln!(o, "Both servers stay up; each round measures one, then the other, back to back (order alternating), so a change in the machine's speed during the run lands on both sides of a round's ratio. Median of the rounds' ratios, with a sign-test interval for the median. Server CPU per request: all the server's threads (I/O loop and librdkafka's), from the same rounds; below 1, tokio-uring spent less CPU on each request.\n");
        let _ = writeln!(
            o,
            "| workload | rounds | tokio-uring / tokio, req/s | per round | tokio-uring / tokio, server CPU per request |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|");
        for w in &s.workloads {
            if let Some(p) = &w.paired_uring_tokio {
                let per: Vec<String> = p.ratios.iter().map(|r| format!("{r:.2}")).collect();
                let cpu = w
                    .paired_cpu_uring_tokio
                    .as_ref()
                    .map_or("—".into(), |c| c.fmt_ratio());
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {cpu} |",
                    w.spec.name,
                    p.ratios.len(),
                    p.fmt_ratio(),
                    per.join(" ")
                );
            }
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(
        o,
        "## Latency (µs) from a fixed-duration pass per runtime\n"
    );
    let _ = writeln!(
        o,
        "| workload | runtime | req/s | p50 | p90 | p99 | p99.9 | max | server CPU µs/req |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|");
    for w in &s.workloads {
        for r in &w.runtimes {
            if let Some(l) = &r.latency {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    w.spec.name,
                    r.label,
                    human_rate(r.latency_pass_rate.unwrap_or(0.0)),
                    l.p50,
                    l.p90,
                    l.p99,
                    l.p999,
                    l.max,
                    r.cpu_us_per_request
                        .map_or("—".into(), |c| format!("{c:.1}"))
                );
            }
        }
    }

    let _ = writeln!(o, "\n## Delivery check\n");
    let _ = writeln!(o, "| workload | runtime | 2xx answers | landed in Kafka | counted by | errors | non-2xx | stalls | clean exit | result |");
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
    for w in &s.workloads {
        for r in &w.runtimes {
            match (&r.verification, &r.skipped) {
                (_, Some(why)) => {
                    let _ = writeln!(
                        o,
                        "| {} | {} | skipped: {why} | | | | | | | |",
                        w.spec.name, r.label
                    );
                }
                (Some(v), None) => {
                    let _ = writeln!(
                        o,
                        "| {} | {} | {} | {} | {:?} | {} | {} | {} | {} | {} |",
                        w.spec.name,
                        r.label,
                        v.ok,
                        v.landed,
                        v.method,
                        v.errors,
                        v.non_2xx,
                        v.stalls,
                        v.clean_exit,
                        if v.passed { "ok" } else { "FAILED" }
                    );
                }
                (None, None) => {
                    let _ = writeln!(
                        o,
                        "| {} | {} | no result | | | | | | | FAILED |",
                        w.spec.name, r.label
                    );
                }
            }
        }
    }

    let _ = writeln!(o, "\n## Workloads\n");
    for w in &s.workloads {
        let extra = if w.spec.server_args.is_empty() {
            String::new()
        } else {
            format!(" (server flags: `{}`)", w.spec.server_args.join(" "))
        };
        let _ = writeln!(o, "- `{}`: {}{}", w.spec.name, w.spec.description, extra);
    }
    let _ = writeln!(o, "\n## Configuration\n");
    let _ = writeln!(
        o,
        "Server flags for every workload: `{}`\n",
        s.setup.server_args.join(" ")
    );
    let _ = writeln!(o, "Effective producer configuration:\n");
    for (k, v) in &s.setup.producer_config {
        let _ = writeln!(o, "- `{k}={v}`");
    }
    let _ = writeln!(o, "\n## Environment\n");
    let env = serde_json::to_value(e).unwrap_or_default();
    if let Some(map) = env.as_object() {
        for (k, v) in map {
            let _ = writeln!(o, "- {k}: `{v}`");
        }
    }
    o
}

pub(super) fn runtime_labels(s: &Summary) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for w in &s.workloads {
        for r in &w.runtimes {
            if !labels.contains(&r.label) {
                labels.push(r.label.clone());
            }
        }
    }
    labels
}
