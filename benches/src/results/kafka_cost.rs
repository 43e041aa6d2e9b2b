//! What publishing to Kafka costs a runtime: its turns beside its null-sink control's
//! (the same server with `--sink null`), block by block, the same design as the runtime
//! verdict (fresh processes per block, a Latin square of rounds, intervals over blocks).
//! An estimate with its interval, not a verdict: the effect is the publisher's, the same
//! code in both servers.

use super::sample::by_block;
use super::RoundSample;
use crate::analysis::{median, BlockEstimate, Limits, Rules};
use crate::runtime::Runtime;

/// One runtime's Kafka cost, from the blocks where it ran beside its null-sink control.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KafkaCost {
    /// The runtime publishing to Kafka, and its control.
    pub runtime: Runtime,
    pub control: Runtime,
    /// Throughput with Kafka / with the null sink (log contrast per block: the difference
    /// of the two processes' mean log rates over the block's closed-loop rounds).
    pub throughput: Option<BlockEstimate>,
    /// Server CPU per request added by Kafka, µs (the server process's user + system, per
    /// block: Kafka's mean over its rounds minus the control's).
    pub cpu_us: Option<BlockEstimate>,
    /// The same split into user and system time, medians of the per-block differences.
    pub user_us: Option<f64>,
    pub system_us: Option<f64>,
    /// The server cores' busy µs per request added at the efficiency rounds' offered rate
    /// (whole cores: the softirq work for the broker's socket included).
    pub core_us_at_rate: Option<BlockEstimate>,
    /// Medians over the closed-loop rounds, for reading the figures above.
    pub kafka_rate: Option<f64>,
    pub null_rate: Option<f64>,
    pub kafka_cpu_us: Option<f64>,
    pub null_cpu_us: Option<f64>,
    /// Who limited the two runtimes' closed-loop turns: a throughput ratio is the server's
    /// cost only where the server was the limit.
    pub limits: Limits,
}

impl KafkaCost {
    /// Why the throughput ratio is not the server's alone, if most turns were not
    /// server-limited.
    pub fn throughput_caveat(&self) -> Option<String> {
        let l = &self.limits;
        let n = l.turns();
        (n > 0 && l.server * 2 <= n).then(|| {
            format!(
                "server-limited in {} of {n} turns ({} co-limited, {} load-limited, {} neither)",
                l.server, l.co, l.load, l.neither
            )
        })
    }

    /// One line: `tokio: Kafka costs 20.7 % [18.1, 23.0] of throughput and +1.31 [1.10,
    /// 1.52] µs of server CPU per request`.
    pub fn line(&self) -> String {
        format!(
            "{}: Kafka costs {} of throughput and {} µs of server CPU per request{}",
            self.runtime.label(),
            self.throughput.as_ref().map_or("—".into(), throughput_cost),
            self.cpu_us.as_ref().map_or("—".into(), added_us),
            if self.throughput_caveat().is_some() {
                " (most turns not server-limited: the throughput share is partly the load side's)"
            } else {
                ""
            }
        )
    }
}

/// `20.7 % [18.1, 23.0]`: the share of throughput Kafka takes (1 − Kafka / null sink).
pub fn throughput_cost(e: &BlockEstimate) -> String {
    let (lo, est, hi) = e.ratio();
    let pct = |r: f64| (1.0 - r) * 100.0;
    format!(
        "{:.1} % [{:.1}, {:.1}]{}",
        pct(est),
        pct(hi),
        pct(lo),
        confidence(e)
    )
}

/// ` (50 % interval)` where the interval is below 95 % (fewer than 6 blocks).
fn confidence(e: &BlockEstimate) -> String {
    if e.confidence < 0.95 {
        format!(" ({:.0} % interval)", e.confidence * 100.0)
    } else {
        String::new()
    }
}

/// `+1.31 [1.10, 1.52]`: an added amount (µs) and its interval.
pub fn added_us(e: &BlockEstimate) -> String {
    format!(
        "{:+.2} [{:.2}, {:.2}]{}",
        e.estimate,
        e.lower,
        e.upper,
        confidence(e)
    )
}

/// The Kafka cost of every runtime of the workload that has a null-sink control with
/// rounds (`samples(runtime, paced)`: the runtime's closed-loop verdict rounds, or with
/// `paced` its efficiency rounds).
pub fn assess_kafka_cost<'a>(
    samples: impl Fn(Runtime, bool) -> &'a [RoundSample],
    rules: &Rules,
) -> Vec<KafkaCost> {
    Runtime::ALL
        .into_iter()
        .filter_map(|control| {
            let runtime = control.kafka_partner()?;
            let (k, n) = (samples(runtime, false), samples(control, false));
            if k.is_empty() || n.is_empty() {
                return None;
            }
            let per_block = |s: &[RoundSample], f: &dyn Fn(&RoundSample) -> Option<f64>| {
                by_block(s, |t| f(t).unwrap_or(f64::NAN))
                    .into_iter()
                    .map(|v| v.iter().sum::<f64>() / v.len() as f64)
                    .collect::<Vec<f64>>()
            };
            let contrast = |k: &[RoundSample],
                            n: &[RoundSample],
                            f: &dyn Fn(&RoundSample) -> Option<f64>|
             -> Vec<f64> {
                per_block(k, f)
                    .iter()
                    .zip(per_block(n, f))
                    .map(|(a, b)| a - b)
                    .collect()
            };
            let estimate = |v: Vec<f64>| BlockEstimate::from_blocks(&v, rules.level);
            let ln_rate = |t: &RoundSample| (t.rate > 0.0).then(|| t.rate.ln());
            let user = |t: &RoundSample| per_request(t, t.server_user_s?);
            let system = |t: &RoundSample| per_request(t, t.server_system_s?);
            let finite_median =
                |v: Vec<f64>| median(&v.into_iter().filter(|x| x.is_finite()).collect::<Vec<_>>());
            let rates = |s: &[RoundSample]| median(&s.iter().map(|t| t.rate).collect::<Vec<_>>());
            let cpus = |s: &[RoundSample]| {
                median(
                    &s.iter()
                        .filter_map(RoundSample::cpu_us_per_request)
                        .collect::<Vec<_>>(),
                )
            };
            let (kp, np) = (samples(runtime, true), samples(control, true));
            Some(KafkaCost {
                runtime,
                control,
                throughput: estimate(contrast(k, n, &ln_rate)),
                cpu_us: estimate(contrast(k, n, &RoundSample::cpu_us_per_request)),
                user_us: finite_median(contrast(k, n, &user)),
                system_us: finite_median(contrast(k, n, &system)),
                core_us_at_rate: estimate(contrast(kp, np, &RoundSample::core_us_per_request)),
                kafka_rate: rates(k),
                null_rate: rates(n),
                kafka_cpu_us: cpus(k),
                null_cpu_us: cpus(n),
                limits: super::limits(&[k, n]),
            })
        })
        .collect()
}

fn per_request(t: &RoundSample, seconds: f64) -> Option<f64> {
    (t.answered > 0).then(|| seconds * 1e6 / t.answered as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A closed-loop turn of block `b`: `rate` req/s for 1 s at `cpu_us` of server CPU per
    /// request (a quarter of it system time).
    fn turn(b: usize, round: usize, rate: f64, cpu_us: f64) -> RoundSample {
        let cpu_s = cpu_us * rate / 1e6;
        RoundSample {
            block: b,
            round,
            rate,
            answered: rate as u64,
            wall_s: 1.0,
            server_user_s: Some(cpu_s * 0.75),
            server_system_s: Some(cpu_s * 0.25),
            ..RoundSample::default()
        }
    }

    #[test]
    fn kafka_cost_is_the_per_block_contrast_with_the_null_sink() {
        // 8 blocks, 3 rounds each; every block's processes have their own offset (both
        // arms' rates move together by up to ±6 %), so rounds alone would mislead. With
        // Kafka: 80 % of the null sink's rate and +1.5 µs per request.
        let offset = [1.0, 1.06, 0.95, 1.02, 0.97, 1.04, 0.94, 1.01];
        let arm = |rate: f64, cpu: f64| -> Vec<RoundSample> {
            (0..8)
                .flat_map(|b| (0..3).map(move |r| (b, r)))
                .map(|(b, r)| turn(b, r, rate * offset[b], cpu / offset[b]))
                .collect()
        };
        let (tokio, null) = (arm(80_000.0, 7.0), arm(100_000.0, 5.5));
        let costs = assess_kafka_cost(
            |rt, paced| match (rt, paced) {
                (_, true) => &[],
                (Runtime::Tokio, _) => &tokio[..],
                (Runtime::TokioNullSink, _) => &null[..],
                _ => &[],
            },
            &Rules::default(),
        );
        assert_eq!(costs.len(), 1, "only tokio has a control with rounds");
        let c = &costs[0];
        assert_eq!(
            (c.runtime, c.control),
            (Runtime::Tokio, Runtime::TokioNullSink)
        );
        let (lo, est, hi) = c.throughput.as_ref().expect("ratio").ratio();
        assert!(
            (est - 0.8).abs() < 1e-9 && lo <= est && est <= hi,
            "{lo} {est} {hi}"
        );
        let cpu = c.cpu_us.as_ref().expect("cpu");
        // Per block the difference is 1.5 / offset: an interval around 1.5 µs.
        assert!(cpu.lower < 1.5 && 1.5 < cpu.upper, "{cpu:?}");
        assert!((c.user_us.expect("user") / c.system_us.expect("system") - 3.0).abs() < 1e-9);
        assert!(c.core_us_at_rate.is_none(), "no paced turns");
        assert!(
            c.line()
                .starts_with("tokio: Kafka costs 20.0 % [20.0, 20.0] of throughput and +1.5"),
            "{}",
            c.line()
        );
        // A control with no rounds gives no estimate.
        let none = assess_kafka_cost(
            |rt, _| {
                if rt == Runtime::Tokio {
                    &tokio[..]
                } else {
                    &[]
                }
            },
            &Rules::default(),
        );
        assert!(none.is_empty());
    }
}
