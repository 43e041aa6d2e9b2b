//! Parsing helpers shared by the HTTP test files: parse a whole input, collect its
//! requests, expect an error, or feed it in two reads.
#![allow(dead_code)] // each test file uses part of it

use bytes::BytesMut;
use common::http::parse::Parsed;
use common::http::{HttpError, Limits, Parser, Request};

pub fn parse_all(input: &[u8], limits: Limits) -> Result<Vec<Parsed>, HttpError> {
    let mut p = Parser::new(limits);
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Some(x) = p.parse(&mut buf)? {
        out.push(x);
    }
    Ok(out)
}

pub fn requests(input: &[u8]) -> Vec<Request> {
    parse_all(input, Limits::default())
        .expect("valid input")
        .into_iter()
        .filter_map(|p| match p {
            Parsed::Request(r) => Some(r),
            Parsed::Continue => None,
        })
        .collect()
}

pub fn error_of(input: &[u8]) -> HttpError {
    error_with(input, Limits::default())
}

pub fn error_with(input: &[u8], limits: Limits) -> HttpError {
    parse_all(input, limits).expect_err("must be refused")
}

/// Feeds `input` in two pieces split at `at`, like two reads, and collects requests.
pub fn parse_split(input: &[u8], at: usize) -> Vec<Request> {
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
