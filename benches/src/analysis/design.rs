//! The order of turns inside a block: balanced, recorded, reproducible from a seed.
//!
//! A block of `n` runtimes runs `n` rounds whose orders form a Latin square (every runtime
//! in every position exactly once), so a position effect (the turn after a settle, the
//! turn after a given server) lands on every runtime equally; and since the turn indices of
//! each runtime then sum alike, a linear drift over the block cancels in the block's
//! means too. The square's first row is a permutation drawn per pair of blocks; the second
//! block of a pair uses the mirrored square, so who follows whom balances over pairs of
//! blocks (a Williams design's idea). With A B C / C B A (the previous design) the middle
//! runtime never left the middle.

/// The rounds of block `block` for `n` runtimes: `rounds[r]` lists runtime indices in
/// turn order.
pub fn block_order(n: usize, block: usize, seed: u64) -> Vec<Vec<usize>> {
    // One permutation per pair of blocks: the second of the pair mirrors the first's square.
    let mut rng = SplitMix(seed ^ ((block / 2) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut first: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        first.swap(i, j);
    }
    (0..n)
        .map(|r| {
            let mut row: Vec<usize> = (0..n).map(|j| first[(r + j) % n]).collect();
            if block % 2 == 1 {
                row.reverse();
            }
            row
        })
        .collect()
}

/// A seed for a run's orders: from the clock unless `BENCH_SEED`'s `value` fixes it
/// (recorded in `config.json`, so a run's order can be replayed).
pub fn seed_from(value: Option<&str>) -> Result<u64, String> {
    match value {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("BENCH_SEED={v}: expected a whole number")),
        None => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)),
    }
}

/// splitmix64: tiny, seedable, good enough to shuffle a handful of runtimes.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_runtime_takes_every_position_once_per_block() {
        for n in 2..=6 {
            for block in 0..10 {
                let rounds = block_order(n, block, 42);
                assert_eq!(rounds.len(), n);
                for pos in 0..n {
                    let mut seen: Vec<usize> = rounds.iter().map(|r| r[pos]).collect();
                    seen.sort_unstable();
                    assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n={n} block={block}");
                }
                for r in &rounds {
                    let mut s = r.clone();
                    s.sort_unstable();
                    assert_eq!(s, (0..n).collect::<Vec<_>>());
                }
            }
        }
    }

    #[test]
    fn a_linear_drift_cancels_in_the_block_means() {
        let rounds = block_order(3, 0, 7);
        let mut sums = [0usize; 3];
        for (t, rt) in rounds.iter().flatten().enumerate() {
            sums[*rt] += t;
        }
        assert!(sums.iter().all(|&s| s == sums[0]), "{sums:?}");
    }

    #[test]
    fn who_follows_whom_balances_over_two_blocks() {
        // Cyclic rows always put the same runtime after a given one; the mirrored square
        // of the next block puts the other one there.
        let mut follows = std::collections::HashMap::new();
        for block in [0, 1] {
            for r in block_order(3, block, 9) {
                for w in r.windows(2) {
                    *follows.entry((w[0], w[1])).or_insert(0) += 1;
                }
            }
        }
        assert_eq!(follows.len(), 6, "{follows:?}");
        assert!(follows.values().all(|&c| c == 2), "{follows:?}");
    }

    #[test]
    fn the_order_is_reproducible_from_its_seed() {
        assert_eq!(block_order(3, 4, 11), block_order(3, 4, 11));
        let differ = (0..20).any(|b| block_order(3, b, 11) != block_order(3, b, 12));
        assert!(differ);
    }
}
