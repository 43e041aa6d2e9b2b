//! What a run's threads share: its settings, the request bytes, the start barrier, the
//! `requests` bound, and the per-thread progress counters the watchdog reads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::Instant;

use tokio::sync::watch;

use super::RunConfig;

/// Per-thread counters the watchdog reads; padded so two threads never share a cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(super) struct Progress {
    pub sent: AtomicU64,
    pub finished: AtomicU64,
    /// The thread has finished this run (its result is on its way).
    pub done: AtomicBool,
}

/// What all threads share during one run.
#[derive(Debug)]
pub(super) struct Shared {
    pub cfg: RunConfig,
    /// `depth` requests back to back; a batch of n is the first n * `one_len` bytes.
    pub batch: Arc<Vec<u8>>,
    pub one_len: usize,
    /// Every thread and the watchdog meet here before the run starts.
    pub barrier: Barrier,
    /// Measured requests claimed so far (the `requests` bound).
    pub claimed: AtomicU64,
    pub limit: u64,
    /// Set once, by the first thread past the start barrier.
    pub start: OnceLock<Instant>,
    pub progress: Vec<Progress>,
    /// Set by the watchdog: threads drop their runtimes, cancelling every connection.
    pub abort: watch::Sender<bool>,
    pub aborted: AtomicBool,
}

impl Shared {
    pub fn start(&self) -> Instant {
        *self.start.get_or_init(Instant::now)
    }

    pub fn measure_from(&self) -> Instant {
        self.start() + self.cfg.warmup
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.cfg.duration.map(|d| self.measure_from() + d)
    }

    /// Claims up to `n` measured requests; 0 when the `requests` bound is reached.
    pub fn claim(&self, n: usize) -> usize {
        if self.limit == u64::MAX {
            return n;
        }
        let before = self.claimed.fetch_add(n as u64, Relaxed);
        (self.limit.saturating_sub(before)).min(n as u64) as usize
    }
}
