//! The answer first: one verdict per workload and the evidence behind it, then why — what
//! each server did per request — as document sections (see `markdown.rs`).

use super::document::{Document, Table, Text};
use super::Summary;
use crate::analysis::Paired;
use crate::server::Runtime;

fn pct(x: Option<f64>) -> String {
    x.map_or("—".into(), |v| format!("{:.0} %", v * 100.0))
}

fn per_req(x: Option<f64>, digits: usize) -> String {
    x.map_or("—".into(), |v| format!("{v:.digits$}"))
}

/// The verdict table: decided from the interleaved rounds, with the noise floor, how many
/// rounds it took, how many were client-bound, and criterion's ratio beside it.
pub fn verdicts(s: &Summary, d: &mut Document) {
    d.heading("Verdict: which runtime serves each workload better");
    let rules = s.setup.rules.unwrap_or_default();
    d.para(format!(
        "Decided from the interleaved rounds (both servers up, measured alternately, so a machine that changes speed cannot favour either): faster when the tokio-uring / tokio interval lies wholly on one side of 1 and outside the A/A noise floor; equivalent when it lies within ±{:.0} %; otherwise undecided, with the reason. The A/A noise floor is how far two instances of the same server (tokio and its twin) measured apart in the same rounds; a workload without a twin of its own is held to the widest floor measured in the run (marked “the run's”). Rounds were added until decided, up to {} rounds or {:.0} s per workload. A round is client-bound when the server used under 80 % of its cores while the load side used 90 % or more of its; mostly client-bound workloads get no verdict. Criterion's ratio is shown for reference only; where it falls outside the rounds' interval the machine drifted while criterion measured one runtime, then the other.",
        rules.band * 100.0,
        rules.max_rounds,
        rules.budget.as_secs_f64()
    ));
    let mut t = Table::new([
        "workload",
        "verdict",
        "tokio-uring / tokio (rounds)",
        "A/A noise floor",
        "rounds",
        "client-bound rounds",
        "criterion's ratio",
        "capacity at a p99 objective (latency curve)",
    ]);
    for w in &s.workloads {
        let Some(a) = &w.assessment else {
            t.row([
                Text::plain(w.spec.name.as_str()),
                Text::plain("no verdict: tokio-uring was not measured"),
                "—".into(),
                "—".into(),
                "0".into(),
                "—".into(),
                "—".into(),
                super::curves::capacity_cell(s, w),
            ]);
            continue;
        };
        let verdict = match a.verdict.is_decided() {
            true => Text::bold(a.verdict.text()),
            false => Text::plain(a.verdict.text()),
        };
        let criterion = match (w.ratio_uring_tokio, w.criterion_drift) {
            (Some(r), Some(true)) => Text::plain(format!("{:.3} ", r.estimate)).then(Text::bold(
                "(outside the rounds' interval: the machine drifted)",
            )),
            (Some(r), _) => Text::plain(format!("{:.3}", r.estimate)),
            (None, _) => "—".into(),
        };
        t.row([
            Text::plain(w.spec.name.as_str()),
            verdict,
            a.ab.as_ref().map_or("—".into(), |p| p.fmt_ratio()).into(),
            match (a.noise_floor, a.floor_borrowed) {
                (Some(f), false) => format!("±{:.1} %", f * 100.0),
                (Some(f), true) => format!("±{:.1} % (the run's)", f * 100.0),
                (None, _) => "not measured".into(),
            }
            .into(),
            a.rounds.to_string().into(),
            a.client_bound_rounds.to_string().into(),
            criterion,
            super::curves::capacity_cell(s, w),
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
    d.para("Server and load-side CPU: share of the cores each was given (the server's from /proc/PID/stat, all its threads including exited ones; the load side is the bench process: load generator and embedded broker). Steal: the host's CPU taken by the hypervisor. Per request: the server's user and system CPU, context switches (voluntary / involuntary), syscalls, and the waits among them: epoll_wait (tokio's reactor; tokio-uring parks in it too) and io_uring_enter (tokio-uring's submissions and waits).");
    let mut t = Table::new([
        "workload",
        "runtime",
        "server CPU",
        "load side CPU",
        "steal",
        "user µs/req",
        "system µs/req",
        "ctx switches/req",
        "syscalls/req",
        "epoll_wait/req",
        "io_uring_enter/req",
    ]);
    let mut unavailable: Vec<String> = Vec::new();
    for w in &s.workloads {
        for r in &w.runtimes {
            let Some(m) = &r.mechanism else { continue };
            if let Some(why) = &r.syscalls_unavailable {
                if !unavailable.contains(why) {
                    unavailable.push(why.clone());
                }
            }
            let calls = |x: Option<f64>| match (&r.syscalls_unavailable, x) {
                (Some(_), _) => "not available".to_string(),
                (None, x) => per_req(x, 2),
            };
            t.row([
                w.spec.name.clone(),
                r.label.clone(),
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
        .filter(|w| w.runtimes.iter().filter(|r| r.runtime.is_uring()).count() > 1)
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
            let r = w.runtimes.iter().find(|r| r.runtime == rt)?;
            Some(r.round_samples.iter().map(|x| x.rate).collect())
        };
        let vs = |a: &[f64], base: Runtime| {
            rates(base)
                .and_then(|b| Paired::from_rounds(a, &b))
                .map_or("—".into(), |p| p.fmt_ratio())
        };
        for r in w.runtimes.iter().filter(|r| r.runtime.is_uring()) {
            let mine: Vec<f64> = r.round_samples.iter().map(|x| x.rate).collect();
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
