//! A block's rounds: with one fresh server process per runtime, once each has delivered a
//! record to Kafka (`Subject::wait_until_publishing`), a warm-up of each, then `n` rounds
//! whose orders form a Latin square ([`crate::analysis::design::block_order`]); before
//! each turn the previous turn's server is let settle (bounded) and the turn's own server
//! gets an unmeasured warm-up. The mechanism round after the last block's rounds is the
//! same turn with syscall tracepoints attached.

use std::time::Duration;

use super::Subject;
use crate::analysis::design::block_order;
use crate::results::{RawResult, RoundSample};
use crate::workload::Timing;

/// Which rounds a turn goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// The verdict's rounds: no tracepoints attached.
    Verdict,
    /// One round with syscalls counted, after the verdict's.
    Mechanism,
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
    if purpose == Purpose::Mechanism {
        rounds.truncate(1);
        for (_, s) in live.iter_mut() {
            s.count_syscalls(true);
        }
    }
    let mut previous: Option<usize> = None;
    if purpose == Purpose::Verdict {
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
            if !s.warm(timing.turn_warm_up) {
                ok = false;
                break 'rounds;
            }
            let Some((_, mut sample)) = s.timed_run(timing.turn) else {
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
                Purpose::Mechanism => raw.mechanism_samples.push(s),
            }
        }
    }
    if purpose == Purpose::Mechanism {
        for (raw, s) in live.iter_mut() {
            raw.syscalls_unavailable = s.syscalls_unavailable();
            s.count_syscalls(false);
        }
    }
    ok
}
