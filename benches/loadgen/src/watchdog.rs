//! The watchdog: watches a run's progress counters until every thread is done, and ends
//! the run on a stall (no answer for `stall_timeout` with requests outstanding; the stall
//! report carries the server's fd count and socket states) or on the time limit. Prints a
//! progress line on a terminal.

use std::io::IsTerminal;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::load_report::Stall;
use super::shared::Shared;

/// Watches progress until every thread is done; ends the run on a stall or the time limit.
/// `finished(i)`: thread `i` has ended (a thread that died counts as done).
pub(super) fn watch(shared: &Shared, finished: impl Fn(usize) -> bool) -> Option<Stall> {
    let cfg = &shared.cfg;
    let start = shared.start();
    let tty = cfg.progress && std::io::stderr().is_terminal();
    let totals = || {
        shared.progress.iter().fold((0u64, 0u64), |(s, f), p| {
            (s + p.sent.load(Relaxed), f + p.finished.load(Relaxed))
        })
    };
    let mut last_finished = 0;
    let mut last_progress = Instant::now();
    let mut last_print = Instant::now();
    let mut stall = None;
    // A thread that died (a panic) counts as done; collecting its result then fails.
    let all_done = || {
        (shared.progress.iter())
            .enumerate()
            .all(|(i, p)| p.done.load(Relaxed) || finished(i))
    };
    while !all_done() {
        std::thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        let (sent, finished) = totals();
        if finished != last_finished {
            last_finished = finished;
            last_progress = now;
        } else if sent > finished && now - last_progress >= cfg.stall_timeout && stall.is_none() {
            stall = Some(Stall {
                at_s: (last_progress - start).as_secs_f64(),
                outstanding: sent - finished,
                waited_s: (now - last_progress).as_secs_f64(),
                server: cfg
                    .server_pid
                    .map(|pid| super::server_facts::server_facts(pid, cfg.addr.port())),
            });
            let _ = shared.abort.send(true);
        }
        if now - start > cfg.time_limit + cfg.warmup && !shared.aborted.load(Relaxed) {
            shared.aborted.store(true, Relaxed);
            let _ = shared.abort.send(true);
        }
        if tty && now - last_print >= Duration::from_secs(1) {
            last_print = now;
            eprint!(
                "\r[{:>5.1}s] {finished} answered, {} in flight   ",
                (now - start).as_secs_f64(),
                sent.saturating_sub(finished)
            );
        }
    }
    if tty {
        eprintln!();
    }
    stall
}
