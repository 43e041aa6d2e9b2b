//! Test support: a broker per test (embedded, or `KAFKA_BROKERS` for a real one such as
//! tansu), a unique topic per test, servers started as real processes, and a small blocking
//! HTTP client over real sockets.

#![allow(dead_code, unused_macros)]

/// `suite!(case, ...)` generates `mod tokio`, `mod tokio_per_core` and `mod uring`, each
/// with one `#[test]` per case calling `case(Runtime::...)`: one suite, every server.
/// `suite!(with_ring_setups: case, ...)` adds server-uring with tuned rings
/// (`mod uring_coop_single`, `mod uring_sqpoll`).
macro_rules! suite {
    (with_ring_setups: $($case:ident),* $(,)?) => {
        suite!($($case),*);
        mod uring_coop_single { $( #[test] fn $case() { super::$case(bench::runtime::Runtime::UringCoopSingle) } )* }
        mod uring_sqpoll { $( #[test] fn $case() { super::$case(bench::runtime::Runtime::UringSqpoll) } )* }
    };
    ($($case:ident),* $(,)?) => {
        mod tokio { $( #[test] fn $case() { super::$case(bench::runtime::Runtime::Tokio) } )* }
        mod tokio_per_core { $( #[test] fn $case() { super::$case(bench::runtime::Runtime::TokioPerCore) } )* }
        mod uring { $( #[test] fn $case() { super::$case(bench::runtime::Runtime::Uring) } )* }
    };
}

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bench::runtime::Runtime;
use bench::server::{ServerConfig, ServerProcess};
use common::embedded::EmbeddedKafka;
use common::landed::{CountMethod, TopicReader};
use loadgen::response;

/// The broker a test publishes to.
pub struct Broker {
    embedded: Option<EmbeddedKafka>,
    pub addr: String,
    pub topic: String,
}

static TOPIC_SEQ: AtomicUsize = AtomicUsize::new(0);

impl Broker {
    /// `KAFKA_BROKERS` if set (a real broker: tansu in CI), else a fresh embedded broker.
    /// Either way a topic of its own, so tests run in parallel on one broker.
    pub fn new(test: &str) -> Self {
        let topic = format!(
            "t-{test}-{}-{}",
            std::process::id(),
            TOPIC_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        match std::env::var("KAFKA_BROKERS") {
            Ok(addr) if !addr.is_empty() => {
                common::kafka::ensure_topic(&addr, &topic, 3, Duration::from_secs(20))
                    .unwrap_or_else(|e| panic!("creating topic {topic} on {addr}: {e}"));
                Self {
                    embedded: None,
                    addr,
                    topic,
                }
            }
            _ => {
                let e = EmbeddedKafka::start(&topic, 3).expect("embedded broker");
                let addr = e.bootstrap().to_string();
                Self {
                    embedded: Some(e),
                    addr,
                    topic,
                }
            }
        }
    }

    /// Always an embedded broker (fault injection needs the mock cluster), whatever
    /// `KAFKA_BROKERS` says.
    pub fn embedded(test: &str, partitions: i32) -> Self {
        let topic = format!(
            "t-{test}-{}-{}",
            std::process::id(),
            TOPIC_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let e = EmbeddedKafka::start(&topic, partitions).expect("embedded broker");
        let addr = e.bootstrap().to_string();
        Self {
            embedded: Some(e),
            addr,
            topic,
        }
    }

    /// The mock cluster, for broker_down / broker_up.
    pub fn mock(&self) -> &EmbeddedKafka {
        self.embedded.as_ref().expect("an embedded broker")
    }

    pub fn method(&self) -> CountMethod {
        CountMethod::for_broker(self.embedded.is_some())
    }

    pub fn reader(&self) -> TopicReader {
        TopicReader::new(&self.addr, &self.topic, self.method()).expect("reader")
    }

    /// Values in the topic, sorted (order across partitions is not defined).
    pub fn values(&self) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = self
            .reader()
            .records()
            .expect("consume")
            .into_iter()
            .map(|r| r.value)
            .collect();
        v.sort();
        v
    }

    /// Starts `runtime` publishing to this broker and topic.
    pub fn server(&self, runtime: Runtime, args: &[&str]) -> ServerProcess {
        self.server_with(runtime, args, None)
    }

    pub fn server_with(
        &self,
        runtime: Runtime,
        args: &[&str],
        nofile: Option<u32>,
    ) -> ServerProcess {
        let mut cfg = ServerConfig::new(runtime);
        cfg.brokers = Some(self.addr.clone());
        cfg.topic = self.topic.clone();
        cfg.args = args.iter().map(|s| s.to_string()).collect();
        cfg.nofile = nofile;
        ServerProcess::start(&cfg).unwrap_or_else(|e| panic!("{e:#}"))
    }
}

/// One HTTP response as the client saw it.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
    pub close: bool,
}

/// A blocking client on one connection; every read is bounded by a timeout.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The next response (skipping none: a `100 Continue` is returned like any other).
    pub fn response(&mut self) -> std::io::Result<Resp> {
        loop {
            match response::parse(&self.buf) {
                Ok(Some(p)) => {
                    let head = String::from_utf8_lossy(&self.buf[..p.body.0]).into_owned();
                    let body = self.buf[p.body.0..p.body.1].to_vec();
                    self.buf.drain(..p.len);
                    return Ok(Resp {
                        status: p.status,
                        head,
                        body,
                        close: p.close,
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(e)),
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next answer's head alone (the answer to a HEAD request, which has no body
    /// whatever its `Content-Length` says).
    pub fn head_only(&mut self) -> std::io::Result<String> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 4);
                return Ok(head);
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// A second handle on the same connection (for a writer thread beside a reader).
    pub fn try_clone(&self) -> Self {
        Self {
            stream: self.stream.try_clone().expect("clone"),
            buf: Vec::new(),
        }
    }

    pub fn request(&mut self, bytes: &[u8]) -> Resp {
        self.send(bytes).expect("send");
        self.response().expect("response")
    }

    /// True if the server closes the connection (EOF or reset) within `within`.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let _ = self.stream.set_read_timeout(Some(within));
        let mut b = [0u8; 1024];
        let deadline = Instant::now() + within;
        loop {
            match self.stream.read(&mut b) {
                Ok(0) => return true,
                Ok(_) if Instant::now() < deadline => continue,
                Ok(_) => return false,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }
}

pub fn post(body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "POST /ingest HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

/// Deterministic bytes of every value 0..=255 (CR, LF and NUL included), distinct per `seed`.
pub fn body(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = format!("{seed}:").into_bytes();
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v
}

/// Waits (at most 20 s) until the server at `addr` answers `/healthz` with 200, then posts
/// `n` bodies of 100 B on one connection, each answered 202 (`--ack enqueued`).
pub fn post_when_ready(addr: SocketAddr, n: u64) {
    let mut c = Client::connect(addr);
    let ready = Instant::now();
    while c.request(&get("/healthz")).status != 200 {
        assert!(ready.elapsed() < Duration::from_secs(20), "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    for i in 0..n {
        assert_eq!(c.request(&post(&body(i, 100))).status, 202);
    }
}

/// A counter value from `/metrics`.
pub fn metric(addr: SocketAddr, name: &str) -> u64 {
    let r = Client::connect(addr).request(&get("/metrics"));
    let text = String::from_utf8_lossy(&r.body).into_owned();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}
