//! One integration suite, run against every server: tokio (multi-thread), tokio per-core,
//! tokio-uring. Each case starts the server binary as a child process on port 0 and checks
//! what landed in Kafka, not only status codes.
//!
//! With `KAFKA_BROKERS` set (CI sets it to a tansu broker) the same cases run against that
//! broker; otherwise each case starts an embedded broker.

#[macro_use]
mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bench::runtime::Runtime;
use support::{body, get, metric, post, Broker, Client};

suite!(
    with_ring_setups:
    keep_alive_posts_land_byte_for_byte,
    pipelined_chunked_close_and_http10,
    slowloris_gets_408_while_others_are_served,
    client_vanishing_mid_body_publishes_nothing,
    sigterm_during_load_loses_no_acknowledged_record,
    broker_unreachable_gives_503_and_not_ready,
    sigterm_right_after_the_last_202_with_a_long_linger,
    lost_records_make_a_non_zero_exit,
    accept_errors_do_not_stop_the_server,
    load_generator_ids_land_exactly_once,
    waiting_for_deliveries_without_their_reports_is_refused_at_start,
);

fn waiting_for_deliveries_without_their_reports_is_refused_at_start(rt: Runtime) {
    let mut cfg = bench::server::ServerConfig::new(rt);
    cfg.args = [
        "--ack",
        "delivered",
        "-X",
        "delivery.report.only.error=true",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let e = match bench::server::ServerProcess::start(&cfg) {
        Ok(_) => panic!("a server that could never answer --ack delivered started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        e.contains("delivery.report.only.error") && e.contains("--ack delivered"),
        "{e}"
    );
}

fn keep_alive_posts_land_byte_for_byte(rt: Runtime) {
    const CONNS: u64 = 4;
    const PER_CONN: u64 = 250;
    let broker = Broker::new("keepalive");
    let server = broker.server(rt, &[]);
    let counted_before = broker.reader().count().expect("count");
    let mut sent = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..CONNS)
            .map(|c| {
                s.spawn(move || {
                    let mut client = Client::connect(server.addr);
                    let mut bodies = Vec::new();
                    for i in 0..PER_CONN {
                        let b = body(c * 1_000_000 + i, 20 + (i as usize * 7) % 300);
                        let r = client.request(&post(&b));
                        assert_eq!(r.status, 202, "{}", r.head);
                        bodies.push(b);
                    }
                    bodies
                })
            })
            .collect();
        for h in handles {
            sent.extend(h.join().expect("client thread"));
        }
    });
    assert_eq!(metric(server.addr, "connections_accepted_total"), CONNS + 1);
    server.stop(Duration::from_secs(20)).expect("clean exit");
    sent.sort();
    assert_eq!(
        broker.values(),
        sent,
        "records in Kafka must equal the bodies sent"
    );
    let landed = broker.reader().count().expect("count") - counted_before;
    assert_eq!(landed, CONNS * PER_CONN, "counted by {:?}", broker.method());
}

fn pipelined_chunked_close_and_http10(rt: Runtime) {
    let broker = Broker::new("framing");
    let server = broker.server(rt, &[]);
    let mut expected = Vec::new();

    // Ten pipelined requests in one write: ten answers, in order.
    let mut c = Client::connect(server.addr);
    let mut batch = Vec::new();
    for i in 0..10 {
        let b = body(100 + i, 50);
        batch.extend_from_slice(&post(&b));
        expected.push(b);
    }
    batch.extend_from_slice(&get("/nowhere"));
    c.send(&batch).expect("send");
    for _ in 0..10 {
        assert_eq!(c.response().expect("response").status, 202);
    }
    assert_eq!(c.response().expect("response").status, 404);

    // Chunked, with extensions and trailers, split over several writes.
    let r = {
        c.send(b"POST /ingest HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nX-Key: k\r\n\r\n5;a=b\r\nhello\r\n").expect("send");
        std::thread::sleep(Duration::from_millis(50));
        c.send(b"7\r\n chunky\r\n0\r\nTrailer: ignored\r\n\r\n")
            .expect("send");
        c.response().expect("response")
    };
    assert_eq!(r.status, 202);
    expected.push(b"hello chunky".to_vec());

    // Connection: close is honoured.
    let r = c.request(
        b"POST /ingest HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\n\r\nclose",
    );
    assert_eq!((r.status, r.close), (202, true));
    assert!(c.closed_within(Duration::from_secs(5)));
    expected.push(b"close".to_vec());

    // HTTP/1.0 closes by default, stays with keep-alive.
    let mut c = Client::connect(server.addr);
    let r = c.request(b"POST /ingest HTTP/1.0\r\nContent-Length: 4\r\n\r\nten1");
    assert_eq!((r.status, r.close), (202, true));
    assert!(c.closed_within(Duration::from_secs(5)));
    let mut c = Client::connect(server.addr);
    let r = c.request(
        b"POST /ingest HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nten2",
    );
    assert_eq!(r.status, 202);
    assert!(
        r.head
            .to_ascii_lowercase()
            .contains("connection: keep-alive"),
        "{}",
        r.head
    );
    assert_eq!(
        c.request(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .status,
        200
    );
    expected.push(b"ten1".to_vec());
    expected.push(b"ten2".to_vec());

    // Expect: 100-continue.
    let mut c = Client::connect(server.addr);
    c.send(
        b"POST /ingest HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 8\r\n\r\n",
    )
    .expect("send");
    assert_eq!(c.response().expect("100").status, 100);
    c.send(b"continue").expect("send");
    assert_eq!(c.response().expect("final").status, 202);
    expected.push(b"continue".to_vec());

    server.stop(Duration::from_secs(20)).expect("clean exit");
    expected.sort();
    assert_eq!(broker.values(), expected);
}

fn slowloris_gets_408_while_others_are_served(rt: Runtime) {
    let broker = Broker::new("slowloris");
    let server = broker.server(rt, &["--header-timeout", "1s"]);
    let started = Instant::now();
    let served = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let addr = server.addr;
        let loris = s.spawn(move || {
            let mut c = Client::connect(addr);
            let head = b"POST /ingest HTTP/1.1\r\nHost: slow\r\nContent-Length: 5\r\n";
            for b in head {
                if c.send(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
                if started.elapsed() > Duration::from_secs(4) {
                    break;
                }
            }
            c.response()
        });
        let served = served.clone();
        s.spawn(move || {
            let mut c = Client::connect(addr);
            for i in 0..20 {
                assert_eq!(c.request(&post(format!("fast{i}").as_bytes())).status, 202);
                std::thread::sleep(Duration::from_millis(25));
            }
            served.store(true, Ordering::Relaxed);
        });
        let r = loris.join().expect("loris thread").expect("a 408 answer");
        assert_eq!(r.status, 408, "{}", r.head);
        assert!(r.close);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "408 after {took:?} with a 1 s header timeout"
        );
    });
    assert!(served.load(Ordering::Relaxed));
    assert_eq!(metric(server.addr, "http_responses_total{code=\"408\"}"), 1);
    server.stop(Duration::from_secs(20)).expect("clean exit");
    assert_eq!(broker.values().len(), 20);
}

fn client_vanishing_mid_body_publishes_nothing(rt: Runtime) {
    let broker = Broker::new("vanish");
    let server = broker.server(rt, &[]);
    for cut in [0usize, 1, 40, 99] {
        let mut c = Client::connect(server.addr);
        let mut req = b"POST /ingest HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'p', cut));
        c.send(&req).expect("send");
        drop(c);
    }
    // Chunked, vanishing before the last chunk.
    let mut c = Client::connect(server.addr);
    c.send(b"POST /ingest HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\npart!\r\n")
        .expect("send");
    drop(c);
    assert_eq!(
        Client::connect(server.addr).request(&post(b"whole")).status,
        202
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(metric(server.addr, "kafka_records_enqueued_total"), 1);
    server.stop(Duration::from_secs(20)).expect("clean exit");
    assert_eq!(broker.values(), vec![b"whole".to_vec()]);
}

fn sigterm_during_load_loses_no_acknowledged_record(rt: Runtime) {
    // SIGTERM while four clients are mid-load: every 200 must be in Kafka.
    let acked = sigterm_under_load(rt, &["--ack", "delivered"], 200, true);
    assert!(acked > 50, "load ran before the signal ({acked} acked)");
}

fn sigterm_right_after_the_last_202_with_a_long_linger(rt: Runtime) {
    // With ack enqueued and a 2 s linger, the last 202s are still in the producer's queue
    // when SIGTERM arrives: the shutdown flush must deliver every one, and nothing else.
    let acked = sigterm_under_load(rt, &["-X", "linger.ms=2000"], 202, false);
    assert!(acked > 50, "load ran before the signal ({acked} acked)");
}

/// Four clients post unique bodies; SIGTERM comes while they post, once they have 60
/// answers (`mid_load`), or right after they have all stopped (after 700 ms of posting). The server must exit 0 with every body answered
/// `ok` in Kafka (and, when the load had stopped, exactly those: compared as multisets).
/// Returns how many were answered `ok`.
fn sigterm_under_load(rt: Runtime, args: &[&str], ok: u16, mid_load: bool) -> usize {
    let broker = Broker::new("sigterm");
    let server = broker.server(rt, args);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let addr = server.addr;
    let started = Instant::now();
    let stop_at = started + Duration::from_millis(if mid_load { 15_000 } else { 700 });
    std::thread::scope(|s| {
        let clients: Vec<_> = (0..4u64)
            .map(|t| {
                let acked = acked.clone();
                s.spawn(move || {
                    let Ok(stream) = std::net::TcpStream::connect(addr) else {
                        return;
                    };
                    drop(stream);
                    let mut c = Client::connect(addr);
                    for i in 0.. {
                        if Instant::now() > stop_at {
                            break;
                        }
                        let b = body(t * 10_000_000 + i, 64);
                        if c.send(&post(&b)).is_err() {
                            break;
                        }
                        match c.response() {
                            Ok(r) if r.status == ok => acked.lock().expect("lock").push(b),
                            Ok(r) => panic!("unexpected {}", r.head),
                            Err(_) => break,
                        }
                        if i % 50 == 49 {
                            // Also exercise shutdown between connections.
                            c = match std::net::TcpStream::connect(addr) {
                                Ok(_) => Client::connect(addr),
                                Err(_) => break,
                            };
                        }
                    }
                })
            })
            .collect();
        if mid_load {
            // Mid-load: once the clients have 60 answers (however fast this machine is
            // today; at most 10 s), while they keep posting.
            let deadline = Instant::now() + Duration::from_secs(10);
            while acked.lock().expect("lock").len() < 60 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        } else {
            for c in clients {
                c.join().expect("client");
            }
        }
        server.terminate();
    });
    let stderr = server.stderr();
    let status = server
        .wait(Duration::from_secs(20))
        .expect("exit after SIGTERM");
    assert!(status.success(), "exit status {status}:\n{stderr}");
    let mut acked = acked.lock().expect("lock").clone();
    let values = broker.values();
    if mid_load {
        let landed: BTreeSet<&Vec<u8>> = values.iter().collect();
        let missing = acked.iter().filter(|b| !landed.contains(b)).count();
        assert_eq!(
            missing,
            0,
            "{missing} of {} acknowledged records are not in Kafka",
            acked.len()
        );
    } else {
        acked.sort();
        assert!(
            values == acked,
            "Kafka holds {} records for {} answered {ok}: missing or duplicated bodies",
            values.len(),
            acked.len()
        );
    }
    acked.len()
}

fn lost_records_make_a_non_zero_exit(rt: Runtime) {
    // Ack enqueued to a broker that is not there: the POSTs get 202, their records can
    // never be delivered, and the server must say so in its exit status.
    let server = with_absent_broker(
        rt,
        &["--delivery-timeout", "1s", "--shutdown-timeout", "1s"],
    );
    let mut c = Client::connect(server.addr);
    for i in 0..3 {
        let r = c.request(&post(&body(i, 16)));
        assert_eq!(r.status, 202, "{}", r.head);
    }
    drop(c);
    let stderr = || server.stderr();
    server.terminate();
    let out = stderr();
    let status = server.wait(Duration::from_secs(20)).expect("exit");
    assert_eq!(
        status.code(),
        Some(i32::from(common::service::EXIT_RECORDS_LOST)),
        "exit status {status} after losing records:\n{out}"
    );
}

/// `rt` started with `--brokers` naming a loopback port nothing listens on.
fn with_absent_broker(rt: Runtime, args: &[&str]) -> bench::server::ServerProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut cfg = bench::server::ServerConfig::new(rt);
    cfg.brokers = Some(format!("127.0.0.1:{port}"));
    cfg.args = args.iter().map(|a| a.to_string()).collect();
    bench::server::ServerProcess::start(&cfg).unwrap_or_else(|e| panic!("{e:#}"))
}

fn broker_unreachable_gives_503_and_not_ready(rt: Runtime) {
    let server = with_absent_broker(rt, &["--ack", "delivered", "--delivery-timeout", "2s"]);
    let mut c = Client::connect(server.addr);
    for _ in 0..2 {
        let started = Instant::now();
        let r = c.request(&post(b"nowhere to go"));
        let took = started.elapsed();
        assert_eq!(r.status, 503, "{}", r.head);
        assert!(
            took < Duration::from_secs(5),
            "503 after {took:?}, delivery timeout 2 s"
        );
        assert!(String::from_utf8_lossy(&r.body).contains("delivery failed"));
    }
    let r = c.request(&get("/healthz"));
    assert_eq!(r.status, 503, "{}", r.head);
    server.stop(Duration::from_secs(20)).expect("clean exit");
}

fn accept_errors_do_not_stop_the_server(rt: Runtime) {
    let broker = Broker::new("emfile");
    let server = broker.server_with(rt, &[], Some(64));
    let mut held = Vec::new();
    for _ in 0..120 {
        match std::net::TcpStream::connect_timeout(&server.addr, Duration::from_secs(2)) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    // Let the server hit EMFILE on accept for a while.
    std::thread::sleep(Duration::from_millis(500));
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let attempt = std::panic::catch_unwind(|| {
            Client::connect(server.addr).request(&post(b"after")).status
        });
        match attempt {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => std::panic::resume_unwind(e),
        }
    };
    assert_eq!(status, 202);
    assert!(
        metric(server.addr, "accept_errors_total") > 0,
        "the fd limit was never hit"
    );
    server.stop(Duration::from_secs(20)).expect("clean exit");
    assert_eq!(broker.values(), vec![b"after".to_vec()]);
}

/// Every request of a load-generator run carries its own id (pipelined batches and a
/// connection per request): read back, each id answered 2xx landed exactly once — the check
/// `cargo bench` runs — and a record that is not one of them is named as such.
fn load_generator_ids_land_exactly_once(rt: Runtime) {
    use bench::results::ids::IdScope;
    use bench::results::Landed;
    let broker = Broker::new("ids");
    let server = broker.server(rt, &[]);
    let mut ids = loadgen::ids::Ids::default();
    for (mode, n) in [
        (loadgen::Mode::Pipelined { depth: 4 }, 3000),
        (loadgen::Mode::ConnPerRequest, 200),
    ] {
        let mut cfg =
            loadgen::RunConfig::new(server.addr, loadgen::Workload::post("/ingest", 100, 7));
        (cfg.mode, cfg.connections, cfg.threads) = (mode, 8, 2);
        (cfg.requests, cfg.duration) = (Some(n), None);
        let report = loadgen::run(&cfg).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(report.ok, n, "{mode:?}: {:?}", report.statuses);
        ids.merge(report.ids.as_ref().expect("ids"));
    }
    assert_eq!((ids.sent(), ids.answered_2xx()), (3200, 3200));
    // One more record, not from the load generator: it lands, and is none of its ids.
    let r = Client::connect(server.addr).request(&post(&body(1, 100)));
    assert_eq!(r.status, 202);
    server.stop(Duration::from_secs(20)).expect("clean exit");
    let (landed, check) = bench::suite::read_back(&broker.reader(), 0, &ids);
    let c = check.expect("read back by id");
    assert_eq!(
        (landed, c.scope),
        (Landed::Counted(3201), IdScope::Everything)
    );
    // Every id exactly once; the stranger named.
    assert_eq!(
        (c.checked, c.missing, c.duplicated, c.without_2xx, c.unknown),
        (3201, Some(0), 0, 0, 1),
        "{c:?}"
    );
    assert!(
        !c.exact() && c.examples[0].starts_with("unknown: "),
        "{c:?}"
    );
}
