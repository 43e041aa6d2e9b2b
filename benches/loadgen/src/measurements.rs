//! Measurements as data: per-thread latency histograms, counts by status and error kind, and
//! a per-second timeline, merged once at the end of a run.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Why a request did not get an HTTP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Connection refused (nothing listening, or the backlog overflowed).
    Refused,
    /// EADDRNOTAVAIL: no free (source address, port) for a new connection.
    AddrNotAvailable,
    /// Connection reset by the server.
    Reset,
    /// The server closed the connection with requests outstanding.
    Closed,
    /// No response within the request timeout.
    Timeout,
    /// The response was not HTTP as expected.
    Malformed,
    /// Any other I/O error.
    Other,
}

impl ErrorKind {
    pub fn of(e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match (e.kind(), e.raw_os_error()) {
            (_, Some(libc::EADDRNOTAVAIL)) | (K::AddrNotAvailable, _) => Self::AddrNotAvailable,
            (K::ConnectionRefused, _) => Self::Refused,
            (K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe, _) => Self::Reset,
            (K::UnexpectedEof, _) => Self::Closed,
            (K::TimedOut, _) => Self::Timeout,
            (K::InvalidData, _) => Self::Malformed,
            _ => Self::Other,
        }
    }
}

/// Latency histogram bounds: 1 µs to 1 h, 3 significant figures (values in µs).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One thread's measurements.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Latency of each measured response, in µs: from its intended send time in an open
    /// loop (coordinated-omission corrected), from its send in a closed one.
    pub latency: Histogram<u64>,
    /// Service time of each measured response, in µs: from when it was actually sent
    /// (connect included for connection per request). Uncorrected.
    pub service: Histogram<u64>,
    /// Open loop: how late each measured request went out after its intended send, µs.
    pub lag: Histogram<u64>,
    /// Open loop: the part of `lag` the load generator caused itself — the time from when
    /// the connection was free (its last answer in, or the slot, whichever was later) to
    /// the send. The rest of the lag was spent waiting for the server's previous answer.
    pub client_lag: Histogram<u64>,
    /// Open loop, since measuring started: the latest intended send, the latest actual one.
    pub last_slot: Duration,
    pub last_send: Duration,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no response, by why.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Per second since the measurement started: (responses, errors).
    pub timeline: Vec<(u64, u64)>,
    /// Connections opened (connection-per-request mode: one per request).
    pub connects: u64,
    /// Each connection's ids in this run (`crate::ids`), warm-up included: every request
    /// sent reaches the server, measured or not.
    pub ids: Vec<crate::ids::StreamRecorder>,
    /// What the warm-up's requests got: not measured, but sent (a delivery check counts
    /// them).
    pub warmup: WarmUp,
}

/// The warm-up's answers and errors, counted but not measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WarmUp {
    pub answered: u64,
    /// Of `answered`, 2xx.
    pub ok: u64,
    /// Of `answered`, 503.
    pub refused: u64,
    /// Requests that got no answer.
    pub errors: u64,
}

impl WarmUp {
    /// An answer with `status` during the warm-up.
    pub fn answer(&mut self, status: u16) {
        self.answered += 1;
        self.ok += u64::from((200..300).contains(&status));
        self.refused += u64::from(status == 503);
    }

    fn add(&mut self, o: &WarmUp) {
        self.answered += o.answered;
        self.ok += o.ok;
        self.refused += o.refused;
        self.errors += o.errors;
    }
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            latency: histogram(),
            service: histogram(),
            lag: histogram(),
            client_lag: histogram(),
            last_slot: Duration::ZERO,
            last_send: Duration::ZERO,
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            timeline: Vec::new(),
            connects: 0,
            ids: Vec::new(),
            warmup: WarmUp::default(),
        }
    }
}

impl Stats {
    fn second(&mut self, at: Duration) -> &mut (u64, u64) {
        let s = at.as_secs() as usize;
        if self.timeline.len() <= s {
            self.timeline.resize(s + 1, (0, 0));
        }
        &mut self.timeline[s]
    }

    /// A response with `status`, `latency` after its (intended) send, `service` after its
    /// actual send, `at` after the start.
    pub fn response(&mut self, status: u16, latency: Duration, service: Duration, at: Duration) {
        self.latency.saturating_record(micros(latency).max(1));
        self.service.saturating_record(micros(service).max(1));
        *self.statuses.entry(status).or_default() += 1;
        self.second(at).0 += 1;
    }

    /// Open loop: `n` measured requests (a pipelined window, else one) intended for `slot`
    /// went out at `sent`; their connection was free from `free` on. Times since measuring
    /// started.
    pub fn sent_on_schedule(&mut self, slot: Duration, free: Duration, sent: Duration, n: u64) {
        self.lag
            .saturating_record_n(micros(sent.saturating_sub(slot)), n);
        self.client_lag
            .saturating_record_n(micros(sent.saturating_sub(slot.max(free))), n);
        self.last_slot = self.last_slot.max(slot);
        self.last_send = self.last_send.max(sent);
    }

    /// `n` requests that got no response.
    pub fn error(&mut self, kind: ErrorKind, n: u64, at: Duration) {
        *self.errors.entry(kind).or_default() += n;
        self.second(at).1 += n;
    }

    /// Folds another thread's measurements into this one.
    pub fn merge(&mut self, other: &Stats) {
        // Same bounds on both sides: addition cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        let _ = self.lag.add(&other.lag);
        let _ = self.client_lag.add(&other.client_lag);
        self.last_slot = self.last_slot.max(other.last_slot);
        self.last_send = self.last_send.max(other.last_send);
        for (k, v) in &other.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        for (k, v) in &other.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        if self.timeline.len() < other.timeline.len() {
            self.timeline.resize(other.timeline.len(), (0, 0));
        }
        for (mine, theirs) in self.timeline.iter_mut().zip(&other.timeline) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
        self.connects += other.connects;
        self.ids.extend(other.ids.iter().cloned());
        self.warmup.add(&other.warmup);
    }

    pub fn responses(&self) -> u64 {
        self.statuses.values().sum()
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Responses with a 2xx status.
    pub fn ok(&self) -> u64 {
        self.statuses.range(200..300).map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_everything() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        for i in 1..=1000u64 {
            a.response(
                202,
                Duration::from_micros(i),
                Duration::from_micros(i),
                Duration::from_millis(100),
            );
            b.response(
                503,
                Duration::from_micros(1000 + i),
                Duration::from_micros(i),
                Duration::from_millis(1500),
            );
        }
        b.error(ErrorKind::Reset, 3, Duration::from_millis(2500));
        a.merge(&b);
        assert_eq!(a.responses(), 2000);
        assert_eq!(a.ok(), 1000);
        assert_eq!(a.errors_total(), 3);
        assert_eq!(a.latency.len(), 2000);
        let p50 = a.latency.value_at_quantile(0.5);
        assert!((995..=1005).contains(&p50), "p50 {p50}");
        assert_eq!(a.latency.max(), a.latency.highest_equivalent(2000));
        assert_eq!(a.service.max(), a.service.highest_equivalent(1000));
        assert_eq!(a.service.len(), 2000);
        let mut c = Stats::default();
        c.sent_on_schedule(
            Duration::from_millis(10),
            Duration::from_millis(12),
            Duration::from_millis(13),
            4,
        );
        c.warmup.answer(202);
        c.warmup.answer(503);
        a.merge(&c);
        assert_eq!(a.lag.len(), 4, "a window of 4 requests, one slot");
        assert_eq!(
            a.warmup,
            WarmUp {
                answered: 2,
                ok: 1,
                refused: 1,
                errors: 0
            }
        );
        assert_eq!(
            a.lag.max(),
            a.lag.highest_equivalent(3000),
            "3 ms after the slot"
        );
        assert_eq!(
            a.client_lag.max(),
            a.client_lag.highest_equivalent(1000),
            "1 ms after the connection was free"
        );
        assert_eq!(a.last_send, Duration::from_millis(13));
        assert_eq!(a.timeline, vec![(1000, 0), (1000, 0), (0, 3)]);
    }

    #[test]
    fn error_kinds_from_io_errors() {
        use std::io::{Error, ErrorKind as K};
        assert_eq!(
            ErrorKind::of(&Error::from_raw_os_error(libc::EADDRNOTAVAIL)),
            ErrorKind::AddrNotAvailable
        );
        assert_eq!(
            ErrorKind::of(&Error::from_raw_os_error(libc::ECONNREFUSED)),
            ErrorKind::Refused
        );
        assert_eq!(
            ErrorKind::of(&Error::from_raw_os_error(libc::ECONNRESET)),
            ErrorKind::Reset
        );
        assert_eq!(
            ErrorKind::of(&Error::from(K::UnexpectedEof)),
            ErrorKind::Closed
        );
    }
}
