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
mod html;
mod markdown;
pub mod mechanism;
pub mod stats;
pub mod summary;

use std::path::Path;

use anyhow::Result;

use crate::analysis;
use crate::results::{assess_rounds, read_json, write_json, Paths, RawResult};
use crate::server::Runtime;
pub use criterion::criterion_interval;
pub use env::Environment;
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
    // Criterion measured each runtime in turn, minutes apart; where its ratio falls outside
    // the rounds' interval, the machine's speed changed in between.
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

    use crate::results::{verify, Evidence, Exit, Landed, Tally};
    use crate::workload::{catalogue, Profile};
    use common::landed::CountMethod;

    /// A results folder with one workload: tokio measured and verified, tokio-uring as
    /// `uring` says, and criterion estimates for both (tokio-uring's from an earlier run
    /// unless `uring` measured it).
    fn results_dir(tag: &str, uring_skipped: bool, tokio_failed_samples: u64) -> Paths {
        let root = std::env::temp_dir().join(format!("rb-report-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let paths = Paths {
            root: root.clone(),
            criterion: root.join("criterion"),
            results: root.join("results"),
        };
        let mut spec = catalogue(Profile::Quick).remove(0);
        spec.runtimes = vec![Runtime::Tokio, Runtime::Uring];
        let estimate = |bench: &str| {
            let dir = paths.criterion.join(&spec.name).join(bench).join("new");
            std::fs::create_dir_all(&dir).expect("mkdir");
            let f = dir.join("estimates.json");
            std::fs::write(&f, r#"{"mean":{"point_estimate":10000.0,"confidence_interval":{"lower_bound":9000.0,"upper_bound":11000.0}}}"#).expect("write");
            f
        };
        // An earlier run's estimate for tokio-uring, written an hour "ago".
        let old = estimate("tokio-uring");
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .and_then(|f| f.set_modified(hour_ago))
            .expect("age the file");
        let setup = RunSetup {
            started_unix_ms: Some(
                (std::time::SystemTime::now() - std::time::Duration::from_secs(60))
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("time")
                    .as_millis() as u64,
            ),
            workloads: vec![spec.clone()],
            ..RunSetup::default()
        };
        write_json(&paths.results.join("config.json"), &setup).expect("config");
        write_json(&paths.results.join("env.json"), &Environment::default()).expect("env");
        estimate("tokio");
        for rt in [Runtime::Tokio, Runtime::Uring] {
            let skipped = (rt == Runtime::Uring && uring_skipped)
                .then(|| "io_uring unavailable: test".to_string());
            let tally = Tally {
                runs: 1,
                answered: 10,
                ok: 10,
                ..Tally::default()
            };
            let raw = RawResult {
                tally,
                failed_samples: if rt == Runtime::Tokio {
                    tokio_failed_samples
                } else {
                    0
                },
                verification: skipped.is_none().then(|| {
                    verify(Evidence {
                        tally,
                        landed: Landed::Counted(10),
                        method: CountMethod::Watermarks,
                        exit: Exit::Clean,
                        failure: None,
                    })
                }),
                skipped,
                ..RawResult::new(&spec, rt, Profile::Quick, (1, 1), String::new())
            };
            write_json(&paths.raw(&spec.name, rt), &raw).expect("raw");
        }
        paths
    }

    #[test]
    fn the_report_shows_only_what_this_run_measured() {
        // tokio-uring skipped: criterion's old estimate for it is not used, no ratio, and
        // the verdict says the measured runs verified and names what was skipped.
        let paths = results_dir("skipped", true, 0);
        let s = build(&paths).expect("build");
        let w = &s.workloads[0];
        assert!(
            w.runtimes[0].thrpt.is_some(),
            "tokio's estimate is this run's"
        );
        assert!(
            w.runtimes[1].thrpt.is_none(),
            "a skipped runtime has no estimate"
        );
        assert!(
            w.ratio_uring_tokio.is_none(),
            "a skipped runtime gets no ratio"
        );
        assert!(s.passed(), "{:?}", s.problems);
        let md = markdown::render(&s);
        assert!(md.contains("**Every measured run verified**"), "{md}");
        assert!(!md.contains("All workloads verified"), "{md}");
        assert!(md.contains("io_uring unavailable: test"), "{md}");

        // tokio-uring "measured" but criterion's only estimate is an earlier run's: refused.
        let paths = results_dir("stale", false, 0);
        let s = build(&paths).expect("build");
        assert!(s.workloads[0].runtimes[1].thrpt.is_none());
        assert!(s.workloads[0].ratio_uring_tokio.is_none());
        assert!(!s.passed());
        assert!(
            s.problems
                .iter()
                .any(|p| p.contains("no criterion estimate from this run")),
            "{:?}",
            s.problems
        );
        assert!(markdown::render(&s).contains("VERIFICATION FAILED"));

        // Failed criterion samples: the estimate (built on stand-in times) is discarded.
        let paths = results_dir("failed", true, 3);
        let s = build(&paths).expect("build");
        assert!(s.workloads[0].runtimes[0].thrpt.is_none());
        assert!(!s.passed());
        assert!(
            s.problems.iter().any(|p| p.contains("3 sample(s) failed")),
            "{:?}",
            s.problems
        );
        let _ = std::fs::remove_dir_all(&paths.root);
    }

    #[test]
    fn a_rebuilt_report_reads_the_run_s_own_criterion_estimates() {
        let paths = results_dir("kept", false, 0);
        let estimate = |ns: f64| {
            format!(
                r#"{{"mean":{{"point_estimate":{ns},"confidence_interval":{{"lower_bound":{},"upper_bound":{}}}}}}}"#,
                ns * 0.9,
                ns * 1.1
            )
        };
        // The run kept tokio-uring's estimate (20 µs per request: 50k req/s) with its
        // results; criterion's folder has since been overwritten by a later run (5 µs).
        let newer = paths
            .criterion
            .join(&catalogue(Profile::Quick)[0].name)
            .join("tokio-uring")
            .join("new")
            .join("estimates.json");
        std::fs::write(&newer, estimate(5000.0)).expect("newer");
        let w = catalogue(Profile::Quick).remove(0).name;
        std::fs::write(paths.kept_estimate(&w, Runtime::Uring), estimate(20000.0)).expect("kept");
        let s = build(&paths).expect("build");
        let uring = s.workloads[0].runtimes[1].thrpt.expect("estimate");
        assert!((uring.estimate - 50_000.0).abs() < 1e-6, "{uring:?}");
        // Copies are of this run's estimates only.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(!paths.keep_estimate(&w, Runtime::Tokio, later).expect("io"));
        let earlier = std::time::SystemTime::now() - std::time::Duration::from_secs(30);
        assert!(paths
            .keep_estimate(&w, Runtime::Tokio, earlier)
            .expect("io"));
        assert!(paths.kept_estimate(&w, Runtime::Tokio).exists());
        let _ = std::fs::remove_dir_all(&paths.root);
    }

    #[test]
    fn utc_format() {
        let s = utc_now();
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'));
    }
}
