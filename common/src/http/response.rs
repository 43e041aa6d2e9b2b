//! Response encoding into a buffer, never into a socket.

use bytes::{BufMut, Bytes, BytesMut};

/// The statuses this server answers with; the README's HTTP contract table lists when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Continue,
    Ok,
    Accepted,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    LengthRequired,
    PayloadTooLarge,
    ExpectationFailed,
    HeaderFieldsTooLarge,
    InternalServerError,
    NotImplemented,
    ServiceUnavailable,
}

impl Status {
    /// Every status, for metrics that count by status.
    pub const ALL: [Status; 14] = [
        Status::Continue,
        Status::Ok,
        Status::Accepted,
        Status::BadRequest,
        Status::NotFound,
        Status::MethodNotAllowed,
        Status::RequestTimeout,
        Status::LengthRequired,
        Status::PayloadTooLarge,
        Status::ExpectationFailed,
        Status::HeaderFieldsTooLarge,
        Status::InternalServerError,
        Status::NotImplemented,
        Status::ServiceUnavailable,
    ];

    pub fn code(self) -> u16 {
        match self {
            Self::Continue => 100,
            Self::Ok => 200,
            Self::Accepted => 202,
            Self::BadRequest => 400,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::LengthRequired => 411,
            Self::PayloadTooLarge => 413,
            Self::ExpectationFailed => 417,
            Self::HeaderFieldsTooLarge => 431,
            Self::InternalServerError => 500,
            Self::NotImplemented => 501,
            Self::ServiceUnavailable => 503,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Self::Continue => "Continue",
            Self::Ok => "OK",
            Self::Accepted => "Accepted",
            Self::BadRequest => "Bad Request",
            Self::NotFound => "Not Found",
            Self::MethodNotAllowed => "Method Not Allowed",
            Self::RequestTimeout => "Request Timeout",
            Self::LengthRequired => "Length Required",
            Self::PayloadTooLarge => "Payload Too Large",
            Self::ExpectationFailed => "Expectation Failed",
            Self::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Self::InternalServerError => "Internal Server Error",
            Self::NotImplemented => "Not Implemented",
            Self::ServiceUnavailable => "Service Unavailable",
        }
    }

    /// Index into [`Status::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One response. Built by the handler or from an [`HttpError`](super::HttpError); the
/// connection state sets `close` and `keep_alive_header` from the request's keep-alive rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    /// Sent as is with a `Content-Length`; a plain-text reason for errors.
    pub body: Bytes,
    /// `text/plain` for reasons, the Prometheus type for `/metrics`; absent for empty bodies.
    pub content_type: Option<&'static str>,
    /// Seconds, for 503 on backpressure: tells a well-behaved client when to retry.
    pub retry_after: Option<u32>,
    /// For 405: the methods the path takes.
    pub allow: Option<&'static str>,
    /// Send `Connection: close` and close after writing.
    pub close: bool,
    /// Send `Connection: keep-alive` (an HTTP/1.0 client that asked for it needs to hear it).
    pub keep_alive_header: bool,
    /// The answer to a HEAD request: the head only, with the `Content-Length` the body would
    /// have had, and no body bytes (a pipelined next answer must start right after the head).
    pub head_only: bool,
}

impl Response {
    pub fn empty(status: Status) -> Self {
        Self {
            status,
            body: Bytes::new(),
            content_type: None,
            retry_after: None,
            allow: None,
            close: false,
            keep_alive_header: false,
            head_only: false,
        }
    }

    pub fn text(status: Status, body: impl Into<Bytes>) -> Self {
        let mut body: Bytes = body.into();
        if !body.ends_with(b"\n") {
            let mut b = BytesMut::with_capacity(body.len() + 1);
            b.extend_from_slice(&body);
            b.put_u8(b'\n');
            body = b.freeze();
        }
        Self {
            content_type: Some("text/plain; charset=utf-8"),
            body,
            ..Self::empty(status)
        }
    }

    /// Appends the encoded response to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        // The hot path (202, no body, keep-alive) is one static copy instead of ~10 appends.
        if self.status == Status::Accepted && self.is_plain() {
            dst.extend_from_slice(ACCEPTED);
            return;
        }
        if self.status == Status::Continue {
            dst.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            return;
        }
        self.encode_generic(dst);
    }

    /// Every response the long way, field by field.
    fn encode_generic(&self, dst: &mut BytesMut) {
        dst.reserve(128 + self.body.len());
        dst.extend_from_slice(b"HTTP/1.1 ");
        put_u64(dst, u64::from(self.status.code()));
        dst.put_u8(b' ');
        dst.extend_from_slice(self.status.reason().as_bytes());
        dst.extend_from_slice(b"\r\ncontent-length: ");
        put_u64(dst, self.body.len() as u64);
        if let Some(ct) = self.content_type {
            dst.extend_from_slice(b"\r\ncontent-type: ");
            dst.extend_from_slice(ct.as_bytes());
        }
        if let Some(secs) = self.retry_after {
            dst.extend_from_slice(b"\r\nretry-after: ");
            put_u64(dst, u64::from(secs));
        }
        if let Some(allow) = self.allow {
            dst.extend_from_slice(b"\r\nallow: ");
            dst.extend_from_slice(allow.as_bytes());
        }
        if self.close {
            dst.extend_from_slice(b"\r\nconnection: close");
        } else if self.keep_alive_header {
            dst.extend_from_slice(b"\r\nconnection: keep-alive");
        }
        dst.extend_from_slice(b"\r\n\r\n");
        if !self.head_only {
            dst.extend_from_slice(&self.body);
        }
    }

    fn is_plain(&self) -> bool {
        self.body.is_empty()
            && self.retry_after.is_none()
            && self.allow.is_none()
            && !self.close
            && !self.keep_alive_header
    }
}

const ACCEPTED: &[u8] = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";

fn put_u64(dst: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(r: &Response) -> String {
        let mut b = BytesMut::new();
        r.encode(&mut b);
        String::from_utf8(b.to_vec()).expect("ascii")
    }

    #[test]
    fn fast_path_equals_generic_encoding() {
        let r = Response::empty(Status::Accepted);
        assert_eq!(
            encoded(&r),
            "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"
        );
        // The static bytes of the fast path are exactly what the field-by-field encoder
        // writes for the same response.
        let mut generic = BytesMut::new();
        r.encode_generic(&mut generic);
        assert_eq!(encoded(&r).as_bytes(), &generic[..]);
        // And a response that differs in any field does not take the fast path.
        let mut closing = r.clone();
        closing.close = true;
        let mut generic = BytesMut::new();
        closing.encode_generic(&mut generic);
        assert_eq!(encoded(&closing).as_bytes(), &generic[..]);
        assert!(encoded(&closing).contains("connection: close"));
    }

    #[test]
    fn error_response_has_reason_and_headers() {
        let mut r = Response::text(Status::ServiceUnavailable, "queue full");
        r.retry_after = Some(1);
        r.close = true;
        assert_eq!(
            encoded(&r),
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 11\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\n\r\nqueue full\n"
        );
    }

    #[test]
    fn numbers_encode() {
        for n in [0u64, 7, 10, 99, 100, 1_048_576, u64::MAX] {
            let mut b = BytesMut::new();
            put_u64(&mut b, n);
            assert_eq!(std::str::from_utf8(&b).expect("ascii"), n.to_string());
        }
    }
}
