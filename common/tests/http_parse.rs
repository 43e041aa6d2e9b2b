//! The sans-IO HTTP layer, with no sockets: every documented status, byte-boundary splits,
//! pipelining, chunked bodies, keep-alive rules, 100-continue.

use bytes::BytesMut;
use common::http::parse::Parsed;
use common::http::{HttpError, Limits, Method, Parser, Request, Status, Version};

fn parse_all(input: &[u8], limits: Limits) -> Result<Vec<Parsed>, HttpError> {
    let mut p = Parser::new(limits);
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Some(x) = p.parse(&mut buf)? {
        out.push(x);
    }
    Ok(out)
}

fn requests(input: &[u8]) -> Vec<Request> {
    parse_all(input, Limits::default())
        .expect("valid input")
        .into_iter()
        .filter_map(|p| match p {
            Parsed::Request(r) => Some(r),
            Parsed::Continue => None,
        })
        .collect()
}

fn error_of(input: &[u8]) -> HttpError {
    error_with(input, Limits::default())
}

fn error_with(input: &[u8], limits: Limits) -> HttpError {
    parse_all(input, limits).expect_err("must be refused")
}

/// Feeds `input` in two pieces split at `at`, like two reads, and collects requests.
fn parse_split(input: &[u8], at: usize) -> Vec<Request> {
    let mut p = Parser::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in [&input[..at], &input[at..]] {
        buf.extend_from_slice(piece);
        while let Some(x) = p.parse(&mut buf).expect("valid") {
            if let Parsed::Request(r) = x {
                out.push(r);
            }
        }
    }
    assert!(
        buf.is_empty(),
        "split at {at}: {} bytes left over",
        buf.len()
    );
    out
}

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
fn chunked_with_extensions_and_trailers() {
    let input = b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;name=value;x\r\nWiki\r\n5 ; y\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0;last\r\nExpires: never\r\nX-Trailer: 1\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let r = requests(input);
    assert_eq!(r.len(), 2);
    assert_eq!(&r[0].body[..], b"Wikipedia in\r\n\r\nchunks.");
    assert_eq!(&r[1].path[..], b"/healthz");
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
fn chunked_body_limit_counts_decoded_bytes() {
    let limits = Limits {
        max_body: 8,
        ..Limits::default()
    };
    let ok = b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n";
    assert_eq!(parse_all(ok, limits).map(|v| v.len()), Ok(1));
    let over = b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n5\r\nefghi\r\n0\r\n\r\n";
    assert_eq!(error_with(over, limits).status(), Status::PayloadTooLarge);
    let limits = Limits {
        max_header_bytes: 64,
        ..Limits::default()
    };
    let trailers = format!(
        "POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: {}\r\n\r\n",
        "x".repeat(80)
    );
    assert_eq!(
        error_with(trailers.as_bytes(), limits).status(),
        Status::HeaderFieldsTooLarge
    );
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

/// RFC 9112 framing that a lenient proxy in front could read differently: each is 400,
/// and the request is never yielded (so nothing is published).
#[test]
fn strict_chunked_framing_and_host() {
    let te = "POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunked = |body: &str| format!("{te}{body}").into_bytes();
    let bad: Vec<(&str, Vec<u8>)> = vec![
        (
            "bare LF in an extension",
            chunked("2;\nxx\r\nab\r\n0\r\n\r\n"),
        ),
        ("bare LF ending a size line", chunked("2\nab\r\n0\r\n\r\n")),
        ("bare CR in a size line", chunked("2\rx\r\nab\r\n0\r\n\r\n")),
        ("NUL in an extension", chunked("2;a\0b\r\nab\r\n0\r\n\r\n")),
        (
            "control character in an extension",
            chunked("2;a\x01b\r\nab\r\n0\r\n\r\n"),
        ),
        (
            "whitespace after a size",
            chunked("5 \r\nhello\r\n0\r\n\r\n"),
        ),
        (
            "bare LF starting the trailer section",
            chunked("0\r\n\nPOST http://a/ HTTP/1.1\r\n\r\n"),
        ),
        ("bare LF in a trailer", chunked("0\r\nT: a\nb\r\n\r\n")),
        ("NUL in a trailer", chunked("0\r\nT: a\0b\r\n\r\n")),
        (
            "trailer name with a space",
            chunked("0\r\nBad Name: x\r\n\r\n"),
        ),
        ("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        (
            "two Hosts",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(),
        ),
        (
            "invalid Host",
            b"GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n".to_vec(),
        ),
        (
            "two Hosts in HTTP/1.0",
            b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n".to_vec(),
        ),
    ];
    for (what, input) in bad {
        let e = error_of(&input);
        assert_eq!(e.status(), Status::BadRequest, "{what}: {e}");
        assert!(e.closes(), "{what}");
        // Fed a byte at a time, the verdict is the same and no request comes out first.
        let mut p = Parser::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut got = None;
        for &b in &input {
            buf.extend_from_slice(&[b]);
            match p.parse(&mut buf) {
                Ok(Some(Parsed::Request(r))) => panic!("{what}: yielded {r:?}"),
                Ok(_) => {}
                Err(e) => {
                    got = Some(e);
                    break;
                }
            }
        }
        assert_eq!(
            got.map(|e| e.status()),
            Some(Status::BadRequest),
            "{what}, bytewise"
        );
    }

    // Valid forms: a size with leading zeros is read by value; BWS before ';'; an empty
    // Host (allowed when the target has no authority); HTTP/1.0 without Host; IP literal.
    let r = requests(&chunked("000000000000000000005\r\nhello\r\n0000\r\n\r\n"));
    assert_eq!(&r[0].body[..], b"hello");
    let r = requests(&chunked("5 ;a=b\r\nhello\r\n0\r\nT: x\r\n\r\n"));
    assert_eq!(&r[0].body[..], b"hello");
    assert_eq!(requests(b"GET / HTTP/1.1\r\nHost:\r\n\r\n").len(), 1);
    assert_eq!(requests(b"GET / HTTP/1.0\r\n\r\n").len(), 1);
    assert_eq!(
        requests(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n").len(),
        1
    );
    // A size whose significant digits overflow what we read is refused, not wrapped.
    let e = error_of(&chunked("10000000000000000\r\n"));
    assert_eq!(e.status(), Status::BadRequest, "{e}");
}

#[test]
fn chunk_extension_bytes_are_capped_per_request() {
    let te = "POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    // 100 one-byte chunks with 40 bytes of extension each: 4,000 bytes, under the cap.
    let ext = format!(";{}", "e".repeat(39));
    let under: String = (0..100).map(|_| format!("1{ext}\r\na\r\n")).collect();
    let r = requests(format!("{te}{under}0\r\n\r\n").as_bytes());
    assert_eq!(r[0].body.len(), 100);
    // 200 of them: 8,000 bytes of extensions, each line short, the total over the cap.
    let over: String = (0..200).map(|_| format!("1{ext}\r\na\r\n")).collect();
    let e = error_of(format!("{te}{over}0\r\n\r\n").as_bytes());
    assert_eq!(e.status(), Status::BadRequest);
    assert!(e.to_string().contains("extension"), "{e}");
}
