//! A tiny in-test HTTP server for the load generator's tests: a thread per connection,
//! answering as a [`Behaviour`] says (limits, failures, delays, a stop-the-world pause).
#![allow(dead_code)] // each test binary uses part of it

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::http::parse::Parsed;
use common::http::{Limits, Parser};
use loadgen::{Mode, RunConfig, Workload};

/// How the in-test server behaves.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    /// Answers this many requests in total, then goes silent.
    pub answer_limit: u64,
    /// Every `fail_every`-th answer is a 503 (0: never).
    pub fail_every: u64,
    /// Every answer waits this long first.
    pub delay: Duration,
    /// Once, when this many requests have been answered, every connection stops answering
    /// for the given time (a stop-the-world pause).
    pub pause: Option<(u64, Duration)>,
}

impl Behaviour {
    pub fn answering(answer_limit: u64, fail_every: u64) -> Self {
        Self {
            answer_limit,
            fail_every,
            delay: Duration::ZERO,
            pause: None,
        }
    }
}

/// What the server's connection threads share.
#[derive(Debug)]
pub struct ServerState {
    pub behaviour: Behaviour,
    pub answered: AtomicU64,
    /// Set: connections close as soon as they are idle (see `close_idle_connections`).
    pub close_idle: AtomicBool,
    pub closed_idle: AtomicU64,
    /// The pause, once it has begun: until when.
    pub paused_until: Mutex<Option<Instant>>,
    /// Every request's first 32 body bytes (its id, if it carries one) and the status it
    /// was answered with.
    pub received: Mutex<Vec<(Vec<u8>, u16)>>,
}

/// A blocking server: a thread per connection, answers each request as its [`Behaviour`]
/// says. With `close_idle` set, a connection that sends nothing is closed.
pub struct TinyServer {
    pub addr: SocketAddr,
    pub state: Arc<ServerState>,
    pub accepted: Arc<AtomicU64>,
}

impl TinyServer {
    pub fn start(answer_limit: u64, fail_every: u64) -> Self {
        Self::with(Behaviour::answering(answer_limit, fail_every))
    }

    pub fn with(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(ServerState {
            behaviour,
            answered: AtomicU64::new(0),
            close_idle: AtomicBool::new(false),
            closed_idle: AtomicU64::new(0),
            paused_until: Mutex::new(None),
            received: Mutex::new(Vec::new()),
        });
        let accepted = Arc::new(AtomicU64::new(0));
        let (st, conns) = (state.clone(), accepted.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                conns.fetch_add(1, Ordering::Relaxed);
                // Short read timeouts let a connection notice `close_idle` while idle.
                let _ = conn.set_read_timeout(Some(Duration::from_millis(20)));
                let st = st.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        Self {
            addr,
            state,
            accepted,
        }
    }

    pub fn answered(&self) -> u64 {
        self.state.answered.load(Ordering::Relaxed)
    }

    /// Closes every connection that is idle (no partial request), as a server's idle
    /// timeout would, and waits (up to 5 s) until `n` have been closed so.
    pub fn close_idle_connections(&self, n: u64) {
        let st = &self.state;
        st.close_idle.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(5);
        while st.closed_idle.load(Ordering::Relaxed) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            st.closed_idle.load(Ordering::Relaxed),
            n,
            "idle connections closed"
        );
        st.close_idle.store(false, Ordering::Relaxed);
    }
}

/// Holds an answer back while the server's one pause lasts (starting it when due).
pub fn wait_out_pause(st: &ServerState, n: u64) {
    let Some((at, length)) = st.behaviour.pause else {
        return;
    };
    let until = {
        let mut p = st.paused_until.lock().expect("lock");
        if p.is_none() && n >= at {
            *p = Some(Instant::now() + length);
        }
        *p
    };
    if let Some(until) = until {
        let now = Instant::now();
        if now < until {
            std::thread::sleep(until - now);
        }
    }
}

pub fn serve(mut s: TcpStream, st: &ServerState) {
    let b = st.behaviour;
    let mut parser = Parser::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16384];
    loop {
        let mut out = Vec::new();
        let mut close = false;
        while let Ok(Some(Parsed::Request(r))) = parser.parse(&mut buf) {
            let n = st.answered.fetch_add(1, Ordering::Relaxed) + 1;
            if n > b.answer_limit {
                // Silent from now on: hold the connection, answer nothing.
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
            wait_out_pause(st, n);
            if !b.delay.is_zero() {
                std::thread::sleep(b.delay);
            }
            let status = if b.fail_every > 0 && n % b.fail_every == 0 {
                out.extend_from_slice(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\n\r\nbusy\n",
                );
                503
            } else {
                out.extend_from_slice(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n");
                202
            };
            let id = r.body[..r.body.len().min(32)].to_vec();
            st.received.lock().expect("lock").push((id, status));
            close |= !r.keep_alive;
        }
        if !out.is_empty() && s.write_all(&out).is_err() {
            return;
        }
        if close {
            return;
        }
        loop {
            match s.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    break;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if st.close_idle.load(Ordering::Relaxed) && buf.is_empty() {
                        st.closed_idle.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }
}

pub fn config(addr: SocketAddr, mode: Mode) -> RunConfig {
    let mut c = RunConfig::new(addr, Workload::post("/ingest", 100, 1));
    c.mode = mode;
    c.connections = 8;
    c.threads = 2;
    c.duration = None;
    c.requests = Some(2000);
    c.time_limit = Duration::from_secs(60);
    c
}
