//! The one work loop and the threads that run it.
//!
//! A [`Session`] starts the threads once: each a current-thread runtime whose keep-alive
//! connections persist from one run to the next, so that criterion's samples (many short
//! runs) time steady-state requests, not thread start-up, runtime construction and
//! connection set-up. [`run`] is a session used for one run.
//!
//! Within a run each thread's connections are tasks on a `LocalSet` that share the thread's
//! [`Stats`] through a `RefCell` (no locks, no atomics per sample). Only two counters per
//! thread are atomics, read by the watchdog: requests sent and finished.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

use super::report::{Report, Stall};
use super::response;
use super::stats::{ErrorKind, Stats};
use super::{LoadError, Mode, RunConfig};

/// Per-thread counters the watchdog reads; padded so two threads never share a cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Progress {
    sent: AtomicU64,
    finished: AtomicU64,
    /// The thread has finished this run (its result is on its way).
    done: AtomicBool,
}

/// What all threads share during one run.
#[derive(Debug)]
struct Shared {
    cfg: RunConfig,
    /// `depth` requests back to back; a batch of n is the first n * `one_len` bytes.
    batch: Arc<Vec<u8>>,
    one_len: usize,
    /// Every thread and the watchdog meet here before the run starts.
    barrier: Barrier,
    /// Measured requests claimed so far (the `requests` bound).
    claimed: AtomicU64,
    limit: u64,
    /// Set once, by the first thread past the start barrier.
    start: OnceLock<Instant>,
    progress: Vec<Progress>,
    /// Set by the watchdog: threads drop their runtimes, cancelling every connection.
    abort: watch::Sender<bool>,
    aborted: AtomicBool,
}

impl Shared {
    fn start(&self) -> Instant {
        *self.start.get_or_init(Instant::now)
    }

    fn measure_from(&self) -> Instant {
        self.start() + self.cfg.warmup
    }

    fn deadline(&self) -> Option<Instant> {
        self.cfg.duration.map(|d| self.measure_from() + d)
    }

    /// Claims up to `n` measured requests; 0 when the `requests` bound is reached.
    fn claim(&self, n: usize) -> usize {
        if self.limit == u64::MAX {
            return n;
        }
        let before = self.claimed.fetch_add(n as u64, Relaxed);
        (self.limit.saturating_sub(before)).min(n as u64) as usize
    }
}

/// What one thread hands back after a run.
struct ThreadResult {
    stats: Stats,
    /// When its last measured answer arrived.
    last: Option<Instant>,
}

/// One load thread as the session sees it: where to send runs, where results come back.
struct Worker {
    runs: mpsc::Sender<Arc<Shared>>,
    results: mpsc::Receiver<ThreadResult>,
    handle: std::thread::JoinHandle<()>,
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
pub fn run(cfg: &RunConfig) -> Result<Report, LoadError> {
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
                .name(format!("loadgen-{t}"))
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
    ) -> Result<Report, LoadError> {
        let mut cfg = self.cfg.clone();
        cfg.requests = requests;
        cfg.duration = duration;
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
        let stall = watch(&shared, &self.workers);
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
        let report = Report::build(cfg, &stats, elapsed, stall);
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

/// Watches progress until every thread is done; ends the run on a stall or the time limit.
fn watch(shared: &Shared, workers: &[Worker]) -> Option<Stall> {
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
            .zip(workers)
            .all(|(p, w)| p.done.load(Relaxed) || w.handle.is_finished())
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
                    .map(|pid| super::watchdog::server_facts(pid, cfg.addr.port())),
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
            let tasks: Vec<_> = streams
                .iter_mut()
                .enumerate()
                .map(|(i, s)| {
                    tokio::task::spawn_local(conn_loop(
                        shared.clone(),
                        t,
                        first + i,
                        s.take(),
                        stats.clone(),
                        last.clone(),
                    ))
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

/// Whether an idle keep-alive connection is still open with nothing unread: a peek that
/// would block. End of stream (the server closed it) or stray bytes mean it cannot be used.
fn idle_and_open(s: &TcpStream) -> bool {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    matches!(
        socket2::SockRef::from(s).peek(&mut byte),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    )
}

/// One connection's loop: pace, claim, (re)connect, write, read the answers, record.
async fn conn_loop(
    sh: Arc<Shared>,
    t: usize,
    k: usize,
    mut stream: Option<TcpStream>,
    stats: Rc<RefCell<Stats>>,
    last: Rc<RefCell<Option<Instant>>>,
) -> Option<TcpStream> {
    let cfg = &sh.cfg;
    let depth = cfg.mode.depth();
    let per_request = cfg.mode == Mode::ConnPerRequest;
    let progress = &sh.progress[t];
    let measure_from = sh.measure_from();
    let deadline = sh.deadline();
    // Open loop: this connection's share of the rate, its first slot staggered by k.
    let interval = match cfg.mode {
        Mode::Open { rate } => Some(Duration::from_secs_f64(cfg.connections as f64 / rate)),
        _ => None,
    };
    let mut next_slot = match cfg.mode {
        Mode::Open { rate } => sh.start() + Duration::from_secs_f64(k as f64 / rate),
        _ => sh.start(),
    };
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut src_turn = k;
    loop {
        let intended = match interval {
            Some(iv) => {
                let slot = next_slot;
                next_slot += iv;
                if deadline.is_some_and(|d| slot >= d) {
                    break;
                }
                tokio::time::sleep_until(slot.into()).await;
                Some(slot)
            }
            None => None,
        };
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        let send_at = intended.unwrap_or(now);
        let measured = send_at >= measure_from;
        let n = if measured { sh.claim(depth) } else { depth };
        if n == 0 {
            break;
        }
        let since = |i: Instant| i.saturating_duration_since(measure_from);
        progress.sent.fetch_add(n as u64, Relaxed);
        if stream.is_none() {
            let src = source_addr(cfg, per_request, &mut src_turn);
            match connect(cfg.addr, src, cfg.request_timeout).await {
                Ok(s) => {
                    stats.borrow_mut().connects += 1;
                    stream = Some(s);
                }
                Err(e) => {
                    let kind = ErrorKind::of(&e);
                    if measured {
                        stats
                            .borrow_mut()
                            .error(kind, n as u64, since(Instant::now()));
                    }
                    progress.finished.fetch_add(n as u64, Relaxed);
                    // Do not spin on a refused or exhausted address.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        rbuf.clear();
        let answered = std::cell::Cell::new(0usize);
        let outcome = tokio::time::timeout(
            cfg.request_timeout,
            exchange(s, &sh.batch[..n * sh.one_len], n, &mut rbuf, |status| {
                let done = Instant::now();
                if measured {
                    stats
                        .borrow_mut()
                        .response(status, done - send_at, since(done));
                    *last.borrow_mut() = Some(done);
                }
                answered.set(answered.get() + 1);
                progress.finished.fetch_add(1, Relaxed);
            }),
        )
        .await;
        let keep = match outcome {
            Ok(Ok(close)) => !close,
            Ok(Err(e)) => {
                let missing = n - answered.get();
                record_error(
                    &stats,
                    measured,
                    ErrorKind::of(&e),
                    missing,
                    since(Instant::now()),
                );
                progress.finished.fetch_add(missing as u64, Relaxed);
                false
            }
            Err(_) => {
                let missing = n - answered.get();
                record_error(
                    &stats,
                    measured,
                    ErrorKind::Timeout,
                    missing,
                    since(Instant::now()),
                );
                progress.finished.fetch_add(missing as u64, Relaxed);
                false
            }
        };
        if per_request || !keep {
            stream = None;
        }
    }
    stream
}

fn record_error(
    stats: &Rc<RefCell<Stats>>,
    measured: bool,
    kind: ErrorKind,
    n: usize,
    at: Duration,
) {
    if measured && n > 0 {
        stats.borrow_mut().error(kind, n as u64, at);
    }
}

/// Writes `batch` (n requests) and reads n final answers, calling `on_answer` with each
/// status. Ok(close) says whether the server asked to close.
async fn exchange(
    s: &mut TcpStream,
    batch: &[u8],
    n: usize,
    rbuf: &mut BytesMut,
    mut on_answer: impl FnMut(u16),
) -> std::io::Result<bool> {
    s.write_all(batch).await?;
    let mut answered = 0;
    let mut close = false;
    while answered < n {
        loop {
            match response::parse(rbuf) {
                Ok(Some(p)) => {
                    rbuf.advance(p.len);
                    if p.interim {
                        continue;
                    }
                    on_answer(p.status);
                    answered += 1;
                    close |= p.close;
                    if answered == n {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            }
        }
        if answered == n {
            break;
        }
        if close {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if rbuf.capacity() - rbuf.len() < 4096 {
            rbuf.reserve(16 * 1024);
        }
        match s.read_buf(rbuf).await {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(close)
}

/// The source address for the next connection: rotating over 127.0.0.1..=N for
/// connection-per-request to a loopback IPv4 target, none otherwise.
fn source_addr(cfg: &RunConfig, per_request: bool, turn: &mut usize) -> Option<IpAddr> {
    match cfg.addr.ip() {
        IpAddr::V4(ip) if per_request && ip.is_loopback() && cfg.source_addrs > 1 => {
            *turn = turn.wrapping_add(1);
            let last = 1 + (*turn % usize::from(cfg.source_addrs)) as u8;
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        }
        _ => None,
    }
}

async fn connect(
    addr: SocketAddr,
    src: Option<IpAddr>,
    within: Duration,
) -> std::io::Result<TcpStream> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = src {
        bind_address_no_port(&sock)?;
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let s = tokio::time::timeout(within, sock.connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    s.set_nodelay(true)?;
    Ok(s)
}

/// IP_BIND_ADDRESS_NO_PORT: bind only the address now and pick the port at connect time,
/// against the full 4-tuple, so each source address gets its own ~28k ports per target.
fn bind_address_no_port(sock: &TcpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket fd, a c_int option value and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            std::ptr::addr_of!(one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
