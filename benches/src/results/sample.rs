//! One runtime's turn, as recorded ([`RoundSample`]), and the verdicts computed from a
//! workload's turns: throughput ([`assess_rounds`]) and CPU per request at a fixed offered
//! rate ([`assess_efficiency`]). The runner and the report both call these, so a report
//! rebuilt from a results folder decides exactly as the run did.

use crate::analysis::{self, Assessment, Limit, Limits, Rules};
use crate::cores::CoreSplit;
use crate::runtime::Runtime;

/// One runtime's turn in one round of a block: its rate, who was the limit, and the
/// mechanism behind the rate (what the server did per request).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoundSample {
    /// The block (one set of fresh server processes) and the round inside it.
    #[serde(default)]
    pub block: usize,
    #[serde(default)]
    pub round: usize,
    /// The turn's position in its round's order (0 = first).
    #[serde(default)]
    pub position: usize,
    /// How long the turn waited for the previous turn's server to go idle, ms (`None`:
    /// it did not go idle within the bound, or there was no previous turn to wait for).
    #[serde(default)]
    pub settle_ms: Option<f64>,
    /// Achieved req/s.
    pub rate: f64,
    pub answered: u64,
    /// Wall time of the turn, s.
    pub wall_s: f64,
    /// The server's CPU time (all its threads, process level), s.
    pub server_user_s: Option<f64>,
    pub server_system_s: Option<f64>,
    /// Server CPU / (wall x the cores it was given): near 1 = saturated.
    pub server_share: Option<f64>,
    /// The bench process's CPU (load generator and embedded broker) / (wall x its cores).
    pub load_share: Option<f64>,
    /// The host's CPU time stolen by the hypervisor over the turn (0..=1).
    pub steal: Option<f64>,
    /// The server's context switches (threads alive at the end).
    pub ctx_voluntary: Option<u64>,
    pub ctx_involuntary: Option<u64>,
    /// The server's syscalls: all, and the waits (epoll_wait + epoll_pwait, io_uring_enter).
    pub syscalls: Option<u64>,
    pub epoll_waits: Option<u64>,
    pub io_uring_enters: Option<u64>,
    /// The server's cores over the turn, whole (every task, irq and softirq on them:
    /// [`crate::cores`]); `None` where the server has no cores of its own (shared layout).
    #[serde(default)]
    pub server_core: Option<CoreSplit>,
    /// The load side's cores (load generator, embedded broker) over the turn, whole.
    #[serde(default)]
    pub load_core: Option<CoreSplit>,
    /// This process's CPU over the turn, s: its load-generator threads, and every other
    /// thread (the embedded broker's, the Kafka clients'); scheduler clock (ns).
    #[serde(default)]
    pub loadgen_cpu_s: Option<f64>,
    #[serde(default)]
    pub broker_cpu_s: Option<f64>,
    /// A paced turn's offered rate, req/s (`None`: a closed loop).
    #[serde(default)]
    pub offered: Option<f64>,
    /// The server's threads' CPU over the turn on the scheduler's clock (ns, per thread:
    /// a thread that ended during the turn loses its time in it), s.
    #[serde(default)]
    pub server_sched_s: Option<f64>,
    /// The server's connection tasks over the turn: polls, slow polls, wake-to-poll waits
    /// (its `/metrics`, tokio-metrics; `None`: not monitored or unreadable).
    #[serde(default)]
    pub tasks: Option<super::TaskCounts>,
}

impl RoundSample {
    /// Who limited this turn: each side's whole-core busy share where it has cores of its
    /// own, else its processes' CPU share. `None` without CPU figures.
    pub fn limit(&self) -> Option<Limit> {
        let server = self.server_core.map(|c| c.busy()).or(self.server_share)?;
        let load = self.load_core.map(|c| c.busy()).or(self.load_share)?;
        Some(Limit::classify(server, load))
    }

    /// Server CPU µs per answered request (the server's processes).
    pub fn cpu_us_per_request(&self) -> Option<f64> {
        let cpu = self.server_user_s? + self.server_system_s?;
        (self.answered > 0).then(|| cpu * 1e6 / self.answered as f64)
    }

    /// The server's cores' busy µs per answered request (whole cores: its softirq too);
    /// the server's own CPU where it has no cores of its own.
    pub fn core_us_per_request(&self) -> Option<f64> {
        match self.server_core {
            Some(c) => (self.answered > 0).then(|| c.busy_s() * 1e6 / self.answered as f64),
            None => self.cpu_us_per_request(),
        }
    }

    /// The server's threads' CPU µs per answered request on the scheduler clock.
    pub fn sched_us_per_request(&self) -> Option<f64> {
        (self.answered > 0).then_some(self.server_sched_s? * 1e6 / self.answered as f64)
    }

    /// The load side's CPU µs per answered request: (load generator, everything else).
    pub fn load_us_per_request(&self) -> Option<(f64, f64)> {
        let per = |s: f64| s * 1e6 / self.answered as f64;
        (self.answered > 0).then_some((per(self.loadgen_cpu_s?), per(self.broker_cpu_s?)))
    }

    /// A paced turn held its offered rate (within 3 %).
    pub fn held_rate(&self) -> bool {
        self.offered.is_none_or(|o| self.rate >= 0.97 * o)
    }
}

/// Who limited each turn of the given runtimes.
pub fn limits(runtimes: &[&[RoundSample]]) -> Limits {
    Limits::count(
        runtimes
            .iter()
            .flat_map(|s| s.iter().filter_map(RoundSample::limit)),
    )
}

/// Rates grouped by block, each block's rounds in round order.
pub fn rates_by_block(samples: &[RoundSample]) -> Vec<Vec<f64>> {
    by_block(samples, |s| s.rate)
}

/// A figure of each turn grouped by block, each block's rounds in round order (a turn
/// without the figure gives NaN, which drops its block from the verdict).
pub(super) fn by_block(
    samples: &[RoundSample],
    figure: impl Fn(&RoundSample) -> f64,
) -> Vec<Vec<f64>> {
    let blocks = samples.iter().map(|s| s.block + 1).max().unwrap_or(0);
    let mut v = vec![Vec::new(); blocks];
    let mut sorted: Vec<&RoundSample> = samples.iter().collect();
    sorted.sort_by_key(|s| (s.block, s.round));
    for s in sorted {
        v[s.block].push(figure(s));
    }
    v
}

/// A workload's throughput verdict from its runtimes' rounds (`samples(runtime)`: that
/// runtime's verdict rounds, empty if not measured): the one function the runner and the
/// report both call. Withheld unless most turns were server-limited. `None` when
/// tokio-uring has no rounds.
pub fn assess_rounds<'a>(
    samples: impl Fn(Runtime) -> &'a [RoundSample],
    rules: &Rules,
) -> Option<Assessment> {
    if samples(Runtime::Uring).is_empty() {
        return None;
    }
    let limits = limits(&[
        samples(Runtime::Tokio),
        samples(Runtime::Uring),
        samples(Runtime::TokioTwin),
    ]);
    let mut a = analysis::assess(
        &rates_by_block(samples(Runtime::Tokio)),
        &rates_by_block(samples(Runtime::Uring)),
        &rates_by_block(samples(Runtime::TokioTwin)),
        limits.withholds_throughput().as_deref(),
        rules,
    );
    a.limits = Some(limits);
    Some(a)
}

/// A workload's efficiency verdict from its paced turns (`samples(runtime)`: every
/// runtime paced at the same offered rate): requests per busy second of the server's
/// cores, so "tokio-uring faster" reads "tokio-uring needs less CPU per request" (see
/// [`crate::analysis::Verdict::efficiency_text`]). Withheld when most paced turns missed
/// their rate (then the server or the load generator was saturated, and the figure is not
/// at the stated load). `None` when tokio-uring has no paced turns.
pub fn assess_efficiency<'a>(
    samples: impl Fn(Runtime) -> &'a [RoundSample],
    rules: &Rules,
) -> Option<Assessment> {
    if samples(Runtime::Uring).is_empty() {
        return None;
    }
    let all = [
        samples(Runtime::Tokio),
        samples(Runtime::Uring),
        samples(Runtime::TokioTwin),
    ];
    let turns: usize = all.iter().map(|s| s.len()).sum();
    let missed: usize = all
        .iter()
        .map(|s| s.iter().filter(|t| !t.held_rate()).count())
        .sum();
    let withheld = (missed * 2 > turns).then(|| {
        format!("{missed} of {turns} paced turns fell more than 3 % short of the offered rate: the CPU per request is not at the stated load")
    });
    let per_core_s = |s: &RoundSample| s.core_us_per_request().map_or(f64::NAN, |us| 1e6 / us);
    Some(analysis::assess(
        &by_block(all[0], per_core_s),
        &by_block(all[1], per_core_s),
        &by_block(all[2], per_core_s),
        withheld.as_deref(),
        rules,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One turn of block `b`: `answered` requests in 1 s, the server's core `busy` and the
    /// load side's `load` of their time (µs clock), paced at `offered` if given.
    fn turn(b: usize, answered: u64, busy: f64, load: f64, offered: Option<f64>) -> RoundSample {
        let core = |share: f64| {
            CoreSplit {
                core_s: 1.0,
                ..CoreSplit::default()
            }
            .refine(((1.0 - share) * 1e6) as u64, 1.0, 1)
        };
        RoundSample {
            block: b,
            rate: answered as f64,
            answered,
            wall_s: 1.0,
            server_core: Some(core(busy)),
            load_core: Some(core(load)),
            offered,
            ..RoundSample::default()
        }
    }

    #[test]
    fn efficiency_verdict_from_paced_turns_on_synthetic_data() {
        // 8 blocks at 50k req/s offered: tokio and its twin busy 60 % of the core (12 µs
        // per request), tokio-uring 48 % (9.6 µs: 20 % less), with block-level wobble.
        let wobble = [1.0, 1.03, 0.98, 1.01, 0.97, 1.02, 0.99, 1.0];
        let at = |busy: f64| -> Vec<RoundSample> {
            (0..8)
                .map(|b| turn(b, 50_000, busy * wobble[b], 0.5, Some(50_000.0)))
                .collect()
        };
        let (t, u, w) = (at(0.60), at(0.48), at(0.60));
        let pick = |rt: Runtime| match rt {
            Runtime::Tokio => &t[..],
            Runtime::Uring => &u[..],
            _ => &w[..],
        };
        let a = assess_efficiency(pick, &Rules::default()).expect("assessed");
        assert!(
            a.verdict
                .efficiency_text()
                .starts_with("tokio-uring uses 20.0 % less CPU per request"),
            "{a:?}"
        );
        assert!((t[0].core_us_per_request().expect("µs") - 12.0).abs() < 1e-6);
        // The same turns, most of them short of the offered rate: withheld.
        let short: Vec<RoundSample> = u
            .iter()
            .map(|s| RoundSample {
                rate: 40_000.0,
                ..*s
            })
            .collect();
        let t_short: Vec<RoundSample> = t
            .iter()
            .map(|s| RoundSample {
                rate: 40_000.0,
                ..*s
            })
            .collect();
        let a = assess_efficiency(
            |rt| match rt {
                Runtime::Tokio => &t_short[..],
                Runtime::Uring => &short[..],
                _ => &w[..],
            },
            &Rules::default(),
        )
        .expect("assessed");
        assert!(
            matches!(&a.verdict, analysis::Verdict::Undecided { reason, .. } if reason.starts_with("16 of 24 paced turns fell more than 3 % short")),
            "{a:?}"
        );
    }

    #[test]
    fn throughput_verdict_withheld_when_most_turns_were_co_limited() {
        // tokio-uring 20 % faster in every block, but both sides' cores at 95 %.
        let at = |rate: u64, load: f64| -> Vec<RoundSample> {
            (0..8).map(|b| turn(b, rate, 0.95, load, None)).collect()
        };
        let (t, u) = (at(100_000, 0.95), at(120_000, 0.95));
        let a = assess_rounds(
            |rt| if rt == Runtime::Uring { &u[..] } else { &t[..] },
            &Rules::default(),
        )
        .expect("assessed");
        assert_eq!(a.limits.map(|l| l.co), Some(24));
        assert!(
            matches!(&a.verdict, analysis::Verdict::Undecided { reason, .. } if reason.starts_with("co-limited in 24 of 24 turns")),
            "{a:?}"
        );
        // The same rates with the load side at 50 %: server-limited, decided.
        let (t, u) = (at(100_000, 0.5), at(120_000, 0.5));
        let a = assess_rounds(
            |rt| if rt == Runtime::Uring { &u[..] } else { &t[..] },
            &Rules::default(),
        )
        .expect("assessed");
        assert!(
            a.verdict.text().starts_with("tokio-uring faster by 20.0 %"),
            "{a:?}"
        );
    }
}
