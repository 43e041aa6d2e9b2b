//! Process-wide counters and their Prometheus text exposition (`GET /metrics`).
//!
//! Relaxed atomics: on 2 cores an uncontended `fetch_add` is a few ns, far below one
//! request's syscall cost, and counters need no ordering with other memory.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use tokio::sync::Notify;

use crate::http::Status;

#[derive(Debug, Default)]
pub struct Metrics {
    /// Responses sent, by status (index = `Status::index`).
    responses: [AtomicU64; Status::ALL.len()],
    /// Records accepted into the producer queue (or the null sink).
    pub records_enqueued: AtomicU64,
    /// Records the broker acknowledged.
    pub records_delivered: AtomicU64,
    /// Records the producer gave up on (timeout, broker error).
    pub records_failed: AtomicU64,
    /// Requests refused with 503 because the producer queue was full.
    pub queue_full: AtomicU64,
    /// Connections currently open.
    pub open_connections: AtomicI64,
    /// Connections accepted since start.
    pub connections_accepted: AtomicU64,
    /// `accept` calls that failed (EMFILE, ENFILE, ...); the server backs off and goes on.
    pub accept_errors: AtomicU64,
    /// Woken when the last open connection closes: shutdown's drain waits on it instead of
    /// polling the gauge.
    all_closed: Notify,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn response(&self, status: Status) {
        self.responses[status.index()].fetch_add(1, Relaxed);
    }

    pub fn responses(&self, status: Status) -> u64 {
        self.responses[status.index()].load(Relaxed)
    }

    /// Counts a connection as open until the guard drops.
    pub fn connection(&self) -> ConnectionGuard<'_> {
        self.connections_accepted.fetch_add(1, Relaxed);
        self.open_connections.fetch_add(1, Relaxed);
        ConnectionGuard(self)
    }

    /// Resolves once no connection is open (at once if none is). Runtime-agnostic: the
    /// servers bound it with their own timer.
    pub async fn all_closed(&self) {
        loop {
            // Registered before the check: a close between the check and the await still
            // wakes it (`notify_waiters` reaches every `Notified` created before it).
            let closed = self.all_closed.notified();
            if self.open_connections.load(Relaxed) <= 0 {
                return;
            }
            closed.await;
        }
    }

    /// The Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str("# HELP http_responses_total HTTP responses sent, by status code.\n");
        out.push_str("# TYPE http_responses_total counter\n");
        for status in Status::ALL {
            let _ = writeln!(
                out,
                "http_responses_total{{code=\"{}\"}} {}",
                status.code(),
                self.responses(status)
            );
        }
        let counters: [(&str, &str, u64); 6] = [
            (
                "kafka_records_enqueued_total",
                "Records accepted into the producer queue.",
                self.records_enqueued.load(Relaxed),
            ),
            (
                "kafka_records_delivered_total",
                "Records acknowledged by the broker.",
                self.records_delivered.load(Relaxed),
            ),
            (
                "kafka_records_failed_total",
                "Records the producer failed to deliver.",
                self.records_failed.load(Relaxed),
            ),
            (
                "kafka_queue_full_total",
                "Requests refused with 503 because the producer queue was full.",
                self.queue_full.load(Relaxed),
            ),
            (
                "connections_accepted_total",
                "TCP connections accepted.",
                self.connections_accepted.load(Relaxed),
            ),
            (
                "accept_errors_total",
                "accept() calls that failed.",
                self.accept_errors.load(Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            write_metric(&mut out, "counter", name, help, value);
        }
        write_metric(
            &mut out,
            "gauge",
            "connections_open",
            "TCP connections open now.",
            self.open_connections.load(Relaxed),
        );
        out
    }
}

/// Appends one metric in the Prometheus text format: its HELP and TYPE lines, then its
/// value (`kind`: `counter` or `gauge`).
pub fn write_metric(
    out: &mut String,
    kind: &str,
    name: &str,
    help: &str,
    value: impl std::fmt::Display,
) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    );
}

/// Decrements the open-connection gauge on drop.
#[derive(Debug)]
pub struct ConnectionGuard<'a>(&'a Metrics);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        if self.0.open_connections.fetch_sub(1, Relaxed) == 1 {
            self.0.all_closed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_gauge() {
        let m = Metrics::new();
        m.response(Status::Accepted);
        m.response(Status::Accepted);
        m.response(Status::ServiceUnavailable);
        m.queue_full.fetch_add(1, Relaxed);
        let guard = m.connection();
        let text = m.render();
        assert!(
            text.contains("http_responses_total{code=\"202\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("http_responses_total{code=\"503\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("kafka_queue_full_total 1\n"), "{text}");
        assert!(text.contains("connections_open 1\n"), "{text}");
        drop(guard);
        assert!(m.render().contains("connections_open 0\n"));
        assert!(m.render().contains("connections_accepted_total 1\n"));
    }
}
