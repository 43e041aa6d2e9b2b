//! The one work loop: one connection's pace, claim, (re)connect, write, read the answers,
//! record, for every mode ([`super::Mode`] sets pipeline depth and reuse,
//! [`super::RunConfig::rate`] the pacing).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ids::{next_stream, StreamRecorder, ID_LEN};
use super::measurements::{ErrorKind, Stats};
use super::net::{connect, source_addr};
use super::pacer::SlotClock;
use super::response;
use super::shared::Shared;
use super::Mode;

/// One connection of a load thread, for one run.
pub(super) struct Connection {
    /// The run's settings and counters.
    pub shared: Arc<Shared>,
    /// The load thread this connection belongs to (its progress counters).
    pub thread: usize,
    /// The connection's number over all threads: staggers open-loop slots and source
    /// addresses.
    pub index: usize,
    /// Open loop: the thread's slot clock and this connection's number on it (`None` in a
    /// closed loop, or when the thread could not make a timer).
    pub clock: Option<(Rc<SlotClock>, usize)>,
    /// An open keep-alive connection from the last run, if any.
    pub stream: Option<TcpStream>,
    /// The thread's measurements, shared by its connections (one thread: no locks).
    pub stats: Rc<RefCell<Stats>>,
    /// When the thread's last measured answer arrived.
    pub last: Rc<RefCell<Option<Instant>>>,
}

impl Connection {
    /// Runs until the run's bound; returns the stream if it is still usable.
    pub async fn run(self) -> Option<TcpStream> {
        let Self {
            shared: sh,
            thread: t,
            index: k,
            clock,
            mut stream,
            stats,
            last,
        } = self;
        work(sh, t, k, clock, &mut stream, &stats, &last).await;
        stream
    }
}

/// Pace, claim, (re)connect, write, read the answers, record; until the run's bound.
async fn work(
    sh: Arc<Shared>,
    t: usize,
    k: usize,
    clock: Option<(Rc<SlotClock>, usize)>,
    stream: &mut Option<TcpStream>,
    stats: &Rc<RefCell<Stats>>,
    last: &Rc<RefCell<Option<Instant>>>,
) {
    let cfg = &sh.cfg;
    let depth = cfg.mode.depth();
    let per_request = cfg.mode == Mode::ConnPerRequest;
    let progress = &sh.progress[t];
    let measure_from = sh.measure_from();
    let deadline = sh.deadline();
    let since = |i: Instant| i.saturating_duration_since(measure_from);
    // Open loop: this connection's share of the rate, one slot per window of `depth`
    // requests (one request but when pipelining), its first slot staggered by k.
    let interval = cfg
        .rate
        .map(|rate| Duration::from_secs_f64((cfg.connections * depth) as f64 / rate));
    let mut next_slot = sh.start()
        + cfg.rate.map_or(Duration::ZERO, |rate| {
            Duration::from_secs_f64((k * depth) as f64 / rate)
        });
    if interval.is_some() && clock.is_none() {
        // Without a timer there is no schedule: counted as an error (so the run is not
        // clean) and this connection sends nothing. The thread said why.
        stats
            .borrow_mut()
            .error(ErrorKind::Other, 1, Duration::ZERO);
        return;
    }
    let mut stamped = Stamped::new(&sh, stats);
    // When this connection was last free to send (its last answer, or the start).
    let mut free = sh.start();
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut src_turn = k;
    loop {
        let intended = match (interval, clock.as_ref()) {
            (Some(iv), Some((clock, waiter))) => {
                let slot = next_slot;
                next_slot += iv;
                if deadline.is_some_and(|d| slot >= d) {
                    break;
                }
                // A failed wait (the reactor is gone: the run is being torn down) sends
                // at once; the lag it causes is recorded as the load generator's.
                let _ = clock.until(*waiter, slot).await;
                Some(slot)
            }
            _ => None,
        };
        // Open loop: a slot scheduled before the deadline is sent even if this thread is
        // late for it (its wait counts in the corrected latency), so the schedule, not the
        // machine's speed, decides how many requests a run offers. Closed loops stop at
        // the deadline.
        let now = Instant::now();
        if intended.is_none() && deadline.is_some_and(|d| now >= d) {
            break;
        }
        let send_at = intended.unwrap_or(now);
        let measured = send_at >= measure_from;
        let n = if measured { sh.claim(depth) } else { depth };
        if n == 0 {
            break;
        }
        if let (Some(slot), true) = (intended, measured) {
            stats
                .borrow_mut()
                .sent_on_schedule(since(slot), since(free), since(now), n as u64);
        }
        progress.sent.fetch_add(n as u64, Relaxed);
        if stream.is_none() {
            let src = source_addr(cfg, per_request, &mut src_turn);
            match connect(cfg.addr, src, cfg.request_timeout).await {
                Ok(s) => {
                    stats.borrow_mut().connects += 1;
                    *stream = Some(s);
                }
                Err(e) => {
                    record_error(stats, measured, ErrorKind::of(&e), n, since(Instant::now()));
                    progress.finished.fetch_add(n as u64, Relaxed);
                    // Do not spin on a refused or exhausted address.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    free = Instant::now();
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        rbuf.clear();
        let answered = Cell::new(0usize);
        let (bytes, ids) = match stamped.as_mut() {
            Some(s) => {
                let (bytes, at) = s.next(stats, n);
                (bytes, Some(at))
            }
            None => (&sh.batch[..n * sh.one_len], None),
        };
        let outcome = tokio::time::timeout(
            cfg.request_timeout,
            exchange(s, bytes, n, &mut rbuf, |status| {
                let done = Instant::now();
                if let (Some((slot, first)), true) = (ids, (200..300).contains(&status)) {
                    stats.borrow_mut().ids[slot].answered(first + answered.get() as u64);
                }
                if measured {
                    stats
                        .borrow_mut()
                        .response(status, done - send_at, done - now, since(done));
                    *last.borrow_mut() = Some(done);
                } else {
                    stats.borrow_mut().warmup.answer(status);
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
                    stats,
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
                    stats,
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
            *stream = None;
        }
        free = Instant::now();
    }
}

/// A connection's request ids: its own copy of the request bytes, each body's first bytes
/// rewritten in place before a send, and where its recorder sits in the thread's stats
/// (which outlive the connection, so a run cut short still reports what it sent).
struct Stamped {
    slot: usize,
    batch: Vec<u8>,
    one_len: usize,
    body_at: usize,
}

impl Stamped {
    fn new(sh: &Shared, stats: &Rc<RefCell<Stats>>) -> Option<Self> {
        let cfg = &sh.cfg;
        cfg.carries_ids().then(|| {
            let mut st = stats.borrow_mut();
            st.ids.push(StreamRecorder::new(next_stream()));
            Self {
                slot: st.ids.len() - 1,
                batch: sh.batch.to_vec(),
                one_len: sh.one_len,
                body_at: sh.one_len - cfg.workload.body.len(),
            }
        })
    }

    /// The next `n` requests, each with its id; (the recorder's slot, the first sequence).
    fn next(&mut self, stats: &Rc<RefCell<Stats>>, n: usize) -> (&[u8], (usize, u64)) {
        let mut st = stats.borrow_mut();
        let rec = &mut st.ids[self.slot];
        let first = rec.send(n);
        for i in 0..n {
            let at = i * self.one_len + self.body_at;
            rec.id(first + i as u64)
                .write(&mut self.batch[at..at + ID_LEN]);
        }
        (&self.batch[..n * self.one_len], (self.slot, first))
    }
}

fn record_error(
    stats: &Rc<RefCell<Stats>>,
    measured: bool,
    kind: ErrorKind,
    n: usize,
    at: Duration,
) {
    if n == 0 {
        return;
    }
    if measured {
        stats.borrow_mut().error(kind, n as u64, at);
    } else {
        stats.borrow_mut().warmup.errors += n as u64;
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
