//! How much `cargo bench` runs (`BENCH_PROFILE`): each profile's timings, its verdict
//! rules (blocks, band) and its latency curves' plan, with the environment's overrides.

use std::time::Duration;

use anyhow::{bail, Result};

use crate::analysis::Rules;

/// How much to run: `BENCH_PROFILE=quick|default|full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// CI smoke: every default workload, briefly (under 3 minutes with server starts).
    Quick,
    /// The whole comparison: every workload in blocks of fresh processes (~15 minutes on
    /// 2 cores).
    Default,
    /// Default plus sweeps: connections, payload sizes up to 1 MiB, ack modes, tokio
    /// per-core, null sink.
    Full,
}

/// How long each part of a workload's measurement takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Criterion's warm-up per benchmark.
    pub warm_up: Duration,
    /// Criterion's measurement time per benchmark.
    pub measurement: Duration,
    /// Criterion's samples per benchmark.
    pub samples: usize,
    /// Each runtime's measured turn in a block's round (how many blocks: [`Profile::rules`]).
    pub turn: Duration,
    /// Unmeasured load at the start of every turn, so a turn measures a warm server.
    pub turn_warm_up: Duration,
    /// Unmeasured load per runtime once a block's fresh processes are up, before its
    /// first round (their first requests run while producers and connections settle in).
    pub block_warm_up: Duration,
    /// At most this long to wait, before a turn, for the previous turn's server to go idle.
    pub settle_max: Duration,
    /// The fixed-duration pass that gives latency percentiles at saturation.
    pub latency_pass: Duration,
    /// The closed-loop pass per compared runtime whose server cores are sampled for its
    /// flame graph (after everything else: sampling costs the server some CPU).
    pub profile_pass: Duration,
}

/// The latency curves of a run: open-loop passes at fixed fractions of the lower runtime's
/// capacity (measured by the same workload's interleaved rounds just before), the
/// runtimes interleaved at each rate. Written to `config.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CurvePlan {
    /// Offered rates as fractions of the base capacity, in the order they are run.
    pub fractions: Vec<f64>,
    /// Load before each pass's measurement, in the same run: the same schedule and
    /// connections, counted for the delivery check, not in the point's figures.
    pub warmup: Duration,
    /// Each pass's measured time per runtime.
    pub duration: Duration,
    /// Passes per point and runtime, in alternating order (A B, then B A); the point's
    /// percentiles are of all of them, and the report shows how far they differ. Runs
    /// from before this setting measured each point once.
    #[serde(default = "one_pass")]
    pub passes: usize,
    /// p99 objectives (µs) for the capacity-at-objective figures
    /// (`BENCH_LATENCY_OBJECTIVES`, e.g. `1ms,10ms`).
    pub objectives_us: Vec<u64>,
    /// Idle-priority spinners keep every core awake during the passes
    /// (`BENCH_CURVE_AWAKE=0` turns them off): see `suite/awake.rs` for why.
    pub keep_awake: bool,
}

impl Profile {
    /// `BENCH_PROFILE`'s value (`None`: the default profile).
    pub fn parse(value: Option<&str>) -> Result<Self> {
        match value {
            None | Some("default") => Ok(Self::Default),
            Some("quick") => Ok(Self::Quick),
            Some("full") => Ok(Self::Full),
            Some(other) => bail!("BENCH_PROFILE={other}: expected quick, default or full"),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Default => "default",
            Self::Full => "full",
        }
    }

    pub fn timing(self) -> Timing {
        match self {
            Self::Quick => Timing {
                warm_up: Duration::from_millis(500),
                measurement: Duration::from_secs(2),
                samples: 10,
                turn: Duration::from_millis(150),
                turn_warm_up: Duration::from_millis(50),
                block_warm_up: Duration::from_millis(100),
                settle_max: Duration::from_millis(200),
                latency_pass: Duration::from_secs(1),
                profile_pass: Duration::from_millis(750),
            },
            // Criterion is kept for reference (its ratio beside the verdict): short, since
            // the verdict's time is better spent on blocks of fresh processes.
            // Turns are short: on the dev VM rounds of 1 s and of 0.3 s varied alike
            // (~10 % SD between rounds in both), so the time goes to more blocks. The
            // efficiency round added ~1.2 s a block (the run went from ~14.2 to ~15.2
            // minutes on 2 cores); criterion's pass went from 1 s + 3 s to 0.5 s + 2 s to
            // pay for part of it.
            Self::Default | Self::Full => Timing {
                warm_up: Duration::from_millis(500),
                measurement: Duration::from_secs(2),
                samples: 15,
                turn: Duration::from_millis(300),
                turn_warm_up: Duration::from_millis(100),
                block_warm_up: Duration::from_millis(200),
                settle_max: Duration::from_millis(300),
                latency_pass: Duration::from_secs(2),
                profile_pass: Duration::from_millis(1500),
            },
        }
    }
}

fn one_pass() -> usize {
    1
}

impl Profile {
    /// The latency curves' plan, without overrides.
    ///
    /// Each point is measured in two passes of 1 s after 0.25 s of warm-up each (default
    /// profile): the same 2.5 s per point and runtime as one 2 s pass after a separate
    /// 0.5 s warm-up run, which is what it replaced.
    pub fn curve_plan(self) -> CurvePlan {
        match self.curve_plan_from(&|_: &str| None) {
            Ok(p) => p,
            Err(_) => unreachable!("no variable, no error"),
        }
    }

    /// The latency curves' plan with the overrides `var` gives (`BENCH_LATENCY_OBJECTIVES`,
    /// `BENCH_CURVE_AWAKE`; see `crate::settings`).
    pub fn curve_plan_from(self, var: &dyn Fn(&str) -> Option<String>) -> Result<CurvePlan> {
        let (fractions, warmup, duration) = match self {
            Self::Quick => (
                vec![0.5, 1.0],
                Duration::from_millis(150),
                Duration::from_millis(500),
            ),
            Self::Default | Self::Full => (
                vec![0.25, 0.5, 0.75, 0.9, 1.0, 1.1],
                Duration::from_millis(250),
                Duration::from_secs(1),
            ),
        };
        let objectives_us = match var("BENCH_LATENCY_OBJECTIVES") {
            None => vec![1_000, 10_000],
            Some(v) => parse_objectives(&v)?,
        };
        let keep_awake = match var("BENCH_CURVE_AWAKE").as_deref().map(str::trim) {
            None | Some("1") => true,
            Some("0") => false,
            Some(other) => bail!("BENCH_CURVE_AWAKE={other}: expected 1 (default) or 0"),
        };
        Ok(CurvePlan {
            fractions,
            warmup,
            duration,
            passes: 2,
            objectives_us,
            keep_awake,
        })
    }

    /// How the verdict is decided and how many blocks it takes, without overrides.
    pub fn rules(self) -> Rules {
        match self.rules_from(&|_: &str| None) {
            Ok(r) => r,
            Err(_) => unreachable!("no variable, no error"),
        }
    }

    /// [`Profile::rules`] with the overrides `var` gives: `BENCH_BLOCKS` (blocks per
    /// workload, at least 2), `BENCH_EFFICIENCY_LOAD` (the efficiency rounds' rate, % of the
    /// lower runtime's capacity), `BENCH_EQUIV_BAND` (percent); see `crate::settings`.
    pub fn rules_from(self, var: &dyn Fn(&str) -> Option<String>) -> Result<Rules> {
        let mut r = match self {
            Self::Quick => Rules {
                blocks: 2,
                ..Rules::default()
            },
            Self::Default | Self::Full => Rules::default(),
        };
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = var("BENCH_BLOCKS") {
            r.blocks = v
                .trim()
                .parse()
                .ok()
                .filter(|&n: &usize| n >= 2)
                .ok_or_else(|| {
                    anyhow::anyhow!("BENCH_BLOCKS={v}: expected a whole number of blocks, at least 2 (6 or more for a verdict)")
                })?;
        }
        if let Some(v) = var("BENCH_EQUIV_BAND") {
            let pct: f64 = v
                .trim()
                .trim_end_matches('%')
                .parse()
                .ok()
                .filter(|p: &f64| p.is_finite() && *p > 0.0 && *p < 50.0)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "BENCH_EQUIV_BAND={v}: expected a percentage between 0 and 50, e.g. 3"
                    )
                })?;
            r.band = pct / 100.0;
        }
        if let Some(v) = var("BENCH_EFFICIENCY_LOAD") {
            let pct: f64 = v
                .trim()
                .trim_end_matches('%')
                .parse()
                .ok()
                .filter(|p: &f64| p.is_finite() && (5.0..=95.0).contains(p))
                .ok_or_else(|| {
                    anyhow::anyhow!("BENCH_EFFICIENCY_LOAD={v}: expected a percentage of the lower runtime's capacity between 5 and 95, e.g. 50")
                })?;
            r.efficiency_load = pct / 100.0;
        }
        Ok(r)
    }
}

/// `1ms,10ms,500us` -> µs, each positive.
fn parse_objectives(v: &str) -> Result<Vec<u64>> {
    v.split(',')
        .map(|part| {
            let d = common::config::parse_duration(part.trim()).map_err(|e| {
                anyhow::anyhow!(
                    "BENCH_LATENCY_OBJECTIVES={v}: {part:?}: {e} (expected e.g. 1ms,10ms)"
                )
            })?;
            let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            if us == 0 {
                bail!("BENCH_LATENCY_OBJECTIVES={v}: {part:?}: an objective must be at least 1us");
            }
            Ok(us)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_read_as_durations_and_bad_ones_are_named() {
        assert_eq!(
            parse_objectives("1ms, 10ms,500us").expect("ok"),
            [1_000, 10_000, 500]
        );
        let e = parse_objectives("1ms,fast").expect_err("bad").to_string();
        assert!(
            e.contains("BENCH_LATENCY_OBJECTIVES") && e.contains("fast"),
            "{e}"
        );
        assert!(parse_objectives("0ms").is_err());
    }

    #[test]
    fn blocks_are_fixed_in_advance_and_bad_counts_are_named() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let r = Profile::Default.rules_from(&env(&[])).expect("defaults");
        assert_eq!((r.blocks, r.min_blocks), (18, 6));
        assert_eq!(
            Profile::Quick.rules_from(&env(&[])).expect("quick").blocks,
            2
        );
        let r = Profile::Default
            .rules_from(&env(&[("BENCH_BLOCKS", "24"), ("BENCH_EQUIV_BAND", "5%")]))
            .expect("overrides");
        assert_eq!(r.blocks, 24);
        assert!((r.band - 0.05).abs() < 1e-12);
        for bad in ["1", "many", "-3"] {
            let pairs: &'static [(&str, &str)] = match bad {
                "1" => &[("BENCH_BLOCKS", "1")],
                "many" => &[("BENCH_BLOCKS", "many")],
                _ => &[("BENCH_BLOCKS", "-3")],
            };
            let e = Profile::Default
                .rules_from(&env(pairs))
                .expect_err(bad)
                .to_string();
            assert!(e.contains("BENCH_BLOCKS"), "{e}");
        }
    }
}
