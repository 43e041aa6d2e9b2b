//! Replicates at the process level: one contrast per *block* (a fresh set of server
//! processes), and an interval over blocks.
//!
//! Two processes of the same binary can differ by ~10 % for their whole lives (memory
//! layout, buffer alignment, where threads land: Mytkowicz et al., ASPLOS 2009), so rounds
//! inside one pair of processes are repeated measurements of one sample, and an interval
//! over them is far too narrow (Kalibera & Jones, ISMM 2013). Here each block contributes
//! one log-contrast, the mean of its rounds, and the interval is over blocks.
//!
//! The interval is the Wilcoxon signed-rank interval for the centre of the block contrasts
//! (Hodges–Lehmann estimate, exact critical values): distribution-free for a symmetric
//! distribution, and one disturbed block (a burst of interference) moves it far less than
//! it moves a t-interval. Its coverage under per-process offsets, drift, bursts and a
//! position effect is measured by `benches/tests/verdict_simulation.rs`.

/// A contrast over blocks, in log terms (`ln(a / b)`): its estimate and interval.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BlockEstimate {
    /// One log-contrast per block, in block order.
    pub blocks: Vec<f64>,
    /// Hodges–Lehmann estimate (median of the Walsh averages), log.
    pub estimate: f64,
    /// The signed-rank interval, log.
    pub lower: f64,
    pub upper: f64,
    /// The interval's exact confidence (at least the level asked for, from 6 blocks up;
    /// fewer blocks get min..max at what that reaches).
    pub confidence: f64,
}

impl BlockEstimate {
    /// The estimate and interval of the centre of `blocks` at `level` (e.g. 0.95).
    pub fn from_blocks(blocks: &[f64], level: f64) -> Option<Self> {
        let x: Vec<f64> = blocks.iter().copied().filter(|v| v.is_finite()).collect();
        let n = x.len();
        if n == 0 {
            return None;
        }
        let mut walsh = Vec::with_capacity(n * (n + 1) / 2);
        for i in 0..n {
            for j in i..n {
                walsh.push((x[i] + x[j]) / 2.0);
            }
        }
        walsh.sort_by(f64::total_cmp);
        let m = walsh.len();
        let estimate = if m % 2 == 1 {
            walsh[m / 2]
        } else {
            (walsh[m / 2 - 1] + walsh[m / 2]) / 2.0
        };
        // [W(d), W(M+1-d)] covers the centre with probability 1 - 2 P(T <= d - 1), T the
        // signed-rank statistic under the null: the largest d that keeps that >= level.
        let cdf = signed_rank_cdf(n);
        let alpha = 1.0 - level;
        let mut d = 1;
        while d < m.div_ceil(2) && 2.0 * cdf[d] <= alpha + 1e-12 {
            d += 1;
        }
        Some(Self {
            blocks: x,
            estimate,
            lower: walsh[d - 1],
            upper: walsh[m - d],
            confidence: 1.0 - 2.0 * cdf[d - 1],
        })
    }

    /// The estimate and interval as ratios (`exp`).
    pub fn ratio(&self) -> (f64, f64, f64) {
        (self.lower.exp(), self.estimate.exp(), self.upper.exp())
    }

    /// `1.234 [1.100, 1.400]`, with the confidence when it is below 95 %.
    pub fn fmt_ratio(&self) -> String {
        let (lo, est, hi) = self.ratio();
        let conf = if self.confidence < 0.95 {
            format!(" ({:.0}% interval)", self.confidence * 100.0)
        } else {
            String::new()
        };
        format!("{est:.3} [{lo:.3}, {hi:.3}]{conf}")
    }

    /// Whether two intervals share any value.
    pub fn overlaps(&self, other: &Self) -> bool {
        self.lower <= other.upper && other.lower <= self.upper
    }
}

/// `P(T <= t)` for t = 0..=n(n+1)/2, T the Wilcoxon signed-rank statistic of n values
/// under the null (each rank's sign a fair coin). Exact, by the usual recursion.
fn signed_rank_cdf(n: usize) -> Vec<f64> {
    let max = n * (n + 1) / 2;
    let mut p = vec![0.0; max + 1];
    p[0] = 1.0;
    for k in 1..=n {
        let mut next = vec![0.0; max + 1];
        for (s, &ps) in p.iter().enumerate() {
            if ps == 0.0 {
                continue;
            }
            next[s] += ps / 2.0;
            if s + k <= max {
                next[s + k] += ps / 2.0;
            }
        }
        p = next;
    }
    let mut acc = 0.0;
    p.iter()
        .map(|x| {
            acc += x;
            acc
        })
        .collect()
}

/// Where the variance of a contrast lives (Kalibera & Jones): between blocks (fresh
/// processes) and between rounds inside a block, as standard deviations in log terms
/// (0.05 ≈ 5 %), and what more replication would buy.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Variance {
    pub blocks: usize,
    pub rounds_per_block: usize,
    /// The between-block component (process-level), SD, log.
    pub between_blocks: f64,
    /// The between-round component (inside one set of processes), SD, log.
    pub between_rounds: f64,
    /// The interval's half-width now, and about what it would be with 8 more blocks or
    /// with twice the rounds per block (normal theory; log).
    pub half_width: f64,
    pub half_width_8_more_blocks: f64,
    pub half_width_double_rounds: f64,
}

impl Variance {
    /// From per-round contrasts grouped by block (`rounds[b]`: block b's round contrasts).
    /// `None` with fewer than two blocks or no block with two rounds.
    pub fn from_rounds(rounds: &[Vec<f64>]) -> Option<Self> {
        let blocks: Vec<&Vec<f64>> = rounds.iter().filter(|r| !r.is_empty()).collect();
        let b = blocks.len();
        if b < 2 {
            return None;
        }
        let k = blocks.iter().map(|r| r.len()).min()?;
        let means: Vec<f64> = blocks.iter().map(|r| mean(r)).collect();
        let var_means = sample_var(&means)?;
        // Pooled within-block variance.
        let (mut ss, mut df) = (0.0, 0usize);
        for (r, m) in blocks.iter().zip(&means) {
            ss += r.iter().map(|x| (x - m).powi(2)).sum::<f64>();
            df += r.len() - 1;
        }
        let within = if df > 0 { ss / df as f64 } else { 0.0 };
        let between = (var_means - within / k as f64).max(0.0);
        let hw = |blocks: usize, rounds: usize| {
            t975(blocks.saturating_sub(1).max(1))
                * ((between + within / rounds as f64) / blocks as f64).sqrt()
        };
        Some(Self {
            blocks: b,
            rounds_per_block: k,
            between_blocks: between.sqrt(),
            between_rounds: within.sqrt(),
            half_width: hw(b, k),
            half_width_8_more_blocks: hw(b + 8, k),
            half_width_double_rounds: hw(b, 2 * k),
        })
    }
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn sample_var(x: &[f64]) -> Option<f64> {
    (x.len() >= 2).then(|| {
        let m = mean(x);
        x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64
    })
}

/// Student's t, two-sided 95 % (0.975 quantile), for `df` degrees of freedom.
pub fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => T[df - 1],
        _ => 1.96 + 2.4 / df as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_null_distribution_is_exact() {
        // n = 3: T takes 0..=6 with counts 1 1 1 2 1 1 1 (of 8).
        let c = signed_rank_cdf(3);
        let expect = [1.0, 2.0, 3.0, 5.0, 6.0, 7.0, 8.0].map(|x| x / 8.0);
        for (a, b) in c.iter().zip(expect) {
            assert!((a - b).abs() < 1e-12, "{c:?}");
        }
        // Tabled two-sided 5 % critical values: n = 8 -> 3, n = 12 -> 13, n = 20 -> 52.
        for (n, crit) in [(8usize, 3usize), (12, 13), (20, 52)] {
            let c = signed_rank_cdf(n);
            assert!(2.0 * c[crit] <= 0.05 && 2.0 * c[crit + 1] > 0.05, "n={n}");
        }
    }

    #[test]
    fn the_interval_uses_the_tabled_order_statistics() {
        // 12 blocks: the 95 % interval is [W(14), W(65)] of the 78 Walsh averages.
        let x: Vec<f64> = (0..12).map(|i| f64::from(i) * 0.01).collect();
        let e = BlockEstimate::from_blocks(&x, 0.95).expect("estimate");
        let mut w: Vec<f64> = Vec::new();
        for i in 0..12 {
            for j in i..12 {
                w.push((x[i] + x[j]) / 2.0);
            }
        }
        w.sort_by(f64::total_cmp);
        assert_eq!((e.lower, e.upper), (w[13], w[64]));
        assert!((e.estimate - 0.055).abs() < 1e-12);
        assert!(
            e.confidence >= 0.95 && e.confidence < 0.96,
            "{}",
            e.confidence
        );
        // Six blocks reach 95 % only with min..max; five cannot, and say so.
        let e = BlockEstimate::from_blocks(&x[..6], 0.95).expect("six");
        assert_eq!((e.lower, e.upper), (0.0, 0.05));
        assert!(e.confidence >= 0.95);
        let e = BlockEstimate::from_blocks(&x[..5], 0.95).expect("five");
        assert!(e.confidence < 0.95 && e.fmt_ratio().ends_with("(94% interval)"));
        assert!(BlockEstimate::from_blocks(&[], 0.95).is_none());
    }

    #[test]
    fn one_wild_block_barely_moves_it() {
        // With 16 blocks the interval trims 29 Walsh averages from each end, more than the
        // 16 a single block takes part in (with 10 blocks it trims 8, and one wild block
        // drags the lower bound halfway to itself).
        let calm = [
            0.10, 0.11, 0.09, 0.10, 0.12, 0.08, 0.10, 0.11, 0.09, 0.10, 0.10, 0.11, 0.09, 0.10,
            0.12, 0.08,
        ];
        let mut wild = calm;
        wild[3] = -1.1; // a third of the rate for the whole block
        let (a, b) = (
            BlockEstimate::from_blocks(&calm, 0.95).expect("a"),
            BlockEstimate::from_blocks(&wild, 0.95).expect("b"),
        );
        assert!(b.lower > 0.0, "still excludes 0: {b:?}");
        assert!((a.estimate - b.estimate).abs() < 0.01);
    }

    #[test]
    fn variance_is_split_between_blocks_and_rounds() {
        // Block means far apart (±0.1), rounds inside each block close (±0.01).
        let rounds: Vec<Vec<f64>> = (0..8)
            .map(|b| {
                let m = if b % 2 == 0 { 0.1 } else { -0.1 };
                vec![m - 0.01, m, m + 0.01]
            })
            .collect();
        let v = Variance::from_rounds(&rounds).expect("variance");
        assert_eq!((v.blocks, v.rounds_per_block), (8, 3));
        assert!((v.between_rounds - 0.01).abs() < 1e-9, "{v:?}");
        assert!((v.between_blocks - 0.1069).abs() < 1e-3, "{v:?}");
        // More blocks help; more rounds barely do (the variance is between processes).
        assert!(v.half_width_8_more_blocks < 0.75 * v.half_width);
        assert!(v.half_width_double_rounds > 0.99 * v.half_width);
        assert!(Variance::from_rounds(&rounds[..1]).is_none());
    }
}
