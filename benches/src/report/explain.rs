//! The answer first: one verdict per workload and the evidence behind it, then why — what
//! each server did per request — as document sections (see `markdown.rs`).

use super::document::{Document, Table, Text};
use super::Summary;
use crate::analysis::Paired;
use crate::results::RoundSample;
use crate::runtime::Runtime;

fn pct(x: Option<f64>) -> String {
    x.map_or("—".into(), |v| format!("{:.0} %", v * 100.0))
}

fn per_req(x: Option<f64>, digits: usize) -> String {
    x.map_or("—".into(), |v| format!("{v:.digits$}"))
}

/// The verdict table: decided over blocks of fresh processes, with the workload's own A/A
/// control and noise floor, where the variance lives, client-bound rounds, and criterion's
/// ratio beside it.
pub fn verdicts(s: &Summary, d: &mut Document) {
    d.heading("Verdict: which runtime serves each workload better");
    if s.setup.aa {
        d.para(Text::bold("This is an A/A run (BENCH_AA=1): server-tokio ran in every tokio-uring slot, so both sides are the same binary. Every correct verdict here is “equivalent” or “undecided”; a “faster” verdict is a false positive of the method on this machine."));
    }
    let rules = s.setup.rules.unwrap_or_default();
    d.para(format!(
        "Each workload ran {} blocks; a block starts fresh processes of tokio, tokio-uring and a second tokio (the twin, the A/A control) and runs one round per runtime in Latin-square order (every runtime in every position once), each turn after the previous server went idle and after an unmeasured warm-up. Per block: tokio-uring against both tokio processes, and the twin against tokio, as log ratios of the block's mean rates; the interval is the Wilcoxon signed-rank ({:.0} %) interval over blocks, so it reflects the variance between processes, not only between rounds of one process. The A/A noise floor is how far the twin and tokio measured apart in the same blocks (symmetric). Faster: the whole interval beyond the floor; equivalent: the interval within ±{:.0} % and the floor inside that band; otherwise undecided, with the reason. A workload without its own A/A control, or with fewer than {} blocks, gets no verdict. The number of blocks is fixed in advance (no stopping when the interval first excludes 1). Each turn is named by who limited it, from the busy share of each side's whole cores (every task, irq and softirq on them): server-limited (the server's cores at 90 % or more, the load side's not), load-limited, co-limited (both at 90 % or more: the rate measures the load generator too) or neither-limited (latency set the rate). A throughput verdict is given only when most turns were server-limited; otherwise the efficiency verdict below is the one to read. Criterion's ratio is for reference: it measures one pair of processes (the mechanism block's, after the verdict blocks), one runtime after the other, so where it falls outside the interval, that pair's own offsets or a drift of the machine between the two measurements moved it.",
        rules.blocks,
        rules.level * 100.0,
        rules.band * 100.0,
        rules.min_blocks,
    ));
    let mut t = Table::new([
        "workload",
        "verdict",
        "tokio-uring / tokio (over blocks)",
        "A/A: twin / tokio",
        "A/A noise floor",
        "blocks × rounds",
        "SD between blocks / rounds",
        "with 8 more blocks",
        "limit (turns)",
        "criterion's ratio",
        "capacity at a p99 objective (latency curve)",
    ]);
    let sd = |x: f64| format!("{:.1} %", (x.exp() - 1.0) * 100.0);
    for w in &s.workloads {
        let Some(a) = &w.assessment else {
            let mut row = vec![
                Text::plain(w.spec.name.as_str()),
                Text::plain("no verdict: tokio-uring was not measured"),
            ];
            row.extend((0..8).map(|_| Text::from("—")));
            row.push(super::curves::capacity_cell(s, w));
            t.row(row);
            continue;
        };
        let verdict = match a.verdict.is_decided() {
            true => Text::bold(a.verdict.text()),
            false => Text::plain(a.verdict.text()),
        };
        let criterion = match (w.ratio_uring_tokio, w.criterion_drift) {
            (Some(r), Some(true)) => Text::plain(format!("{:.3} ", r.estimate)).then(Text::bold(
                "(outside the interval: one pair of processes, one after the other)",
            )),
            (Some(r), _) => Text::plain(format!("{:.3}", r.estimate)),
            (None, _) => "—".into(),
        };
        let v = a.variance.as_ref();
        t.row([
            Text::plain(w.spec.name.as_str()),
            verdict,
            a.ab.as_ref().map_or("—".into(), |p| p.fmt_ratio()).into(),
            a.aa.as_ref()
                .map_or("not measured".into(), |p| p.fmt_ratio())
                .into(),
            a.noise_floor
                .map_or("not measured".into(), |f| format!("±{:.1} %", f * 100.0))
                .into(),
            format!(
                "{} × {}",
                a.blocks,
                v.map_or("?".into(), |v| v.rounds_per_block.to_string())
            )
            .into(),
            v.map_or("—".into(), |v| {
                format!("{} / {}", sd(v.between_blocks), sd(v.between_rounds))
            })
            .into(),
            v.map_or("—".into(), |v| {
                format!(
                    "about ±{} (now ±{})",
                    sd(v.half_width_8_more_blocks),
                    sd(v.half_width)
                )
            })
            .into(),
            limit_cell(a).into(),
            criterion,
            super::curves::capacity_cell(s, w),
        ]);
    }
    d.table(t);
}

/// The dominant limit and its share of the turns, e.g. `co-limited 50/54`.
fn limit_cell(a: &crate::analysis::Assessment) -> String {
    let Some(l) = a.limits.filter(|l| l.turns() > 0) else {
        return "not classified".into();
    };
    let Some(d) = l.dominant() else {
        return "—".into();
    };
    format!("{} {}/{}", d.label(), l.of(d), l.turns())
}

/// The efficiency verdict: every runtime paced at one offered rate, judged on the server
/// cores' busy time per request.
pub fn efficiency(s: &Summary, d: &mut Document) {
    if s.workloads.iter().all(|w| w.efficiency.is_none()) {
        return;
    }
    d.heading("Efficiency: CPU per request at a fixed load");
    d.para(format!(
        "In every block, after the throughput rounds, one paced round: each runtime's server (tokio, tokio-uring, the twin, and any null-sink control) gets the same offered rate, {:.0} % of the lower runtime's median rate in the first block, in an open loop, so the load side has headroom and the figure does not depend on the client's limits. The figure is the busy time of the server's whole cores (every task, irq and softirq on them) per answered request: the turn's wall time less the cores' idle residency from the cpuidle driver (µs), or from /proc/stat ticks (10 ms) on a kernel without one; the server's own threads on the scheduler clock (ns) are shown beside it; it is decided like throughput (per block, tokio-uring against both tokio processes, the twin against tokio as the A/A control, the signed-rank interval over blocks), on requests per busy core-second, and worded as CPU per request. A pipelined workload is paced a window at a time: each slot sends its connection's `depth` requests.",
        s.setup.rules.unwrap_or_default().efficiency_load * 100.0
    ));
    let mut t = Table::new([
        "workload",
        "offered rate",
        "efficiency verdict",
        "tokio-uring / tokio, requests per core-second",
        "A/A noise floor",
        "blocks",
        "server cores µs/req: tokio / tokio-uring",
        "server threads µs/req: tokio / tokio-uring",
    ]);
    for w in &s.workloads {
        let Some(a) = &w.efficiency else { continue };
        let us = |rt: Runtime, f: fn(&RoundSample) -> Option<f64>| {
            let r = w.runtime(rt)?;
            let v: Vec<f64> = r.raw.efficiency_samples.iter().filter_map(f).collect();
            crate::analysis::median(&v)
        };
        let both = |f: fn(&RoundSample) -> Option<f64>| {
            format!(
                "{} / {}",
                per_req(us(Runtime::Tokio, f), 2),
                per_req(us(Runtime::Uring, f), 2)
            )
        };
        t.row([
            Text::plain(w.spec.name.as_str()),
            w.efficiency_rate
                .map_or("—".into(), |r| {
                    format!("{} req/s", super::format::human_rate(r))
                })
                .into(),
            match a.verdict.is_decided() {
                true => Text::bold(a.verdict.efficiency_text()),
                false => Text::plain(a.verdict.efficiency_text()),
            },
            a.ab.as_ref().map_or("—".into(), |p| p.fmt_ratio()).into(),
            a.noise_floor
                .map_or("not measured".into(), |f| format!("±{:.1} %", f * 100.0))
                .into(),
            a.blocks.to_string().into(),
            both(RoundSample::core_us_per_request).into(),
            both(RoundSample::sched_us_per_request).into(),
        ]);
    }
    d.table(t);
}

/// Why: per workload and runtime, the medians over the rounds of what the server did per
/// request, and who was the limit.
pub fn mechanism(s: &Summary, d: &mut Document) {
    if !s
        .workloads
        .iter()
        .flat_map(|w| &w.runtimes)
        .any(|r| r.mechanism.is_some())
    {
        return;
    }
    d.heading("Why: what each server did per request (medians over the rounds)");
    d.para("Where each request's CPU went, first: the server's whole cores (every task, irq and softirq on them: busy time from the cpuidle driver's µs idle residency where the kernel has one, else /proc/stat ticks) per request with the softirq part in brackets (/proc/stat ticks) (loopback TCP receive work, charged to no process on kernels with IRQ time accounting), then the load side per request: the load generator's threads and the bench process's other threads (the embedded broker, Kafka clients), from each thread's scheduler clock. Limit: who limited most of the runtime's rounds. Server and load-side CPU: share of the cores each was given (the server's from /proc/PID/stat, all its threads including exited ones; the load side is the bench process: load generator and embedded broker). Steal: the host's CPU taken by the hypervisor. Per request: the server's user and system CPU, context switches (voluntary / involuntary), syscalls, and the waits among them: epoll_wait (tokio's reactor; tokio-uring parks in it too) and io_uring_enter (tokio-uring's submissions and waits). Syscalls are counted by tracepoints in a mechanism round of their own, on a fresh set of processes after the verdict blocks (the mechanism block): attaching them puts every thread on the kernel's slow syscall path, a cost that grows with syscalls per request, so verdict rounds run without them. “Rate while counting syscalls” is that round's rate against the last verdict block's rounds (other processes, so process-to-process variance is in it too): roughly what counting cost. The last four columns are the connection tasks' own account, from the mechanism block's round (tokio-metrics' TaskMonitor wraps each connection's future in both servers there; read from each server's /metrics around the turn; verdict blocks run without it, since it costs each poll ~0.3 µs): polls per request, the mean poll, polls over the slow-poll threshold (50 µs) per 1,000 requests, and the mean wait between a task's wake-up and its poll (the scheduling delay).");
    let mut t = Table::new([
        "workload",
        "runtime",
        "limit (rounds)",
        "server cores µs/req (softirq)",
        "load generator µs/req",
        "broker and other µs/req",
        "server CPU",
        "load side CPU",
        "steal",
        "user µs/req",
        "system µs/req",
        "ctx switches/req",
        "syscalls/req",
        "epoll_wait/req",
        "io_uring_enter/req",
        "rate while counting syscalls",
        "task polls/req",
        "mean poll µs",
        "slow polls / 1k req",
        "wake-to-poll µs",
    ]);
    let mut unavailable: Vec<String> = Vec::new();
    for w in &s.workloads {
        for r in &w.runtimes {
            let Some(m) = &r.mechanism else { continue };
            if let Some(why) = &r.raw.syscalls_unavailable {
                if !unavailable.contains(why) {
                    unavailable.push(why.clone());
                }
            }
            let calls = |x: Option<f64>| match (&r.raw.syscalls_unavailable, x) {
                (Some(_), _) => "not available".to_string(),
                (None, x) => per_req(x, 2),
            };
            t.row([
                w.spec.name.clone(),
                r.label.clone(),
                m.limit.map_or("—".into(), |l| {
                    format!("{} {}/{}", l.label(), m.limit_rounds, m.rounds)
                }),
                match (m.core_us, m.softirq_us) {
                    (Some(c), Some(si)) => format!("{c:.2} ({si:.2})"),
                    _ => "—".into(),
                },
                per_req(m.loadgen_us, 2),
                per_req(m.broker_us, 2),
                pct(m.server_share),
                pct(m.load_share),
                m.steal
                    .map_or("—".into(), |v| format!("{:.1} %", v * 100.0)),
                per_req(m.user_us, 2),
                per_req(m.system_us, 2),
                format!(
                    "{} / {}",
                    per_req(m.ctx_voluntary, 3),
                    per_req(m.ctx_involuntary, 3)
                ),
                calls(m.syscalls),
                calls(m.epoll_waits),
                calls(m.io_uring_enters),
                m.counting_rate_change
                    .map_or("—".into(), |c| format!("{:+.1} %", c * 100.0)),
                per_req(m.polls, 2),
                per_req(m.poll_us, 2),
                per_req(m.slow_polls_per_1k, 2),
                per_req(m.wake_to_poll_us, 1),
            ]);
        }
    }
    d.table(t);
    if !unavailable.is_empty() {
        d.para(Text::plain("Syscalls not available: ").then(unavailable.join("; ")));
    }
}

/// Was io_uring given a fair chance: every server-uring setup of a workload (default ring,
/// tuned rings) against tokio and tokio per-core, from the same interleaved rounds.
pub fn ring_setups(s: &Summary, d: &mut Document) {
    let with_setups: Vec<_> = s
        .workloads
        .iter()
        .filter(|w| w.runtimes.iter().filter(|r| r.runtime().is_uring()).count() > 1)
        .collect();
    if with_setups.is_empty() {
        return;
    }
    d.heading("tokio-uring setups: was io_uring given a fair chance?");
    d.para("Each server-uring ring setup measured in the same interleaved rounds as tokio (work-stealing) and tokio per-core (the same thread-per-core layout as server-uring, so only io_uring vs epoll differs): the median of the rounds' ratios with its interval, and what the setup did per request. coop-single: IORING_SETUP_COOP_TASKRUN + SINGLE_ISSUER; sqpoll: a kernel thread polls the submission queue (its CPU counts as the server's).");
    let mut t = Table::new([
        "workload",
        "setup",
        "/ tokio",
        "/ tokio per-core",
        "server CPU µs/req",
        "syscalls/req",
        "io_uring_enter/req",
    ]);
    for w in with_setups {
        let rates = |rt: Runtime| -> Option<Vec<f64>> {
            let r = w.runtimes.iter().find(|r| r.runtime() == rt)?;
            Some(r.raw.round_samples.iter().map(|x| x.rate).collect())
        };
        let vs = |a: &[f64], base: Runtime| {
            rates(base)
                .and_then(|b| Paired::from_rounds(a, &b))
                .map_or("—".into(), |p| p.fmt_ratio())
        };
        for r in w.runtimes.iter().filter(|r| r.runtime().is_uring()) {
            let mine: Vec<f64> = r.raw.round_samples.iter().map(|x| x.rate).collect();
            let m = r.mechanism.as_ref();
            let cpu = m.and_then(|m| Some(m.user_us? + m.system_us?));
            t.row([
                w.spec.name.clone(),
                r.label.clone(),
                vs(&mine, Runtime::Tokio),
                vs(&mine, Runtime::TokioPerCore),
                per_req(cpu, 2),
                per_req(m.and_then(|m| m.syscalls), 2),
                per_req(m.and_then(|m| m.io_uring_enters), 3),
            ]);
        }
    }
    d.table(t);
}
