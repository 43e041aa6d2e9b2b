//! Connection state with no sockets: bytes in, responses out, in order, with the right
//! keep-alive decisions. Uses the null sink so no broker is involved.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::conn::{Conn, Timeouts};
use common::http::{Limits, Status};
use common::ingest::App;
use common::kafka::{AckMode, Publisher};
use common::metrics::Metrics;

fn app(ack: AckMode) -> App {
    let metrics = Arc::new(Metrics::new());
    App {
        publisher: Publisher::null(metrics.clone()),
        metrics,
        ack,
        tasks: None,
    }
}

fn conn() -> Conn {
    Conn::new(
        Limits::default(),
        Timeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            body: Duration::from_secs(30),
        },
    )
}

/// Serves `input` as one read; returns what would be written.
fn exchange(c: &mut Conn, app: &App, input: &[u8]) -> String {
    let mut rbuf = BytesMut::from(input);
    let mut wbuf = BytesMut::new();
    common::block_on(c.serve(Instant::now(), &mut rbuf, &mut wbuf, app));
    String::from_utf8(wbuf.to_vec()).expect("ascii responses")
}

fn status_lines(out: &str) -> Vec<&str> {
    out.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.starts_with("HTTP/1.1 "))
        .collect()
}

#[test]
fn pipelined_answers_in_order_and_counted() {
    let app = app(AckMode::Enqueued);
    let mut c = conn();
    let input = b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\naGET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\nPOST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nb";
    let out = exchange(&mut c, &app, input);
    let lines = status_lines(&out);
    assert_eq!(
        lines,
        [
            "HTTP/1.1 202 Accepted",
            "HTTP/1.1 404 Not Found",
            "HTTP/1.1 200 OK",
            "HTTP/1.1 202 Accepted"
        ]
    );
    assert!(!c.is_closing(), "404 keeps the connection");
    assert_eq!(app.metrics.responses(Status::Accepted), 2);
    assert_eq!(app.metrics.responses(Status::NotFound), 1);
    assert_eq!(
        app.metrics
            .records_enqueued
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[test]
fn delivered_mode_answers_200() {
    let app = app(AckMode::Delivered);
    let out = exchange(
        &mut conn(),
        &app,
        b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na",
    );
    assert_eq!(status_lines(&out), ["HTTP/1.1 200 OK"]);
}

#[test]
fn close_stops_reading_further_requests() {
    let app = app(AckMode::Enqueued);
    let mut c = conn();
    let out = exchange(
        &mut c,
        &app,
        b"POST /ingest HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\naPOST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nb",
    );
    assert_eq!(status_lines(&out), ["HTTP/1.1 202 Accepted"]);
    assert!(out.contains("connection: close\r\n"), "{out}");
    assert!(c.is_closing());
    assert_eq!(
        app.metrics
            .records_enqueued
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn http10_keep_alive_is_echoed() {
    let app = app(AckMode::Enqueued);
    let mut c = conn();
    let out = exchange(
        &mut c,
        &app,
        b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert!(out.contains("connection: keep-alive\r\n"), "{out}");
    assert!(!c.is_closing());
    let mut c = conn();
    let out = exchange(&mut c, &app, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert!(out.contains("connection: close\r\n"), "{out}");
    assert!(c.is_closing());
}

#[test]
fn errors_answer_with_reason_and_close() {
    let app = app(AckMode::Enqueued);
    let mut c = conn();
    let out = exchange(
        &mut c,
        &app,
        b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\naPOST /ingest HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(
        status_lines(&out),
        ["HTTP/1.1 202 Accepted", "HTTP/1.1 411 Length Required"]
    );
    assert!(
        out.ends_with("POST needs Content-Length or Transfer-Encoding: chunked\n"),
        "{out}"
    );
    assert!(c.is_closing());
    let out = exchange(
        &mut conn(),
        &app,
        b"DELETE /ingest HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(
        out.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{out}"
    );
    assert!(out.contains("allow: POST\r\n"), "{out}");
}

#[test]
fn continue_then_final_answer() {
    let app = app(AckMode::Enqueued);
    let mut c = conn();
    let out = exchange(
        &mut c,
        &app,
        b"POST /ingest HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    );
    assert_eq!(out, "HTTP/1.1 100 Continue\r\n\r\n");
    let out = exchange(&mut c, &app, b"hi");
    assert_eq!(status_lines(&out), ["HTTP/1.1 202 Accepted"]);
    // A request that would be refused is refused before the upload, and the connection closes.
    let mut c = conn();
    let out = exchange(
        &mut c,
        &app,
        b"POST /elsewhere HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    );
    assert_eq!(status_lines(&out), ["HTTP/1.1 404 Not Found"]);
    assert!(c.is_closing());
}

#[test]
fn deadlines_slowloris_and_idle() {
    let app = app(AckMode::Enqueued);
    let mut c = conn();
    let now = Instant::now();
    // Idle: the idle timeout applies.
    let idle = c.deadline(now);
    assert!(idle >= now + Duration::from_secs(59));
    // A partial head: the header timeout runs from its first byte and is not extended.
    let mut rbuf = BytesMut::from(&b"POST /ingest HTTP/1.1\r\nHost: x\r\nX-Ke"[..]);
    let mut wbuf = BytesMut::new();
    common::block_on(c.serve(now, &mut rbuf, &mut wbuf, &app));
    let first = c.deadline(now);
    assert_eq!(first, now + Duration::from_secs(10));
    rbuf.extend_from_slice(b"y: k\r\n");
    let later = now + Duration::from_secs(5);
    common::block_on(c.serve(later, &mut rbuf, &mut wbuf, &app));
    assert_eq!(c.deadline(later), first);
    assert!(!c.is_idle());
    c.timed_out(&mut wbuf, &app);
    assert!(wbuf.starts_with(b"HTTP/1.1 408 Request Timeout\r\n"));
    assert!(c.is_closing());
    assert_eq!(app.metrics.responses(Status::RequestTimeout), 1);
    // An idle connection that times out closes silently.
    let mut c = conn();
    let mut wbuf = BytesMut::new();
    assert!(c.is_idle());
    c.timed_out(&mut wbuf, &app);
    assert!(wbuf.is_empty() && c.is_closing());
}

#[test]
fn head_answers_carry_no_body_and_keep_pipelines_in_sync() {
    let app = app(AckMode::Enqueued);
    let out = exchange(
        &mut conn(),
        &app,
        b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /ingest HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    // Each answer is a head followed directly by the next status line, except the GETs',
    // whose body ("ready\n") comes first.
    let parts: Vec<&str> = out.split("\r\n\r\n").collect();
    assert_eq!(parts.len(), 7, "{out}");
    assert!(parts[0].starts_with("HTTP/1.1 200 OK") && parts[0].contains("content-length: 6"));
    assert!(
        parts[1].starts_with("HTTP/1.1 200 OK"),
        "HEAD sent a body: {out}"
    );
    assert!(parts[2].starts_with("ready\nHTTP/1.1 200 OK"), "{out}");
    assert!(parts[3].starts_with("HTTP/1.1 404 Not Found"), "{out}");
    assert!(
        parts[4].starts_with("HTTP/1.1 405 Method Not Allowed"),
        "{out}"
    );
    assert!(parts[4].contains("allow: POST"), "{out}");
    assert!(parts[5].starts_with("HTTP/1.1 200 OK"), "{out}");
    assert_eq!(parts[6], "ready\n");
    // The HEAD on /metrics announced the length its body would have had.
    assert!(!parts[2].contains("content-length: 0"), "{out}");
}

#[test]
fn a_trickling_body_is_bounded_by_the_body_timeout() {
    let app = app(AckMode::Enqueued);
    let mut c = conn();
    let mut rbuf =
        BytesMut::from(&b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\na"[..]);
    let mut wbuf = BytesMut::new();
    let t0 = Instant::now();
    common::block_on(c.serve(t0, &mut rbuf, &mut wbuf, &app));
    let first = c.deadline(t0);
    // The body timeout (30 s), not the idle timeout (60 s), from when the head completed.
    assert_eq!(first, t0 + Duration::from_secs(30));
    // Another byte 20 s later does not push the deadline out: the body as a whole is bounded.
    rbuf.extend_from_slice(b"b");
    let later = t0 + Duration::from_secs(20);
    common::block_on(c.serve(later, &mut rbuf, &mut wbuf, &app));
    assert_eq!(c.deadline(later), first);
    assert!(!c.is_idle());
    c.timed_out(&mut wbuf, &app);
    assert!(wbuf.starts_with(b"HTTP/1.1 408 Request Timeout\r\n"));
    assert!(c.is_closing());
}

#[test]
fn the_header_timeout_starts_afresh_for_each_request() {
    let app = app(AckMode::Enqueued);
    let mut c = conn();
    let mut rbuf = BytesMut::from(&b"POST /ingest HTTP/1.1\r\nHost: x\r\n"[..]);
    let mut wbuf = BytesMut::new();
    let t0 = Instant::now();
    common::block_on(c.serve(t0, &mut rbuf, &mut wbuf, &app));
    assert_eq!(c.deadline(t0), t0 + Duration::from_secs(10));
    // 4 s later the first request completes and a second one's head begins in the same
    // read: its header timeout runs from then, not from the first head's start.
    rbuf.extend_from_slice(b"Content-Length: 1\r\n\r\naPOST /ingest HTTP/1.1\r\n");
    let t1 = t0 + Duration::from_secs(4);
    common::block_on(c.serve(t1, &mut rbuf, &mut wbuf, &app));
    assert_eq!(
        c.deadline(t1),
        t1 + Duration::from_secs(10),
        "the second head's timeout was carried over from the first"
    );
}
