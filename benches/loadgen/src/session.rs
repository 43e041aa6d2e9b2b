//! A [`Session`] starts the load threads once: each a current-thread runtime whose keep-alive
//! connections persist from one run to the next, so that criterion's samples (many short
//! runs) time steady-state requests, not thread start-up, runtime construction and
//! connection set-up. [`run`] is a session used for one run.
//!
//! Within a run each thread's connections are tasks on a `LocalSet` that share the thread's
//! [`Stats`] through a `RefCell` (no locks, no atomics per sample). Only two counters per
//! thread are atomics, read by the watchdog: requests sent and finished.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::watch;

use super::connection::Connection;
use super::load_report::LoadReport;
use super::measurements::Stats;
use super::net::{connect, idle_and_open};
use super::pacer::{tighten_timer_slack, SlotClock};
use super::shared::{Progress, Shared};
use super::watchdog::watch;
use super::{LoadError, Mode, RunConfig};

/// What one thread hands back after a run.
pub(super) struct ThreadResult {
    stats: Stats,
    /// When its last measured answer arrived.
    last: Option<Instant>,
}

/// One load thread as the session sees it: where to send runs, where results come back.
pub(super) struct Worker {
    pub runs: mpsc::Sender<Arc<Shared>>,
    pub results: mpsc::Receiver<ThreadResult>,
    pub handle: std::thread::JoinHandle<()>,
}

/// Load threads with their runtimes and connections, ready to run loads against one server.
pub struct Session {
    cfg: RunConfig,
    batch: Arc<Vec<u8>>,
    one_len: usize,
    workers: Vec<Worker>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Session({}, {} threads)",
            self.cfg.addr,
            self.workers.len()
        )
    }
}

/// Runs a load against `cfg.addr` and returns the merged report. See the module doc.
pub fn run(cfg: &RunConfig) -> Result<LoadReport, LoadError> {
    Session::start(cfg)?.run(cfg.requests, cfg.duration)
}

impl Session {
    /// Validates `cfg`, starts its threads and opens the keep-alive connections (a failed
    /// connect is retried, and counted, in the first run).
    pub fn start(cfg: &RunConfig) -> Result<Self, LoadError> {
        cfg.validate()?;
        let depth = cfg.mode.depth();
        let one = cfg.workload.request_bytes(cfg.mode == Mode::ConnPerRequest);
        let batch = Arc::new(one.repeat(depth));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let mut workers = Vec::with_capacity(cfg.threads);
        for t in 0..cfg.threads {
            // Connections spread evenly: the first (connections % threads) threads get one more.
            let share = |i: usize| {
                cfg.connections / cfg.threads + usize::from(i < cfg.connections % cfg.threads)
            };
            let (conns, first) = (share(t), (0..t).map(share).sum::<usize>());
            let (runs_tx, runs_rx) = mpsc::channel();
            let (results_tx, results_rx) = mpsc::channel();
            let (cfg, ready) = (cfg.clone(), ready_tx.clone());
            let handle = std::thread::Builder::new()
                .name(format!("{}{t}", crate::THREAD_PREFIX))
                .spawn(move || {
                    thread_main(&cfg, t, first, conns, &ready, &runs_rx, &results_tx);
                })?;
            workers.push(Worker {
                runs: runs_tx,
                results: results_rx,
                handle,
            });
        }
        drop(ready_tx);
        for _ in 0..cfg.threads {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(LoadError::Io(std::io::Error::other(e))),
                Err(_) => {
                    return Err(LoadError::Io(std::io::Error::other(
                        "a load thread died while starting",
                    )))
                }
            }
        }
        Ok(Self {
            cfg: cfg.clone(),
            one_len: one.len(),
            batch,
            workers,
        })
    }

    /// One run over the session's threads and connections, bounded by `requests` and/or
    /// `duration` (after the configured warm-up) and always by the time limit.
    pub fn run(
        &mut self,
        requests: Option<u64>,
        duration: Option<Duration>,
    ) -> Result<LoadReport, LoadError> {
        let mut cfg = self.cfg.clone();
        cfg.requests = requests;
        cfg.duration = duration;
        self.run_with(cfg)
    }

    /// One open-loop run at `rate` requests/s over the session's connections (whatever its
    /// configured pacing): `warmup` unmeasured, then `duration` measured, one schedule.
    pub fn run_paced(
        &mut self,
        rate: f64,
        warmup: Duration,
        duration: Duration,
    ) -> Result<LoadReport, LoadError> {
        let mut cfg = self.cfg.clone();
        cfg.rate = Some(rate);
        cfg.warmup = warmup;
        cfg.requests = None;
        cfg.duration = Some(duration);
        self.run_with(cfg)
    }

    fn run_with(&mut self, cfg: RunConfig) -> Result<LoadReport, LoadError> {
        cfg.validate()?;
        let threads = self.workers.len();
        let (abort, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            limit: cfg.requests.unwrap_or(u64::MAX),
            cfg,
            one_len: self.one_len,
            batch: self.batch.clone(),
            barrier: Barrier::new(threads + 1),
            claimed: AtomicU64::new(0),
            start: OnceLock::new(),
            progress: (0..threads).map(|_| Progress::default()).collect(),
            abort,
            aborted: AtomicBool::new(false),
        });
        for w in &self.workers {
            if w.runs.send(shared.clone()).is_err() {
                return Err(dead_thread());
            }
        }
        shared.barrier.wait();
        let start = shared.start();
        let stall = watch(&shared, |i| self.workers[i].handle.is_finished());
        let mut stats = Stats::default();
        let mut last = None;
        for w in &self.workers {
            let r = w.results.recv().map_err(|_| dead_thread())?;
            stats.merge(&r.stats);
            last = last.max(r.last);
        }
        let cfg = &shared.cfg;
        let measure_from = start + cfg.warmup;
        let elapsed = last.map_or(Duration::ZERO, |l| {
            l.saturating_duration_since(measure_from)
        });
        let report = LoadReport::build(cfg, &stats, elapsed, stall);
        if report.stall.is_some() {
            return Err(LoadError::Stalled(Box::new(report)));
        }
        if shared.aborted.load(Relaxed) {
            return Err(LoadError::TimeLimit {
                limit: cfg.time_limit,
                report: Box::new(report),
            });
        }
        Ok(report)
    }
}

impl Drop for Session {
    /// Closing the run channels ends the threads; their connections close with them.
    fn drop(&mut self) {
        for w in std::mem::take(&mut self.workers) {
            drop(w.runs);
            let _ = w.handle.join();
        }
    }
}

fn dead_thread() -> LoadError {
    LoadError::Io(std::io::Error::other("a load thread died (panicked?)"))
}

/// A load thread: builds its runtime, opens its keep-alive connections, says it is ready,
/// then serves runs until the session closes its channel.
fn thread_main(
    cfg: &RunConfig,
    t: usize,
    first: usize,
    conns: usize,
    ready: &mpsc::Sender<Result<(), String>>,
    runs: &mpsc::Receiver<Arc<Shared>>,
    results: &mpsc::Sender<ThreadResult>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("load thread {t}: runtime: {e}")));
            return;
        }
    };
    tighten_timer_slack();
    let per_request = cfg.mode == Mode::ConnPerRequest;
    let mut streams: Vec<Option<TcpStream>> = (0..conns).map(|_| None).collect();
    // Connects not yet counted in a run's stats.
    let mut connects = 0;
    let refresh = |streams: &mut Vec<Option<TcpStream>>| {
        // Keep-alive modes connect before the start barrier, so connection set-up is not
        // timed; a connection the server closed while idle between runs is replaced.
        if per_request {
            return 0;
        }
        rt.block_on(async {
            let mut opened = 0;
            for s in streams.iter_mut() {
                if s.as_ref().is_some_and(|s| !idle_and_open(s)) {
                    *s = None;
                }
                if s.is_none() {
                    *s = connect(cfg.addr, None, Duration::from_secs(5)).await.ok();
                    opened += u64::from(s.is_some());
                }
            }
            opened
        })
    };
    connects += refresh(&mut streams);
    if ready.send(Ok(())).is_err() {
        return;
    }
    while let Ok(shared) = runs.recv() {
        connects += refresh(&mut streams);
        let stats = Rc::new(RefCell::new(Stats::default()));
        stats.borrow_mut().connects += std::mem::take(&mut connects);
        let last = Rc::new(RefCell::new(None::<Instant>));
        shared.barrier.wait();
        let local = tokio::task::LocalSet::new();
        let mut abort = shared.abort.subscribe();
        local.block_on(&rt, async {
            // Open loop: one timer for the thread's connections, driven by its own task.
            let clock = shared
                .cfg
                .rate
                .and_then(|_| match SlotClock::new(streams.len()) {
                    Ok(c) => {
                        tokio::task::spawn_local(c.clone().drive());
                        Some(c)
                    }
                    Err(e) => {
                        eprintln!("loadgen: load thread {t}: no timer for the schedule: {e}");
                        None
                    }
                });
            let tasks: Vec<_> = streams
                .iter_mut()
                .enumerate()
                .map(|(i, s)| {
                    tokio::task::spawn_local(
                        Connection {
                            shared: shared.clone(),
                            thread: t,
                            index: first + i,
                            clock: clock.clone().map(|c| (c, i)),
                            stream: s.take(),
                            stats: stats.clone(),
                            last: last.clone(),
                        }
                        .run(),
                    )
                })
                .collect();
            tokio::select! {
                _ = async {
                    // Each connection that is still usable goes back to its slot.
                    for (slot, task) in streams.iter_mut().zip(tasks) {
                        *slot = task.await.ok().flatten();
                    }
                } => {}
                // Aborted: dropping the LocalSet cancels the rest; their slots stay empty
                // and the next run reconnects.
                _ = abort.wait_for(|&a| a) => {}
            }
        });
        drop(local);
        let result = ThreadResult {
            stats: stats.borrow().clone(),
            last: *last.borrow(),
        };
        shared.progress[t].done.store(true, Relaxed);
        if results.send(result).is_err() {
            break;
        }
    }
    rt.shutdown_background();
}
