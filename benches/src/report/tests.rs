//! Tests of building the report from a results folder: only what the run measured, kept
//! criterion estimates, old reference folders.

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
fn committed_reference_runs_still_load() {
    // Runs from before blocks (rounds inside one pair of processes): their summaries
    // still read (report --compare), and a report rebuilt from their raw results says
    // why it cannot decide instead of deciding on pseudo-replicates.
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/reference");
    for dir in ["dev-2core-verdicts", "dev-2core-curves"] {
        let results = reference.join(dir);
        let old: Summary = read_json(&results.join("summary.json")).expect(dir);
        assert!(
            old.workloads.iter().all(|w| w.assessment.is_some()),
            "{dir}"
        );
        let paths = Paths {
            root: reference.clone(),
            criterion: std::env::temp_dir().join("rb-no-criterion-here"),
            results,
        };
        let rebuilt = build(&paths).expect(dir);
        assert_eq!(rebuilt.workloads.len(), old.workloads.len());
        for w in &rebuilt.workloads {
            let a = w.assessment.as_ref().expect("assessed");
            assert_eq!(a.blocks, 1, "{dir}/{}", w.spec.name);
            assert!(
                matches!(&a.verdict, analysis::Verdict::Undecided { reason, .. } if reason.contains("1 blocks")),
                "{dir}/{}: {:?}",
                w.spec.name,
                a.verdict
            );
        }
    }
}

#[test]
fn utc_format() {
    let s = utc_now();
    assert_eq!(s.len(), 20, "{s}");
    assert!(s.starts_with("20") && s.ends_with('Z'));
}
