//! A `cargo bench` run's settings: every variable it reads (`BENCH_*`, `KAFKA_BROKERS`,
//! and where files go), read once, here, into one typed struct. [`VARIABLES`] is the list
//! the README's table documents (a test keeps the two equal); a `BENCH_*` variable that is
//! not on it is refused by name, so a typo cannot silently run the defaults.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use crate::analysis::{design, Rules};
use crate::results::Paths;
use crate::workload::{CurvePlan, Profile};

/// One variable a run reads: its name, its default, what it does (the README's table).
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

const fn var(name: &'static str, default: &'static str, meaning: &'static str) -> Variable {
    Variable {
        name,
        default,
        meaning,
    }
}

/// Every variable a run reads, in the README's order.
pub const VARIABLES: &[Variable] = &[
    var("BENCH_PROFILE", "`default`", "`quick` (CI smoke), `default`, `full` (sweeps: connections, sizes, tokio per-core, tuned rings)"),
    var("BENCH_EQUIV_BAND", "`3`", "the equivalence band, percent"),
    var("BENCH_BLOCKS", "`18` (quick `2`)", "blocks of fresh processes per workload (6 or more for a verdict)"),
    var("BENCH_EFFICIENCY_LOAD", "`50`", "the efficiency round's offered rate, % of the lower runtime's median rate in the first block (5–95)"),
    var("BENCH_AA", "`0`", "`1`: an A/A run, server-tokio in every tokio-uring slot"),
    var("BENCH_SEED", "(the clock)", "seeds the blocks' turn orders; recorded in `config.json` to replay a run's order"),
    var("BENCH_SYSCALLS", "`1`", "`0`: no mechanism round (syscalls are counted by tracepoints via perf_event_open in a round of their own; tracefs is mounted if it is not and the bench runs as root)"),
    var("BENCH_LAYOUT", "`split`", "`shared` or `split` CPU layout"),
    var("BENCH_TOPOLOGY", "`local`", "`netns`: the servers in a network namespace of their own, the bench in another, joined by a veth pair (root; removed at the end, on SIGINT, or at the next start); `ssh`: the servers on another host (`BENCH_SERVER_HOST`), started and measured there by the probe"),
    var("BENCH_SERVER_HOST", "(none)", "ssh: the servers' host, `[user@]host` as ssh takes it; it must accept the key without a prompt"),
    var("BENCH_SSH_OPTS", "(none)", "ssh: further ssh options, e.g. `-i key -p 2222`"),
    var("BENCH_SERVER_ADDR", "(the host's address)", "ssh: the address the servers listen on there and the load generator connects to"),
    var("BENCH_NET_DELAY", "(none)", "netns: one-way delay each way on the load generator ↔ server link, e.g. `100us` (needs the kernel's netem)"),
    var("BENCH_NET_RATE", "(none)", "netns: that link's rate limit, tc units, e.g. `1gbit`"),
    var("BENCH_KAFKA_DELAY", "(none)", "netns: one-way delay each way between the servers and the embedded broker, added by the broker relay, e.g. `500us`"),
    var("BENCH_URING_FLAGS", "(none)", "ring flags for every server-uring, e.g. `--coop-taskrun --single-issuer`"),
    var("BENCH_LATENCY_OBJECTIVES", "`1ms,10ms`", "p99 objectives for the latency curves' capacity-at-objective figures"),
    var("BENCH_FLAMEGRAPHS", "`1`", "`0`: no profiling pass (each workload's mechanism block samples every compared server's cores for a flame graph; needs root or kernel.perf_event_paranoid <= 0, else the report says why there is none)"),
    var("BENCH_CURVE_AWAKE", "`1`", "`0`: measure the latency curves with idle cores (no idle-priority spinners; on a VM the lower rates then include the hypervisor's wake-up)"),
    var("BENCH_RESULTS", "`results/latest`", "where the report goes (a relative path is taken from `benches/`, where cargo runs the bench)"),
    var("CRITERION_HOME", "`target/criterion`", "criterion's own output (its HTML reports)"),
    var("KAFKA_BROKERS", "(embedded)", "a real cluster, `host:port`"),
];

/// Variables of earlier designs, refused with what replaced them.
const GONE: &[(&str, &str)] = &[
    (
        "BENCH_ROUNDS_MAX",
        "a workload runs a fixed number of blocks of fresh processes, set by BENCH_BLOCKS",
    ),
    (
        "BENCH_ROUND_BUDGET",
        "a workload runs a fixed number of blocks of fresh processes, set by BENCH_BLOCKS",
    ),
];

/// What a run was asked to do.
#[derive(Debug, Clone)]
pub struct Settings {
    pub profile: Profile,
    /// How verdicts are decided and how many blocks they take.
    pub rules: Rules,
    /// The latency curves' rates, durations and objectives.
    pub curves: CurvePlan,
    /// An A/A run (`BENCH_AA=1`): server-tokio in every tokio-uring slot.
    pub aa: bool,
    /// Seeds the blocks' turn orders (`BENCH_SEED`; recorded in config.json).
    pub seed: u64,
    /// Count the servers' syscalls in a mechanism round (`BENCH_SYSCALLS`, default on).
    pub count_syscalls: bool,
    /// Sample each compared server's cores for flame graphs (`BENCH_FLAMEGRAPHS`, on).
    pub flamegraphs: bool,
    /// Ring flags for every server-uring (`BENCH_URING_FLAGS`).
    pub uring_flags: Vec<String>,
    /// `BENCH_LAYOUT` as given (`None`: the default for the machine's cores).
    pub layout: Option<String>,
    /// `KAFKA_BROKERS` (`None`: an embedded broker).
    pub brokers: Option<String>,
    /// Where the servers and the bench run (`BENCH_TOPOLOGY` and its links).
    pub topology: crate::topology::Plan,
    pub paths: Paths,
}

impl Settings {
    /// From this process's environment.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// From `vars` (tests pass a map). Empty values count as unset.
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Self> {
        let get = |name: &str| {
            vars.get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        for name in vars.keys().filter(|n| n.starts_with("BENCH_")) {
            if let Some((_, why)) = GONE.iter().find(|(g, _)| g == name) {
                bail!("{name} is no longer read: {why}");
            }
            if !VARIABLES.iter().any(|v| v.name == name) {
                let known: Vec<_> = VARIABLES.iter().map(|v| v.name).collect();
                bail!(
                    "{name} is not a variable cargo bench reads (a typo?); it reads {}",
                    known.join(", ")
                );
            }
        }
        let profile = Profile::parse(get("BENCH_PROFILE").as_deref())?;
        let flag = |name: &str, default: bool| match get(name).as_deref() {
            None => Ok(default),
            Some("1") => Ok(true),
            Some("0") => Ok(false),
            Some(other) => bail!("{name}={other}: expected 1 or 0"),
        };
        Ok(Self {
            profile,
            rules: profile.rules_from(&get)?,
            curves: profile.curve_plan_from(&get)?,
            aa: flag("BENCH_AA", false)?,
            seed: design::seed_from(get("BENCH_SEED").as_deref()).map_err(anyhow::Error::msg)?,
            count_syscalls: flag("BENCH_SYSCALLS", true)?,
            flamegraphs: flag("BENCH_FLAMEGRAPHS", true)?,
            uring_flags: get("BENCH_URING_FLAGS")
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from)
                .collect(),
            layout: get("BENCH_LAYOUT"),
            brokers: get("KAFKA_BROKERS"),
            topology: crate::topology::Plan::parse(&get)?,
            paths: Paths::from_vars(&|n: &str| vars.get(n).cloned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_overrides() {
        let s = Settings::from_vars(&vars(&[("PATH", "/bin"), ("BENCH_SEED", "7")])).expect("ok");
        assert_eq!(s.profile, Profile::Default);
        assert!(!s.aa && s.count_syscalls && s.uring_flags.is_empty());
        assert_eq!(s.seed, 7);
        let s = Settings::from_vars(&vars(&[
            ("BENCH_PROFILE", "quick"),
            ("BENCH_AA", "1"),
            ("BENCH_SYSCALLS", "0"),
            ("BENCH_URING_FLAGS", " --coop-taskrun  --single-issuer "),
            ("KAFKA_BROKERS", "k:9092"),
            ("BENCH_RESULTS", "/tmp/r"),
        ]))
        .expect("ok");
        assert_eq!(s.profile, Profile::Quick);
        assert!(s.aa && !s.count_syscalls);
        assert_eq!(s.uring_flags, ["--coop-taskrun", "--single-issuer"]);
        assert_eq!(s.brokers.as_deref(), Some("k:9092"));
        assert_eq!(s.paths.results, std::path::Path::new("/tmp/r"));
    }

    #[test]
    fn bad_unknown_and_retired_variables_are_named() {
        let err = |pairs: &[(&str, &str)]| {
            Settings::from_vars(&vars(pairs))
                .expect_err("refused")
                .to_string()
        };
        assert!(err(&[("BENCH_AA", "yes")]).contains("BENCH_AA=yes"));
        let typo = err(&[("BENCH_PROFIL", "quick")]);
        assert!(typo.contains("BENCH_PROFIL is not a variable"), "{typo}");
        assert!(typo.contains("BENCH_PROFILE"), "{typo}");
        assert!(err(&[("BENCH_ROUNDS_MAX", "9")]).contains("BENCH_BLOCKS"));
        assert!(err(&[("BENCH_PROFILE", "fast")]).contains("BENCH_PROFILE=fast"));
    }

    #[test]
    fn the_readme_table_lists_every_variable_once() {
        let readme = include_str!("../../README.md");
        let rows: Vec<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
            .filter(|n| n.starts_with("BENCH_") || VARIABLES.iter().any(|v| v.name == *n))
            .collect();
        let names: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        assert_eq!(
            rows, names,
            "README.md's variables table and settings::VARIABLES differ"
        );
        for v in VARIABLES {
            let row = format!("| `{}` | {} | {} |", v.name, v.default, v.meaning);
            assert!(readme.contains(&row), "README.md lacks the row\n{row}");
        }
    }
}
