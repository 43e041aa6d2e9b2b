//! Sans-IO connection state: bytes in -> requests handled -> responses out, in request order,
//! plus the keep-alive / close decision and the read deadline (slowloris, idle).
//!
//! A server's loop is then: read into `rbuf`, [`Conn::serve`], write `wbuf`, stop when
//! [`Conn::is_closing`], read again before [`Conn::deadline`] or call [`Conn::timed_out`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::http::parse::Parsed;
use crate::http::{HttpError, Limits, Method, Parser, Response, Status, Version};
use crate::ingest::{App, Reply};

/// Read buffer per connection, in both servers; grown on demand for large bodies.
pub const READ_BUF: usize = 16 * 1024;

/// After a closing answer: how long both servers drain unread request bytes so the client
/// reads the answer instead of a reset.
pub const LINGER: Duration = Duration::from_millis(500);

/// Per-connection timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From a request's first byte until its head is complete.
    pub header: Duration,
    /// Idle keep-alive connection, or a body that stopped arriving (between two reads).
    pub idle: Duration,
    /// A whole request body, from the end of its head: a body that trickles in a byte at a
    /// time never waits `idle` between reads, and would otherwise hold the connection forever.
    pub body: Duration,
}

/// An answer waiting its turn: answers go out in request order even when later ones are ready.
#[derive(Debug)]
struct Queued {
    reply: Reply,
    keep_alive: bool,
    http10: bool,
    /// A HEAD request: its answer goes out without the body.
    head: bool,
}

/// One connection's protocol state. See the module doc.
#[derive(Debug)]
pub struct Conn {
    parser: Parser,
    timeouts: Timeouts,
    /// Answers of the requests parsed from the current read, in order; reused across reads.
    queue: VecDeque<Queued>,
    /// No more requests are read: the last answer carries `Connection: close`.
    closing: bool,
    /// When the first byte of the current, incomplete request head was seen.
    head_started: Option<Instant>,
    /// When the current request's head completed and its body began (`None`: not in a body).
    body_started: Option<Instant>,
}

impl Conn {
    pub fn new(limits: Limits, timeouts: Timeouts) -> Self {
        Self {
            parser: Parser::new(limits),
            timeouts,
            queue: VecDeque::new(),
            closing: false,
            head_started: None,
            body_started: None,
        }
    }

    /// Serves every complete request in `rbuf`: each is handled (its record enqueued) as soon
    /// as it parses, so a pipelined batch is published together; then the answers are awaited
    /// in order and encoded into `wbuf`. Awaits only delivery reports, never I/O. `now` is
    /// when `rbuf`'s bytes arrived: the read deadlines are timed from it (the caller owns
    /// the clock, so tests can pass any instant).
    pub async fn serve(
        &mut self,
        now: Instant,
        rbuf: &mut BytesMut,
        wbuf: &mut BytesMut,
        app: &App,
    ) {
        let mut completed = false;
        while !self.closing {
            match self.parser.parse(rbuf) {
                Ok(None) => break,
                Ok(Some(Parsed::Continue)) => {
                    let Some(head) = self.parser.pending() else {
                        break;
                    };
                    let http10 = head.version == Version::Http10;
                    match app.check(head.method, &head.path) {
                        Ok(()) => self.push(Response::empty(Status::Continue), true, http10),
                        // Refuse before the client uploads; the unread body forces a close.
                        Err(e) => self.fail(&e, http10),
                    }
                }
                Ok(Some(Parsed::Request(req))) => {
                    completed = true;
                    let reply = app.handle(&req);
                    let http10 = req.version == Version::Http10;
                    self.queue.push_back(Queued {
                        reply,
                        keep_alive: req.keep_alive,
                        http10,
                        head: req.method == Method::Head,
                    });
                    self.closing = !req.keep_alive;
                }
                Err(e) => self.fail(&e, false),
            }
        }
        // A request that completed ends its clocks: the next request's head and body are
        // timed from now, not from when an earlier one started.
        if completed {
            self.head_started = None;
            self.body_started = None;
        }
        let between = self.parser.between_requests();
        self.head_started = match (between, rbuf.is_empty()) {
            (true, false) => self.head_started.or(Some(now)),
            _ => None,
        };
        self.body_started = if between {
            None
        } else {
            self.body_started.or(Some(now))
        };
        while let Some(q) = self.queue.pop_front() {
            let mut resp = match q.reply {
                Reply::Ready(r) => r,
                Reply::Pending(delivery) => app.delivered(delivery.await),
            };
            if resp.status != Status::Continue {
                resp.close |= !q.keep_alive || (self.closing && self.queue.is_empty());
                resp.keep_alive_header = q.http10 && !resp.close;
                resp.head_only = q.head;
                app.metrics.response(resp.status);
            }
            resp.encode(wbuf);
        }
    }

    fn push(&mut self, resp: Response, keep_alive: bool, http10: bool) {
        self.queue.push_back(Queued {
            reply: Reply::Ready(resp),
            keep_alive,
            http10,
            head: false,
        });
    }

    fn fail(&mut self, e: &HttpError, http10: bool) {
        let resp = e.to_response();
        self.closing = true;
        self.push(resp, false, http10);
    }

    /// True once the connection must close after writing `wbuf`.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// True when no request is partly received (as of the last [`Conn::serve`]): safe to
    /// close for idleness or shutdown.
    pub fn is_idle(&self) -> bool {
        self.parser.between_requests() && self.head_started.is_none()
    }

    /// When the next read must have completed: header timeout for a partial head (measured
    /// from its first byte, so a byte-a-second slowloris does not extend it); within a body,
    /// the idle timeout but never past the body timeout (from the end of the head); idle
    /// timeout otherwise.
    pub fn deadline(&self, now: Instant) -> Instant {
        match (self.head_started, self.body_started) {
            (Some(start), _) => start + self.timeouts.header,
            (None, Some(start)) => (now + self.timeouts.idle).min(start + self.timeouts.body),
            (None, None) => now + self.timeouts.idle,
        }
    }

    /// The deadline passed. Mid-request, encodes 408 into `wbuf` (counted in `app.metrics`);
    /// an idle connection just closes. Either way the connection is closing.
    pub fn timed_out(&mut self, wbuf: &mut BytesMut, app: &App) {
        if !self.is_idle() {
            let resp = HttpError::Timeout.to_response();
            app.metrics.response(resp.status);
            resp.encode(wbuf);
        }
        self.closing = true;
    }
}
