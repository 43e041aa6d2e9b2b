//! The shared core of runtime-bench: everything both servers do, written once, with no
//! runtime-specific I/O. The servers only accept, read, call [`conn::Conn::serve`] and write.
//!
//! - [`http`]: sans-IO HTTP/1.1 on `httparse`: request parser with body decoding
//!   (`Content-Length`, chunked) and limits, response encoder, errors mapped to statuses.
//! - [`conn`]: one connection's state: bytes in -> handled requests -> responses out in
//!   request order; keep-alive, close, and the read deadline (slowloris, idle).
//! - [`ingest`]: routing and the handler (`POST /ingest`, `GET /healthz`, `GET /metrics`).
//! - [`kafka`]: the publisher over rdkafka (ack modes, backpressure, flush) and a null sink.
//! - [`embedded`]: the embedded Kafka broker (librdkafka's mock cluster).
//! - [`landed`]: counting what landed in Kafka, the right way for each broker. No server
//!   uses it: it is the consumer side of the same broker knowledge as [`kafka`] and
//!   [`embedded`] (a mock cluster is counted by watermarks, a real one by consuming), used
//!   by this crate's publisher tests and by the harness, which both depend on `common`.
//! - [`error`]: why a server could not start.
//! - `fuzzing`: the fuzz property (test support; `fuzz/` and `tests/fuzz_corpus.rs`).
//! - [`config`]: the one CLI both servers share.
//! - [`metrics`]: counters and their Prometheus text.
//! - [`listen`]: listening sockets (SO_REUSEPORT, refusing a port already bound).
//! - [`service`]: start-up, readiness line, signals, shutdown drain, final flush.
//!
//! ARCHITECTURE.md (at the repository root) draws how a request flows through these.

pub mod config;
pub mod conn;
pub mod embedded;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod ingest;
pub mod kafka;
pub mod landed;
pub mod listen;
pub mod metrics;
pub mod service;
pub mod task_waits;
pub mod tasks;

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Runs a future to completion on this thread. For the few admin calls made at start-up,
/// where pulling in an executor would tie the core to one runtime.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
