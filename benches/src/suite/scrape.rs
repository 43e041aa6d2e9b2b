//! A server's own figures from its `/metrics` (Prometheus text): records delivered to Kafka,
//! and its connection tasks' poll and scheduling counts.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use crate::results::TaskCounts;

/// The server's `/metrics` text; `None` if it does not answer within a second.
fn metrics(addr: SocketAddr) -> Option<String> {
    let mut c = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    c.read_to_string(&mut text).ok()?;
    Some(text)
}

/// `kafka_records_delivered_total`; `None` if unreadable.
pub(super) fn delivered(addr: SocketAddr) -> Option<u64> {
    metrics(addr)?
        .lines()
        .find_map(|l| l.strip_prefix("kafka_records_delivered_total "))
        .and_then(|v| v.trim().parse().ok())
}

/// The connection tasks' cumulative counts; `None` if unreadable or not monitored.
pub(super) fn tasks(addr: SocketAddr) -> Option<TaskCounts> {
    TaskCounts::parse(&metrics(addr)?)
}

/// The server's own account of its tasks when a load stalled: were polls slow, are woken
/// tasks waiting to be polled, how long was the longest poll?
pub(super) fn stalled_tasks(addr: SocketAddr) -> String {
    match tasks(addr) {
        None => "unreadable (no answer on /metrics, or --task-metrics false)".into(),
        Some(t) => format!(
            "{:.0} woken and not yet polled now; longest poll {:.1} ms; since the start {:.0} polls ({:.0} slow, {:.3} s in them), {:.0} wake-ups waited {:.3} s to be polled ({:.0} over the threshold)",
            t.waiting,
            t.longest_poll_s * 1e3,
            t.polls,
            t.slow_polls,
            t.slow_poll_s,
            t.schedules,
            t.scheduled_s,
            t.long_delays
        ),
    }
}
