//! RFC 9112 §3.2, request-target forms, through the sans-IO parser: origin-form as sent;
//! absolute-form (which a server MUST accept) routed by its path; asterisk-form only with
//! OPTIONS; authority-form and anything else refused with 400 and a reason.

use bytes::BytesMut;
use common::http::parse::Parsed;
use common::http::{HttpError, Limits, Parser, Status};

/// One request with `method` and `target`: its routed path, or the refusal.
fn parse(method: &str, target: &str) -> Result<String, HttpError> {
    let raw = format!("{method} {target} HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    match Parser::new(Limits::default()).parse(&mut BytesMut::from(raw.as_bytes()))? {
        Some(Parsed::Request(r)) => Ok(String::from_utf8_lossy(&r.path).into_owned()),
        other => panic!("{method} {target}: expected a request, got {other:?}"),
    }
}

#[test]
fn origin_absolute_and_asterisk_forms_are_routed() {
    for (method, target, path) in [
        ("POST", "/ingest?x=1", "/ingest?x=1"),
        ("POST", "http://h/ingest", "/ingest"),
        ("POST", "HTTPS://h:8080/ingest?x=1", "/ingest?x=1"),
        ("GET", "http://[::1]:80/metrics", "/metrics"),
        ("GET", "http://h", "/"),
        ("GET", "http://h?x=1", "/"),
        ("OPTIONS", "*", "*"),
    ] {
        assert_eq!(
            parse(method, target).as_deref(),
            Ok(path),
            "{method} {target}"
        );
    }
}

#[test]
fn other_forms_are_refused_with_a_reason() {
    for (method, target, reason) in [
        ("GET", "*", "asterisk-form"),
        ("POST", "*", "asterisk-form"),
        ("CONNECT", "h:8080", "neither origin-form"),
        ("POST", "h:8080", "neither origin-form"),
        ("POST", "ftp://h/ingest", "neither origin-form"),
        ("POST", "ingest", "neither origin-form"),
        ("POST", "http:///ingest", "without a valid host"),
        ("POST", "http://user@h/ingest", "without a valid host"),
    ] {
        let e = parse(method, target).expect_err("refused");
        assert_eq!(e.status(), Status::BadRequest, "{method} {target}: {e:?}");
        assert!(e.to_string().contains(reason), "{method} {target}: {e}");
        assert!(e.closes(), "{method} {target}");
    }
}
