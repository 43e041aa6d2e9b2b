//! What tokio-metrics' totals do not show: how the wait between a task's wake-up and its
//! poll is distributed, the longest poll, and how many tasks are woken and waiting right
//! now. [`TaskWaits::wrap`] puts a thin layer around each connection future (inside the
//! `TaskMonitor`'s): its own waker records when the task was woken, and each poll records
//! the wait since then and its own length. Runtime-agnostic, like the monitor.

use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use crate::metrics::write_metric;

/// Upper bounds of the wait histogram's buckets: 1 µs, 2 µs, 4 µs, ... 16,384 µs; one more
/// bucket above (`+Inf`).
pub const BOUNDS_US: [u64; 15] = [
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
];

/// One process's waits and polls, shared by every wrapped task.
#[derive(Debug)]
pub struct TaskWaits {
    epoch: Instant,
    /// Wake-to-poll waits per bucket (not cumulative), the last one above every bound.
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    wait_ns: AtomicU64,
    longest_poll_ns: AtomicU64,
    /// Tasks woken and not yet polled, now.
    waiting: AtomicI64,
}

impl Default for TaskWaits {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            buckets: Default::default(),
            wait_ns: AtomicU64::new(0),
            longest_poll_ns: AtomicU64::new(0),
            waiting: AtomicI64::new(0),
        }
    }
}

/// A bucket index for a wait of `ns`.
fn bucket(ns: u64) -> usize {
    let us = ns.div_ceil(1000);
    BOUNDS_US
        .iter()
        .position(|&b| us <= b)
        .unwrap_or(BOUNDS_US.len())
}

impl TaskWaits {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// `fut`, timed: its wake-to-poll waits and its polls are recorded here.
    pub fn wrap<F: Future>(self: &Arc<Self>, fut: F) -> Timed<F> {
        let task = Arc::new(TaskWake {
            waits: self.clone(),
            woken_at: AtomicU64::new(0),
            done: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        Timed {
            inner: Box::pin(fut),
            waker: Waker::from(task.clone()),
            task,
        }
    }

    /// Appends the histogram (Prometheus text, seconds), the longest poll since the start
    /// and the tasks waiting now.
    pub fn render(&self, out: &mut String) {
        let name = "task_wake_to_poll_seconds";
        let _ = write!(
            out,
            "# HELP {name} Waits between a connection task's wake-up and its poll.\n# TYPE {name} histogram\n"
        );
        let mut cumulative = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Relaxed);
            let le = BOUNDS_US
                .get(i)
                .map_or("+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = write!(
            out,
            "{name}_sum {}\n{name}_count {cumulative}\n",
            self.wait_ns.load(Relaxed) as f64 / 1e9
        );
        write_metric(
            out,
            "gauge",
            "task_longest_poll_seconds",
            "The longest single poll of a connection task since the start.",
            self.longest_poll_ns.load(Relaxed) as f64 / 1e9,
        );
        write_metric(
            out,
            "gauge",
            "tasks_waiting_to_be_polled",
            "Connection tasks woken and not yet polled, now.",
            self.waiting.load(Relaxed).max(0),
        );
    }
}

/// A task's waker: notes when it was woken, then wakes the task.
#[derive(Debug)]
struct TaskWake {
    waits: Arc<TaskWaits>,
    /// When it was woken (ns since the epoch), 0: not since its last poll.
    woken_at: AtomicU64,
    /// The task finished: later wake-ups are not waits.
    done: AtomicBool,
    /// The runtime's waker for the task, as of its last poll.
    waker: Mutex<Option<Waker>>,
}

impl Wake for TaskWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.done.load(Relaxed) {
            let now = self.waits.now_ns().max(1);
            if self
                .woken_at
                .compare_exchange(0, now, Relaxed, Relaxed)
                .is_ok()
            {
                self.waits.waiting.fetch_add(1, Relaxed);
            }
        }
        if let Some(w) = self.waker.lock().ok().and_then(|w| w.clone()) {
            w.wake();
        }
    }
}

/// A wrapped future (see [`TaskWaits::wrap`]).
#[derive(Debug)]
pub struct Timed<F> {
    inner: Pin<Box<F>>,
    task: Arc<TaskWake>,
    waker: Waker,
}

impl<F: Future> Future for Timed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Every field is Unpin (the future itself is boxed).
        let this = self.get_mut();
        if let Ok(mut w) = this.task.waker.lock() {
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
        let waits = &this.task.waits;
        let start = waits.now_ns();
        let woken = this.task.woken_at.swap(0, Relaxed);
        if woken != 0 {
            let wait = start.saturating_sub(woken);
            waits.buckets[bucket(wait)].fetch_add(1, Relaxed);
            waits.wait_ns.fetch_add(wait, Relaxed);
            waits.waiting.fetch_sub(1, Relaxed);
        }
        let out = this
            .inner
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker));
        waits
            .longest_poll_ns
            .fetch_max(waits.now_ns().saturating_sub(start), Relaxed);
        out
    }
}

impl<F> Drop for Timed<F> {
    fn drop(&mut self) {
        self.task.done.store(true, Relaxed);
        if self.task.woken_at.swap(0, Relaxed) != 0 {
            self.task.waits.waiting.fetch_sub(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn waits_land_in_their_buckets() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1_000), 0, "1 µs is in the first bucket");
        assert_eq!(bucket(1_001), 1);
        assert_eq!(bucket(100_000), 7, "100 µs: (64, 128]");
        assert_eq!(
            bucket(20_000_000),
            BOUNDS_US.len(),
            "20 ms: above every bound"
        );
    }

    #[test]
    fn a_woken_task_waits_and_a_long_poll_is_kept() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let waits = Arc::new(TaskWaits::default());
        rt.block_on(async {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(waits.wrap(async move {
                rx.await.expect("sent");
                // A poll that blocks 5 ms.
                std::thread::sleep(Duration::from_millis(5));
            }));
            tokio::task::yield_now().await;
            // Woken now; polled only once this task yields again, 3 ms later.
            tx.send(()).expect("receiver");
            assert_eq!(waits.waiting.load(Relaxed), 1, "woken and waiting");
            std::thread::sleep(Duration::from_millis(3));
            task.await.expect("task");
        });
        let mut text = String::new();
        waits.render(&mut text);
        assert_eq!(waits.waiting.load(Relaxed), 0, "{text}");
        assert!(waits.longest_poll_ns.load(Relaxed) >= 5_000_000, "{text}");
        // The first poll (spawn) was not a wake-up; the wake by the channel was, waiting
        // at least 3 ms: in the (2048, 4096] µs bucket or above.
        let waited: u64 = waits.buckets[12..].iter().map(|b| b.load(Relaxed)).sum();
        assert_eq!(waited, 1, "{text}");
        assert!(
            text.contains("task_wake_to_poll_seconds_count 1\n"),
            "{text}"
        );
        assert!(text.contains("tasks_waiting_to_be_polled 0\n"), "{text}");
    }
}
