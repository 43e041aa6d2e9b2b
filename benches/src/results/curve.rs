//! A runtime's latency curve as a run records it: open-loop points at fixed offered rates,
//! each with corrected and uncorrected percentiles, how the schedule was kept, and what the
//! server spent; plus where its raw histograms were written.

use crate::analysis::capacity::{self, Capacity};
use loadgen::{Latency, Schedule};

/// The load side's CPU share at which a point that fell behind is the client's limit too
/// (the rounds call a side at 90 % at its limit: [`crate::analysis::limits::AT_LIMIT`]).
pub const LOAD_SATURATED: f64 = crate::analysis::limits::AT_LIMIT;

/// One offered rate, one runtime.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CurvePoint {
    /// The offered rate as a fraction of the curve's base rate.
    pub fraction: f64,
    /// Requests/s asked of the load generator.
    pub offered: f64,
    /// Answers/s that came back over the measured span.
    pub achieved: f64,
    /// From each request's intended send time (coordinated-omission corrected), µs.
    pub corrected: Latency,
    /// From each request's actual send (uncorrected service time), µs.
    pub uncorrected: Latency,
    /// How the load generator kept to the schedule.
    pub schedule: Schedule,
    /// Requests without an answer, and answers that were not 2xx.
    pub errors: u64,
    pub non_2xx: u64,
    /// The server's CPU µs per answered request over the point (all its threads).
    pub cpu_us_per_request: Option<f64>,
    /// Server CPU / (wall x its cores), and the host's steal, over the point.
    pub server_share: Option<f64>,
    pub steal: Option<f64>,
    /// The load side's CPU (load generator and embedded broker: this process without the
    /// keep-awake spinners) / (wall x its cores) over the point.
    #[serde(default)]
    pub load_share: Option<f64>,
    /// The point's histograms, relative to the runtime's raw folder: `.hgrm` corrected and
    /// uncorrected (the interval log beside them holds both, whole).
    pub hgrm: Vec<String>,
    /// Each measured pass at this rate, in the order run (empty in runs from before points
    /// were measured more than once). The point's percentiles are of all passes' answers
    /// together; its schedule, load side and own delay are the worst pass's.
    #[serde(default)]
    pub passes: Vec<CurvePass>,
}

/// One measured pass of a curve point: its own figures, to show how far passes at one rate
/// differ.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CurvePass {
    /// Answers/s over the pass's measured span.
    pub achieved: f64,
    /// Corrected latency, µs.
    pub corrected: Latency,
    /// The load generator's own delay p99, µs.
    pub own_delay_p99: u64,
    pub load_share: Option<f64>,
    pub cpu_us_per_request: Option<f64>,
}

/// A point whose load generator's own delay (p99) is more than this share of the point's
/// corrected p99 measured the client's latency as much as the server's.
pub const CLIENT_DELAY_SHARE: f64 = 0.25;

impl CurvePoint {
    /// Measured the server at its offered rate: on schedule, every request answered 2xx,
    /// the load side below its limit, and the load generator's own delay a small part of
    /// the latency ([`CurvePoint::unusable_because`] says which failed).
    pub fn usable(&self) -> bool {
        self.unusable_because().is_none()
    }

    /// Unusable because of the client: the load side at its limit, the load generator's own
    /// delay too large a part of the latency, or the schedule held up by the load generator.
    pub fn client_limited(&self) -> bool {
        self.schedule.behind_cause() == Some("load generator") || self.client_cause().is_some()
    }

    /// On schedule, but the client's own limits are in the latency: the load side at its
    /// limit, or the load generator's own delay over a quarter of the point's p99.
    fn client_cause(&self) -> Option<String> {
        if let Some(l) = self.load_share.filter(|&l| l >= LOAD_SATURATED) {
            return Some(format!(
                "the load side's cores were {:.0} % busy: the load generator's own waits are in this latency",
                l * 100.0
            ));
        }
        let (own, p99) = (self.schedule.client_lag_us.p99, self.corrected.p99);
        (own as f64 > CLIENT_DELAY_SHARE * p99 as f64).then(|| {
            format!(
                "the load generator's own delay (p99 {own} µs) is more than a quarter of the point's p99 ({p99} µs): the latency is partly the client's"
            )
        })
    }

    /// The lowest and highest corrected p99 over the point's passes (with two or more).
    pub fn p99_spread(&self) -> Option<(u64, u64)> {
        let p99s = self.passes.iter().map(|p| p.corrected.p99);
        let lo = p99s.clone().min()?;
        let hi = p99s.max()?;
        (self.passes.len() >= 2).then_some((lo, hi))
    }

    /// Why the point does not show the server's latency at its rate, if it does not.
    pub fn unusable_because(&self) -> Option<String> {
        if let Some(cause) = self.schedule.behind_cause() {
            let behind = self.schedule.behind * 100.0;
            // A saturated load side reads answers late, and that wait looks like the
            // server's: say so rather than blame either.
            return Some(match self.load_share {
                Some(l) if l >= LOAD_SATURATED => format!(
                    "fell behind its schedule by {behind:.1} % with the load side's cores {:.0} % busy: the client's limit as much as the server's",
                    l * 100.0
                ),
                _ => format!("fell behind its schedule by {behind:.1} % (held up by the {cause})"),
            });
        }
        if self.errors + self.non_2xx > 0 {
            return Some(format!(
                "{} errors, {} non-2xx answers",
                self.errors, self.non_2xx
            ));
        }
        self.client_cause()
    }
}

/// A runtime's curve on one workload.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Curve {
    /// The rate the fractions are of (req/s), and where it came from.
    pub base_rate: f64,
    pub base_from: String,
    /// Cores were kept awake by idle-priority spinners during the passes.
    pub cores_awake: bool,
    /// The interval log with every point's histograms (relative to the raw folder).
    pub hlog: Option<String>,
    pub points: Vec<CurvePoint>,
}

impl Curve {
    /// The highest offered rate whose p99 (corrected) stays within `objective_us`.
    pub fn capacity_at(&self, objective_us: u64) -> Option<Capacity> {
        let points: Vec<capacity::Point> = self
            .points
            .iter()
            .map(|p| capacity::Point {
                offered: p.offered,
                p99_us: p.corrected.p99,
                usable: p.usable(),
                client_limited: p.client_limited(),
            })
            .collect();
        capacity::capacity_at(&points, objective_us)
    }
}
