//! Where each runtime's CPU went, from its CPU profile (`crate::sampling`): the share of the
//! server's samples per part (kernel network stack, io_uring, the rest of the kernel, the
//! runtime, our code, the Kafka client, other user code), the functions that took most
//! samples themselves, and links to the flame graphs.

use super::document::{Document, Table, Text};
use super::format::human_rate;
use super::Summary;
use crate::sampling::CpuProfile;

/// The parts, in the columns' order.
const PARTS: &[&str] = &[
    "kernel: network stack",
    "kernel: io_uring",
    "kernel: other (scheduling, epoll, timers)",
    "runtime (tokio, tokio-uring, mio)",
    "our code (HTTP, publish)",
    "Kafka client",
    "other user code (std, libc, allocator)",
];

fn pct(n: u64, of: u64) -> String {
    if of == 0 {
        "—".into()
    } else {
        format!("{:.0} %", n as f64 / of as f64 * 100.0)
    }
}

/// `name 12 %, name 8 %, ...` for the first `n` functions.
fn top(list: &[(String, u64)], of: u64, n: usize) -> String {
    list.iter()
        .take(n)
        .map(|(f, c)| format!("{f} {}", pct(*c, of)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Groups of the wait histogram's buckets for the table: (label, last bucket index).
const WAIT_GROUPS: &[(&str, usize)] = &[
    ("≤ 2 µs", 1),
    ("≤ 8 µs", 3),
    ("≤ 32 µs", 5),
    ("≤ 128 µs", 7),
    ("≤ 512 µs", 9),
    ("≤ 2 ms", 11),
    ("≤ 16 ms", 14),
    ("> 16 ms", 15),
];

/// The connection tasks' wake-to-poll waits over the verdict rounds, as shares per group,
/// and the longest poll; nothing if no runtime has them.
pub fn task_waits(s: &Summary, d: &mut Document) {
    let mut head: Vec<String> = vec!["workload".into(), "runtime".into(), "waits".into()];
    head.extend(WAIT_GROUPS.iter().map(|(l, _)| l.to_string()));
    head.push("longest poll".into());
    let mut t = Table::new(head);
    for w in &s.workloads {
        for r in &w.runtimes {
            let Some(m) = &r.mechanism else { continue };
            let Some(waits) = m.wake_to_poll_waits else {
                continue;
            };
            let total: f64 = waits.iter().sum();
            if total == 0.0 {
                // A run from before the servers kept the histogram.
                continue;
            }
            let mut row = vec![w.spec.name.clone(), r.label.clone(), format!("{total:.0}")];
            let mut from = 0;
            for &(_, last) in WAIT_GROUPS {
                let n: f64 = waits[from..=last].iter().sum();
                row.push(if total > 0.0 {
                    format!("{:.1} %", n / total * 100.0)
                } else {
                    "—".into()
                });
                from = last + 1;
            }
            row.push(
                m.longest_poll_us
                    .map_or("—".into(), |us| format!("{:.1} ms", us / 1e3)),
            );
            t.row(row);
        }
    }
    if t.rows.is_empty() {
        return;
    }
    d.heading("How long woken tasks waited to be polled");
    d.para("Every wake-up of a connection task and the wait until the runtime polled it, over the mechanism block's round (its servers wrap each connection's future; read from /metrics around the turn; the verdict blocks run without, see the why-table), as shares of the waits; and the longest single poll since the processes started. A wait is the runtime's scheduling delay: other tasks ran first, or the thread was parked and had to be woken.");
    d.table(t);
}

/// The section; nothing if no runtime has a profile or a reason for having none.
pub fn section(s: &Summary, d: &mut Document) {
    let any = s
        .workloads
        .iter()
        .flat_map(|w| &w.runtimes)
        .any(|r| r.raw.cpu_profile.is_some() || r.raw.cpu_profile_skipped.is_some());
    if !any {
        return;
    }
    d.heading("Where the CPU went: profiles of each server under load");
    d.para("After everything else on the mechanism block's processes (fresh ones after the verdict blocks), each compared server ran a closed-loop pass while its cores were sampled on the software CPU clock (perf_event_open, no hardware counters needed; every task on those cores, the idle task included), kernel frames unwound by the kernel and named from /proc/kallsyms, user frames unwound by frame pointers (every crate of this workspace is built with them) and named from the binaries' symbols with inlined functions. A sample counts for the kernel when it has kernel frames (the network stack before io_uring before the rest), else for the part of the user frame nearest its leaf. Sampling costs the server some CPU, so these passes are not verdict rounds. The folded stacks (raw/<workload>/profile/<runtime>.folded) feed any flame graph tool.");
    let mut head: Vec<String> = vec!["workload".into(), "runtime".into(), "server samples".into()];
    head.extend(PARTS.iter().map(|p| p.to_string()));
    head.extend(["user frames unnamed".into(), "flame graphs".into()]);
    let mut shares = Table::new(head);
    let mut tops = Table::new([
        "workload",
        "runtime",
        "pass",
        "top kernel functions (self)",
        "top user functions (self)",
    ]);
    for w in &s.workloads {
        for r in &w.runtimes {
            let name = w.spec.name.as_str();
            let p: &CpuProfile = match (&r.raw.cpu_profile, &r.raw.cpu_profile_skipped) {
                (Some(p), _) => p,
                (None, Some(why)) => {
                    let mut row: Vec<Text> = vec![name.into(), r.label.as_str().into()];
                    row.push(format!("no profile: {why}").into());
                    shares.row(row);
                    continue;
                }
                (None, None) => continue,
            };
            let b = &p.breakdown;
            let mut row: Vec<Text> = vec![
                name.into(),
                r.label.as_str().into(),
                format!("{} (+{} lost)", b.samples, p.lost).into(),
            ];
            for part in PARTS {
                let n = b
                    .parts
                    .iter()
                    .find(|(q, _)| q == part)
                    .map_or(0, |(_, n)| *n);
                row.push(pct(n, b.samples).into());
            }
            row.push(format!("{:.0} %", p.unknown_user_share * 100.0).into());
            let dir = format!("raw/{name}/");
            let mut links = Text::default();
            if let Some(svg) = &p.svg {
                links = links.then(Text::link(r.label.as_str(), format!("{dir}{svg}")));
            }
            if let Some(diff) = &p.differential_svg {
                // `profile/tokio-uring-vs-tokio.svg` -> "tokio-uring vs tokio (differential)".
                let stem = diff
                    .rsplit('/')
                    .next()
                    .unwrap_or(diff)
                    .trim_end_matches(".svg")
                    .replacen("-vs-", " vs ", 1);
                links = links.then(" · ").then(Text::link(
                    format!("{stem} (differential)"),
                    format!("{dir}{diff}"),
                ));
            }
            row.push(links);
            shares.row(row);
            tops.row([
                name.to_string(),
                r.label.clone(),
                format!(
                    "{:.1} s at {} req/s, {} µs/req",
                    p.duration_s,
                    human_rate(p.rate),
                    p.cpu_us_per_request
                        .map_or("—".into(), |c| format!("{c:.1}"))
                ),
                top(&b.top_kernel, b.samples, 5),
                top(&b.top_user, b.samples, 5),
            ]);
        }
    }
    d.table(shares);
    d.para("The functions that were the leaf of most samples (self time), with their share of the server's samples:");
    d.table(tops);
}
