//! Why one runtime is faster: where each request's CPU went (the server's cores whole,
//! their softirq share, the load generator, the embedded broker), what each server did per
//! request over the interleaved rounds (CPU user and system, context switches, syscalls
//! and the waits among them), and who was the limit. Medians over the rounds, so one
//! disturbed round does not move them.

use crate::analysis::{median, Limit};
use crate::results::limits;
use crate::results::RoundSample;

/// Medians over a runtime's rounds; per request unless said otherwise.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mechanism {
    pub rounds: usize,
    /// Server CPU / the cores it was given (1 = saturated).
    pub server_share: Option<f64>,
    /// Bench process (load generator, embedded broker) CPU / its cores.
    pub load_share: Option<f64>,
    /// Host CPU stolen by the hypervisor (0..=1).
    pub steal: Option<f64>,
    pub user_us: Option<f64>,
    pub system_us: Option<f64>,
    pub ctx_voluntary: Option<f64>,
    pub ctx_involuntary: Option<f64>,
    pub syscalls: Option<f64>,
    pub epoll_waits: Option<f64>,
    pub io_uring_enters: Option<f64>,
    /// The server's cores' busy time per request, µs (whole cores: every task, irq and
    /// softirq on them), and the softirq part of it.
    #[serde(default)]
    pub core_us: Option<f64>,
    #[serde(default)]
    pub softirq_us: Option<f64>,
    /// The load side's CPU per request, µs: the load generator's threads and the rest of
    /// the bench process (the embedded broker, Kafka clients).
    #[serde(default)]
    pub loadgen_us: Option<f64>,
    #[serde(default)]
    pub broker_us: Option<f64>,
    /// The busy share of the server's and the load side's whole cores.
    #[serde(default)]
    pub server_core_busy: Option<f64>,
    #[serde(default)]
    pub load_core_busy: Option<f64>,
    /// Who limited most of this runtime's rounds, and in how many.
    #[serde(default)]
    pub limit: Option<Limit>,
    #[serde(default)]
    pub limit_rounds: usize,
    /// Syscalls are counted in their own round (the mechanism block's), with tracepoints
    /// attached: how much the rate changed there against the last verdict block's rounds
    /// (other processes since task metrics moved to the mechanism block), e.g.
    /// -0.04 = counting cost 4 % of throughput.
    #[serde(default)]
    pub counting_rate_change: Option<f64>,
    /// The connection tasks (tokio-metrics): polls per request, the mean poll (µs), slow
    /// polls per 1,000 requests, and the mean wait between a wake-up and its poll (µs).
    #[serde(default)]
    pub polls: Option<f64>,
    #[serde(default)]
    pub poll_us: Option<f64>,
    #[serde(default)]
    pub slow_polls_per_1k: Option<f64>,
    #[serde(default)]
    pub wake_to_poll_us: Option<f64>,
    /// Wake-to-poll waits per bucket, summed over the rounds, and the longest poll seen
    /// (µs, since the processes started).
    #[serde(default)]
    pub wake_to_poll_waits: Option<[f64; crate::results::WAIT_BUCKETS]>,
    #[serde(default)]
    pub longest_poll_us: Option<f64>,
}

impl Mechanism {
    /// From the verdict rounds, with syscalls from the mechanism rounds (`counted`; older
    /// runs counted them in the verdict rounds, and an empty `counted` reads them there).
    pub fn from_rounds(samples: &[RoundSample], counted: &[RoundSample]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let calls = if counted.is_empty() { samples } else { counted };
        let mc = |f: &dyn Fn(&RoundSample) -> Option<f64>| {
            median(&calls.iter().filter_map(f).collect::<Vec<f64>>())
        };
        let last_block = samples.iter().map(|s| s.block).max().unwrap_or(0);
        let last_rates: Vec<f64> = samples
            .iter()
            .filter(|s| s.block == last_block)
            .map(|s| s.rate)
            .collect();
        let counting_rate_change = counted
            .iter()
            .any(|s| s.syscalls.is_some())
            .then(|| {
                let c = median(&counted.iter().map(|s| s.rate).collect::<Vec<f64>>())?;
                Some(c / median(&last_rates)? - 1.0)
            })
            .flatten();
        let m = |f: &dyn Fn(&RoundSample) -> Option<f64>| {
            median(&samples.iter().filter_map(f).collect::<Vec<f64>>())
        };
        let per_req = |s: &RoundSample, x: Option<f64>| {
            (s.answered > 0).then_some(())?;
            Some(x? / s.answered as f64)
        };
        let counts = limits(&[samples]);
        let limit = counts.dominant();
        let limit_rounds = limit.map_or(0, |l| counts.of(l));
        Some(Self {
            rounds: samples.len(),
            server_share: m(&|s| s.server_share),
            load_share: m(&|s| s.load_share),
            steal: m(&|s| s.steal),
            user_us: m(&|s| per_req(s, s.server_user_s.map(|x| x * 1e6))),
            system_us: m(&|s| per_req(s, s.server_system_s.map(|x| x * 1e6))),
            ctx_voluntary: m(&|s| per_req(s, s.ctx_voluntary.map(|x| x as f64))),
            ctx_involuntary: m(&|s| per_req(s, s.ctx_involuntary.map(|x| x as f64))),
            syscalls: mc(&|s| per_req(s, s.syscalls.map(|x| x as f64))),
            epoll_waits: mc(&|s| per_req(s, s.epoll_waits.map(|x| x as f64))),
            io_uring_enters: mc(&|s| per_req(s, s.io_uring_enters.map(|x| x as f64))),
            core_us: m(&|s| per_req(s, s.server_core.map(|c| c.busy_s() * 1e6))),
            softirq_us: m(&|s| per_req(s, s.server_core.map(|c| c.softirq * c.core_s * 1e6))),
            loadgen_us: m(&|s| s.load_us_per_request().map(|l| l.0)),
            broker_us: m(&|s| s.load_us_per_request().map(|l| l.1)),
            server_core_busy: m(&|s| s.server_core.map(|c| c.busy())),
            load_core_busy: m(&|s| s.load_core.map(|c| c.busy())),
            limit,
            limit_rounds,
            counting_rate_change,
            // Task metrics: the mechanism block's processes have them (older runs had
            // them in the verdict rounds).
            polls: mc(&|s| per_req(s, s.tasks.map(|t| t.polls))),
            poll_us: mc(&|s| s.tasks?.mean_poll_us()),
            slow_polls_per_1k: mc(&|s| per_req(s, s.tasks.map(|t| t.slow_polls * 1e3))),
            wake_to_poll_us: mc(&|s| s.tasks?.mean_scheduled_us()),
            wake_to_poll_waits: calls
                .iter()
                .filter_map(|s| s.tasks)
                .map(|t| t.waits)
                .reduce(|a, b| std::array::from_fn(|i| a[i] + b[i])),
            longest_poll_us: calls
                .iter()
                .filter_map(|s| s.tasks)
                .map(|t| t.longest_poll_s * 1e6)
                .max_by(f64::total_cmp),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_per_request_over_rounds() {
        let round = |answered: u64, user_s: f64, calls: u64| RoundSample {
            rate: answered as f64,
            answered,
            wall_s: 1.0,
            server_user_s: Some(user_s),
            server_system_s: Some(user_s / 2.0),
            server_share: Some(0.9),
            load_share: Some(0.5),
            steal: Some(0.01),
            ctx_voluntary: Some(answered / 10),
            ctx_involuntary: Some(0),
            syscalls: Some(calls),
            epoll_waits: Some(calls / 4),
            io_uring_enters: None,
            ..RoundSample::default()
        };
        // Three rounds: 10, 20 and (an outlier) 90 µs of user CPU per request.
        let rounds = [
            round(1000, 0.010, 3000),
            round(1000, 0.020, 4000),
            round(1000, 0.090, 9000),
        ];
        let m = Mechanism::from_rounds(&rounds, &[]).expect("rounds");
        assert_eq!(m.rounds, 3);
        assert!((m.user_us.expect("user") - 20.0).abs() < 1e-9, "{m:?}");
        assert!((m.system_us.expect("sys") - 10.0).abs() < 1e-9);
        assert!((m.syscalls.expect("syscalls") - 4.0).abs() < 1e-9);
        assert!((m.epoll_waits.expect("waits") - 1.0).abs() < 1e-9);
        assert!((m.ctx_voluntary.expect("ctx") - 0.1).abs() < 1e-9);
        assert_eq!(m.io_uring_enters, None, "not counted stays not counted");
        assert_eq!(m.limit, Some(Limit::Server));
        assert_eq!(m.limit_rounds, 3);
        assert_eq!(m.core_us, None, "no core figures, none made up");
        assert!(Mechanism::from_rounds(&[], &[]).is_none());
        assert_eq!(m.counting_rate_change, None);
    }

    #[test]
    fn syscalls_come_from_the_counted_round_and_its_cost_is_stated() {
        let turn = |block: usize, rate: f64, calls: Option<u64>| RoundSample {
            block,
            rate,
            answered: rate as u64,
            syscalls: calls,
            ..RoundSample::default()
        };
        // Verdict rounds: no tracepoints; the last block ran at 1000 req/s.
        let verdict = [
            turn(0, 500.0, None),
            turn(1, 1000.0, None),
            turn(1, 1000.0, None),
        ];
        // The counted round ran at 950: counting cost 5 %.
        let counted = [turn(2, 950.0, Some(1900))];
        let m = Mechanism::from_rounds(&verdict, &counted).expect("m");
        assert!((m.syscalls.expect("calls") - 2.0).abs() < 1e-9, "{m:?}");
        assert!((m.counting_rate_change.expect("cost") + 0.05).abs() < 1e-9);
        assert_eq!(m.rounds, 3);
    }
}
