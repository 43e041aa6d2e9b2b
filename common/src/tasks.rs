//! Task poll and scheduling metrics: a `tokio_metrics::TaskMonitor` wraps every connection's
//! future (it wraps the future and its waker, so it works on tokio-uring's executor as on
//! tokio's), and `/metrics` exposes its cumulative counts: polls and their time, slow polls
//! (over `--slow-poll`, default 50 µs) and their time, and how long tasks waited between
//! being woken and being polled (the scheduling delay), with the long waits among them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use tokio_metrics::TaskMonitor;

use crate::metrics::write_metric;
use crate::task_waits::{TaskWaits, Timed};

/// Everything measured about the connection tasks: tokio-metrics' totals and the wait
/// histogram beside them (`task_waits.rs`).
#[derive(Debug, Clone)]
pub struct Tasks {
    pub monitor: TaskMonitor,
    /// Polls and waits over this are slow or long.
    pub threshold: Duration,
    pub waits: Arc<TaskWaits>,
}

impl Tasks {
    pub fn new(threshold: Duration) -> Self {
        Self {
            monitor: monitor(threshold),
            threshold,
            waits: Arc::new(TaskWaits::default()),
        }
    }

    /// A connection's future, measured by both.
    pub fn instrument<F: Future>(&self, f: F) -> tokio_metrics::Instrumented<Timed<F>> {
        self.monitor.instrument(self.waits.wrap(f))
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        render(&self.monitor, self.threshold, out);
        self.waits.render(out);
    }
}

/// A monitor whose slow polls and long scheduling delays are those over `threshold`.
pub fn monitor(threshold: Duration) -> TaskMonitor {
    let mut b = TaskMonitor::builder();
    b.with_slow_poll_threshold(threshold)
        .with_long_delay_threshold(threshold);
    b.build()
}

/// Appends the monitor's cumulative counts in the Prometheus text format: counters of
/// events and of their total time (seconds), as `rate()`-able pairs.
pub fn render(m: &TaskMonitor, threshold: Duration, out: &mut String) {
    let t = m.cumulative();
    let counters: [(&str, &str, f64); 9] = [
        (
            "tasks_instrumented_total",
            "Connection tasks monitored.",
            t.instrumented_count as f64,
        ),
        (
            "task_polls_total",
            "Polls of connection tasks.",
            t.total_poll_count as f64,
        ),
        (
            "task_poll_seconds_total",
            "Time spent polling connection tasks.",
            t.total_poll_duration.as_secs_f64(),
        ),
        (
            "task_slow_polls_total",
            "Polls longer than the slow-poll threshold.",
            t.total_slow_poll_count as f64,
        ),
        (
            "task_slow_poll_seconds_total",
            "Time spent in slow polls.",
            t.total_slow_poll_duration.as_secs_f64(),
        ),
        (
            "task_schedules_total",
            "Times a task was woken and then polled.",
            t.total_scheduled_count as f64,
        ),
        (
            "task_scheduled_seconds_total",
            "Time tasks waited between being woken and being polled.",
            t.total_scheduled_duration.as_secs_f64(),
        ),
        (
            "task_long_delays_total",
            "Wake-to-poll waits longer than the threshold.",
            t.total_long_delay_count as f64,
        ),
        (
            "task_long_delay_seconds_total",
            "Time spent in those long waits.",
            t.total_long_delay_duration.as_secs_f64(),
        ),
    ];
    for (name, help, value) in counters {
        write_metric(out, "counter", name, help, value);
    }
    write_metric(
        out,
        "gauge",
        "task_slow_poll_threshold_seconds",
        "Polls and wake-to-poll waits over this are slow or long.",
        threshold.as_secs_f64(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_poll_is_counted_and_exposed() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let m = monitor(Duration::from_millis(5));
        rt.block_on(m.instrument(async {
            // One poll that blocks 20 ms (slow), then one that yields at once (fast).
            std::thread::sleep(Duration::from_millis(20));
            tokio::task::yield_now().await;
        }));
        let t = m.cumulative();
        assert_eq!(t.instrumented_count, 1);
        assert!(t.total_poll_count >= 2, "{t:?}");
        assert!(t.total_slow_poll_count >= 1, "{t:?}");
        let mut text = String::new();
        render(&m, Duration::from_millis(5), &mut text);
        let slow = format!("task_slow_polls_total {}\n", t.total_slow_poll_count);
        assert!(text.contains(&slow), "{text}");
        assert!(
            text.contains("task_slow_poll_threshold_seconds 0.005\n"),
            "{text}"
        );
    }
}
