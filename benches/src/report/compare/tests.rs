//! The comparison over hand-made summaries: verdicts side by side, machines marked,
//! criterion's rates and ratios, and the page.

use super::*;
use crate::runtime::Runtime;
use crate::workload::Spec;

fn summary(tokio: f64, uring: Option<f64>) -> Summary {
    let spec: Spec = serde_json::from_value(serde_json::json!({
        "name": "w", "description": "d", "mode": "closed", "depth": 1, "connections": 1,
        "body_size": 100, "server_args": [], "runtimes": ["tokio", "uring"]
    }))
    .expect("spec");
    let mut thrpt = vec![(Runtime::Tokio, tokio)];
    thrpt.extend(uring.map(|u| (Runtime::Uring, u)));
    crate::report::summary::test_summary(spec, &thrpt)
}

/// An assessment from blocks where tokio-uring runs at `ratios[b]` × tokio (and the
/// twin exactly at tokio's rate).
fn assessed(ratios: &[f64]) -> Assessment {
    let tokio: Vec<Vec<f64>> = ratios.iter().map(|_| vec![100.0; 3]).collect();
    let uring: Vec<Vec<f64>> = ratios.iter().map(|r| vec![100.0 * r; 3]).collect();
    crate::analysis::assess(
        &tokio,
        &uring,
        &tokio,
        None,
        &crate::analysis::Rules::default(),
    )
}

const FASTER: [f64; 8] = [1.12, 1.11, 1.13, 1.12, 1.10, 1.14, 1.12, 1.11];
const SAME: [f64; 8] = [1.0, 1.01, 0.99, 1.0, 1.005, 0.995, 1.0, 1.0];
const SLOWER: [f64; 8] = [0.88, 0.89, 0.87, 0.88, 0.90, 0.86, 0.88, 0.89];

fn run(name: &str, s: Summary) -> Run {
    Run {
        name: name.into(),
        summary: s,
    }
}

fn with_verdict(ratios: &[f64]) -> Summary {
    let mut s = summary(100_000.0, Some(100_000.0 * ratios[0]));
    s.workloads[0].assessment = Some(assessed(ratios));
    s
}

#[test]
fn verdicts_of_runs_side_by_side_against_the_base() {
    let runs = [
        run("ref", with_verdict(&FASTER)),
        run("latest", with_verdict(&SAME)),
        run("again", with_verdict(&FASTER)),
    ];
    let md = markdown(&runs);
    assert!(
        md.contains("| w | `ref` | tokio-uring faster by 12.0 % [11.0, 13.0] | 1.120 [1.110, 1.130] | (base) | (base) |"),
        "{md}"
    );
    assert!(
        md.contains(
            "| w | `latest` | equivalent within ±3 % | 1.000 [0.995, 1.005] | NO | **DIFFERENT** |"
        ),
        "{md}"
    );
    assert!(md.contains("| w | `again` | tokio-uring faster by 12.0 % [11.0, 13.0] | 1.120 [1.110, 1.130] | yes | same |"), "{md}");
    // Same machine facts: the verdict difference is the runs' own.
    assert!(md.contains("`latest`: the same machine and run facts; **verdicts contradict the base's: w: DIFFERENT, intervals apart** (same facts: the runs' own variation, or the code's)."), "{md}");
    assert!(
        md.contains("`again`: the same machine and run facts; no verdict contradicts the base's."),
        "{md}"
    );
    let slower = with_verdict(&SLOWER);
    assert_eq!(
        agreement(&runs[0].summary, &slower, "w", Which::Throughput),
        "OPPOSITE"
    );
    assert_eq!(
        intervals_overlap(&runs[0].summary, &slower, "w", Which::Throughput),
        Some(false)
    );
    // No efficiency verdict in any run: no efficiency table.
    assert!(!md.contains("## Efficiency verdicts"));
}

#[test]
fn efficiency_verdicts_get_their_own_table() {
    let (mut a, mut b) = (with_verdict(&FASTER), with_verdict(&FASTER));
    a.workloads[0].efficiency = Some(assessed(&FASTER));
    b.workloads[0].efficiency = Some(assessed(&FASTER));
    let md = markdown(&[run("ref", a), run("latest", b)]);
    let eff = &md[md.find("## Efficiency verdicts").expect("efficiency table")..];
    assert!(
        eff.contains("| w | `ref` | tokio-uring uses 10.7 % less CPU per request [9.9, 11.5] |"),
        "{eff}"
    );
    assert!(eff.contains("| yes | same |"), "{eff}");
}

#[test]
fn a_flipped_verdict_on_another_machine_is_marked_with_the_machine_facts() {
    // Three runs: two on one machine, one on another CPU whose verdict flipped.
    let base = with_verdict(&FASTER);
    let mut same_machine = with_verdict(&FASTER);
    same_machine.setup.profile = base.setup.profile.clone();
    let mut other = with_verdict(&SLOWER);
    other.env.cpu_model = Some("Intel(R) Xeon(R) Processor".into());
    other.env.machine.signature = Some("GenuineIntel 6/106/6".into());
    let runs = [
        run("amd-1", base),
        run("amd-2", same_machine),
        run("xeon", other),
    ];
    let md = markdown(&runs);
    assert!(md.contains("`xeon`: **differs in CPU: — vs Intel(R) Xeon(R) Processor; CPU family/model/stepping: — vs GenuineIntel 6/106/6**"), "{md}");
    assert!(md.contains("**verdicts contradict the base's: w: OPPOSITE, intervals apart** (it may come from what differs)."), "{md}");
    // The machines table marks the differing cells.
    assert!(
        md.contains("| CPU | — | — | **Intel(R) Xeon(R) Processor** |"),
        "{md}"
    );
    assert!(md.contains("| w | `xeon` | tokio faster by"), "{md}");
    assert!(md.contains("| NO | **OPPOSITE** |"), "{md}");
    // The page: one forest row per run, the differences marked, self-contained.
    let page = html(&runs);
    assert!(page.starts_with("<!doctype html>") && page.contains("</html>"));
    assert!(
        page.contains("<b>Intel(R) Xeon(R) Processor</b>"),
        "CPU cell not marked"
    );
    let forest = &page[page.find("one row per run").expect("forest section")..];
    for name in ["amd-1", "amd-2", "xeon"] {
        assert!(
            forest.contains(&format!(">{name}</text>")),
            "no forest row for {name}"
        );
    }
    assert!(
        !page.contains("src=\"http") && !page.contains("<script"),
        "not self-contained"
    );
}

#[test]
fn criterion_rates_ratios_and_overlap() {
    let a = summary(100_000.0, Some(90_000.0));
    let b = summary(102_000.0, None);
    let far = summary(200_000.0, Some(90_000.0));
    let md = markdown(&[run("ref", a), run("latest", b), run("far", far)]);
    assert!(
        md.contains("| w | tokio | 100.0k [95.0k, 105.0k] | 102.0k [96.9k, 107.1k] (×1.020 [0.923, 1.127]) | 200.0k [190.0k, 210.0k] (×2.000 [1.810, 2.211]), apart |"),
        "{md}"
    );
    assert!(
        md.contains("| w | tokio-uring | 90.0k [85.5k, 94.5k] | — |"),
        "{md}"
    );
}

#[test]
fn interleaved_ratios_are_shown_beside_criterion_s() {
    let mut a = summary(100_000.0, Some(110_000.0));
    a.workloads[0].paired_uring_tokio =
        Paired::from_rounds(&[1.1, 1.2, 1.0, 1.1, 1.1, 1.2], &[1.0; 6]);
    a.workloads[0].paired_cpu_uring_tokio = Paired::from_rounds(&[9.0; 6], &[10.0; 6]);
    a.workloads[0].assessment = Some(assessed(&[1.1; 8]));
    let b = summary(100_000.0, Some(90_000.0));
    let md = markdown(&[run("ref", a.clone()), run("latest", b.clone())]);
    // Columns: ref criterion, ref rounds, latest criterion, latest rounds (criterion's
    // ratio is filled in by report::build, not in these hand-made summaries).
    assert!(
        md.contains("| w | — | 1.100 [1.000, 1.200] | — | — |"),
        "{md}"
    );
    let report = crate::report::markdown::render(&a);
    assert!(
        report.contains("| w | 6 | 1.100 [1.000, 1.200] | 0.900 [0.900, 0.900] |"),
        "{report}"
    );
    // Block 8 of 8: no turns recorded in this hand-made summary, so no order.
    assert!(report.contains("| w | 8 |  | 1.100 | 1.000 |"), "{report}");
    assert!(!crate::report::markdown::render(&b).contains("## The blocks behind each verdict"));
}

#[test]
fn unit_costs_are_marked_only_where_their_ranges_part() {
    use crate::calibrate::{Calibration, UnitCost, NULL_SYSCALL, URING_NOP};
    let cal = |syscall: (f64, f64), nop: (f64, f64)| Calibration {
        costs: [(NULL_SYSCALL, syscall), (URING_NOP, nop)]
            .into_iter()
            .map(|(name, (lo, hi))| UnitCost {
                name: name.into(),
                ns: (lo + hi) / 2.0,
                min_ns: lo,
                max_ns: hi,
                rounds: 7,
            })
            .collect(),
        ..Calibration::default()
    };
    let mut a = with_verdict(&SAME);
    a.env.calibration = Some(cal((60.0, 70.0), (300.0, 400.0)));
    let mut b = with_verdict(&SAME);
    // The syscall is slower beyond both ranges; the NOP's ranges overlap.
    b.env.calibration = Some(cal((120.0, 130.0), (350.0, 450.0)));
    assert_eq!(
        differences(&a, &b),
        ["null syscall (getppid): 65 vs 125 ns"]
    );
    let md = markdown(&[run("a", a), run("b", b)]);
    assert!(
        md.contains("| null syscall (getppid) (calibration) | 65 ns | **125 ns** |"),
        "{md}"
    );
    assert!(
        md.contains("| io_uring NOP, submit + reap (calibration) | 350 ns | 400 ns |"),
        "{md}"
    );
}

#[test]
fn each_run_s_costs_per_request_side_by_side() {
    let with = |core: f64, syscalls: f64| {
        let mut s = with_verdict(&SAME);
        s.workloads[0].runtimes[1].mechanism = Some(crate::report::mechanism::Mechanism {
            core_us: Some(core),
            syscalls: Some(syscalls),
            ..Default::default()
        });
        s
    };
    let md = markdown(&[run("amd", with(8.11, 0.17)), run("xeon", with(9.5, 0.2))]);
    assert!(
        md.contains("| w | `amd` | tokio-uring | 8.11 | — | — | 0.17 |"),
        "{md}"
    );
    assert!(
        md.contains("| w | `xeon` | tokio-uring | 9.50 | — | — | 0.20 |"),
        "{md}"
    );
}

#[test]
fn runs_whose_servers_ran_on_other_hosts_are_marked() {
    use crate::topology::TopologyRecord;
    let over_ssh = |cpu: &str| TopologyRecord {
        kind: "ssh".into(),
        server_host: Some(probe::Host {
            cpu_model: cpu.into(),
            cpus: vec![0, 1],
            kernel: "6.8".into(),
            io_uring: "available".into(),
            ..probe::Host::default()
        }),
        ..TopologyRecord::default()
    };
    let mut a = with_verdict(&SAME);
    a.env.topology = Some(over_ssh("Intel Xeon"));
    let mut b = with_verdict(&SAME);
    b.env.topology = Some(over_ssh("Intel Xeon"));
    assert!(differences(&a, &b).is_empty(), "{:?}", differences(&a, &b));
    b.env.topology = Some(over_ssh("AMD EPYC"));
    assert_eq!(
        differences(&a, &b),
        ["servers' host: Intel Xeon (2 cores, kernel 6.8, io_uring available) vs AMD EPYC (2 cores, kernel 6.8, io_uring available)"]
    );
    let local = with_verdict(&SAME);
    let d = differences(&local, &a);
    assert!(
        d.iter().any(|l| l.starts_with("topology: local vs ssh"))
            && d.iter()
                .any(|l| l.starts_with("servers' host: this machine vs Intel Xeon")),
        "{d:?}"
    );
}
