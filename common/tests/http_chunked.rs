//! Chunked bodies in the sans-IO parser: extensions and trailers, the decoded-size limit,
//! strict framing (and Host), and the cap on chunk-extension bytes.

mod support;

use bytes::BytesMut;
use common::http::parse::Parsed;
use common::http::{Limits, Parser, Status};
use support::{error_of, error_with, parse_all, requests};

#[test]
fn chunked_with_extensions_and_trailers() {
    let input = b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;name=value;x\r\nWiki\r\n5 ; y\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0;last\r\nExpires: never\r\nX-Trailer: 1\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let r = requests(input);
    assert_eq!(r.len(), 2);
    assert_eq!(&r[0].body[..], b"Wikipedia in\r\n\r\nchunks.");
    assert_eq!(&r[1].path[..], b"/healthz");
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
