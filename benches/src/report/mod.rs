//! The comparison report: criterion's saved estimates joined with our raw results
//! (latency pass, delivery check) into `results/latest/`: `summary.json`, `summary.md`,
//! `report.html` (self-contained, charts as inline SVG), beside `env.json` and `config.json`.

pub mod compare;
pub mod env;
mod html;
mod markdown;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use crate::loadgen::report::Latency;
use crate::server::Runtime;
use crate::suite::{Paths, RawResult, Spec, Tally, Verification};
pub use env::Environment;

pub const SCHEMA: &str = "runtime-bench/summary/v1";

/// A 95% interval in requests per second.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    pub lower: f64,
    pub estimate: f64,
    pub upper: f64,
}

impl Interval {
    /// Half-width relative to the estimate.
    pub fn rel_half_width(&self) -> f64 {
        (self.upper - self.lower) / 2.0 / self.estimate
    }

    /// `self / other` with the widest bounds the two intervals allow.
    pub fn ratio(&self, other: &Interval) -> Interval {
        Interval {
            lower: self.lower / other.upper,
            estimate: self.estimate / other.estimate,
            upper: self.upper / other.lower,
        }
    }

    /// `1.234 [1.100, 1.400]`: a ratio with its bounds.
    pub fn fmt_ratio(&self) -> String {
        format!(
            "{:.3} [{:.3}, {:.3}]",
            self.estimate, self.lower, self.upper
        )
    }

    pub fn overlaps(&self, other: &Interval) -> bool {
        self.lower <= other.upper && other.lower <= self.upper
    }
}

/// tokio-uring / tokio from interleaved rounds: one ratio per round (each runtime's rate
/// in that round, measured back to back), their median, and a distribution-free interval
/// for the median from the ratios' order statistics (a sign-test interval: it assumes only
/// that rounds are independent, not that the noise is normal).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Paired {
    /// Per round, in round order.
    pub ratios: Vec<f64>,
    pub median: f64,
    pub lower: f64,
    pub upper: f64,
    /// The interval's confidence: at least 0.95 from 6 rounds up; fewer rounds cannot reach
    /// 0.95 and get the widest interval (min to max) with its lower confidence.
    pub confidence: f64,
}

impl Paired {
    /// `a[i] / b[i]` for each round both have; `None` without any.
    pub fn from_rounds(a: &[f64], b: &[f64]) -> Option<Self> {
        let ratios: Vec<f64> = a
            .iter()
            .zip(b)
            .filter(|(x, y)| **y > 0.0 && x.is_finite())
            .map(|(x, y)| x / y)
            .collect();
        let n = ratios.len();
        if n == 0 {
            return None;
        }
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        // [x(k), x(n+1-k)] covers the median with probability 1 - 2 P(Bin(n, 1/2) < k):
        // the largest k that keeps that at 0.95 or more, else k = 1.
        let tail =
            |k: usize| -> f64 { (0..k).map(|i| binomial(n, i)).sum::<f64>() / 2f64.powi(n as i32) };
        let mut k = 1;
        while k < n.div_ceil(2) && 1.0 - 2.0 * tail(k + 1) >= 0.95 {
            k += 1;
        }
        Some(Self {
            median,
            lower: sorted[k - 1],
            upper: sorted[n - k],
            confidence: 1.0 - 2.0 * tail(k),
            ratios,
        })
    }

    /// `1.234 [1.100, 1.400]`, with the confidence when it is below 95%.
    pub fn fmt_ratio(&self) -> String {
        let conf = if self.confidence < 0.95 {
            format!(" ({:.0}% interval)", self.confidence * 100.0)
        } else {
            String::new()
        };
        format!(
            "{:.3} [{:.3}, {:.3}]{conf}",
            self.median, self.lower, self.upper
        )
    }
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// What the run configured, written at its start (config.json).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RunSetup {
    pub profile: String,
    pub kafka: String,
    /// The servers' effective producer configuration (same code path as the servers').
    pub producer_config: BTreeMap<String, String>,
    /// Flags every server got, besides each workload's own.
    pub server_args: Vec<String>,
    pub workloads: Vec<Spec>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RuntimeResult {
    pub runtime: Runtime,
    pub label: String,
    /// Criterion's throughput interval (from its slope, or mean, estimate).
    pub thrpt: Option<Interval>,
    pub latency: Option<Latency>,
    /// The latency pass's achieved rate.
    pub latency_pass_rate: Option<f64>,
    /// The server's CPU µs per request in the latency pass (all its threads).
    #[serde(default)]
    pub cpu_us_per_request: Option<f64>,
    /// Achieved req/s in each interleaved round.
    #[serde(default)]
    pub rounds: Vec<f64>,
    /// The server's CPU µs per request in each interleaved round (`None`: not readable).
    #[serde(default)]
    pub rounds_cpu_us: Vec<Option<f64>>,
    pub tally: Tally,
    pub verification: Option<Verification>,
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WorkloadResult {
    pub spec: Spec,
    pub runtimes: Vec<RuntimeResult>,
    /// tokio-uring / tokio throughput.
    pub ratio_uring_tokio: Option<Interval>,
    /// tokio-uring / tokio per-core throughput (full profile).
    pub ratio_uring_tokio_per_core: Option<Interval>,
    /// tokio-uring / tokio from the interleaved rounds.
    #[serde(default)]
    pub paired_uring_tokio: Option<Paired>,
    /// tokio-uring / tokio server CPU per request from the same rounds (below 1: tokio-uring
    /// spent less CPU on each request).
    #[serde(default)]
    pub paired_cpu_uring_tokio: Option<Paired>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub schema: String,
    pub generated_at: String,
    pub setup: RunSetup,
    pub env: Environment,
    pub workloads: Vec<WorkloadResult>,
    /// Every failed verification or missing result, one line each.
    pub problems: Vec<String>,
}

impl Summary {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line saying what was run where: time, profile, Kafka, CPU, cores, kernel,
    /// librdkafka, layout. Plain text (escape it for HTML).
    pub fn run_line(&self) -> String {
        let e = &self.env;
        format!(
            "Generated {} · profile {} · Kafka: {} · {} · {} cores · kernel {} · librdkafka {} · layout {}",
            self.generated_at,
            self.setup.profile,
            self.setup.kafka,
            e.cpu_model.as_deref().unwrap_or("unknown CPU"),
            e.cores,
            e.kernel.as_deref().unwrap_or("?"),
            e.librdkafka,
            e.cpu_layout
        )
    }

    pub fn workload(&self, name: &str) -> Option<&WorkloadResult> {
        self.workloads.iter().find(|w| w.spec.name == name)
    }

    pub fn runtime(&self, workload: &str, runtime: Runtime) -> Option<&RuntimeResult> {
        self.workload(workload)?
            .runtimes
            .iter()
            .find(|r| r.runtime == runtime)
    }
}

/// Reads criterion's estimate for one benchmark as req/s (1 element per iteration).
pub fn criterion_interval(criterion: &Path, group: &str, bench: &str) -> Option<Interval> {
    let path = criterion
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    // Criterion prints the slope when it has one (linear sampling), else the mean.
    let est = v
        .get("slope")
        .filter(|s| !s.is_null())
        .or_else(|| v.get("mean"))?;
    let ns = |p: &str| est.pointer(p).and_then(serde_json::Value::as_f64);
    let (point, lo, hi) = (
        ns("/point_estimate")?,
        ns("/confidence_interval/lower_bound")?,
        ns("/confidence_interval/upper_bound")?,
    );
    // Time per request -> requests per second: the interval's ends swap.
    Some(Interval {
        lower: 1e9 / hi,
        estimate: 1e9 / point,
        upper: 1e9 / lo,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Builds the summary from `paths.results` (config.json, env.json, raw/) and criterion's
/// estimates. Missing pieces become problems, not silence.
pub fn build(paths: &Paths) -> Result<Summary> {
    let setup: RunSetup = read_json(&paths.results.join("config.json"))?;
    let env: Environment = read_json(&paths.results.join("env.json"))?;
    let mut problems = Vec::new();
    let mut workloads = Vec::new();
    for spec in &setup.workloads {
        let mut runtimes = Vec::new();
        for &rt in &spec.runtimes {
            let raw: Option<RawResult> = match read_json(&paths.raw(&spec.name, rt)) {
                Ok(r) => Some(r),
                Err(e) => {
                    problems.push(format!("{}/{}: no result ({e:#})", spec.name, rt.label()));
                    None
                }
            };
            let thrpt = criterion_interval(&paths.criterion, &spec.name, rt.label());
            let skipped = raw.as_ref().and_then(|r| r.skipped.clone());
            if thrpt.is_none() && skipped.is_none() && raw.is_some() {
                problems.push(format!(
                    "{}/{}: no criterion estimate",
                    spec.name,
                    rt.label()
                ));
            }
            let verification = raw.as_ref().and_then(|r| r.verification.clone());
            if let Some(v) = &verification {
                for p in &v.problems {
                    problems.push(format!("{}/{}: {p}", spec.name, rt.label()));
                }
            }
            runtimes.push(RuntimeResult {
                runtime: rt,
                label: rt.label().into(),
                thrpt,
                latency: raw
                    .as_ref()
                    .and_then(|r| r.latency_pass.as_ref())
                    .map(|p| p.latency_us),
                latency_pass_rate: raw
                    .as_ref()
                    .and_then(|r| r.latency_pass.as_ref())
                    .map(|p| p.rate),
                cpu_us_per_request: raw.as_ref().and_then(|r| r.latency_pass_cpu_us),
                rounds: raw.as_ref().map(|r| r.rounds.clone()).unwrap_or_default(),
                rounds_cpu_us: raw
                    .as_ref()
                    .map(|r| r.rounds_cpu_us.clone())
                    .unwrap_or_default(),
                tally: raw.as_ref().map(|r| r.tally).unwrap_or_default(),
                verification,
                skipped,
            });
        }
        let thrpt = |rt: Runtime| {
            runtimes
                .iter()
                .find(|r| r.runtime == rt)
                .and_then(|r| r.thrpt)
        };
        let ratio = |base: Runtime| Some(thrpt(Runtime::Uring)?.ratio(&thrpt(base)?));
        let of = |rt: Runtime| runtimes.iter().find(|r| r.runtime == rt);
        let rounds = |rt: Runtime| of(rt).map_or(&[][..], |r| &r.rounds[..]);
        let cpu = |rt: Runtime| of(rt).map_or(&[][..], |r| &r.rounds_cpu_us[..]);
        // Only rounds where both CPU times were read pair up.
        let (cpu_uring, cpu_tokio): (Vec<f64>, Vec<f64>) = cpu(Runtime::Uring)
            .iter()
            .zip(cpu(Runtime::Tokio))
            .filter_map(|(u, t)| Some(((*u)?, (*t)?)))
            .unzip();
        workloads.push(WorkloadResult {
            paired_uring_tokio: Paired::from_rounds(rounds(Runtime::Uring), rounds(Runtime::Tokio)),
            paired_cpu_uring_tokio: Paired::from_rounds(&cpu_uring, &cpu_tokio),
            ratio_uring_tokio: ratio(Runtime::Tokio),
            ratio_uring_tokio_per_core: ratio(Runtime::TokioPerCore),
            spec: spec.clone(),
            runtimes,
        });
    }
    Ok(Summary {
        schema: SCHEMA.into(),
        generated_at: utc_now(),
        setup,
        env,
        workloads,
        problems,
    })
}

/// Writes summary.json, summary.md and report.html into `dir`.
pub fn write(summary: &Summary, dir: &Path, criterion_index: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::suite::write_json(&dir.join("summary.json"), summary)?;
    std::fs::write(dir.join("summary.md"), markdown::render(summary))?;
    let link = relative_link(dir, criterion_index);
    std::fs::write(dir.join("report.html"), html::render(summary, &link))?;
    Ok(())
}

/// A link from `dir` to `target` (relative when they share a root, so the folder can move).
fn relative_link(dir: &Path, target: &Path) -> String {
    let (Ok(d), Ok(t)) = (
        dir.canonicalize(),
        target
            .parent()
            .map_or(Ok(target.to_path_buf()), |p| p.canonicalize()),
    ) else {
        return target.display().to_string();
    };
    let common = d
        .components()
        .zip(t.components())
        .take_while(|(a, b)| a == b)
        .count();
    let ups = d.components().count() - common;
    let mut rel: Vec<String> = std::iter::repeat_n("..".to_string(), ups).collect();
    rel.extend(
        t.components()
            .skip(common)
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if let Some(name) = target.file_name() {
        rel.push(name.to_string_lossy().into_owned());
    }
    rel.join("/")
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `12345.6` -> `12.3k`.
pub fn human_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_bounds_are_conservative() {
        let a = Interval {
            lower: 90.0,
            estimate: 100.0,
            upper: 110.0,
        };
        let b = Interval {
            lower: 45.0,
            estimate: 50.0,
            upper: 55.0,
        };
        let r = a.ratio(&b);
        assert!((r.estimate - 2.0).abs() < 1e-9);
        assert!((r.lower - 90.0 / 55.0).abs() < 1e-9);
        assert!((r.upper - 110.0 / 45.0).abs() < 1e-9);
        assert!(!a.overlaps(&b));
        assert!((a.rel_half_width() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn paired_rounds_give_a_median_and_a_sign_test_interval() {
        // Ten rounds, both runtimes drifting together (the machine slows down by half):
        // every round's ratio is about 1.2 although the absolute rates fall.
        let tokio: Vec<f64> = (0..10).map(|i| 100.0 - 5.0 * f64::from(i)).collect();
        let noise = [1.0, 1.02, 0.98, 1.01, 0.99, 1.03, 0.97, 1.0, 1.04, 0.96];
        let uring: Vec<f64> = tokio.iter().zip(noise).map(|(t, e)| t * 1.2 * e).collect();
        let p = Paired::from_rounds(&uring, &tokio).expect("paired");
        assert_eq!(p.ratios.len(), 10);
        assert!((p.median - 1.2).abs() < 1e-9, "{p:?}");
        // n = 10: the interval is [x(2), x(9)], confidence 1 - 2 * 11/1024.
        assert!((p.lower - 1.2 * 0.97).abs() < 1e-9, "{p:?}");
        assert!((p.upper - 1.2 * 1.03).abs() < 1e-9, "{p:?}");
        assert!((p.confidence - (1.0 - 22.0 / 1024.0)).abs() < 1e-12);
        assert_eq!(p.fmt_ratio(), "1.200 [1.164, 1.236]");

        // Four rounds cannot give 95%: min..max, at 1 - 2/16 = 87.5%, and it says so.
        let p = Paired::from_rounds(&[2.0, 3.0, 4.0, 5.0], &[2.0, 2.0, 2.0, 2.0]).expect("p");
        assert_eq!((p.lower, p.median, p.upper), (1.0, 1.75, 2.5));
        assert!((p.confidence - 0.875).abs() < 1e-12);
        assert!(
            p.fmt_ratio().ends_with("(88% interval)"),
            "{}",
            p.fmt_ratio()
        );
        assert!(Paired::from_rounds(&[], &[]).is_none());
        // Six rounds is the least that reaches 95%: still min..max (1 - 2/64).
        let p = Paired::from_rounds(&[1.0; 6], &[1.0; 6]).expect("p");
        assert!(p.confidence >= 0.95);
    }

    #[test]
    fn criterion_estimates_become_req_per_s() {
        let dir = std::env::temp_dir().join(format!("rb-crit-{}", std::process::id()));
        let est = dir.join("g").join("tokio").join("new");
        std::fs::create_dir_all(&est).expect("mkdir");
        std::fs::write(
            est.join("estimates.json"),
            r#"{"mean":{"point_estimate":20000.0,"confidence_interval":{"lower_bound":19000.0,"upper_bound":21000.0}},
               "slope":{"point_estimate":10000.0,"confidence_interval":{"lower_bound":9000.0,"upper_bound":12500.0}}}"#,
        )
        .expect("write");
        let i = criterion_interval(&dir, "g", "tokio").expect("interval");
        assert!((i.estimate - 100_000.0).abs() < 1e-6);
        assert!((i.lower - 80_000.0).abs() < 1e-6);
        assert!((i.upper - 1e9 / 9000.0).abs() < 1e-6);
        assert!(criterion_interval(&dir, "g", "tokio-uring").is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn utc_format() {
        let s = utc_now();
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'));
    }
}
