//! The chunked body decoder (RFC 9112 §7.1), incremental: it decodes what the buffer holds
//! into its own body buffer, so a slow chunked upload costs O(n), not O(n²) rescans.
//!
//! Strict where a lenient parser in front could read the bytes differently (request
//! smuggling): every chunk-size and trailer line must end in CRLF, and a bare CR, bare LF
//! or NUL anywhere in one is refused; no whitespace after a size unless an extension
//! follows; extensions may not carry control characters and are bounded in total.

use bytes::{Buf, Bytes, BytesMut};

use super::{HttpError, Limits};

/// Longest chunk-size line (size plus extensions) we accept.
const MAX_CHUNK_LINE: usize = 4096;

/// Most chunk-extension bytes over one request's chunks: extensions are ignored, so a
/// client has no reason to send many, and each costs a scan.
pub const MAX_CHUNK_EXT_TOTAL: usize = 4096;

/// Significant hex digits a chunk size may have (leading zeros do not count): 15 digits
/// is below 2^60, far above any `--max-body`, and cannot overflow.
const MAX_SIZE_DIGITS: usize = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting `hex-size [BWS ; ext] CRLF`.
    Size,
    /// Inside chunk data, this many bytes to go.
    Data(usize),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer fields up to an empty line.
    Trailers,
}

/// One chunked body being received.
#[derive(Debug)]
pub(super) struct Chunked {
    state: State,
    body: BytesMut,
    trailer_bytes: usize,
    ext_bytes: usize,
}

impl Chunked {
    pub fn new() -> Self {
        Self {
            state: State::Size,
            body: BytesMut::new(),
            trailer_bytes: 0,
            ext_bytes: 0,
        }
    }

    /// Decodes as much as `buf` holds; the body once it and its trailers are complete.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<Bytes>, HttpError> {
        loop {
            match self.state {
                State::Size => {
                    let Some(len) = line(buf, MAX_CHUNK_LINE, "chunk size line too long")? else {
                        return Ok(None);
                    };
                    let (size, ext) = parse_size_line(&buf[..len])?;
                    self.ext_bytes += ext;
                    if self.ext_bytes > MAX_CHUNK_EXT_TOTAL {
                        return Err(HttpError::Malformed("too many chunk extension bytes"));
                    }
                    buf.advance(len + 2);
                    if size == 0 {
                        self.state = State::Trailers;
                    } else {
                        if self.body.len().saturating_add(size) > limits.max_body {
                            return Err(HttpError::BodyTooLarge {
                                limit: limits.max_body,
                            });
                        }
                        self.body.reserve(size);
                        self.state = State::Data(size);
                    }
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = left.min(buf.len());
                    self.body.extend_from_slice(&buf[..n]);
                    buf.advance(n);
                    self.state = if n == left {
                        State::DataEnd
                    } else {
                        State::Data(left - n)
                    };
                }
                State::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(HttpError::Malformed("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.state = State::Size;
                }
                State::Trailers => {
                    let room = limits.max_header_bytes.saturating_sub(self.trailer_bytes);
                    let too_large = HttpError::HeaderTooLarge {
                        limit: limits.max_header_bytes,
                    };
                    let Some(len) = line(buf, room, "").map_err(|e| match e {
                        HttpError::Malformed("") => too_large.clone(),
                        e => e,
                    })?
                    else {
                        return Ok(None);
                    };
                    self.trailer_bytes += len + 2;
                    if self.trailer_bytes > limits.max_header_bytes {
                        return Err(too_large);
                    }
                    if len > 0 {
                        check_trailer_field(&buf[..len])?;
                    }
                    buf.advance(len + 2);
                    if len == 0 {
                        return Ok(Some(std::mem::take(&mut self.body).freeze()));
                    }
                }
            }
        }
    }
}

/// The length of the CRLF-terminated line at the start of `buf` (without the CRLF), or
/// `None` if it is not complete yet. A bare LF, a CR not followed by LF, or a NUL is an
/// error wherever it appears; a line longer than `max` is `Malformed(too_long)`.
fn line(buf: &[u8], max: usize, too_long: &'static str) -> Result<Option<usize>, HttpError> {
    let window = &buf[..buf.len().min(max.saturating_add(2))];
    for (i, &b) in window.iter().enumerate() {
        match b {
            b'\n' => {
                return if i > 0 && window[i - 1] == b'\r' {
                    Ok(Some(i - 1))
                } else {
                    Err(HttpError::Malformed("bare LF in chunked framing"))
                };
            }
            b'\r' if window.get(i + 1).is_some_and(|&n| n != b'\n') => {
                return Err(HttpError::Malformed("bare CR in chunked framing"));
            }
            0 => return Err(HttpError::Malformed("NUL in chunked framing")),
            _ => {}
        }
    }
    if buf.len() > max.saturating_add(1) {
        return Err(HttpError::Malformed(too_long));
    }
    Ok(None)
}

/// `hex-size [BWS ";" ext]` -> (size, extension bytes).
fn parse_size_line(line: &[u8]) -> Result<(usize, usize), HttpError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(HttpError::Malformed("invalid chunk size"));
    }
    let significant = &line[..digits];
    let significant = &significant[significant.iter().take_while(|&&b| b == b'0').count()..];
    if significant.len() > MAX_SIZE_DIGITS {
        return Err(HttpError::Malformed("chunk size too large"));
    }
    let size = significant.iter().fold(0usize, |n, &b| {
        n * 16 + (b as char).to_digit(16).unwrap_or(0) as usize
    });
    let rest = &line[digits..];
    if rest.is_empty() {
        return Ok((size, 0));
    }
    let after_ws = &rest[rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count()..];
    if after_ws.first() != Some(&b';') {
        return Err(HttpError::Malformed("invalid chunk size or extension"));
    }
    if after_ws.iter().any(|&b| is_ctl(b) && b != b'\t') {
        return Err(HttpError::Malformed("control character in chunk extension"));
    }
    Ok((size, rest.len()))
}

/// A trailer line: `field-name ":" field-value`, the name a token, the value free of
/// control characters (HTAB allowed).
fn check_trailer_field(line: &[u8]) -> Result<(), HttpError> {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(HttpError::Malformed("trailer field without ':'"));
    };
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(HttpError::Malformed("invalid trailer field name"));
    }
    if value.iter().any(|&b| is_ctl(b) && b != b'\t') {
        return Err(HttpError::Malformed("control character in trailer field"));
    }
    Ok(())
}

fn is_ctl(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
