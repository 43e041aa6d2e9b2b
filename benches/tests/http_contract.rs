//! The HTTP contract, run against every server (see `servers.rs` for the suite's shape):
//! every documented refusal with its status and reason, HEAD, a trickling body, and the
//! request-target forms, and the connection tasks' metrics on /metrics (on by default, off
//! with `--task-metrics false`). Each case checks what landed in Kafka too.

#[macro_use]
mod support;

use std::time::{Duration, Instant};

use bench::runtime::Runtime;
use support::{get, metric, post, Broker, Client};

suite!(
    with_ring_setups:
    bad_input_gets_its_status_and_the_server_goes_on,
    head_requests_and_a_trickling_body,
    request_target_forms,
    metrics_expose_the_connection_tasks,
);

fn bad_input_gets_its_status_and_the_server_goes_on(rt: Runtime) {
    let broker = Broker::new("badinput");
    let server = broker.server(rt, &[]);
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cases: Vec<(&str, Vec<u8>, u16, bool)> = vec![
        ("malformed request line", b"POST /ingest HTTP/1.1 extra\r\n\r\n".to_vec(), 400, true),
        ("bad header", b"POST /ingest HTTP/1.1\r\nHost: t\r\nBad Header: x\r\nContent-Length: 1\r\n\r\nx".to_vec(), 400, true),
        ("oversize header", format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n", "a".repeat(9000)).into_bytes(), 431, true),
        ("too many headers", format!("GET /healthz HTTP/1.1\r\nHost: t\r\n{}\r\n", "A: b\r\n".repeat(65)).into_bytes(), 431, true),
        ("oversize body", b"POST /ingest HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\nxxxx".to_vec(), 413, true),
        ("missing length", b"POST /ingest HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 411, true),
        ("smuggling CL+TE", b"POST /ingest HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), 400, true),
        ("conflicting lengths", b"POST /ingest HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nxxxxx".to_vec(), 400, true),
        ("unsupported coding", b"POST /ingest HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), 501, true),
        ("unknown path", post(b"nowhere").replace_path("/nowhere"), 404, false),
        ("wrong method", get("/ingest"), 405, false),
        ("garbage", garbage, 400, true),
        // RFC 9112 framing a lenient proxy would read differently: 400, nothing published.
        ("bare LF in a chunk extension", b"POST /ingest HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;\nxx\r\nab\r\n0\r\n\r\n".to_vec(), 400, true),
        ("request smuggled in a trailer", b"POST /ingest HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\nPOST http://a/ HTTP/1.1\r\n\r\n".to_vec(), 400, true),
        ("space after a chunk size", b"POST /ingest HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n".to_vec(), 400, true),
        ("HTTP/1.1 without Host", b"POST /ingest HTTP/1.1\r\nContent-Length: 1\r\n\r\nx".to_vec(), 400, true),
        ("two Hosts", b"POST /ingest HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 1\r\n\r\nx".to_vec(), 400, true),
    ];
    let mut expected = Vec::new();
    for (what, input, status, closes) in cases {
        let mut c = Client::connect(server.addr);
        c.send(&input).expect("send");
        let r = c
            .response()
            .unwrap_or_else(|e| panic!("{what}: no response: {e}"));
        assert_eq!(r.status, status, "{what}: {}", r.head);
        assert!(!r.body.is_empty(), "{what}: an error says why");
        if status == 405 {
            assert!(
                r.head.to_ascii_lowercase().contains("allow: post"),
                "{}",
                r.head
            );
        }
        assert_eq!(r.close, closes, "{what}: {}", r.head);
        if closes {
            assert!(
                c.closed_within(Duration::from_secs(5)),
                "{what}: connection must close"
            );
        } else {
            let r = c.request(&get("/healthz"));
            assert_eq!(
                r.status,
                200,
                "{what}: connection goes on: {}\n{}",
                String::from_utf8_lossy(&r.body),
                server.stderr()
            );
        }
        // Other connections are served.
        assert_eq!(
            Client::connect(server.addr)
                .request(&post(what.as_bytes()))
                .status,
            202,
            "after {what}"
        );
        expected.push(what.as_bytes().to_vec());
    }
    assert_eq!(
        metric(server.addr, "http_responses_total{code=\"400\"}"),
        10
    );
    server.stop(Duration::from_secs(20)).expect("clean exit");
    expected.sort();
    assert_eq!(
        broker.values(),
        expected,
        "exactly the valid POSTs landed, byte for byte"
    );
}

fn head_requests_and_a_trickling_body(rt: Runtime) {
    let broker = Broker::new("head-trickle");
    let server = broker.server(rt, &["--body-timeout", "1s"]);
    // HEAD answers carry no body, so a pipelined answer after one stays in sync.
    let mut c = Client::connect(server.addr);
    c.send(b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\nHEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\nHEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    c.send(&get("/healthz")).expect("send");
    for (path, status) in [("/healthz", 200), ("/metrics", 200), ("/nope", 404)] {
        let head = c.head_only().expect("HEAD answer");
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "HEAD {path}: {head}"
        );
        assert!(
            !head.contains("content-length: 0"),
            "HEAD {path} announces its length: {head}"
        );
    }
    let r = c.response().expect("the GET after the HEADs");
    assert_eq!((r.status, &r.body[..]), (200, &b"ready\n"[..]));

    // A body that trickles a byte every 200 ms never waits long between reads, but the
    // body timeout (1 s) bounds it as a whole: 408 and close, nothing published.
    let started = Instant::now();
    let mut c = Client::connect(server.addr);
    c.send(b"POST /ingest HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
        .expect("send");
    let r = std::thread::scope(|s| {
        let addr = c.try_clone();
        s.spawn(move || {
            let mut w = addr;
            for _ in 0..40 {
                std::thread::sleep(Duration::from_millis(200));
                if w.send(b"x").is_err() {
                    break;
                }
            }
        });
        c.response()
    })
    .expect("a 408 answer");
    assert_eq!((r.status, r.close), (408, true), "{}", r.head);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "408 after {took:?} with a 1 s body timeout"
    );
    server.stop(Duration::from_secs(20)).expect("clean exit");
    assert!(
        broker.values().is_empty(),
        "a timed-out body is not published"
    );
}

/// RFC 9112 §3.2: absolute-form is accepted and routed by its path (Host still required);
/// `OPTIONS *` answers with the server's methods; `*` with another method and
/// authority-form are refused with 400 and a reason; nothing but the valid POST lands.
fn request_target_forms(rt: Runtime) {
    let broker = Broker::new("target-forms");
    let server = broker.server(rt, &[]);
    let mut c = Client::connect(server.addr);
    let r = c.request(
        b"POST http://t/ingest HTTP/1.1\r\nHost: t\r\nContent-Length: 13\r\n\r\nabsolute-form",
    );
    assert_eq!(r.status, 202, "{}", r.head);
    let r = c.request(b"GET HTTP://t:80/healthz?probe=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        (r.status, &r.body[..]),
        (200, &b"ready\n"[..]),
        "{}",
        r.head
    );
    let r = c.request(b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(
        r.head
            .to_ascii_lowercase()
            .contains("allow: get, head, post, options"),
        "{}",
        r.head
    );
    assert!(!r.close, "{}", r.head);
    let r = c.request(b"POST http://t/ingest HTTP/1.1\r\nContent-Length: 1\r\n\r\nx");
    assert_eq!(
        (r.status, r.close),
        (400, true),
        "absolute-form without Host: {}",
        r.head
    );
    for (what, input, reason) in [
        (
            "GET *",
            &b"GET * HTTP/1.1\r\nHost: t\r\n\r\n"[..],
            "asterisk-form",
        ),
        (
            "CONNECT authority-form",
            b"CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n",
            "neither origin-form",
        ),
        (
            "POST authority-form",
            b"POST t:80 HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx",
            "neither origin-form",
        ),
    ] {
        let mut c = Client::connect(server.addr);
        let r = c.request(input);
        assert_eq!((r.status, r.close), (400, true), "{what}: {}", r.head);
        assert!(
            String::from_utf8_lossy(&r.body).contains(reason),
            "{what}: {:?}",
            r.body
        );
    }
    server.stop(Duration::from_secs(20)).expect("clean exit");
    assert_eq!(broker.values(), vec![b"absolute-form".to_vec()]);
}

fn metrics_expose_the_connection_tasks(rt: Runtime) {
    let broker = Broker::new("taskmetrics");
    for (args, monitored) in [(&[][..], true), (&["--task-metrics", "false"][..], false)] {
        let server = broker.server(rt, args);
        let mut c = Client::connect(server.addr);
        for i in 0..20u8 {
            assert_eq!(c.request(&post(&[b'a' + i; 10])).status, 202);
        }
        let r = Client::connect(server.addr).request(&get("/metrics"));
        let text = String::from_utf8_lossy(&r.body).into_owned();
        if monitored {
            // The keep-alive connection's task answered 20 requests: at least 20 polls,
            // nearly all after a wake-up by its socket (the client waits for each answer
            // before it sends the next request; a poll that finds data already there is
            // not a wake-up).
            assert!(metric(server.addr, "task_polls_total ") >= 20, "{text}");
            assert!(
                metric(server.addr, "tasks_instrumented_total ") >= 1,
                "{text}"
            );
            assert!(
                metric(server.addr, "task_wake_to_poll_seconds_count ") >= 10,
                "{text}"
            );
            assert!(
                text.contains("task_wake_to_poll_seconds_bucket{le=\"+Inf\"}"),
                "{text}"
            );
            assert!(text.contains("task_longest_poll_seconds "), "{text}");
        } else {
            assert!(!text.contains("task_"), "--task-metrics false: {text}");
        }
        server.stop(Duration::from_secs(20)).expect("clean exit");
    }
    assert_eq!(broker.values().len(), 40);
}

/// Replaces the request target of a request built by [`post`].
trait ReplacePath {
    fn replace_path(self, path: &str) -> Vec<u8>;
}
impl ReplacePath for Vec<u8> {
    fn replace_path(self, path: &str) -> Vec<u8> {
        let s = String::from_utf8_lossy(&self).replacen("/ingest", path, 1);
        s.into_bytes()
    }
}
