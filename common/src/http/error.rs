use super::Status;

/// Why a request was refused. Each variant maps to exactly one status ([`HttpError::status`]);
/// the `Display` text is the short reason sent in the response body.
///
/// "Need more bytes" is not an error: the parser returns `Ok(None)` for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Request line + headers (or chunked trailers) larger than the limit.
    #[error("header section larger than {limit} bytes")]
    HeaderTooLarge { limit: usize },
    /// More header fields than the limit.
    #[error("more than {limit} header fields")]
    TooManyHeaders { limit: usize },
    /// Declared or decoded body larger than `--max-body`.
    #[error("body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// A method that carries a body (POST, PUT, PATCH) sent neither length nor chunked framing.
    #[error("POST needs Content-Length or Transfer-Encoding: chunked")]
    LengthRequired,
    /// Syntax error in the request line, a header, or chunked framing.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// Ambiguous framing that a proxy in front could read differently (request smuggling).
    #[error("ambiguous framing: {0}")]
    Smuggling(&'static str),
    /// A transfer coding other than `chunked`.
    #[error("unsupported Transfer-Encoding (only chunked is supported)")]
    UnsupportedTransferEncoding,
    /// An `Expect` other than `100-continue`.
    #[error("unsupported Expect (only 100-continue is supported)")]
    ExpectationFailed,
    /// No route for the path.
    #[error("no such path")]
    NotFound,
    /// The path exists but not for this method; `allow` lists the methods it takes.
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// The request head (or body) did not arrive within its timeout (slowloris).
    #[error("request not received in time")]
    Timeout,
}

impl HttpError {
    /// The one status this error is answered with.
    pub fn status(&self) -> Status {
        match self {
            Self::HeaderTooLarge { .. } | Self::TooManyHeaders { .. } => {
                Status::HeaderFieldsTooLarge
            }
            Self::BodyTooLarge { .. } => Status::PayloadTooLarge,
            Self::LengthRequired => Status::LengthRequired,
            Self::Malformed(_) | Self::Smuggling(_) => Status::BadRequest,
            Self::UnsupportedTransferEncoding => Status::NotImplemented,
            Self::ExpectationFailed => Status::ExpectationFailed,
            Self::NotFound => Status::NotFound,
            Self::MethodNotAllowed { .. } => Status::MethodNotAllowed,
            Self::Timeout => Status::RequestTimeout,
        }
    }

    /// Whether the connection must close after the answer: true wherever the rest of the
    /// byte stream can no longer be trusted to start at a request boundary.
    pub fn closes(&self) -> bool {
        !matches!(self, Self::NotFound | Self::MethodNotAllowed { .. })
    }

    /// The response for this error, with the reason as a plain-text body.
    pub fn to_response(&self) -> Response {
        let mut resp = Response::text(self.status(), self.to_string());
        if let Self::MethodNotAllowed { allow } = self {
            resp.allow = Some(allow);
        }
        resp.close = self.closes();
        resp
    }
}

use super::Response;
