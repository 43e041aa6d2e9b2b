//! Interleaved rounds: with every runtime's server up, each is measured for a fixed turn in
//! alternating order (A B C, C B A, ...), so a drift in the machine's speed lands on both
//! sides of each round's ratios. Rounds are added until the verdict is decided or the
//! rules' budget (rounds, time) is spent ([`crate::analysis::keep_going`]).

use std::time::{Duration, Instant};

use super::Subject;
use crate::analysis::{assess, keep_going, Assessment, Rules};
use crate::results::{client_bound_rounds, RawResult, RoundSample};
use crate::server::Runtime;

/// Rates of `runtime` per round (empty if it is not among `live`).
fn rates(live: &[(&mut RawResult, &mut Subject)], runtime: Runtime) -> Vec<f64> {
    live.iter()
        .find(|(r, _)| r.runtime == runtime)
        .map_or_else(Vec::new, |(r, _)| r.rounds.clone())
}

/// The assessment of the rounds run so far.
/// (`run_floor`: the widest A/A floor measured on earlier workloads of the run, for a
/// workload without a twin.)
pub(super) fn assessment(
    live: &[(&mut RawResult, &mut Subject)],
    run_floor: Option<f64>,
    rules: &Rules,
) -> Assessment {
    let compared: Vec<&[RoundSample]> = live
        .iter()
        .filter(|(r, _)| matches!(r.runtime, Runtime::Tokio | Runtime::Uring))
        .map(|(r, _)| &r.round_samples[..])
        .collect();
    assess(
        &rates(live, Runtime::Tokio),
        &rates(live, Runtime::Uring),
        &rates(live, Runtime::TokioTwin),
        client_bound_rounds(&compared),
        run_floor,
        rules,
    )
}

/// Runs rounds until the stopping rule says enough; returns how many ran. A round in which
/// any runtime's load failed is not recorded (the failure is the subject's problem), and
/// ends the rounds: every recorded round has every runtime.
pub(super) fn run(
    live: &mut [(&mut RawResult, &mut Subject)],
    turn: Duration,
    run_floor: Option<f64>,
    rules: &Rules,
) -> usize {
    if live.len() < 2 {
        return 0;
    }
    let started = Instant::now();
    let mut round = 0;
    loop {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..live.len()).collect()
        } else {
            (0..live.len()).rev().collect()
        };
        let mut samples: Vec<Option<RoundSample>> = vec![None; live.len()];
        for i in order {
            samples[i] = live[i].1.timed_run(turn).map(|(_, s)| s);
        }
        if samples.iter().any(Option::is_none) {
            return round;
        }
        for ((raw, _), s) in live.iter_mut().zip(samples.into_iter().flatten()) {
            raw.rounds.push(s.rate);
            raw.rounds_cpu_us.push(s.cpu_us_per_request());
            raw.round_samples.push(s);
        }
        round += 1;
        let a = assessment(live, run_floor, rules);
        if !keep_going(&a.verdict, round, started.elapsed(), rules) {
            return round;
        }
    }
}
