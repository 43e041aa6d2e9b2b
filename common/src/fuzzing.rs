//! The property the fuzzer checks, kept here so `cargo test` replays the fuzz corpus
//! through exactly the same code (`common/tests/fuzz_corpus.rs`). Test support, at the
//! crate root: it drives the connection state and the app, which `http/` (sans-IO, no
//! knowledge of either) must not import.
//!
//! Input: first byte = read size (1..=256), the rest = bytes from a client.
//! 1. The parser never panics, and feeding the bytes in reads of that size yields the same
//!    requests (up to the first error) as feeding them all at once, and an error in one
//!    way iff in the other.
//! 2. The connection state (null sink) never panics, and everything it writes parses as a
//!    sequence of complete HTTP/1.1 responses (an answer to HEAD: its head only).

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use crate::conn::{Conn, Timeouts};
use crate::http::parse::Parsed;
use crate::http::{Limits, Parser, Request};
use crate::ingest::App;
use crate::kafka::{AckMode, Publisher};
use crate::metrics::Metrics;

/// Small limits so short inputs reach every limit.
const LIMITS: Limits = Limits {
    max_header_bytes: 512,
    max_headers: 8,
    max_body: 256,
};

fn requests(input: &[u8], read: usize) -> (Vec<Request>, bool) {
    let mut p = Parser::new(LIMITS);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in input.chunks(read.max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            match p.parse(&mut buf) {
                Ok(Some(Parsed::Request(r))) => out.push(r),
                Ok(Some(Parsed::Continue)) => {}
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

/// Panics if a property does not hold (the fuzzer reports it as a crash).
pub fn check(data: &[u8]) {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let read = usize::from(first) + 1;
    let (whole, whole_err) = requests(input, input.len().max(1));
    let (split, split_err) = requests(input, read);
    let n = whole.len().min(split.len());
    assert_eq!(whole[..n], split[..n], "split feeding changed a request");
    if !whole_err && !split_err {
        assert_eq!(
            whole.len(),
            split.len(),
            "split feeding changed the request count"
        );
    }
    assert_eq!(whole_err, split_err, "an error in one feeding only");

    let metrics = Arc::new(Metrics::new());
    let app = App {
        publisher: Publisher::null(metrics.clone()),
        metrics,
        ack: AckMode::Enqueued,
        tasks: None,
    };
    let mut conn = Conn::new(
        LIMITS,
        Timeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            body: Duration::from_secs(30),
        },
    );
    let mut rbuf = BytesMut::new();
    let mut wbuf = BytesMut::new();
    for chunk in input.chunks(read) {
        rbuf.extend_from_slice(chunk);
        crate::block_on(conn.serve(std::time::Instant::now(), &mut rbuf, &mut wbuf, &app));
        if conn.is_closing() {
            break;
        }
    }
    // Answers come in request order (100 Continue aside); an answer to HEAD has no body
    // whatever its Content-Length says.
    let mut answered = 0;
    let mut out = &wbuf[..];
    while !out.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        let head = match resp.parse(out) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!("unparseable response bytes: {other:?}"),
        };
        let interim = resp.code == Some(100);
        let head_only = !interim
            && whole
                .get(answered)
                .is_some_and(|r| r.method == crate::http::Method::Head);
        answered += usize::from(!interim);
        let len = resp
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        let len = if head_only { 0 } else { len };
        assert!(out.len() >= head + len, "truncated response body");
        out = &out[head + len..];
    }
}
