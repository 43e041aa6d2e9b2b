//! One verdict per workload, from its blocks (see [`super::blocks`] for why blocks).
//!
//! Every block starts fresh processes of tokio, tokio-uring and a second tokio (the
//! *twin*). Per block, with each runtime's mean log rate over the block's rounds:
//!
//! - the A/B contrast: `ln tokio-uring − (ln tokio + ln twin) / 2` (tokio-uring against
//!   both tokio processes, which halves tokio's share of the process-level noise);
//! - the A/A contrast: `ln twin − ln tokio` (two processes of one binary; under the
//!   design's assumptions centred on 0, and independent of the A/B contrast).
//!
//! Decided in this order:
//! 1. no tokio-uring, or fewer than `min_blocks` blocks -> undecided;
//! 2. no A/A control of the workload's own -> undecided (never a floor of 0);
//! 3. a reason to withhold it from the caller -> undecided (a throughput verdict when
//!    most turns were not server-limited: [`super::limits`]; an efficiency verdict when
//!    most paced turns missed their rate);
//! 4. the noise floor `f` = |the A/A contrast's estimate|: how far apart two copies of
//!    tokio measured in these very blocks, symmetric;
//! 5. equivalent: the A/B interval inside ±band *and* the floor inside the band;
//! 6. faster: the whole A/B interval beyond +f (tokio-uring) or below −f (tokio);
//! 7. otherwise undecided, saying why.
//!
//! The number of blocks is fixed before the run (no optional stopping: every printed
//! interval is at its stated level). Error rates measured by simulation:
//! `benches/tests/verdict_simulation.rs`.

use super::blocks::{BlockEstimate, Variance};
use super::limits::Limits;

/// The decision's settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Rules {
    /// Equivalence band: within ±band (0.03 = 3 %) counts as equivalent.
    pub band: f64,
    /// Blocks (fresh server processes) per workload, fixed in advance.
    pub blocks: usize,
    /// Blocks needed before any verdict (6: the least for a 95 % signed-rank interval).
    pub min_blocks: usize,
    /// The intervals' confidence.
    pub level: f64,
    /// The efficiency rounds' offered rate, as a share of the lower runtime's capacity.
    pub efficiency_load: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            band: 0.03,
            blocks: 18,
            min_blocks: 6,
            level: 0.95,
            efficiency_load: 0.5,
        }
    }
}

/// What a workload's blocks say.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Verdict {
    /// tokio-uring served more: by `pct` % (estimate), interval [`lo_pct`, `hi_pct`].
    UringFaster { pct: f64, lo_pct: f64, hi_pct: f64 },
    /// tokio served more: by `pct` % (estimate), interval [`lo_pct`, `hi_pct`].
    TokioFaster { pct: f64, lo_pct: f64, hi_pct: f64 },
    /// The whole interval lies within ±`band_pct` %.
    Equivalent { band_pct: f64 },
    /// No decision; `reason` says why, `more_rounds_may_help` whether more blocks could.
    Undecided {
        reason: String,
        more_rounds_may_help: bool,
    },
}

impl Verdict {
    pub fn is_decided(&self) -> bool {
        !matches!(self, Self::Undecided { .. })
    }

    /// `Some(true)` tokio-uring faster, `Some(false)` tokio faster, `None` neither.
    pub fn direction(&self) -> Option<bool> {
        match self {
            Self::UringFaster { .. } => Some(true),
            Self::TokioFaster { .. } => Some(false),
            _ => None,
        }
    }

    /// A few words for a chart: `tokio-uring +12.3 %`, `tokio +25.0 %`, `equivalent ±3 %`,
    /// `undecided`.
    pub fn short(&self) -> String {
        match self {
            Self::UringFaster { pct, .. } => format!("tokio-uring +{pct:.1} %"),
            Self::TokioFaster { pct, .. } => format!("tokio +{pct:.1} %"),
            Self::Equivalent { band_pct } => format!("equivalent ±{band_pct:.0} %"),
            Self::Undecided { .. } => "undecided".into(),
        }
    }

    /// One line, e.g. `tokio-uring faster by 12.3 % [8.1, 16.0]`.
    pub fn text(&self) -> String {
        match self {
            Self::UringFaster {
                pct,
                lo_pct,
                hi_pct,
            } => format!("tokio-uring faster by {pct:.1} % [{lo_pct:.1}, {hi_pct:.1}]"),
            Self::TokioFaster {
                pct,
                lo_pct,
                hi_pct,
            } => format!("tokio faster by {pct:.1} % [{lo_pct:.1}, {hi_pct:.1}]"),
            Self::Equivalent { band_pct } => format!("equivalent within ±{band_pct:.0} %"),
            Self::Undecided { reason, .. } => format!("undecided: {reason}"),
        }
    }
}

/// Decides a workload from its A/B and A/A block estimates (log contrasts); `withheld`: the
/// caller's reason not to decide (the measurement did not measure what the verdict claims).
pub fn decide(
    ab: Option<&BlockEstimate>,
    aa: Option<&BlockEstimate>,
    withheld: Option<&str>,
    rules: &Rules,
) -> Verdict {
    let undecided = |reason: String, more: bool| Verdict::Undecided {
        reason,
        more_rounds_may_help: more,
    };
    let Some(ab) = ab else {
        return undecided("no blocks (a runtime was not measured)".into(), false);
    };
    let n = ab.blocks.len();
    if n < rules.min_blocks {
        return undecided(
            format!(
                "{n} blocks, fewer than the {} a 95 % interval over blocks needs",
                rules.min_blocks
            ),
            true,
        );
    }
    let Some(aa) = aa.filter(|a| a.blocks.len() >= rules.min_blocks) else {
        return undecided(
            "no A/A control of its own (tokio's twin was not measured in these blocks)".into(),
            false,
        );
    };
    if let Some(why) = withheld {
        return undecided(why.to_string(), false);
    }
    let floor = aa.estimate.abs();
    let band = (1.0 + rules.band).ln();
    let (lo, est, hi) = (ab.lower, ab.estimate, ab.upper);
    let pct = |x: f64| (x.exp() - 1.0) * 100.0;
    if lo >= -band && hi <= band && floor <= band {
        return Verdict::Equivalent {
            band_pct: rules.band * 100.0,
        };
    }
    if lo > floor {
        return Verdict::UringFaster {
            pct: pct(est),
            lo_pct: pct(lo),
            hi_pct: pct(hi),
        };
    }
    if hi < -floor {
        return Verdict::TokioFaster {
            pct: pct(-est),
            lo_pct: pct(-hi),
            hi_pct: pct(-lo),
        };
    }
    let (rlo, rhi) = (lo.exp(), hi.exp());
    if lo > 0.0 || hi < 0.0 {
        return undecided(
            format!(
                "the difference [{rlo:.3}, {rhi:.3}] is within this workload's A/A noise floor (±{:.1} %: two copies of tokio measured that far apart)",
                pct(floor)
            ),
            true,
        );
    }
    if lo >= -band && hi <= band {
        return undecided(
            format!(
                "the interval [{rlo:.3}, {rhi:.3}] is inside the ±{:.0} % band, but the A/A floor (±{:.1} %) is not",
                rules.band * 100.0,
                pct(floor)
            ),
            true,
        );
    }
    undecided(
        format!(
            "the interval [{rlo:.3}, {rhi:.3}] includes 1 and is wider than the ±{:.0} % band",
            rules.band * 100.0
        ),
        true,
    )
}

/// Everything the blocks say about one workload.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Assessment {
    pub verdict: Verdict,
    /// tokio-uring against tokio and its twin, one log-contrast per block.
    #[serde(default, deserialize_with = "lenient")]
    pub ab: Option<BlockEstimate>,
    /// The A/A control: twin against tokio, one log-contrast per block.
    #[serde(default, deserialize_with = "lenient")]
    pub aa: Option<BlockEstimate>,
    /// The A/A noise floor the verdict used, as a fraction (0.02 = ±2 %).
    pub noise_floor: Option<f64>,
    /// Where the A/B contrast's variance lives, and what more blocks would buy.
    #[serde(default)]
    pub variance: Option<Variance>,
    /// Who limited the turns behind it (throughput verdicts; `None` for efficiency).
    #[serde(default)]
    pub limits: Option<Limits>,
    /// Blocks and rounds (all blocks together) behind the verdict.
    #[serde(default)]
    pub blocks: usize,
    pub rounds: usize,
}

/// Reads a field written by an older schema as `None` instead of failing the whole file
/// (`report --compare` still reads older runs' verdicts).
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

/// One runtime's rates, grouped by block: `rates[b]` = block b's rounds, in round order.
pub type ByBlock = [Vec<f64>];

/// Assesses a workload from each runtime's per-block round figures (rates, or requests per
/// core-second; tokio, tokio-uring, twin; blocks aligned by index). `withheld`: see
/// [`decide`].
pub fn assess(
    tokio: &ByBlock,
    uring: &ByBlock,
    twin: &ByBlock,
    withheld: Option<&str>,
    rules: &Rules,
) -> Assessment {
    let ln = |r: &f64| if *r > 0.0 { r.ln() } else { f64::NAN };
    // Per block and round: the A/B and A/A log contrasts (rounds every runtime has).
    let mut ab_rounds: Vec<Vec<f64>> = Vec::new();
    let mut aa_rounds: Vec<Vec<f64>> = Vec::new();
    let blocks = tokio.len().min(uring.len());
    for b in 0..blocks {
        let tw = twin.get(b);
        let k = tokio[b].len().min(uring[b].len());
        let k = tw.map_or(k, |t| k.min(t.len()));
        let (mut ab, mut aa) = (Vec::new(), Vec::new());
        for r in 0..k {
            let (t, u) = (ln(&tokio[b][r]), ln(&uring[b][r]));
            match tw.map(|w| ln(&w[r])) {
                Some(w) => {
                    ab.push(u - (t + w) / 2.0);
                    aa.push(w - t);
                }
                None => ab.push(u - t),
            }
        }
        if ab.iter().all(|x| x.is_finite()) && !ab.is_empty() {
            ab_rounds.push(ab);
            if !aa.is_empty() {
                aa_rounds.push(aa);
            }
        }
    }
    let means = |rs: &[Vec<f64>]| -> Vec<f64> {
        rs.iter()
            .map(|r| r.iter().sum::<f64>() / r.len() as f64)
            .collect()
    };
    let ab = BlockEstimate::from_blocks(&means(&ab_rounds), rules.level);
    let aa = BlockEstimate::from_blocks(&means(&aa_rounds), rules.level);
    let rounds = ab_rounds.iter().map(Vec::len).sum();
    Assessment {
        verdict: decide(ab.as_ref(), aa.as_ref(), withheld, rules),
        noise_floor: aa.as_ref().map(|a| a.estimate.abs().exp() - 1.0),
        variance: Variance::from_rounds(&ab_rounds),
        blocks: ab_rounds.len(),
        rounds,
        ab,
        aa,
        limits: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An estimate over blocks whose log contrasts are ln(ratios).
    fn est(ratios: &[f64]) -> BlockEstimate {
        let logs: Vec<f64> = ratios.iter().map(|r| r.ln()).collect();
        BlockEstimate::from_blocks(&logs, 0.95).expect("blocks")
    }

    fn quiet_aa() -> BlockEstimate {
        est(&[0.995, 1.005, 1.0, 1.002, 0.998, 1.0, 1.001, 0.999])
    }

    fn rules() -> Rules {
        Rules::default()
    }

    #[test]
    fn an_interval_inside_the_band_with_a_floor_inside_it_is_equivalent() {
        let ab = est(&[0.99, 1.0, 1.01, 1.02, 0.98, 1.0, 1.01, 0.99, 1.0, 1.0]);
        let v = decide(Some(&ab), Some(&quiet_aa()), None, &rules());
        assert_eq!(v, Verdict::Equivalent { band_pct: 3.0 });
        // The same interval beside a 5 % A/A difference is not "equivalent within 3 %".
        let loud = est(&[1.05, 1.06, 1.04, 1.05, 1.05, 1.06, 1.04, 1.05]);
        let v = decide(Some(&ab), Some(&loud), None, &rules());
        assert!(
            matches!(&v, Verdict::Undecided { reason, .. } if reason.contains("A/A floor")),
            "{v:?}"
        );
    }

    #[test]
    fn a_clear_difference_is_faster_either_way_with_its_interval() {
        let ab = est(&[1.10, 1.12, 1.15, 1.11, 1.13, 1.12, 1.14, 1.10, 1.16, 1.12]);
        let v = decide(Some(&ab), Some(&quiet_aa()), None, &rules());
        let Verdict::UringFaster {
            pct,
            lo_pct,
            hi_pct,
        } = v
        else {
            panic!("{v:?}")
        };
        assert!(
            (pct - 12.5).abs() < 0.6 && lo_pct > 10.0 && hi_pct < 14.5,
            "{v:?}"
        );
        let ab = est(&[0.80, 0.82, 0.79, 0.81, 0.80, 0.83, 0.78, 0.80, 0.81, 0.80]);
        let v = decide(Some(&ab), Some(&quiet_aa()), None, &rules());
        // tokio / tokio-uring = 1 / 0.80 = 1.25: tokio faster by 25 %.
        assert!(
            matches!(v, Verdict::TokioFaster { pct, .. } if (pct - 24.6).abs() < 1.0),
            "{v:?}"
        );
    }

    #[test]
    fn the_floor_is_symmetric() {
        // Two copies of tokio 6 % apart: a 5 % lead is not called, either way.
        let aa = est(&[1.06, 1.05, 1.07, 1.06, 1.06, 1.05, 1.07, 1.06]);
        let up = est(&[1.05, 1.05, 1.06, 1.04, 1.05, 1.05, 1.06, 1.04]);
        let down = est(&[0.95, 0.95, 0.94, 0.96, 0.95, 0.95, 0.94, 0.96]);
        for ab in [&up, &down] {
            let v = decide(Some(ab), Some(&aa), None, &rules());
            assert!(
                matches!(&v, Verdict::Undecided { reason, .. } if reason.contains("A/A noise floor")),
                "{v:?}"
            );
        }
        // The A/A twin measured *slower* by 6 %: the same floor, the same answers.
        let aa_down = est(&[0.94, 0.95, 0.93, 0.94, 0.94, 0.95, 0.93, 0.94]);
        for ab in [&up, &down] {
            assert!(!decide(Some(ab), Some(&aa_down), None, &rules()).is_decided());
        }
        // A 12 % lead clears it in both directions.
        let up = est(&[1.12, 1.13, 1.11, 1.12, 1.12, 1.13, 1.11, 1.12]);
        let down = est(&[0.88, 0.89, 0.87, 0.88, 0.88, 0.89, 0.87, 0.88]);
        assert!(matches!(
            decide(Some(&up), Some(&aa), None, &rules()),
            Verdict::UringFaster { .. }
        ));
        assert!(matches!(
            decide(Some(&down), Some(&aa), None, &rules()),
            Verdict::TokioFaster { .. }
        ));
    }

    #[test]
    fn no_control_of_its_own_means_no_verdict() {
        let ab = est(&[1.30; 10]);
        let v = decide(Some(&ab), None, None, &rules());
        assert!(
            matches!(&v, Verdict::Undecided { reason, more_rounds_may_help: false } if reason.contains("no A/A control")),
            "{v:?}"
        );
        // A workload measured without a twin: same answer from `assess`.
        let rates = |r: f64| -> Vec<Vec<f64>> { (0..8).map(|_| vec![r; 3]).collect() };
        let a = assess(&rates(100.0), &rates(130.0), &[], None, &rules());
        assert!(!a.verdict.is_decided() && a.aa.is_none(), "{a:?}");
    }

    #[test]
    fn too_few_blocks_or_a_withheld_verdict_are_undecided() {
        let ab = est(&[1.2; 5]);
        assert!(!decide(Some(&ab), Some(&quiet_aa()), None, &rules()).is_decided());
        assert!(!decide(None, None, None, &rules()).is_decided());
        let ab = est(&[1.2; 10]);
        let v = decide(
            Some(&ab),
            Some(&quiet_aa()),
            Some("co-limited in 20 of 30 turns"),
            &rules(),
        );
        assert!(
            matches!(&v, Verdict::Undecided { reason, more_rounds_may_help: false } if reason.contains("co-limited")),
            "{v:?}"
        );
        assert!(decide(Some(&ab), Some(&quiet_aa()), None, &rules()).is_decided());
    }

    #[test]
    fn assess_contrasts_tokio_uring_with_both_tokio_processes_per_block() {
        // tokio 100, twin 100 (A/A exact), tokio-uring 120 in every round: one contrast
        // of ln 1.2 per block; the A/A contrasts are all 0.
        let b = 8;
        let t: Vec<Vec<f64>> = (0..b).map(|_| vec![100.0, 100.0, 100.0]).collect();
        let u: Vec<Vec<f64>> = (0..b).map(|_| vec![120.0, 120.0, 120.0]).collect();
        let a = assess(&t, &u, &t, None, &rules());
        assert_eq!((a.blocks, a.rounds), (8, 24));
        let ab = a.ab.as_ref().expect("ab");
        assert!((ab.estimate - 1.2f64.ln()).abs() < 1e-12);
        assert_eq!(a.noise_floor, Some(0.0));
        assert!(matches!(a.verdict, Verdict::UringFaster { pct, .. } if (pct - 20.0).abs() < 1e-9));
        // The twin 10 % off in block 0 only: the A/A contrast moves, A/B uses both.
        let mut w = t.clone();
        w[0] = vec![110.0; 3];
        let a = assess(&t, &u, &w, None, &rules());
        let first = a.ab.as_ref().expect("ab").blocks[0];
        assert!((first - (120f64.ln() - (100f64.ln() + 110f64.ln()) / 2.0)).abs() < 1e-12);
        assert!((a.aa.as_ref().expect("aa").blocks[0] - 1.1f64.ln()).abs() < 1e-12);
    }
}
