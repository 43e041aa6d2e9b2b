//! A block's rounds: with one fresh server process per runtime, once each has delivered a
//! record to Kafka (`Subject::wait_until_publishing`), a warm-up of each, then `n` rounds
//! whose orders form a Latin square ([`crate::analysis::design::block_order`]); before
//! each turn the previous turn's server is let settle (bounded) and the turn's own server
//! gets an unmeasured warm-up. After them, one paced round: every runtime at the same
//! offered rate, for the efficiency verdict (the round's order is the block's Latin-square
//! round `block mod n`, so over the blocks every runtime takes every position). The
//! mechanism block's one round is a turn like a verdict turn on processes with task
//! metrics on, with syscall tracepoints attached (unless `BENCH_SYSCALLS=0`).

use std::time::Duration;

use super::Subject;
use crate::analysis::design::block_order;
use crate::results::{RawResult, RoundSample};
use crate::workload::Timing;

/// Which rounds a turn goes to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Purpose {
    /// The verdict's rounds: no tracepoints attached.
    Verdict,
    /// One round on the mechanism block's processes (task metrics on), with syscalls
    /// counted if `syscalls`.
    Mechanism { syscalls: bool },
    /// One round paced (open loop) at `rate` req/s, for the efficiency verdict.
    Efficiency { rate: f64 },
}

/// Runs block `block`'s rounds (or, for [`Purpose::Mechanism`], one round) and records
/// every turn. `false` if a load failed: the failure is the subject's, and the workload's
/// blocks end there (every recorded round has every runtime).
pub(super) fn run(
    live: &mut [(&mut RawResult, &mut Subject)],
    block: usize,
    seed: u64,
    timing: &Timing,
    purpose: Purpose,
) -> bool {
    let n = live.len();
    if n < 2 {
        return true;
    }
    let mut rounds = block_order(n, block, seed);
    match purpose {
        Purpose::Verdict => {}
        Purpose::Mechanism { syscalls } => {
            rounds.truncate(1);
            for (_, s) in live.iter_mut() {
                s.count_syscalls(syscalls);
            }
        }
        Purpose::Efficiency { .. } => rounds = vec![rounds.swap_remove(block % n)],
    }
    let mut previous: Option<usize> = None;
    if matches!(purpose, Purpose::Verdict | Purpose::Mechanism { .. }) {
        // Fresh processes: publishing, then warm.
        for (_, s) in live.iter_mut() {
            if s.wait_until_publishing(Duration::from_secs(10)).is_err() {
                return false;
            }
        }
        for &i in &rounds[0] {
            if !live[i].1.warm(timing.block_warm_up) {
                return false;
            }
            previous = Some(i);
        }
    }
    let mut ok = true;
    'rounds: for (r, order) in rounds.iter().enumerate() {
        let mut samples: Vec<Option<RoundSample>> = vec![None; n];
        for (position, &i) in order.iter().enumerate() {
            let settle = previous.and_then(|p| live[p].1.settle(timing.settle_max));
            previous = Some(i);
            let s = &mut live[i].1;
            let measured = match purpose {
                Purpose::Efficiency { rate } => s
                    .warm_paced(rate, timing.turn_warm_up)
                    .then(|| s.paced_run(rate, Duration::ZERO, timing.turn))
                    .flatten(),
                _ => s
                    .warm(timing.turn_warm_up)
                    .then(|| s.timed_run(timing.turn))
                    .flatten(),
            };
            let Some((_, mut sample)) = measured else {
                ok = false;
                break 'rounds;
            };
            sample.block = block;
            sample.round = r;
            sample.position = position;
            sample.settle_ms = settle.map(|d| d.as_secs_f64() * 1e3);
            samples[i] = Some(sample);
        }
        for ((raw, _), s) in live.iter_mut().zip(samples.into_iter().flatten()) {
            match purpose {
                Purpose::Verdict => raw.round_samples.push(s),
                Purpose::Mechanism { .. } => raw.mechanism_samples.push(s),
                Purpose::Efficiency { .. } => raw.efficiency_samples.push(s),
            }
        }
    }
    if let Purpose::Mechanism { syscalls: true } = purpose {
        for (raw, s) in live.iter_mut() {
            raw.syscalls_unavailable = s.syscalls_unavailable();
            s.count_syscalls(false);
        }
    }
    ok
}

/// The efficiency rounds' offered rate: `share` of the lowest median rate any runtime
/// reached in block 0's verdict rounds (the lower runtime's capacity), so every runtime can
/// hold it and the load side has headroom. `None` before block 0 has rounds.
pub(super) fn efficiency_rate(live: &[(&mut RawResult, &mut Subject)], share: f64) -> Option<f64> {
    live.iter()
        .map(|(raw, _)| {
            let rates: Vec<f64> = raw
                .round_samples
                .iter()
                .filter(|s| s.block == 0)
                .map(|s| s.rate)
                .collect();
            crate::analysis::median(&rates)
        })
        .collect::<Option<Vec<f64>>>()?
        .into_iter()
        .reduce(f64::min)
        .map(|r| (r * share).round().max(1.0))
}
