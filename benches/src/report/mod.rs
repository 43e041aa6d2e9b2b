//! The comparison report: criterion's saved estimates joined with our raw results
//! (latency pass, rounds, delivery check) into `results/latest/`: `summary.json`,
//! `summary.md`, `report.html` (self-contained, charts as inline SVG), beside `env.json` and
//! `config.json`.
//!
//! - [`summary`]: the schema; [`build`] fills it from the files a run wrote.
//! - [`stats`]: intervals and paired ratios; [`criterion`]: criterion's estimates.
//! - [`env`]: the machine a run was measured on.
//! - `document` (one table model for both formats), `markdown` (what the summary says),
//!   `html` (the page and its charts); [`compare`]: two runs side by side.

pub mod compare;
pub mod criterion;
mod document;
pub mod env;
mod html;
mod markdown;
pub mod stats;
pub mod summary;

use std::path::Path;

use anyhow::Result;

use crate::results::{read_json, write_json, Paths, RawResult};
use crate::server::Runtime;
pub use criterion::criterion_interval;
pub use env::Environment;
pub use stats::{Interval, Paired};
pub use summary::{RunSetup, RuntimeResult, Summary, WorkloadResult, SCHEMA};

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
    fn utc_format() {
        let s = utc_now();
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'));
    }
}
