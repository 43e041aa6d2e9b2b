//! The comparison report: criterion's saved estimates joined with our raw results
//! (latency pass, rounds, delivery check) into `results/latest/`: `summary.json`,
//! `summary.md`, `report.html` (self-contained, charts as inline SVG), beside `env.json` and
//! `config.json`.
//!
//! - [`summary`]: the schema; [`build`] fills it from the files a run wrote.
//! - [`stats`]: intervals and paired ratios; [`criterion`]: criterion's estimates.
//! - [`env`]: the machine a run was measured on.
//! - `document` (one table model for both formats), `markdown` (what the summary says),
//!   `html` (the page and its charts); `curves` and `curve_chart` (the latency curves'
//!   tables and charts); [`compare`]: two runs side by side.

pub mod compare;
pub mod criterion;
mod curve_chart;
mod curves;
mod document;
pub mod env;
mod explain;
pub mod format;
mod html;
mod markdown;
pub mod mechanism;
pub mod stats;
pub mod summary;

use std::path::Path;

use anyhow::Result;

use crate::analysis;
use crate::results::{assess_efficiency, assess_rounds, read_json, write_json, Paths, RawResult};
use crate::runtime::Runtime;
pub use criterion::criterion_interval;
pub use env::Environment;
pub use format::human_rate;
use mechanism::Mechanism;
pub use stats::{Interval, Paired};
pub use summary::{RunSetup, RuntimeResult, Summary, WorkloadResult, SCHEMA};

/// Builds the summary from `paths.results` (config.json, env.json, raw/) and criterion's
/// estimates. Missing pieces become problems, not silence.
pub fn build(paths: &Paths) -> Result<Summary> {
    let setup: RunSetup = read_json(&paths.results.join("config.json"))?;
    let env: Environment = read_json(&paths.results.join("env.json"))?;
    let rules = setup.rules.unwrap_or_default();
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
            let skipped = raw.as_ref().and_then(|r| r.skipped.clone());
            let failed_samples = raw.as_ref().map_or(0, |r| r.failed_samples);
            // Only what this run measured: not a skipped runtime's, not one whose samples
            // failed (criterion was handed a stand-in time for them), and not an estimate
            // criterion kept from an earlier run (it leaves old files in place).
            let thrpt = match (&raw, &skipped) {
                // The A/A twin runs in the interleaved rounds only.
                _ if !rt.is_compared() => None,
                (Some(_), None) if failed_samples == 0 => {
                    // The run's own copy first; runs from before copies were kept fall
                    // back to criterion's folder, refusing estimates older than the run.
                    let t = criterion::interval_from(&paths.kept_estimate(&spec.name, rt)).or_else(
                        || {
                            criterion_interval(
                                &paths.criterion,
                                &spec.name,
                                rt.label(),
                                setup.started(),
                            )
                        },
                    );
                    if t.is_none() {
                        problems.push(format!(
                            "{}/{}: no criterion estimate from this run",
                            spec.name,
                            rt.label()
                        ));
                    }
                    t
                }
                (Some(_), None) => {
                    problems.push(format!(
                        "{}/{}: criterion's estimate discarded: {failed_samples} sample(s) failed",
                        spec.name,
                        rt.label()
                    ));
                    None
                }
                _ => None,
            };
            if raw
                .as_ref()
                .is_some_and(|r| r.skipped.is_none() && r.verification.is_none())
            {
                problems.push(format!("{}/{}: not verified", spec.name, rt.label()));
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
                lives: raw.as_ref().map_or(0, |r| r.lives),
                mechanism: raw
                    .as_ref()
                    .and_then(|r| Mechanism::from_rounds(&r.round_samples, &r.mechanism_samples)),
                syscalls_unavailable: raw.as_ref().and_then(|r| r.syscalls_unavailable.clone()),
                server_ready: raw.as_ref().and_then(|r| r.server_ready.clone()),
                server_flags: raw
                    .as_ref()
                    .map(|r| r.server_flags.clone())
                    .unwrap_or_default(),
                round_samples: raw
                    .as_ref()
                    .map(|r| r.round_samples.clone())
                    .unwrap_or_default(),
                mechanism_samples: raw
                    .as_ref()
                    .map(|r| r.mechanism_samples.clone())
                    .unwrap_or_default(),
                efficiency_samples: raw
                    .as_ref()
                    .map(|r| r.efficiency_samples.clone())
                    .unwrap_or_default(),
                curve: raw.as_ref().and_then(|r| r.curve.clone()),
                curve_skipped: raw.as_ref().and_then(|r| r.curve_skipped.clone()),
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
        let samples = |rt: Runtime| of(rt).map_or(&[][..], |r| &r.round_samples[..]);
        // Server CPU per request, round by round (only rounds where both were read).
        let (cpu_uring, cpu_tokio): (Vec<f64>, Vec<f64>) = samples(Runtime::Uring)
            .iter()
            .zip(samples(Runtime::Tokio))
            .filter_map(|(u, t)| Some((u.cpu_us_per_request()?, t.cpu_us_per_request()?)))
            .unzip();
        let rates = |rt: Runtime| -> Vec<f64> { samples(rt).iter().map(|s| s.rate).collect() };
        workloads.push(WorkloadResult {
            assessment: None,
            efficiency: None,
            efficiency_rate: None,
            criterion_drift: None,
            paired_uring_tokio: Paired::from_rounds(&rates(Runtime::Uring), &rates(Runtime::Tokio)),
            paired_cpu_uring_tokio: Paired::from_rounds(&cpu_uring, &cpu_tokio),
            ratio_uring_tokio: ratio(Runtime::Tokio),
            ratio_uring_tokio_per_core: ratio(Runtime::TokioPerCore),
            spec: spec.clone(),
            runtimes,
        });
    }
    for w in &mut workloads {
        assess_workload(w, &rules);
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

/// The workload's verdict from its blocks, and whether criterion's ratio fell outside
/// their interval.
fn assess_workload(w: &mut WorkloadResult, rules: &analysis::Rules) {
    let assessment = assess_rounds(
        |rt| w.runtime(rt).map_or(&[][..], |r| &r.round_samples[..]),
        rules,
    );
    // Criterion measured the last block's two processes, one runtime after the other; where
    // its ratio falls outside the blocks' interval, that pair's offsets or a change in the
    // machine's speed in between moved it.
    w.criterion_drift = match (
        &w.ratio_uring_tokio,
        assessment.as_ref().and_then(|a| a.ab.as_ref()),
    ) {
        (Some(c), Some(ab)) => {
            let (lo, _, hi) = ab.ratio();
            Some(c.estimate < lo || c.estimate > hi)
        }
        _ => None,
    };
    w.assessment = assessment;
    w.efficiency = assess_efficiency(
        |rt| w.runtime(rt).map_or(&[][..], |r| &r.efficiency_samples[..]),
        rules,
    );
    let offered: Vec<f64> = w
        .runtimes
        .iter()
        .flat_map(|r| r.efficiency_samples.iter().filter_map(|s| s.offered))
        .collect();
    w.efficiency_rate = analysis::median(&offered);
}

/// Writes summary.json, summary.md and report.html into `dir`.
pub fn write(summary: &Summary, dir: &Path, criterion_index: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    write_json(&dir.join("summary.json"), summary)?;
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

#[cfg(test)]
mod tests;
