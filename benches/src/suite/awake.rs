//! Cores kept awake during the latency curves: one spinning thread per core at
//! `SCHED_IDLE` priority, which runs only when nothing else on that core wants to.
//!
//! Why: on a VM a core with nothing to run halts, and waking it again goes through the
//! hypervisor. Measured on the 2-core dev VM (Firecracker, guest halt-polling off), an
//! open loop at 5k req/s against server-tokio with the null sink: p50 13–17 ms and p99
//! 240 ms with idle cores, p50 77–81 µs and p99 2–3 ms with these spinners (same binaries,
//! minutes apart). Saturating loads never idle a core, so only the curves' lower rates are
//! affected, but there the idle cores' wake-up would be all the curve measured, for both
//! runtimes alike. A spinner yields the core the moment a server or load thread wakes (an
//! idle-class task is preempted by any other), and it is in this process, so the servers'
//! CPU accounting does not see it; [`KeepAwake::cpu`] is subtracted from this process's
//! when the curve says how busy the load side was. `BENCH_CURVE_AWAKE=0` measures with
//! idle cores.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::layout::set_affinity;

/// Spinners running until dropped.
#[derive(Debug)]
pub(super) struct KeepAwake {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// The spinning threads' ids (for their CPU time).
    tids: Vec<i32>,
}

impl KeepAwake {
    /// One spinner per core in `cores`. A spinner that cannot be pinned or made idle-class
    /// stops at once (it must never compete with the measured threads); the returned text
    /// says so.
    pub fn start(cores: &[usize]) -> (Self, Option<String>) {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel::<Result<i32, String>>();
        let threads = cores
            .iter()
            .map(|&core| {
                let (stop, tx) = (stop.clone(), tx.clone());
                std::thread::Builder::new()
                    .name(format!("awake-{core}"))
                    .spawn(move || {
                        let setup = set_affinity(&[core])
                            .map_err(|e| format!("core {core}: pinning: {e}"))
                            .and_then(|()| {
                                idle_class().map_err(|e| format!("core {core}: SCHED_IDLE: {e}"))
                            });
                        // SAFETY: gettid has no arguments and cannot fail.
                        let tid = unsafe { libc::gettid() };
                        let failed = setup.is_err();
                        let _ = tx.send(setup.map(|()| tid));
                        // The starter reads until every sender is gone.
                        drop(tx);
                        if failed {
                            return;
                        }
                        while !stop.load(Relaxed) {
                            std::hint::spin_loop();
                        }
                    })
            })
            .filter_map(Result::ok)
            .collect::<Vec<_>>();
        drop(tx);
        let (mut tids, mut problems) = (Vec::new(), Vec::new());
        for r in rx.iter() {
            match r {
                Ok(tid) => tids.push(tid),
                Err(e) => problems.push(e),
            }
        }
        let started = threads.len();
        let mut note = (!problems.is_empty()).then(|| problems.join("; "));
        if started < cores.len() {
            note = Some(format!(
                "{} of {} spinner threads could not be started{}",
                cores.len() - started,
                cores.len(),
                note.map_or(String::new(), |n| format!("; {n}"))
            ));
        }
        (
            Self {
                stop,
                threads,
                tids,
            },
            note,
        )
    }

    /// CPU time the spinners have used so far.
    pub fn cpu(&self) -> Duration {
        self.tids
            .iter()
            .filter_map(|&t| crate::usage::own_thread_cpu(t))
            .sum()
    }
}

impl Drop for KeepAwake {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Moves the calling thread to the idle scheduling class.
fn idle_class() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spinners_are_idle_class_on_their_core_and_stop_when_dropped() {
        let cores = crate::layout::allowed_cpus();
        let (awake, note) = KeepAwake::start(&cores[..1]);
        assert_eq!(note, None);
        assert_eq!(awake.threads.len(), 1);
        // The spinner's scheduling class, read from /proc: policy 5 is SCHED_IDLE.
        let me = std::process::id();
        let policies: Vec<String> = std::fs::read_dir(format!("/proc/{me}/task"))
            .expect("tasks")
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.trim() == format!("awake-{}", cores[0]))
            })
            .map(|t| {
                let stat = std::fs::read_to_string(t.path().join("stat")).expect("stat");
                // Field 41 (policy), counted after the ")" that ends the command name.
                let after = &stat[stat.rfind(')').expect("comm") + 2..];
                after.split(' ').nth(38).expect("policy").to_string()
            })
            .collect();
        assert_eq!(policies, ["5"], "one spinner, SCHED_IDLE");
        // Its CPU time is counted (it spins whenever the core is free).
        let t0 = awake.cpu();
        let start = std::time::Instant::now();
        while awake.cpu() <= t0 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(awake.cpu() > t0, "spinner CPU grows");
        drop(awake);
        // Joined: the thread has exited, though the kernel may list it in /proc for a
        // moment longer while it is released.
        let spinners = || {
            std::fs::read_dir(format!("/proc/{me}/task"))
                .expect("tasks")
                .flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim().starts_with("awake-"))
                })
                .count()
        };
        let start = std::time::Instant::now();
        while spinners() > 0 && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(spinners(), 0, "spinners stopped and joined");
    }
}
