//! The sans-IO HTTP layer, with no sockets: every documented status, byte-boundary splits,
//! pipelining, keep-alive rules, 100-continue (chunked framing: `http_chunked.rs`).

mod support;

use bytes::BytesMut;
use common::http::parse::Parsed;
use common::http::{Limits, Method, Parser, Status, Version};
use support::{error_of, parse_all, parse_split, requests};

const POST: &[u8] =
    b"POST /ingest HTTP/1.1\r\nHost: x\r\nX-Key: k1\r\nContent-Length: 5\r\n\r\nhello";

#[test]
fn simple_post() {
    let r = requests(POST);
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert_eq!(r.method, Method::Post);
    assert_eq!(&r.path[..], b"/ingest");
    assert_eq!(r.version, Version::Http11);
    assert!(r.keep_alive);
    assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(&r.body[..], b"hello");
}

#[test]
fn every_split_point_parses_the_same() {
    let chunked = b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
    for input in [POST, &chunked[..]] {
        let whole = requests(input);
        assert_eq!(whole.len(), 1);
        for at in 0..=input.len() {
            assert_eq!(parse_split(input, at), whole, "split at {at}");
        }
    }
}

#[test]
fn byte_at_a_time() {
    let mut p = Parser::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut got = None;
    for &b in POST {
        buf.extend_from_slice(&[b]);
        if let Some(Parsed::Request(r)) = p.parse(&mut buf).expect("valid") {
            got = Some(r);
        }
    }
    assert_eq!(
        got.map(|r| r.body),
        Some(bytes::Bytes::from_static(b"hello"))
    );
}

#[test]
fn three_pipelined_requests_in_order() {
    let mut input = Vec::new();
    for body in ["one", "two!", "three"] {
        input.extend_from_slice(
            format!(
                "POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    }
    let bodies: Vec<_> = requests(&input).into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, ["one", "two!", "three"].map(bytes::Bytes::from));
}

#[test]
fn keep_alive_rules() {
    let cases: [(&[u8], bool); 6] = [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", true),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, CLOSE\r\n\r\n",
            false,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", false),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
        (b"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", false),
    ];
    for (input, keep) in cases {
        let r = requests(input);
        assert_eq!(r[0].keep_alive, keep, "{}", String::from_utf8_lossy(input));
    }
    assert_eq!(
        requests(b"GET / HTTP/1.0\r\n\r\n")[0].version,
        Version::Http10
    );
}

#[test]
fn expect_100_continue_once_before_the_body() {
    let head =
        b"POST /ingest HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    let mut p = Parser::new(Limits::default());
    let mut buf = BytesMut::from(&head[..]);
    assert_eq!(p.parse(&mut buf), Ok(Some(Parsed::Continue)));
    assert_eq!(p.pending().map(|h| h.method), Some(Method::Post));
    assert_eq!(p.parse(&mut buf), Ok(None), "Continue is yielded once");
    buf.extend_from_slice(b"abc");
    match p.parse(&mut buf) {
        Ok(Some(Parsed::Request(r))) => assert_eq!(&r.body[..], b"abc"),
        other => panic!("{other:?}"),
    }
    // Body already there: no interim response needed.
    let mut whole = head.to_vec();
    whole.extend_from_slice(b"abc");
    assert!(matches!(
        parse_all(&whole, Limits::default()).expect("valid")[..],
        [Parsed::Request(_)]
    ));
    // HTTP/1.0 clients never get 100 Continue (RFC 9110 §10.1.1).
    let old = b"POST /ingest HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(parse_all(old, Limits::default()), Ok(vec![]));
    assert_eq!(
        error_of(b"POST /ingest HTTP/1.1\r\nHost: x\r\nExpect: tea\r\nContent-Length: 1\r\n\r\nx")
            .status(),
        Status::ExpectationFailed
    );
}

#[test]
fn every_documented_status() {
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let many_headers = format!("GET / HTTP/1.1\r\nHost: x\r\n{}\r\n", "A: b\r\n".repeat(65));
    let cases: Vec<(Vec<u8>, Status)> = vec![
        (big_header.into_bytes(), Status::HeaderFieldsTooLarge),
        // Partial head already over the limit: refused without waiting for the end.
        (
            format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}", "a".repeat(9000)).into_bytes(),
            Status::HeaderFieldsTooLarge,
        ),
        (many_headers.into_bytes(), Status::HeaderFieldsTooLarge),
        (
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n".to_vec(),
            Status::PayloadTooLarge,
        ),
        (
            b"POST /ingest HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Status::LengthRequired,
        ),
        (b"GE(T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Status::BadRequest),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n".to_vec(),
            Status::BadRequest,
        ),
        (b"GET / HTTP/9.9\r\n\r\n".to_vec(), Status::BadRequest),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
            Status::BadRequest,
        ),
        (
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_vec(),
            Status::BadRequest,
        ),
        (
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
            Status::BadRequest,
        ),
        (
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n".to_vec(),
            Status::BadRequest,
        ),
        (
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\n".to_vec(),
            Status::BadRequest,
        ),
        (
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec(),
            Status::BadRequest,
        ),
        (
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
                .to_vec(),
            Status::BadRequest,
        ),
        (
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n".to_vec(),
            Status::BadRequest,
        ),
        (
            b"POST /ingest HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            Status::BadRequest,
        ),
        (
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(),
            Status::NotImplemented,
        ),
        (
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n".to_vec(),
            Status::NotImplemented,
        ),
        (
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            Status::BadRequest,
        ),
        (
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n".to_vec(),
            Status::BadRequest,
        ),
        (
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n".to_vec(),
            Status::PayloadTooLarge,
        ),
        (
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n"
                .to_vec(),
            Status::BadRequest,
        ),
    ];
    for (input, status) in cases {
        let e = error_of(&input);
        assert_eq!(
            e.status(),
            status,
            "{}: {e}",
            String::from_utf8_lossy(&input[..input.len().min(80)])
        );
        assert!(e.closes(), "{e} must close the connection");
    }
}

#[test]
fn equal_repeated_content_length_is_accepted() {
    let r = requests(
        b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert_eq!(&r[0].body[..], b"hi");
}

#[test]
fn get_without_length_has_empty_body() {
    let r = requests(
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(r.len(), 2);
    assert!(r[0].body.is_empty());
}

#[test]
fn parser_stays_failed_after_an_error() {
    let mut p = Parser::new(Limits::default());
    let mut buf = BytesMut::from(&b"BAD\x01 / HTTP/1.1\r\nHost: x\r\n\r\n"[..]);
    assert!(p.parse(&mut buf).is_err());
    let mut good = BytesMut::from(POST);
    assert_eq!(p.parse(&mut good), Ok(None));
}

#[test]
fn random_garbage_never_panics() {
    // Deterministic xorshift so a failure reproduces.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..2000 {
        let len = (next() % 300) as usize;
        let mut input: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if next() % 2 == 0 {
            // Half the cases start like a real request, to get past the request line.
            let mut prefix =
                b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            prefix.append(&mut input);
            input = prefix;
        }
        let _ = parse_all(&input, Limits::default());
    }
}
