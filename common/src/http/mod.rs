//! Sans-IO HTTP/1.1: bytes in a buffer -> [`Request`]s out, [`Response`]s -> bytes.
//!
//! - [`parse`]: the request parser over `httparse` with body decoding
//!   (`Content-Length`, `Transfer-Encoding: chunked` in `chunked.rs`) and the limits of
//!   [`Limits`].
//! - [`response`]: the response encoder.
//! - [`HttpError`]: every way a request can be refused, each with one documented status.
//!
//! No sockets, no clocks, no runtime: the servers feed bytes and write bytes.

mod chunked;
mod error;
pub mod parse;
pub mod response;

pub use error::HttpError;
pub use parse::{Method, Parser, Request, Version};
pub use response::{Response, Status};

/// Limits that bound what one request may cost the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request line + header section (and, for chunked bodies, trailer section);
    /// beyond it the answer is 431. Same default as nginx's `large_client_header_buffers`.
    pub max_header_bytes: usize,
    /// Most header fields in one request; beyond it the answer is 431.
    pub max_headers: usize,
    /// Largest decoded body; beyond it the answer is 413.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 8 * 1024,
            max_headers: 64,
            max_body: 1024 * 1024,
        }
    }
}
