//! The comparison report: criterion's saved estimates joined with our raw results
//! (latency pass, rounds, delivery check) into `results/latest/`: `summary.json`,
//! `summary.md`, `report.html` (self-contained, charts as inline SVG), beside `env.json` and
//! `config.json`.
//!
//! - [`summary`]: the schema; [`build`] fills it from the files a run wrote (`legacy`: the
//!   one thing read from a v1 summary.json).
//! - [`env`]: the machine a run was measured on.
//! - `document` (one table model for both formats), `markdown` (what the summary says),
//!   `html` (the page and its charts); `curves` and `curve_chart` (the latency curves'
//!   tables and charts); `kafka_cost` (what publishing to Kafka costs); [`compare`]: two runs side by side; [`console`]: the lines
//!   `cargo bench` prints at the end.

pub mod compare;
pub mod console;
mod curve_chart;
mod curves;
mod document;
pub mod env;
mod explain;
mod forest;
pub mod format;
mod html;
mod kafka_cost;
mod legacy;
pub mod machine;
mod markdown;
pub mod mechanism;
mod profiles;
pub mod summary;
mod unit_costs;

use std::path::Path;

use anyhow::Result;

use crate::analysis;
use crate::analysis::Paired;
use crate::results::{
    assess_efficiency, assess_kafka_cost, assess_rounds, criterion_interval, interval_from,
    read_json, write_json, Paths, RawResult,
};
use crate::runtime::Runtime;
pub use env::Environment;
pub use format::human_rate;
use mechanism::Mechanism;
pub use summary::{RunSetup, RuntimeResult, Summary, WorkloadResult, SCHEMA};

/// Builds the summary from a run's folder (config.json, env.json, raw/) and criterion's
/// estimates: the run's kept copies, else `criterion`'s folder (estimates written before the
/// run started refused), else, in a folder from before copies were kept, the intervals its
/// summary.json recorded (`legacy.rs`). Missing pieces become problems, not silence.
pub fn build(results: &Path, criterion: Option<&Path>) -> Result<Summary> {
    let paths = Paths::of_run(results);
    let setup: RunSetup = read_json(&results.join("config.json"))?;
    let env: Environment = read_json(&results.join("env.json"))?;
    let recorded = legacy::RecordedIntervals::read(results);
    let rules = setup.rules.unwrap_or_default();
    let mut problems = Vec::new();
    let mut workloads = Vec::new();
    for spec in &setup.workloads {
        let mut runtimes = Vec::new();
        for &rt in &spec.runtimes {
            let what = format!("{}/{}", spec.name, rt.label());
            let raw: RawResult = match read_json(&paths.raw(&spec.name, rt)) {
                Ok(r) => r,
                Err(e) => {
                    problems.push(format!("{what}: no result ({e:#})"));
                    continue;
                }
            };
            // Only what this run measured: not a skipped runtime's, not one whose samples
            // failed (criterion was handed a stand-in time for them), and not an estimate
            // criterion kept from an earlier run (it leaves old files in place).
            let thrpt = if !rt.is_compared() || raw.skipped.is_some() {
                // The A/A twin runs in the blocks only.
                None
            } else if raw.failed_samples > 0 {
                problems.push(format!(
                    "{what}: criterion's estimate discarded: {} sample(s) failed",
                    raw.failed_samples
                ));
                None
            } else {
                let t = interval_from(&paths.kept_estimate(&spec.name, rt))
                    .or_else(|| {
                        criterion_interval(criterion?, &spec.name, rt.label(), setup.started())
                    })
                    .or_else(|| recorded.interval(&spec.name, rt));
                if t.is_none() {
                    problems.push(format!("{what}: no criterion estimate from this run"));
                }
                t
            };
            match &raw.verification {
                None if raw.skipped.is_none() => problems.push(format!("{what}: not verified")),
                Some(v) => problems.extend(v.problems.iter().map(|p| format!("{what}: {p}"))),
                None => {}
            }
            runtimes.push(RuntimeResult {
                label: rt.label().into(),
                thrpt,
                mechanism: Mechanism::from_rounds(&raw.round_samples, &raw.mechanism_samples),
                raw,
            });
        }
        let of = |rt: Runtime| runtimes.iter().find(|r| r.runtime() == rt);
        let thrpt = |rt: Runtime| of(rt)?.thrpt;
        let ratio = |base: Runtime| Some(thrpt(Runtime::Uring)?.ratio(&thrpt(base)?));
        let samples = |rt: Runtime| of(rt).map_or(&[][..], |r| &r.raw.round_samples[..]);
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
            kafka_cost: Vec::new(),
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
        |rt| w.runtime(rt).map_or(&[][..], |r| &r.raw.round_samples[..]),
        rules,
    );
    // Criterion measured the mechanism block's two processes, one runtime after the other; where
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
        |rt| {
            w.runtime(rt)
                .map_or(&[][..], |r| &r.raw.efficiency_samples[..])
        },
        rules,
    );
    let offered: Vec<f64> = w
        .runtimes
        .iter()
        .flat_map(|r| r.raw.efficiency_samples.iter().filter_map(|s| s.offered))
        .collect();
    w.efficiency_rate = analysis::median(&offered);
    w.kafka_cost = assess_kafka_cost(
        |rt, paced| w.runtime(rt).map_or(&[][..], |r| r.raw.turns(paced)),
        rules,
    );
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
    utc(std::time::SystemTime::now())
}

/// `t` as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc(t: std::time::SystemTime) -> String {
    let secs = t
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
