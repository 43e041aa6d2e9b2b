//! The request parser: `parse(&mut BytesMut) -> Result<Option<Parsed>, HttpError>`.
//!
//! `Ok(None)` means "need more bytes". The request head is consumed only once it parses
//! completely; a `Content-Length` body is split off only once it is all there (zero copy); a
//! chunked body is decoded incrementally ([`super::chunked`]).

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};

use super::chunked::Chunked;
use super::{HttpError, Limits};

/// Hard cap on `Limits::max_headers`: the parser's header array lives on the stack.
pub const MAX_HEADERS_CAP: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    fn from_bytes(m: &str) -> Self {
        match m {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            _ => Self::Other,
        }
    }

    /// Methods whose requests carry a body, so they need framing (else 411).
    fn needs_length(self) -> bool {
        matches!(self, Self::Post | Self::Put | Self::Patch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// One complete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The request target's path and query (origin-form as sent; absolute-form's path part:
    /// [`target_path`]); a slice of the read buffer.
    pub path: Bytes,
    pub version: Version,
    /// Whether the connection stays open after the answer (HTTP/1.1 unless `close`, HTTP/1.0
    /// only with `keep-alive`).
    pub keep_alive: bool,
    /// The `X-Key` header: the Kafka record key.
    pub key: Option<Bytes>,
    /// The decoded body: the Kafka record value.
    pub body: Bytes,
}

/// What the parser yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A complete request.
    Request(Request),
    /// The head of a request with `Expect: 100-continue` is in and its body is not: the
    /// client waits for `100 Continue` (or a final status) before sending it.
    /// [`Parser::pending`] tells what the request is. Yielded at most once per request.
    Continue,
}

/// What is known of a request whose body is still arriving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: Method,
    pub path: Bytes,
    pub version: Version,
    pub keep_alive: bool,
    pub key: Option<Bytes>,
    expect_continue: bool,
}

#[derive(Debug)]
enum Framing {
    Length(usize),
    Chunked(Chunked),
}

#[derive(Debug)]
enum State {
    Head,
    Body {
        head: Head,
        framing: Framing,
    },
    /// An error was returned; the stream cannot be trusted any more.
    Failed,
}

/// Incremental request parser for one connection.
#[derive(Debug)]
pub struct Parser {
    limits: Limits,
    state: State,
}

impl Parser {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: State::Head,
        }
    }

    /// The head of the request whose body is being received, if any.
    pub fn pending(&self) -> Option<&Head> {
        match &self.state {
            State::Body { head, .. } => Some(head),
            _ => None,
        }
    }

    /// True when no partial request is held (nothing buffered must also hold for "idle").
    pub fn between_requests(&self) -> bool {
        matches!(self.state, State::Head)
    }

    /// Parses the next request out of `buf`. See the module doc.
    ///
    /// After an error the parser stays failed: the caller answers and closes.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Parsed>, HttpError> {
        let result = self.step(buf);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<Parsed>, HttpError> {
        if let State::Head = self.state {
            let Some((head, framing)) = parse_head(buf, &self.limits)? else {
                return Ok(None);
            };
            self.state = State::Body { head, framing };
        }
        let State::Body { head, framing } = &mut self.state else {
            return Ok(None);
        };
        let body = match framing {
            Framing::Length(n) => {
                if buf.len() < *n {
                    None
                } else {
                    Some(buf.split_to(*n).freeze())
                }
            }
            Framing::Chunked(c) => c.decode(buf, &self.limits)?,
        };
        match body {
            Some(body) => {
                let State::Body { head, .. } = std::mem::replace(&mut self.state, State::Head)
                else {
                    unreachable!("state checked above")
                };
                Ok(Some(Parsed::Request(Request {
                    method: head.method,
                    path: head.path,
                    version: head.version,
                    keep_alive: head.keep_alive,
                    key: head.key,
                    body,
                })))
            }
            None if head.expect_continue => {
                head.expect_continue = false;
                Ok(Some(Parsed::Continue))
            }
            None => Ok(None),
        }
    }
}

/// Parses and consumes a complete request head, or returns `None` without consuming.
fn parse_head(buf: &mut BytesMut, limits: &Limits) -> Result<Option<(Head, Framing)>, HttpError> {
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let max_headers = limits.max_headers.min(MAX_HEADERS_CAP);
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut headers[..max_headers]) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_header_bytes {
                return Err(HttpError::HeaderTooLarge {
                    limit: limits.max_header_bytes,
                });
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::TooManyHeaders { limit: max_headers })
        }
        Err(e) => return Err(HttpError::Malformed(httparse_reason(e))),
    };
    if head_len > limits.max_header_bytes {
        return Err(HttpError::HeaderTooLarge {
            limit: limits.max_header_bytes,
        });
    }

    let method = Method::from_bytes(req.method.unwrap_or(""));
    let version = match req.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let base = buf.as_ptr() as usize;
    let span = |s: &[u8]| (s.as_ptr() as usize - base, s.len());
    let target = req.path.unwrap_or("/").as_bytes();
    let path = target_path(method, target)?.map(span);

    let mut content_length: Option<usize> = None;
    let mut te_seen = false;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    let mut key = None;
    let mut hosts = 0;
    for h in req.headers.iter() {
        let name = h.name;
        let value = trim(h.value);
        if name.eq_ignore_ascii_case("content-length") {
            for part in value.split(|&b| b == b',') {
                let n = parse_length(trim(part))?;
                match content_length {
                    Some(prev) if prev != n => {
                        return Err(HttpError::Smuggling("conflicting Content-Length values"))
                    }
                    _ => content_length = Some(n),
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in value.split(|&b| b == b',') {
                let coding = trim(coding);
                if chunked {
                    // RFC 9112 §6.3: chunked must be the final coding, applied once.
                    return Err(HttpError::Smuggling(
                        "chunked is not the final transfer coding",
                    ));
                }
                if coding.eq_ignore_ascii_case(b"chunked") {
                    chunked = true;
                } else if coding.is_empty() {
                    return Err(HttpError::Malformed("empty Transfer-Encoding"));
                } else {
                    return Err(HttpError::UnsupportedTransferEncoding);
                }
            }
            te_seen = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',') {
                let token = trim(token);
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if value.eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                return Err(HttpError::ExpectationFailed);
            }
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if !value.iter().all(|&b| is_host_char(b)) {
                return Err(HttpError::Malformed("invalid Host"));
            }
        } else if name.eq_ignore_ascii_case("x-key") {
            key = Some(span(value));
        }
    }

    // RFC 9112 §3.2: exactly one Host in HTTP/1.1 (it may be empty), at most one in 1.0.
    if hosts > 1 {
        return Err(HttpError::Malformed("more than one Host"));
    }
    if hosts == 0 && version == Version::Http11 {
        return Err(HttpError::Malformed("HTTP/1.1 request without Host"));
    }
    if te_seen && content_length.is_some() {
        return Err(HttpError::Smuggling(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    if te_seen && version == Version::Http10 {
        return Err(HttpError::Smuggling(
            "Transfer-Encoding in an HTTP/1.0 request",
        ));
    }
    let framing = match (chunked, content_length) {
        (true, _) => Framing::Chunked(Chunked::new()),
        (false, Some(n)) if n > limits.max_body => {
            return Err(HttpError::BodyTooLarge {
                limit: limits.max_body,
            })
        }
        (false, Some(n)) => Framing::Length(n),
        (false, None) if method.needs_length() => return Err(HttpError::LengthRequired),
        (false, None) => Framing::Length(0),
    };
    let keep_alive = match version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive_token && !close,
    };
    // RFC 9110 §10.1.1: a server MUST ignore 100-continue from an HTTP/1.0 client.
    let expect_continue = expect_continue && version == Version::Http11;

    let head_bytes = buf.split_to(head_len).freeze();
    let slice = |(off, len): (usize, usize)| head_bytes.slice(off..off + len);
    let head = Head {
        method,
        path: path.map_or_else(|| Bytes::from_static(b"/"), slice),
        version,
        keep_alive,
        key: key.map(slice),
        expect_continue,
    };
    Ok(Some((head, framing)))
}

/// The part of a request target the server routes by, by the target's form (RFC 9112
/// §3.2): origin-form (`/path?query`) as sent; absolute-form (`http://host/path?query`,
/// which a server MUST accept) by its path and query, `None` for an empty path (then `/`);
/// asterisk-form (`*`) only with OPTIONS; authority-form (`host:port`, CONNECT's, for
/// proxies) and anything else refused.
fn target_path(method: Method, target: &[u8]) -> Result<Option<&[u8]>, HttpError> {
    match target {
        [b'/', ..] => Ok(Some(target)),
        b"*" if method == Method::Options => Ok(Some(target)),
        b"*" => Err(HttpError::Malformed(
            "asterisk-form request target (*) is only for OPTIONS",
        )),
        _ => {
            let scheme_end = target.windows(3).position(|w| w == b"://").filter(|&i| {
                let scheme = &target[..i];
                scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")
            });
            let Some(i) = scheme_end else {
                return Err(HttpError::Malformed(
                    "request target is neither origin-form (/path) nor absolute-form (http://host/path)",
                ));
            };
            let rest = &target[i + 3..];
            let authority_end = rest
                .iter()
                .position(|&b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(rest.len());
            if authority_end == 0 || !rest[..authority_end].iter().all(|&b| is_host_char(b)) {
                return Err(HttpError::Malformed(
                    "absolute-form request target without a valid host",
                ));
            }
            match &rest[authority_end..] {
                [b'/', ..] => Ok(Some(&rest[authority_end..])),
                _ => Ok(None),
            }
        }
    }
}

fn parse_length(v: &[u8]) -> Result<usize, HttpError> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::Malformed("invalid Content-Length"));
    }
    Ok(v.iter()
        .fold(0usize, |n, &b| n * 10 + usize::from(b - b'0')))
}

/// What a Host value may hold: RFC 3986 reg-name, IP literal and port characters.
fn is_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:[]".contains(&b)
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

fn httparse_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid method or token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}
