//! Tests of building the report from a results folder: only what the run measured, kept
//! criterion estimates, old reference folders.

use super::*;

use crate::analysis::Interval;
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
                    ids: None,
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
    let s = build(&paths.results, Some(&paths.criterion)).expect("build");
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
    let s = build(&paths.results, Some(&paths.criterion)).expect("build");
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
    let s = build(&paths.results, Some(&paths.criterion)).expect("build");
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
    let s = build(&paths.results, Some(&paths.criterion)).expect("build");
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
    // Every committed run rebuilds from its folder (report --compare does this): the
    // criterion intervals are the ones its summary recorded, the verdicts are decided again
    // from its raw turns and come out as they were; runs from before blocks (rounds inside
    // one pair of processes) say why they cannot decide instead of deciding on
    // pseudo-replicates.
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/reference");
    let mut folders: Vec<_> = std::fs::read_dir(&reference)
        .expect("reference runs")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("config.json").exists())
        .collect();
    folders.sort();
    assert!(folders.len() >= 10, "{folders:?}");
    let mut verdicts_compared = 0;
    let mut kafka_costs_compared = 0;
    for dir in &folders {
        let name = dir.display().to_string();
        let old: serde_json::Value = read_json(&dir.join("summary.json")).expect(&name);
        let rebuilt = build(dir, None).expect(&name);
        let old_workloads = old["workloads"].as_array().expect("workloads");
        assert_eq!(rebuilt.workloads.len(), old_workloads.len(), "{name}");
        for (w, ow) in rebuilt.workloads.iter().zip(old_workloads) {
            let here = format!("{name}/{}", w.spec.name);
            for r in &w.runtimes {
                let old_r = (ow["runtimes"].as_array().expect("runtimes").iter())
                    .find(|o| o["runtime"] == serde_json::to_value(r.runtime()).expect("json"))
                    .expect(&here);
                let old_thrpt: Option<Interval> =
                    serde_json::from_value(old_r["thrpt"].clone()).expect(&here);
                // Equal up to the last digit JSON keeps.
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs();
                let same = match (r.thrpt, old_thrpt) {
                    (Some(a), Some(b)) => {
                        close(a.lower, b.lower)
                            && close(a.estimate, b.estimate)
                            && close(a.upper, b.upper)
                    }
                    (a, b) => a == b,
                };
                assert!(same, "{here}/{}: {:?} vs {old_thrpt:?}", r.label, r.thrpt);
            }
            if let Some(old_cost) = ow.get("kafka_cost") {
                let again = serde_json::to_value(&w.kafka_cost).expect("json");
                assert!(same_json(&again, old_cost), "{here}: {again} vs {old_cost}");
                kafka_costs_compared += usize::from(!w.kafka_cost.is_empty());
            }
            let before_blocks = w
                .runtimes
                .iter()
                .all(|r| (r.raw.round_samples.iter()).all(|s| s.block == 0));
            match (&w.assessment, ow["assessment"]["verdict"].as_object()) {
                (Some(a), _) if before_blocks => assert!(
                    matches!(&a.verdict, analysis::Verdict::Undecided { reason, .. } if reason.contains("1 blocks")),
                    "{here}: {:?}",
                    a.verdict
                ),
                // Decided again by this version's analysis: as recorded where the recording
                // analysis already knew who limited each turn (older runs may now withhold
                // a throughput verdict they once gave).
                (Some(a), Some(_)) if ow["assessment"].get("limits").is_some() => {
                    let again = serde_json::to_value(&a.verdict).expect("json");
                    assert!(
                        same_json(&again, &ow["assessment"]["verdict"]),
                        "{here}: {again} vs {}",
                        ow["assessment"]["verdict"]
                    );
                    verdicts_compared += 1;
                }
                (Some(_), Some(_)) => {}
                // From before verdicts were recorded: none then, none now.
                (None, None) => {}
                (a, o) => panic!("{here}: rebuilt {a:?}, recorded {o:?}"),
            }
        }
    }
    assert!(verdicts_compared >= 18, "{verdicts_compared}");
    assert!(kafka_costs_compared >= 2, "{kafka_costs_compared}");
}

#[test]
fn what_kafka_costs_is_in_both_formats() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../results/reference/dev-2core-kafka-cost-after");
    let s = build(&dir, None).expect("build");
    let costs = &s.workloads[0].kafka_cost;
    assert_eq!(
        costs.iter().map(|c| c.runtime).collect::<Vec<_>>(),
        [Runtime::Tokio, Runtime::Uring]
    );
    let md = markdown::render(&s);
    let page = html::render(&s, "criterion/index.html");
    for text in [&md, &page] {
        assert!(text.contains("What Kafka costs"), "section missing");
        assert!(
            text.contains("server threads: the produce call (rdkafka, librdkafka)"),
            "the Kafka path's steps are missing"
        );
        assert!(text.contains(&crate::results::kafka_cost::added_us(
            costs[0].cpu_us.as_ref().expect("tokio's cost")
        )));
    }
}

#[test]
fn the_calibration_says_where_it_ran() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../results/reference/dev-2core-kafka-cost-after");
    let mut s = build(&dir, None).expect("build");
    let pinned = |cpus: Vec<usize>| crate::calibrate::Calibration {
        cpus,
        seconds: 1.0,
        ..Default::default()
    };
    s.env.topology = None;
    s.env.calibration = Some(pinned(vec![1]));
    assert!(markdown::render(&s).contains("before the run on the servers' cores (CPUs [1])"));
    s.env.calibration = Some(pinned(vec![]));
    assert!(markdown::render(&s).contains("before the run unpinned (shared layout)"));
    // Servers over ssh: pinned here, and not the servers' cores.
    s.env.calibration = Some(pinned(vec![0]));
    s.env.topology = Some(crate::topology::TopologyRecord {
        kind: "ssh".into(),
        server_host: Some(probe::Host {
            hostname: "s1".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let md = markdown::render(&s);
    assert!(
        md.contains(
            "on this host's CPU [0] (the servers ran on another host, s1, where nothing was calibrated)"
        ),
        "{md}"
    );
    assert!(!md.contains("on the servers' cores (CPUs"));
}

#[test]
fn utc_format() {
    let s = utc_now();
    assert_eq!(s.len(), 20, "{s}");
    assert!(s.starts_with("20") && s.ends_with('Z'));
}

/// Equal JSON, numbers up to the last bit or two: serde_json reads a float back within an
/// ulp of what it wrote (without its `float_roundtrip` feature), so a number derived from
/// raw results read back may differ from the recorded one in its last digit.
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
            _ => x == y,
        },
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same_json(v, w))
        }
        _ => a == b,
    }
}
