//! Minimal HTTP/1.1 response parsing for the load generator: the status and where the
//! response ends (`Content-Length` or chunked), nothing else. Partial input is `Ok(None)`.

/// A complete response at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    pub status: u16,
    /// Bytes the whole response takes (head + body); consume this many.
    pub len: usize,
    /// Byte range of the body (for chunked: the raw chunked encoding).
    pub body: (usize, usize),
    /// The server said `Connection: close`.
    pub close: bool,
    /// A `1xx` interim response (e.g. `100 Continue`): the final one follows.
    pub interim: bool,
}

/// The response was not HTTP/1.x as we speak it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed response: {0}")]
pub struct Malformed(pub &'static str);

/// Most header fields we expect in a response.
const MAX_HEADERS: usize = 32;

/// Parses the response at the front of `buf`.
pub fn parse(buf: &[u8]) -> Result<Option<Parsed>, Malformed> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Malformed("invalid status line or header")),
    };
    let status = resp.code.ok_or(Malformed("no status"))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).map_err(|_| Malformed("content-length"))?;
            length = Some(
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| Malformed("content-length"))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.trim_ascii().eq_ignore_ascii_case(b"close");
        }
    }
    if (100..200).contains(&status) {
        return Ok(Some(Parsed {
            status,
            len: head,
            body: (head, head),
            close: false,
            interim: true,
        }));
    }
    let end = if chunked {
        match chunked_end(&buf[head..])? {
            Some(n) => head + n,
            None => return Ok(None),
        }
    } else {
        // Our servers always send a length; a response without one would be read to EOF,
        // which a keep-alive load generator cannot do.
        let n = length.ok_or(Malformed("no content-length"))?;
        if buf.len() < head + n {
            return Ok(None);
        }
        head + n
    };
    Ok(Some(Parsed {
        status,
        len: end,
        body: (head, end),
        close,
        interim: false,
    }))
}

/// Length of a complete chunked body (through the final CRLF), or `None` if incomplete.
fn chunked_end(buf: &[u8]) -> Result<Option<usize>, Malformed> {
    let mut pos = 0;
    loop {
        let Some(eol) = find_crlf(&buf[pos..]) else {
            return Ok(None);
        };
        let line = &buf[pos..pos + eol];
        let hex_len = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if hex_len == 0 || hex_len > 15 {
            return Err(Malformed("chunk size"));
        }
        let size = usize::from_str_radix(
            std::str::from_utf8(&line[..hex_len]).map_err(|_| Malformed("chunk size"))?,
            16,
        )
        .map_err(|_| Malformed("chunk size"))?;
        pos += eol + 2;
        if size == 0 {
            // Trailers until an empty line.
            loop {
                let Some(eol) = find_crlf(&buf[pos..]) else {
                    return Ok(None);
                };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some(pos));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(Malformed("chunk data not followed by CRLF"));
        }
        pos += size + 2;
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &[u8] = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\nHTTP/1.1 503 Service Unavailable\r\ncontent-length: 11\r\nretry-after: 1\r\nconnection: close\r\n\r\nqueue full\n";

    #[test]
    fn two_responses_in_one_buffer() {
        let a = parse(TWO).expect("valid").expect("complete");
        assert_eq!((a.status, a.close), (202, false));
        let b = parse(&TWO[a.len..]).expect("valid").expect("complete");
        assert_eq!((b.status, b.close), (503, true));
        assert_eq!(a.len + b.len, TWO.len());
        assert_eq!(&TWO[a.len..][b.body.0..b.body.1], b"queue full\n");
    }

    #[test]
    fn every_split_is_partial_until_complete() {
        let first = parse(TWO).expect("valid").expect("complete").len;
        for cut in 0..first {
            assert_eq!(parse(&TWO[..cut]), Ok(None), "cut at {cut}");
        }
        let chunked =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx: y\r\n\r\n";
        for cut in 0..chunked.len() {
            assert_eq!(parse(&chunked[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            parse(chunked).expect("valid").expect("complete").len,
            chunked.len()
        );
    }

    #[test]
    fn interim_and_malformed() {
        let c = parse(b"HTTP/1.1 100 Continue\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert!(c.interim);
        assert!(parse(b"HTTX/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\n\r\n").is_err(), "no length");
    }
}
