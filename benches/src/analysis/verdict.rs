//! One verdict per workload, from the interleaved rounds (paired, drift-robust):
//!
//! 1. fewer than `min_rounds` rounds -> undecided (the interval cannot reach 95 %);
//! 2. most rounds client-bound (the load generator, not the server, was the limit) ->
//!    undecided: neither faster nor equivalent can be read from them;
//! 3. the whole tokio-uring / tokio interval inside `1 ± band` -> equivalent;
//! 4. the whole interval on one side of 1 *and* outside the A/A noise floor (the interval
//!    of a runtime measured against a second instance of itself, same rounds) -> faster;
//! 5. otherwise undecided, saying why (interval straddles 1, or inside the noise floor).

use std::time::Duration;

use super::Paired;

/// The decision's settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rules {
    /// Equivalence band: within ±band (0.03 = 3 %) counts as equivalent.
    pub band: f64,
    /// Rounds needed before any verdict (6: the least for a 95 % sign-test interval).
    pub min_rounds: usize,
    /// At most this many rounds per workload.
    pub max_rounds: usize,
    /// Stop adding rounds once a workload's rounds took this long.
    pub budget: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            band: 0.03,
            min_rounds: 6,
            max_rounds: 30,
            budget: Duration::from_secs(60),
        }
    }
}

/// What a workload's rounds say.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Verdict {
    /// tokio-uring served more: by `pct` % (median), interval [`lo_pct`, `hi_pct`].
    UringFaster { pct: f64, lo_pct: f64, hi_pct: f64 },
    /// tokio served more: by `pct` % (median), interval [`lo_pct`, `hi_pct`].
    TokioFaster { pct: f64, lo_pct: f64, hi_pct: f64 },
    /// The whole interval lies within ±`band_pct` %.
    Equivalent { band_pct: f64 },
    /// No decision; `reason` says why, `more_rounds_may_help` whether measuring longer could.
    Undecided {
        reason: String,
        more_rounds_may_help: bool,
    },
}

impl Verdict {
    pub fn is_decided(&self) -> bool {
        !matches!(self, Self::Undecided { .. })
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
            } => {
                format!("tokio-uring faster by {pct:.1} % [{lo_pct:.1}, {hi_pct:.1}]")
            }
            Self::TokioFaster {
                pct,
                lo_pct,
                hi_pct,
            } => {
                format!("tokio faster by {pct:.1} % [{lo_pct:.1}, {hi_pct:.1}]")
            }
            Self::Equivalent { band_pct } => format!("equivalent within ±{band_pct:.0} %"),
            Self::Undecided { reason, .. } => format!("undecided: {reason}"),
        }
    }
}

/// Half-width of the A/A interval around 1: how far apart two instances of the same server
/// measure on this machine in these rounds.
pub fn noise_floor(aa: &Paired) -> f64 {
    (aa.upper - 1.0).max(1.0 - aa.lower).max(0.0)
}

/// The client-bound rule for one round and runtime: the server was not near saturation
/// (under 80 % of the cores it was given) while the load side was (90 % or more of its).
pub fn client_bound(server_share: f64, load_share: f64) -> bool {
    server_share < 0.8 && load_share >= 0.9
}

/// Decides a workload. `ab`: tokio-uring / tokio per round; `floor`: the A/A noise floor
/// (see [`noise_floor`]), the workload's own or the run's; `client_bound_rounds`: how many
/// of the rounds were client-bound for either runtime.
pub fn decide(
    ab: Option<&Paired>,
    floor: Option<f64>,
    client_bound_rounds: usize,
    rules: &Rules,
) -> Verdict {
    let undecided = |reason: String, more: bool| Verdict::Undecided {
        reason,
        more_rounds_may_help: more,
    };
    let Some(ab) = ab else {
        return undecided(
            "no interleaved rounds (a runtime was not measured)".into(),
            false,
        );
    };
    let n = ab.ratios.len();
    if n < rules.min_rounds {
        return undecided(
            format!(
                "{n} rounds, fewer than the {} a 95 % interval needs",
                rules.min_rounds
            ),
            true,
        );
    }
    if client_bound_rounds * 2 > n {
        return undecided(
            format!("client-bound in {client_bound_rounds} of {n} rounds: the load generator, not the server, was the limit"),
            false,
        );
    }
    let (lo, hi) = (ab.lower, ab.upper);
    if lo >= 1.0 - rules.band && hi <= 1.0 + rules.band {
        return Verdict::Equivalent {
            band_pct: rules.band * 100.0,
        };
    }
    let floor = floor.unwrap_or(0.0);
    if lo > 1.0 + floor {
        return Verdict::UringFaster {
            pct: (ab.median - 1.0) * 100.0,
            lo_pct: (lo - 1.0) * 100.0,
            hi_pct: (hi - 1.0) * 100.0,
        };
    }
    if hi < 1.0 - floor {
        return Verdict::TokioFaster {
            pct: (1.0 / ab.median - 1.0) * 100.0,
            lo_pct: (1.0 / hi - 1.0) * 100.0,
            hi_pct: (1.0 / lo - 1.0) * 100.0,
        };
    }
    if lo > 1.0 || hi < 1.0 {
        // Wholly inside the floor, more rounds only narrow it further inside: they cannot
        // decide it. Straddling the floor's edge, they may.
        let inside = lo >= 1.0 - floor && hi <= 1.0 + floor;
        return undecided(
            format!(
                "the difference [{lo:.3}, {hi:.3}] is within this machine's A/A noise floor (±{:.1} %)",
                floor * 100.0
            ),
            !inside,
        );
    }
    undecided(
        format!(
            "the interval [{lo:.3}, {hi:.3}] includes 1 and is wider than the ±{:.0} % band",
            rules.band * 100.0
        ),
        true,
    )
}

/// Everything the rounds say about one workload.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Assessment {
    pub verdict: Verdict,
    /// tokio-uring / tokio, per round.
    pub ab: Option<Paired>,
    /// The A/A control (tokio's twin / tokio), per round, if measured.
    pub aa: Option<Paired>,
    /// The A/A noise floor the verdict used: the workload's own control's, or (when it had
    /// none) the widest measured on other workloads of the run (`floor_borrowed`).
    pub noise_floor: Option<f64>,
    #[serde(default)]
    pub floor_borrowed: bool,
    /// Rounds in which tokio or tokio-uring was client-bound.
    pub client_bound_rounds: usize,
    pub rounds: usize,
}

/// Assesses a workload from each runtime's per-round rates (index i = round i) and the
/// number of client-bound rounds. Without a twin of its own, the run's noise floor
/// (`run_floor`: the widest A/A floor measured on other workloads) is the one that applies:
/// the machine's noise does not vanish because this workload did not measure it.
pub fn assess(
    tokio: &[f64],
    uring: &[f64],
    twin: &[f64],
    client_bound_rounds: usize,
    run_floor: Option<f64>,
    rules: &Rules,
) -> Assessment {
    let ab = Paired::from_rounds(uring, tokio);
    let aa = Paired::from_rounds(twin, tokio);
    let own = aa.as_ref().map(noise_floor);
    let floor = own.or(run_floor);
    Assessment {
        verdict: decide(ab.as_ref(), floor, client_bound_rounds, rules),
        rounds: ab.as_ref().map_or(0, |p| p.ratios.len()),
        noise_floor: floor,
        floor_borrowed: own.is_none() && floor.is_some(),
        ab,
        aa,
        client_bound_rounds,
    }
}

/// The stopping rule: keep adding round pairs while the verdict is undecided, more rounds
/// may help, and neither `max_rounds` nor the time budget is spent.
pub fn keep_going(verdict: &Verdict, rounds: usize, elapsed: Duration, rules: &Rules) -> bool {
    if rounds < rules.min_rounds {
        return rounds < rules.max_rounds && elapsed < rules.budget;
    }
    match verdict {
        Verdict::Undecided {
            more_rounds_may_help: true,
            ..
        } => rounds < rules.max_rounds && elapsed < rules.budget,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rounds whose ratios are `ratios` (tokio at 100 req/s, tokio-uring at 100 x ratio).
    fn rounds(ratios: &[f64]) -> Paired {
        let tokio = vec![100.0; ratios.len()];
        let uring: Vec<f64> = ratios.iter().map(|r| r * 100.0).collect();
        Paired::from_rounds(&uring, &tokio).expect("rounds")
    }

    fn rules() -> Rules {
        Rules::default()
    }

    #[test]
    fn an_interval_inside_the_band_is_equivalent() {
        let ab = rounds(&[0.99, 1.0, 1.01, 1.02, 0.98, 1.0, 1.01, 0.99, 1.0, 1.0]);
        assert_eq!(
            decide(Some(&ab), None, 0, &rules()),
            Verdict::Equivalent { band_pct: 3.0 }
        );
    }

    #[test]
    fn an_interval_straddling_the_band_edge_is_undecided() {
        let ab = rounds(&[0.95, 1.0, 1.05, 1.08, 0.93, 1.02, 0.97, 1.06, 0.94, 1.0]);
        let v = decide(Some(&ab), None, 0, &rules());
        assert!(
            matches!(&v, Verdict::Undecided { reason, more_rounds_may_help: true } if reason.contains("includes 1")),
            "{v:?}"
        );
    }

    #[test]
    fn a_clear_difference_is_faster_either_way() {
        let ab = rounds(&[1.10, 1.12, 1.15, 1.11, 1.13, 1.12, 1.14, 1.10, 1.16, 1.12]);
        let v = decide(Some(&ab), None, 0, &rules());
        let Verdict::UringFaster {
            pct,
            lo_pct,
            hi_pct,
        } = v
        else {
            panic!("{v:?}")
        };
        assert!((pct - 12.0).abs() < 0.6 && lo_pct > 9.0 && hi_pct < 16.1);
        assert!(v_text_starts(
            &decide(Some(&ab), None, 0, &rules()),
            "tokio-uring faster by 12"
        ));
        let ab = rounds(&[0.80, 0.82, 0.79, 0.81, 0.80, 0.83, 0.78, 0.80, 0.81, 0.80]);
        let v = decide(Some(&ab), None, 0, &rules());
        // tokio / tokio-uring = 1 / 0.80 = 1.25: tokio faster by 25 %.
        assert!(
            matches!(v, Verdict::TokioFaster { pct, .. } if (pct - 25.0).abs() < 1.0),
            "{v:?}"
        );
    }

    fn v_text_starts(v: &Verdict, prefix: &str) -> bool {
        v.text().starts_with(prefix)
    }

    #[test]
    fn an_aa_floor_wider_than_the_effect_is_undecided() {
        // tokio-uring 5 % ahead, clearly excluding 1 ...
        let ab = rounds(&[1.04, 1.05, 1.06, 1.05, 1.04, 1.06, 1.05, 1.05, 1.04, 1.06]);
        assert!(matches!(
            decide(Some(&ab), None, 0, &rules()),
            Verdict::UringFaster { .. }
        ));
        // ... but two instances of tokio differ by up to 8 % on this machine.
        let aa = rounds(&[0.92, 1.08, 1.0, 0.95, 1.05, 0.93, 1.07, 1.0, 0.96, 1.04]);
        assert!(noise_floor(&aa) > 0.05);
        let v = decide(Some(&ab), Some(noise_floor(&aa)), 0, &rules());
        assert!(
            matches!(&v, Verdict::Undecided { reason, .. } if reason.contains("A/A noise floor")),
            "{v:?}"
        );
        // A tight A/A floor leaves the verdict standing.
        let tight = rounds(&[0.99, 1.01, 1.0, 1.0, 1.01, 0.99, 1.0, 1.0, 1.01, 0.99]);
        assert!(matches!(
            decide(Some(&ab), Some(noise_floor(&tight)), 0, &rules()),
            Verdict::UringFaster { .. }
        ));
        // A workload without a twin of its own is held to the run's floor.
        let tokio = [100.0; 10];
        let uring: Vec<f64> = ab.ratios.iter().map(|r| r * 100.0).collect();
        let a = assess(&tokio, &uring, &[], 0, Some(noise_floor(&aa)), &rules());
        assert!(a.floor_borrowed && !a.verdict.is_decided(), "{a:?}");
        // Wholly inside the floor: more rounds cannot decide it, so they stop.
        assert!(matches!(
            a.verdict,
            Verdict::Undecided {
                more_rounds_may_help: false,
                ..
            }
        ));
        let a = assess(&tokio, &uring, &[], 0, None, &rules());
        assert!(!a.floor_borrowed && a.verdict.is_decided(), "{a:?}");
    }

    #[test]
    fn mostly_client_bound_rounds_get_no_verdict() {
        let ab = rounds(&[1.10, 1.12, 1.15, 1.11, 1.13, 1.12, 1.14, 1.10, 1.16, 1.12]);
        let v = decide(Some(&ab), None, 10, &rules());
        assert!(
            matches!(&v, Verdict::Undecided { reason, more_rounds_may_help: false } if reason.contains("client-bound")),
            "{v:?}"
        );
        // A minority of client-bound rounds does not block it.
        assert!(decide(Some(&ab), None, 4, &rules()).is_decided());
        assert!(client_bound(0.5, 0.95));
        assert!(
            !client_bound(0.95, 0.95),
            "both saturated: the server is a limit"
        );
        assert!(
            !client_bound(0.5, 0.6),
            "neither saturated: not the client's fault"
        );
    }

    #[test]
    fn too_few_rounds_or_none_are_undecided() {
        let ab = rounds(&[1.2, 1.2, 1.2, 1.2]);
        assert!(!decide(Some(&ab), None, 0, &rules()).is_decided());
        assert!(!decide(None, None, 0, &rules()).is_decided());
    }

    #[test]
    fn the_stopping_rule() {
        let r = Rules {
            max_rounds: 20,
            budget: Duration::from_secs(30),
            ..rules()
        };
        let open = Verdict::Undecided {
            reason: String::new(),
            more_rounds_may_help: true,
        };
        let hopeless = Verdict::Undecided {
            reason: String::new(),
            more_rounds_may_help: false,
        };
        let done = Verdict::Equivalent { band_pct: 3.0 };
        let t = Duration::from_secs(5);
        // Below the minimum: always go on (within budget).
        assert!(keep_going(&done, 3, t, &r));
        // Decided, or undecided for a reason rounds cannot fix: stop.
        assert!(!keep_going(&done, 6, t, &r));
        assert!(!keep_going(&hopeless, 6, t, &r));
        // Undecided and fixable: go on until max rounds or the budget.
        assert!(keep_going(&open, 6, t, &r));
        assert!(!keep_going(&open, 20, t, &r));
        assert!(!keep_going(&open, 8, Duration::from_secs(30), &r));
    }
}
