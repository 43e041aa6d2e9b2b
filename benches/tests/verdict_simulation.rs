//! The verdict design against cases whose answer is known: 1,000 simulated runs of the
//! default profile's blocks, with the kinds of noise measured on this project's machines,
//! through the same order (`design::block_order`) and the same decision (`analysis::assess`)
//! as `cargo bench`.
//!
//! Each simulated turn's log rate = the runtime's true level + its process's offset
//! (uniform ±10 %, fresh per block: two processes of one binary were measured ~10 % apart
//! for their whole lives) + per-round noise (3 % SD) + a slow drift of the machine (±20 %
//! over the run, a sine) + a position effect (the first turn of every round 4 % slow) +
//! one burst per run (one runtime at a third of its rate for two consecutive rounds).
//! Pure arithmetic: no sockets, no clocks.

use bench::analysis::design::{block_order, SplitMix};
use bench::analysis::{assess, Assessment, Rules, Verdict};
use bench::workload::Profile;

const RUNS: usize = 1000;

/// What one simulated run decides, with tokio-uring `effect` × tokio's true rate.
fn simulate(effect: f64, rules: &Rules, rng: &mut SplitMix) -> Assessment {
    // Runtimes in the harness's order: tokio, tokio-uring, twin.
    let truth = [0.0, effect.ln(), 0.0];
    let blocks = rules.blocks;
    let k = truth.len();
    let turns = (blocks * k * k) as f64;
    let normal = |rng: &mut SplitMix| {
        let (u1, u2) = (rng.unit().max(1e-300), rng.unit());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    };
    let burst_block = (rng.next_u64() % blocks as u64) as usize;
    let burst_rt = (rng.next_u64() % k as u64) as usize;
    let burst_round = (rng.next_u64() % (k as u64 - 1)) as usize;
    let seed = rng.next_u64();
    let mut rates: Vec<Vec<Vec<f64>>> = vec![Vec::new(); k];
    let mut t = 0.0;
    for b in 0..blocks {
        let offsets: Vec<f64> = (0..k).map(|_| (rng.unit() * 2.0 - 1.0) * 0.10).collect();
        let mut block_rates: Vec<Vec<f64>> = vec![Vec::new(); k];
        for (r, order) in block_order(k, b, seed).iter().enumerate() {
            // Each runtime's turn lands in its own slot of the round.
            let mut round = vec![0.0; k];
            for (pos, &rt) in order.iter().enumerate() {
                let mut l = truth[rt] + offsets[rt] + 0.03 * normal(rng);
                l += 0.2 * (2.0 * std::f64::consts::PI * t / turns).sin();
                if pos == 0 {
                    l += (0.96f64).ln();
                }
                if b == burst_block && rt == burst_rt && (r == burst_round || r == burst_round + 1)
                {
                    l += (1.0f64 / 3.0).ln();
                }
                round[rt] = (10_000.0 * l.exp()).max(1.0);
                t += 1.0;
            }
            for (rt, v) in round.into_iter().enumerate() {
                block_rates[rt].push(v);
            }
        }
        for (rt, v) in block_rates.into_iter().enumerate() {
            rates[rt].push(v);
        }
    }
    assess(&rates[0], &rates[1], &rates[2], None, rules)
}

#[derive(Debug, Default)]
struct Counts {
    uring: usize,
    tokio: usize,
    equivalent: usize,
    undecided: usize,
    /// Runs whose interval alone (without the A/A floor) excluded 1.
    interval_alone: usize,
}

fn tally(effect: f64, rules: &Rules, seed: u64) -> Counts {
    let mut rng = SplitMix(seed);
    let mut c = Counts::default();
    for _ in 0..RUNS {
        let a = simulate(effect, rules, &mut rng);
        if a.ab
            .as_ref()
            .is_some_and(|e| e.lower > 0.0 || e.upper < 0.0)
        {
            c.interval_alone += 1;
        }
        match a.verdict {
            Verdict::UringFaster { .. } => c.uring += 1,
            Verdict::TokioFaster { .. } => c.tokio += 1,
            Verdict::Equivalent { .. } => c.equivalent += 1,
            Verdict::Undecided { .. } => c.undecided += 1,
        }
    }
    c
}

#[test]
fn no_true_difference_is_called_faster_in_at_most_5_percent_of_runs() {
    let rules = Profile::Default.rules();
    let c = tally(1.0, &rules, 1);
    let false_positive = (c.uring + c.tokio) as f64 / RUNS as f64;
    println!(
        "A/A by simulation ({} blocks): {RUNS} runs, {} decided faster ({:.1} %: {} tokio-uring, {} tokio), {} equivalent, {} undecided; the interval alone, without the A/A floor, excluded 1 in {}",
        rules.blocks,
        c.uring + c.tokio,
        false_positive * 100.0,
        c.uring,
        c.tokio,
        c.equivalent,
        c.undecided,
        c.interval_alone
    );
    assert!(false_positive <= 0.05, "{c:?}");
}

#[test]
fn a_true_10_percent_difference_is_found_in_at_least_80_percent_of_runs() {
    let rules = Profile::Default.rules();
    for (effect, label) in [(1.10, "tokio-uring"), (1.0 / 1.10, "tokio")] {
        let c = tally(effect, &rules, 2);
        let (right, wrong) = if effect > 1.0 {
            (c.uring, c.tokio)
        } else {
            (c.tokio, c.uring)
        };
        println!(
            "{label} truly 10 % faster, by simulation ({} blocks): {RUNS} runs, {right} decided it ({:.1} %), {wrong} the wrong way, {} equivalent, {} undecided",
            rules.blocks,
            right as f64 * 100.0 / RUNS as f64,
            c.equivalent,
            c.undecided
        );
        assert!(right as f64 >= 0.8 * RUNS as f64, "{label}: {c:?}");
        assert_eq!(wrong, 0, "{label}: {c:?}");
    }
}
