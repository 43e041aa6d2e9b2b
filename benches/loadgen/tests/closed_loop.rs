//! The load generator's closed loop against a tiny in-test server: every mode sends exactly
//! what was asked, statuses and errors are counted apart, a silent server is a stall, a
//! session keeps (and replaces) its connections.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use loadgen::{LoadError, Mode};
use support::{config, TinyServer};

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

#[test]
fn every_request_carries_its_own_id_and_the_report_knows_which_were_2xx() {
    use loadgen::ids::{RequestId, ID_LEN};
    for mode in [
        Mode::Closed,
        Mode::Pipelined { depth: 4 },
        Mode::ConnPerRequest,
    ] {
        // Every 7th answer is a 503: its id must not be listed as answered 2xx.
        let server = TinyServer::start(u64::MAX, 7);
        let mut c = config(server.addr, mode);
        c.warmup = Duration::from_millis(50);
        let r = loadgen::run(&c).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        let ids = r.ids.as_ref().expect("ids");
        let index = ids.index();
        let received = server.state.received.lock().expect("lock").clone();
        // Warm-up requests included: every request the server got is in the report.
        assert_eq!(received.len() as u64, ids.sent(), "{mode:?}");
        let mut seen = std::collections::HashSet::new();
        let mut ok = 0;
        for (prefix, status) in &received {
            let id =
                RequestId::parse(prefix).unwrap_or_else(|| panic!("{mode:?}: no id in {prefix:?}"));
            assert!(seen.insert(id), "{mode:?}: {id} sent twice");
            let stream = index
                .get(&(id.run, id.stream))
                .expect("a stream of this run");
            assert_eq!(
                stream.is_ok(id.seq),
                *status == 202,
                "{mode:?}: {id} answered {status}"
            );
            ok += u64::from(*status == 202);
        }
        assert_eq!(ids.answered_2xx(), ok, "{mode:?}");
        assert!(ok < ids.sent(), "{mode:?}: some answers were 503");
        assert_eq!(received[0].0.len(), ID_LEN);
    }
    // --no-ids, or a body too short for one: the bytes go as given.
    let server = TinyServer::start(u64::MAX, 0);
    let mut c = config(server.addr, Mode::Closed);
    c.ids = false;
    let r = loadgen::run(&c).expect("run");
    assert!(r.ids.is_none());
    let body = loadgen::seeded_bytes(100, 1);
    let received = server.state.received.lock().expect("lock").clone();
    assert!(received.iter().all(|(prefix, _)| prefix[..] == body[..32]));
}
