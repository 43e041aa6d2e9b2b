//! The load generator: the instrument that measures both servers. Its own crate, so the rule
//! "the instrument knows nothing of the subject" is a boundary: it depends on no part of the
//! servers (no `common`, no rdkafka), and builds alone on a load-generator host.
//!
//! - Thread-per-core: `threads` current-thread tokio runtimes, each driving a fixed share of
//!   the connections; request bytes built once; no allocation per request.
//! - One work loop (`connection.rs`) for every mode: [`Mode`] sets pipeline depth and whether a
//!   connection is reused; [`RunConfig::rate`] sets pacing: closed loop, or an open-loop
//!   schedule (any mode; pipelined sends a window per slot) whose latency is measured from
//!   each request's intended send time, as wrk2 does, beside the uncorrected service time.
//!   Slots are kept by one timerfd per load thread (`pacer.rs`): tokio's timers tick in
//!   whole milliseconds, which would add the load generator's own delay to sub-ms latencies.
//! - Bounded: by requests and/or duration, and always by `time_limit`; a watchdog ends a run
//!   that makes no progress for `stall_timeout` with a [`LoadError::Stalled`] carrying the
//!   report and the server's fd count and socket states.
//! - [`load_report::LoadReport`]: merged measurements with text, JSON and CSV printers.
//!
//! Files: `session.rs` (threads and runs), `shared.rs` (what a run's threads share),
//! `connection.rs` (the work loop), `pacer.rs` (open-loop slots), `net.rs` (sockets),
//! `watchdog.rs` (stall and time limit), `server_facts.rs` (the server's fds, socket and
//! thread states for a stall report), `response.rs` (answer parsing), `measurements.rs`
//! (per-thread measurements), `load_report.rs` (merged, printed), `hdr.rs` (HdrHistogram's
//! `.hgrm` and interval-log files, written and read back), `preflight.rs` (open files and
//! ephemeral ports), `units.rs` (CLI durations and sizes); `main.rs` is the CLI.

mod connection;
pub mod hdr;
pub mod ids;
pub mod load_report;
pub mod measurements;
mod net;
mod pacer;
pub mod preflight;
pub mod response;
pub mod server_facts;
mod session;
mod shared;
pub mod units;
mod watchdog;

use std::net::SocketAddr;
use std::time::Duration;

pub use load_report::{Latency, LoadReport, Schedule, Stall};
pub use measurements::WarmUp;
pub use session::{run, Session};

/// Every load-generator thread's name starts with this (`loadgen-0`, ...): CPU accounting
/// tells the instrument's threads from the rest of a process by it.
pub const THREAD_PREFIX: &str = "loadgen-";

/// What each request carries.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Workload {
    pub method: String,
    pub path: String,
    /// `Host` header value.
    pub host: String,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub body_size: usize,
    /// Extra header lines, e.g. `("X-Key", "k")`.
    pub headers: Vec<(String, String)>,
}

impl Workload {
    /// `POST path` with `body_size` seeded-random bytes.
    pub fn post(path: &str, body_size: usize, seed: u64) -> Self {
        Self::with_body(path, seeded_bytes(body_size, seed))
    }

    pub fn with_body(path: &str, body: Vec<u8>) -> Self {
        Self {
            method: "POST".into(),
            path: path.into(),
            host: "localhost".into(),
            body_size: body.len(),
            body,
            headers: Vec::new(),
        }
    }

    /// The request's bytes; `close` adds `Connection: close`.
    pub fn request_bytes(&self, close: bool) -> Vec<u8> {
        let mut r = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\n",
            self.method, self.path, self.host
        );
        if !self.body.is_empty() || self.method == "POST" || self.method == "PUT" {
            r.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        for (k, v) in &self.headers {
            r.push_str(&format!("{k}: {v}\r\n"));
        }
        if close {
            r.push_str("Connection: close\r\n");
        }
        r.push_str("\r\n");
        let mut bytes = r.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Deterministic pseudo-random bytes (xorshift64*): the same seed gives the same body.
pub fn seeded_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// How connections carry requests. Pacing (closed or open loop) is [`RunConfig::rate`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Mode {
    /// Keep-alive connections, each sends its next request when the last was answered.
    Closed,
    /// Keep-alive connections, `depth` requests per write, answers matched in order.
    Pipelined { depth: usize },
    /// Connect, write, read, close for every request (the blog's workload).
    ConnPerRequest,
}

impl Mode {
    pub fn label(&self) -> String {
        match self {
            Mode::Closed => "closed".into(),
            Mode::Pipelined { depth } => format!("pipelined-{depth}"),
            Mode::ConnPerRequest => "conn-per-request".into(),
        }
    }

    /// The inverse of [`Mode::label`].
    pub fn from_label(label: &str) -> Option<Self> {
        match label {
            "closed" => Some(Mode::Closed),
            "conn-per-request" => Some(Mode::ConnPerRequest),
            l => Some(Mode::Pipelined {
                depth: l.strip_prefix("pipelined-")?.parse().ok()?,
            }),
        }
    }

    pub(crate) fn depth(&self) -> usize {
        match self {
            Mode::Pipelined { depth } => *depth,
            _ => 1,
        }
    }
}

/// One run's parameters.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunConfig {
    pub addr: SocketAddr,
    pub workload: Workload,
    pub mode: Mode,
    /// Open loop: requests/s in total, each connection sending on its share of the
    /// schedule whether or not earlier answers came back; latency from each request's
    /// intended send time. `None`: closed loop (send when the last answer came).
    pub rate: Option<f64>,
    /// Connections in total, spread evenly over the threads.
    pub connections: usize,
    pub threads: usize,
    /// Measured requests to send (after warm-up); `None`: until `duration` ends.
    pub requests: Option<u64>,
    /// Measured time (after warm-up); `None`: until `requests` are answered.
    pub duration: Option<Duration>,
    /// Load before measuring starts; its answers are not recorded.
    pub warmup: Duration,
    /// No answer for this long while requests are outstanding is a stall.
    pub stall_timeout: Duration,
    /// One request's answer must come within this (then: a timeout error, reconnect).
    pub request_timeout: Duration,
    /// Hard bound on the whole run, whatever else is set: it then ends with an error.
    pub time_limit: Duration,
    /// The server's PID, for fd counts and socket states in a stall report.
    pub server_pid: Option<u32>,
    /// Connection per request to a loopback IPv4 address: spread source addresses over
    /// 127.0.0.1..=127.0.0.N so TIME_WAIT does not exhaust ephemeral ports (~28k per address).
    pub source_addrs: u8,
    /// Print a progress line on stderr once a second (only if stderr is a terminal).
    pub progress: bool,
    /// Start every body with its request's id (`ids.rs`); bodies shorter than
    /// [`ids::ID_LEN`] carry none whatever this says.
    pub ids: bool,
}

impl RunConfig {
    /// Defaults for `addr`: 64 closed-loop connections on every core, 10 s.
    pub fn new(addr: SocketAddr, workload: Workload) -> Self {
        Self {
            addr,
            workload,
            mode: Mode::Closed,
            rate: None,
            connections: 64,
            threads: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            requests: None,
            duration: Some(Duration::from_secs(10)),
            warmup: Duration::ZERO,
            stall_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            time_limit: Duration::from_secs(600),
            server_pid: None,
            source_addrs: 64,
            progress: false,
            ids: true,
        }
    }

    /// Whether this run's requests carry ids: asked for, and the body has room.
    pub fn carries_ids(&self) -> bool {
        self.ids && self.workload.body.len() >= ids::ID_LEN
    }

    /// Refuses settings that cannot make a run; the message names the setting (as a flag).
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |m: &str| Err(LoadError::Config(m.to_string()));
        if self.connections == 0 {
            return bad("--connections must be at least 1");
        }
        if self.threads == 0 {
            return bad("--threads must be at least 1");
        }
        if self.threads > self.connections {
            return bad("--threads must not exceed --connections (each thread drives at least one connection)");
        }
        if self.requests.is_none() && self.duration.is_none() {
            return bad("give --requests or --duration (or both): every run must be bounded");
        }
        if self.requests == Some(0) {
            return bad("--requests must be at least 1");
        }
        if let Mode::Pipelined { depth } = self.mode {
            if depth == 0 || depth > 1024 {
                return bad("--depth must be between 1 and 1024");
            }
        }
        match (self.rate, self.mode) {
            (Some(rate), _) if !(rate.is_finite() && rate > 0.0) => {
                return bad("--rate must be a positive number of requests per second")
            }
            _ => {}
        }
        if self.source_addrs == 0 {
            return bad("--source-addrs must be at least 1");
        }
        if self.stall_timeout.is_zero() || self.request_timeout.is_zero() {
            return bad("--stall-timeout and --timeout must be positive");
        }
        Ok(())
    }
}

/// Why a run did not produce a clean report.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A setting that cannot work; the text names the flag.
    #[error("{0}")]
    Config(String),
    /// No progress for `stall_timeout` with requests outstanding: the report says what was
    /// measured up to then and what the server looked like.
    #[error("{}", .0.stall_summary())]
    Stalled(Box<LoadReport>),
    /// `time_limit` passed before the requests were answered.
    #[error("run exceeded its time limit of {limit:?}; {} measured answers so far", .report.completed)]
    TimeLimit {
        limit: Duration,
        report: Box<LoadReport>,
    },
    #[error("load generator: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_are_valid_http() {
        let mut w = Workload::post("/ingest", 10, 7);
        w.headers.push(("X-Key".into(), "k".into()));
        let bytes = w.request_bytes(true);
        let mut p = common::http::Parser::new(common::http::Limits::default());
        let mut buf = bytes::BytesMut::from(&bytes[..]);
        match p.parse(&mut buf) {
            Ok(Some(common::http::parse::Parsed::Request(r))) => {
                assert_eq!(&r.body[..], &seeded_bytes(10, 7)[..]);
                assert!(!r.keep_alive);
                assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
            }
            other => panic!("{other:?}"),
        }
        assert_ne!(seeded_bytes(10, 7), seeded_bytes(10, 8));
    }

    #[test]
    fn validation_names_the_flag() {
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let mut c = RunConfig::new(addr, Workload::post("/", 1, 1));
        c.requests = None;
        c.duration = None;
        assert!(c
            .validate()
            .expect_err("unbounded")
            .to_string()
            .contains("--requests"));
        let mut c = RunConfig::new(addr, Workload::post("/", 1, 1));
        c.rate = Some(0.0);
        assert!(c
            .validate()
            .expect_err("rate")
            .to_string()
            .contains("--rate"));
        c.rate = Some(100.0);
        c.mode = Mode::Pipelined { depth: 4 };
        c.validate()
            .expect("paced pipelining: a window of --depth requests per slot");
        c.rate = None;
        c.mode = Mode::Pipelined { depth: 0 };
        assert!(c
            .validate()
            .expect_err("depth")
            .to_string()
            .contains("--depth"));
        c.mode = Mode::Closed;
        c.connections = 1;
        c.threads = 2;
        assert!(c
            .validate()
            .expect_err("threads")
            .to_string()
            .contains("--threads"));
    }
}
