//! The load generator against a tiny in-test server: every mode, the watchdog, error counts,
//! open-loop pacing, pipelined answer matching.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::loadgen::{self, LoadError, Mode, RunConfig, Workload};
use bytes::BytesMut;
use common::http::parse::Parsed;
use common::http::{Limits, Parser};

/// A blocking server: a thread per connection, answers each request with 202 (or 503 every
/// `fail_every`-th) until it has answered `answer_limit` in total, then goes silent.
/// With `idle_close`, a connection that sends nothing for that long is closed.
struct TinyServer {
    addr: SocketAddr,
    answered: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
    /// Set: connections close as soon as they are idle (see `close_idle_connections`).
    close_idle: Arc<AtomicBool>,
    closed_idle: Arc<AtomicU64>,
}

impl TinyServer {
    fn start(answer_limit: u64, fail_every: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let answered = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let close_idle = Arc::new(AtomicBool::new(false));
        let closed_idle = Arc::new(AtomicU64::new(0));
        let (counter, conns) = (answered.clone(), accepted.clone());
        let (close, closed) = (close_idle.clone(), closed_idle.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                conns.fetch_add(1, Ordering::Relaxed);
                // Short read timeouts let a connection notice `close_idle` while idle.
                let _ = conn.set_read_timeout(Some(Duration::from_millis(20)));
                let (counter, close, closed) = (counter.clone(), close.clone(), closed.clone());
                std::thread::spawn(move || {
                    serve(conn, &counter, answer_limit, fail_every, &close, &closed)
                });
            }
        });
        Self {
            addr,
            answered,
            accepted,
            close_idle,
            closed_idle,
        }
    }

    /// Closes every connection that is idle (no partial request), as a server's idle
    /// timeout would, and waits (up to 5 s) until `n` have been closed so.
    fn close_idle_connections(&self, n: u64) {
        self.close_idle.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.closed_idle.load(Ordering::Relaxed) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            self.closed_idle.load(Ordering::Relaxed),
            n,
            "idle connections closed"
        );
        self.close_idle.store(false, Ordering::Relaxed);
    }
}

fn serve(
    mut s: TcpStream,
    answered: &AtomicU64,
    limit: u64,
    fail_every: u64,
    close_idle: &AtomicBool,
    closed_idle: &AtomicU64,
) {
    let mut parser = Parser::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16384];
    loop {
        let mut out = Vec::new();
        let mut close = false;
        while let Ok(Some(Parsed::Request(r))) = parser.parse(&mut buf) {
            let n = answered.fetch_add(1, Ordering::Relaxed) + 1;
            if n > limit {
                // Silent from now on: hold the connection, answer nothing.
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
            if fail_every > 0 && n % fail_every == 0 {
                out.extend_from_slice(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\n\r\nbusy\n",
                );
            } else {
                out.extend_from_slice(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n");
            }
            close |= !r.keep_alive;
        }
        if !out.is_empty() && s.write_all(&out).is_err() {
            return;
        }
        if close {
            return;
        }
        loop {
            match s.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    break;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if close_idle.load(Ordering::Relaxed) && buf.is_empty() {
                        closed_idle.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }
}

fn config(addr: SocketAddr, mode: Mode) -> RunConfig {
    let mut c = RunConfig::new(addr, Workload::post("/ingest", 100, 1));
    c.mode = mode;
    c.connections = 8;
    c.threads = 2;
    c.duration = None;
    c.requests = Some(2000);
    c.time_limit = Duration::from_secs(60);
    c
}

#[test]
fn every_mode_sends_exactly_the_requests_asked() {
    let server = TinyServer::start(u64::MAX, 0);
    for mode in [
        Mode::Closed,
        Mode::Pipelined { depth: 16 },
        Mode::ConnPerRequest,
        Mode::Open { rate: 4000.0 },
    ] {
        let before = server.answered.load(Ordering::Relaxed);
        let r =
            loadgen::run(&config(server.addr, mode)).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        let served = server.answered.load(Ordering::Relaxed) - before;
        assert_eq!(r.completed, 2000, "{mode:?}");
        assert_eq!(r.ok, 2000, "{mode:?}");
        assert_eq!(
            served, 2000,
            "{mode:?}: the server saw exactly the requests sent"
        );
        assert_eq!(r.errors_total(), 0, "{mode:?}: {:?}", r.errors);
        assert_eq!(r.latency_us.count, 2000);
        assert!(r.latency_us.p50 > 0 && r.latency_us.p50 <= r.latency_us.p99);
        assert!(r.rate > 0.0);
        if mode == Mode::ConnPerRequest {
            assert_eq!(r.connects, 2000);
            assert_eq!(r.source_addrs, 64);
        } else {
            assert_eq!(r.connects, 8);
        }
        assert_eq!(r.timeline.iter().map(|s| s.answered).sum::<u64>(), 2000);
    }
}

#[test]
fn statuses_are_counted_apart() {
    let server = TinyServer::start(u64::MAX, 10);
    let r = loadgen::run(&config(server.addr, Mode::Pipelined { depth: 4 })).expect("run");
    assert_eq!(r.completed, 2000);
    assert_eq!(r.statuses.get(&503), Some(&200));
    assert_eq!(r.ok, 1800);
    assert_eq!(r.non_2xx(), 200);
}

#[test]
fn duration_bound_stops_by_itself() {
    let server = TinyServer::start(u64::MAX, 0);
    let mut c = config(server.addr, Mode::Closed);
    c.requests = None;
    c.duration = Some(Duration::from_millis(800));
    c.warmup = Duration::from_millis(200);
    let started = Instant::now();
    let r = loadgen::run(&c).expect("run");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(
        r.elapsed_s > 0.6 && r.elapsed_s < 1.5,
        "measured {} s",
        r.elapsed_s
    );
    assert!(r.completed > 0);
}

#[test]
fn open_loop_paces_to_the_rate() {
    let server = TinyServer::start(u64::MAX, 0);
    let mut c = config(server.addr, Mode::Open { rate: 2000.0 });
    c.requests = None;
    c.duration = Some(Duration::from_secs(2));
    let r = loadgen::run(&c).expect("run");
    // 2000/s for 2 s: 4000 intended sends, every one sent even when this busy machine made
    // the load thread late for some (the schedule decides the count, not the machine).
    let sent = r.completed as f64;
    assert!(
        (sent - 4000.0).abs() <= 40.0,
        "{sent} answers for 4000 intended"
    );
    // Achieved rate over the measured span (first send to last answer): a thread that
    // fell behind stretches the span, so this allows 5%.
    assert!(
        (r.rate - 2000.0).abs() / 2000.0 < 0.05,
        "achieved {} req/s",
        r.rate
    );
}

#[test]
fn a_silent_server_is_a_stall_not_a_hang() {
    let server = TinyServer::start(500, 0);
    let mut c = config(server.addr, Mode::Closed);
    c.requests = Some(100_000);
    c.stall_timeout = Duration::from_millis(800);
    c.server_pid = Some(std::process::id());
    let started = Instant::now();
    let err = loadgen::run(&c).expect_err("must stall");
    let took = started.elapsed();
    let LoadError::Stalled(report) = err else {
        panic!("expected a stall, got {err}")
    };
    let stall = report.stall.as_ref().expect("stall facts");
    // The bound runs from the moment progress stopped (`at_s`, counted from the start barrier,
    // which is after `started`): connecting and the 500 answers before it are not the
    // watchdog's time.
    let after_progress = took.saturating_sub(Duration::from_secs_f64(stall.at_s));
    assert!(
        after_progress < c.stall_timeout + Duration::from_secs(1),
        "ended {after_progress:?} after progress stopped ({took:?} in all)"
    );
    assert!(stall.outstanding > 0);
    assert!(
        report.completed >= 490 && report.completed <= 500,
        "{}",
        report.completed
    );
    let facts = stall.server.as_ref().expect("server facts");
    assert!(facts.open_fds.is_some());
    assert!(
        facts.socket_states.get("ESTABLISHED").copied().unwrap_or(0) >= 8,
        "{:?}",
        facts.socket_states
    );
    assert!(report.stall_summary().contains("STALL"));
}

#[test]
fn nothing_listening_is_counted_as_refused() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    for mode in [Mode::ConnPerRequest, Mode::Closed] {
        let mut c = config(addr, mode);
        c.requests = Some(50);
        let r = loadgen::run(&c).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(r.completed, 0);
        assert_eq!(
            r.errors.get("refused"),
            Some(&50),
            "{mode:?}: {:?}",
            r.errors
        );
    }
}

#[test]
fn a_session_keeps_its_connections_across_runs() {
    let server = TinyServer::start(u64::MAX, 0);
    for mode in [Mode::Closed, Mode::Pipelined { depth: 4 }] {
        let before = server.accepted.load(Ordering::Relaxed);
        let mut session = loadgen::Session::start(&config(server.addr, mode)).expect("start");
        for run in 0..5 {
            let r = session.run(Some(1000), None).expect("run");
            assert_eq!((r.completed, r.ok), (1000, 1000), "{mode:?} run {run}");
            assert_eq!(r.errors_total(), 0, "{mode:?} run {run}: {:?}", r.errors);
            // The 8 connections are opened once and counted in the first run only.
            assert_eq!(
                r.connects,
                if run == 0 { 8 } else { 0 },
                "{mode:?} run {run}"
            );
        }
        let r = session
            .run(None, Some(Duration::from_millis(300)))
            .expect("timed run");
        assert!(r.completed > 0 && r.errors_total() == 0, "{:?}", r.errors);
        assert_eq!(server.accepted.load(Ordering::Relaxed) - before, 8);
    }
}

#[test]
fn connections_closed_while_idle_are_replaced_before_the_next_run() {
    let server = TinyServer::start(u64::MAX, 0);
    let mut session = loadgen::Session::start(&config(server.addr, Mode::Closed)).expect("start");
    let first = session.run(Some(500), None).expect("first run");
    assert_eq!(first.connects, 8);
    // Between runs the server closes all 8 idle connections (on command, not on a timer,
    // so a slow machine cannot make it close one mid-run).
    server.close_idle_connections(8);
    let second = session.run(Some(500), None).expect("second run");
    assert_eq!(second.completed, 500);
    assert_eq!(second.errors_total(), 0, "{:?}", second.errors);
    assert_eq!(second.connects, 8, "every closed connection reopened");
    assert_eq!(server.accepted.load(Ordering::Relaxed), 16);
}
