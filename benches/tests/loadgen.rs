//! The load generator against a tiny in-test server: every mode, the watchdog, error counts,
//! open-loop pacing, pipelined answer matching.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bench::loadgen::{self, LoadError, Mode, RunConfig, Workload};
use bytes::BytesMut;
use common::http::parse::Parsed;
use common::http::{Limits, Parser};

/// How the in-test server behaves.
#[derive(Debug, Clone, Copy)]
struct Behaviour {
    /// Answers this many requests in total, then goes silent.
    answer_limit: u64,
    /// Every `fail_every`-th answer is a 503 (0: never).
    fail_every: u64,
    /// Every answer waits this long first.
    delay: Duration,
    /// Once, when this many requests have been answered, every connection stops answering
    /// for the given time (a stop-the-world pause).
    pause: Option<(u64, Duration)>,
}

impl Behaviour {
    fn answering(answer_limit: u64, fail_every: u64) -> Self {
        Self {
            answer_limit,
            fail_every,
            delay: Duration::ZERO,
            pause: None,
        }
    }
}

/// What the server's connection threads share.
#[derive(Debug)]
struct ServerState {
    behaviour: Behaviour,
    answered: AtomicU64,
    /// Set: connections close as soon as they are idle (see `close_idle_connections`).
    close_idle: AtomicBool,
    closed_idle: AtomicU64,
    /// The pause, once it has begun: until when.
    paused_until: Mutex<Option<Instant>>,
}

/// A blocking server: a thread per connection, answers each request as its [`Behaviour`]
/// says. With `close_idle` set, a connection that sends nothing is closed.
struct TinyServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    accepted: Arc<AtomicU64>,
}

impl TinyServer {
    fn start(answer_limit: u64, fail_every: u64) -> Self {
        Self::with(Behaviour::answering(answer_limit, fail_every))
    }

    fn with(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(ServerState {
            behaviour,
            answered: AtomicU64::new(0),
            close_idle: AtomicBool::new(false),
            closed_idle: AtomicU64::new(0),
            paused_until: Mutex::new(None),
        });
        let accepted = Arc::new(AtomicU64::new(0));
        let (st, conns) = (state.clone(), accepted.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                conns.fetch_add(1, Ordering::Relaxed);
                // Short read timeouts let a connection notice `close_idle` while idle.
                let _ = conn.set_read_timeout(Some(Duration::from_millis(20)));
                let st = st.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        Self {
            addr,
            state,
            accepted,
        }
    }

    fn answered(&self) -> u64 {
        self.state.answered.load(Ordering::Relaxed)
    }

    /// Closes every connection that is idle (no partial request), as a server's idle
    /// timeout would, and waits (up to 5 s) until `n` have been closed so.
    fn close_idle_connections(&self, n: u64) {
        let st = &self.state;
        st.close_idle.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(5);
        while st.closed_idle.load(Ordering::Relaxed) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            st.closed_idle.load(Ordering::Relaxed),
            n,
            "idle connections closed"
        );
        st.close_idle.store(false, Ordering::Relaxed);
    }
}

/// Holds an answer back while the server's one pause lasts (starting it when due).
fn wait_out_pause(st: &ServerState, n: u64) {
    let Some((at, length)) = st.behaviour.pause else {
        return;
    };
    let until = {
        let mut p = st.paused_until.lock().expect("lock");
        if p.is_none() && n >= at {
            *p = Some(Instant::now() + length);
        }
        *p
    };
    if let Some(until) = until {
        let now = Instant::now();
        if now < until {
            std::thread::sleep(until - now);
        }
    }
}

fn serve(mut s: TcpStream, st: &ServerState) {
    let b = st.behaviour;
    let mut parser = Parser::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16384];
    loop {
        let mut out = Vec::new();
        let mut close = false;
        while let Ok(Some(Parsed::Request(r))) = parser.parse(&mut buf) {
            let n = st.answered.fetch_add(1, Ordering::Relaxed) + 1;
            if n > b.answer_limit {
                // Silent from now on: hold the connection, answer nothing.
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
            wait_out_pause(st, n);
            if !b.delay.is_zero() {
                std::thread::sleep(b.delay);
            }
            if b.fail_every > 0 && n % b.fail_every == 0 {
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
                    if st.close_idle.load(Ordering::Relaxed) && buf.is_empty() {
                        st.closed_idle.fetch_add(1, Ordering::Relaxed);
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
    for (mode, rate) in [
        (Mode::Closed, None),
        (Mode::Pipelined { depth: 16 }, None),
        (Mode::ConnPerRequest, None),
        (Mode::Closed, Some(4000.0)),
        (Mode::ConnPerRequest, Some(4000.0)),
    ] {
        let before = server.answered();
        let mut c = config(server.addr, mode);
        c.rate = rate;
        let r = loadgen::run(&c).unwrap_or_else(|e| panic!("{mode:?} {rate:?}: {e}"));
        let served = server.answered() - before;
        assert_eq!(r.completed, 2000, "{mode:?}");
        assert_eq!(r.ok, 2000, "{mode:?}");
        assert_eq!(
            served, 2000,
            "{mode:?}: the server saw exactly the requests sent"
        );
        assert_eq!(r.errors_total(), 0, "{mode:?}: {:?}", r.errors);
        assert_eq!(r.latency_us.count, 2000);
        assert!(r.latency_us.p50 > 0 && r.latency_us.p50 <= r.latency_us.p99);
        // Open loop: the uncorrected service time and the schedule are reported too.
        assert_eq!(r.service_us.is_some(), rate.is_some(), "{mode:?} {rate:?}");
        assert_eq!(r.schedule.map(|s| s.sent), rate.map(|_| 2000), "{mode:?}");
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

/// An open-loop run of `secs` at `rate` over 8 connections (2 threads).
fn open_loop(server: &TinyServer, rate: f64, secs: f64) -> loadgen::Report {
    let mut c = config(server.addr, Mode::Closed);
    c.rate = Some(rate);
    c.requests = None;
    c.duration = Some(Duration::from_secs_f64(secs));
    loadgen::run(&c).expect("run")
}

#[test]
fn open_loop_keeps_to_its_schedule() {
    let server = TinyServer::start(u64::MAX, 0);
    let r = open_loop(&server, 2000.0, 2.0);
    // 2000/s for 2 s: 4000 intended sends, every one sent even when this busy machine made
    // the load thread late for some (the schedule decides the count, not the machine).
    let sent = r.completed as f64;
    assert!(
        (sent - 4000.0).abs() <= 40.0,
        "{sent} answers for 4000 intended"
    );
    // The schedule's last slot went out within 1 % of the run's length of its time: the
    // rate actually offered was within 1 % of the rate asked.
    let sc = r.schedule.expect("open loop has a schedule");
    assert_eq!(sc.sent, r.completed);
    assert!(
        !sc.fell_behind && sc.behind <= 0.01,
        "fell behind by {:.2} %: {sc:?}",
        sc.behind * 100.0
    );
    assert_eq!(sc.behind_cause(), None);
    // Closed-loop semantics are not open-loop ones: no schedule there.
    let mut c = config(server.addr, Mode::Closed);
    c.requests = Some(100);
    let closed = loadgen::run(&c).expect("closed");
    assert!(closed.schedule.is_none() && closed.service_us.is_none());
}

#[test]
fn a_pause_shows_in_corrected_latency_not_in_service_time() {
    // 1000 req/s over 2 s; after 500 answers (~0.5 s in) the server stops for 200 ms.
    let pause = Duration::from_millis(200);
    let server = TinyServer::with(Behaviour {
        pause: Some((500, pause)),
        ..Behaviour::answering(u64::MAX, 0)
    });
    let r = open_loop(&server, 1000.0, 2.0);
    let (corrected, service) = (r.latency_us, r.service_us.expect("service time"));
    let sc = r.schedule.expect("schedule");
    assert_eq!(r.completed, 2000, "{r:?}");
    // ~200 requests (10 %) were due during the pause: each waited for what was left of it
    // (0..200 ms), measured from its intended send time.
    let pause_us = pause.as_micros() as u64;
    assert!(
        corrected.p99 >= pause_us / 2,
        "corrected p99 {} µs does not show a {pause_us} µs pause",
        corrected.p99
    );
    assert!(
        corrected.max >= pause_us * 3 / 4,
        "corrected max {}",
        corrected.max
    );
    // Only the 8 requests in flight when it began (one per connection, 0.4 %) were
    // *served* across the pause; the ones held back were sent after it and answered
    // quickly, so the uncorrected p99 does not see it — which is what coordinated
    // omission hides.
    assert!(
        service.max >= pause_us / 2,
        "the requests in flight waited: service max {}",
        service.max
    );
    assert!(
        service.p99 < pause_us / 4,
        "uncorrected p99 {} µs should not include the pause",
        service.p99
    );
    // The schedule was held up by the server (connections waited for answers), not by
    // the load generator, and it caught up: it did not fall behind.
    assert!(sc.lag_us.max >= pause_us / 2, "lag {:?}", sc.lag_us);
    assert!(
        sc.client_lag_us.mean < sc.lag_us.mean / 2.0,
        "the lag was the server's: {sc:?}"
    );
    assert!(!sc.fell_behind, "{sc:?}");
}

#[test]
fn a_fixed_delay_shows_in_both_latencies() {
    // Every answer takes 5 ms; 400 req/s over 8 connections is one request per connection
    // every 20 ms, so no request waits for the one before it.
    let delay = Duration::from_millis(5);
    let server = TinyServer::with(Behaviour {
        delay,
        ..Behaviour::answering(u64::MAX, 0)
    });
    let r = open_loop(&server, 400.0, 1.0);
    let (corrected, service) = (r.latency_us, r.service_us.expect("service time"));
    let d = delay.as_micros() as u64;
    for (name, l) in [("corrected", corrected), ("uncorrected", service)] {
        assert!(
            l.p50 >= d && l.p99 >= d,
            "{name} {l:?} below the {d} µs delay"
        );
    }
    // Per request, corrected >= uncorrected, so every percentile is too.
    for (c, u) in [
        (corrected.p50, service.p50),
        (corrected.p90, service.p90),
        (corrected.p99, service.p99),
        (corrected.max, service.max),
    ] {
        assert!(
            c >= u,
            "corrected {corrected:?} below uncorrected {service:?}"
        );
    }
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
    // Where the "server"'s threads were (here: this test process, the TinyServer's and
    // the test harness's threads), named in the summary too.
    assert!(facts.threads.len() >= 2, "{:?}", facts.threads);
    assert!(facts.threads.iter().all(|t| !t.state.is_empty()));
    let summary = report.stall_summary();
    assert!(summary.contains("STALL"));
    assert!(
        summary.contains("its threads (name tid state wchan)"),
        "{summary}"
    );
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
