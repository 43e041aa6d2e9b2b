//! The machine a run was measured on, as facts read from the system (env.json).

use std::collections::BTreeMap;

use crate::host::{proc as read, Host};

/// Everything that can change a result besides the code.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Environment {
    pub hostname: Option<String>,
    pub cpu_model: Option<String>,
    /// Logical CPUs online on the machine (not this process's affinity: a `split` bench
    /// pins itself to half of them).
    pub cores: usize,
    pub memory_kib: Option<u64>,
    pub kernel: Option<String>,
    pub os: Option<String>,
    pub rustc: Option<String>,
    /// Versions from Cargo.lock of the crates that decide the outcome.
    pub crates: BTreeMap<String, String>,
    pub librdkafka: String,
    pub somaxconn: Option<String>,
    pub ip_local_port_range: Option<String>,
    pub tcp_tw_reuse: Option<String>,
    /// Soft and hard RLIMIT_NOFILE.
    pub nofile: Option<(u64, u64)>,
    /// "available", or "unavailable: <why>" (then tokio-uring runs are skipped).
    pub io_uring: String,
    /// How servers, load generator and broker share the CPUs.
    pub cpu_layout: String,
    /// Where they ran on the network (`BENCH_TOPOLOGY`); `None` in runs from before it was
    /// recorded (all local).
    #[serde(default)]
    pub topology: Option<crate::topology::TopologyRecord>,
    /// `BENCH_PROFILE`.
    pub profile: String,
    /// `KAFKA_BROKERS`, or "embedded".
    pub kafka: String,
    /// What preflight found (and fixed) before the run.
    #[serde(default)]
    pub preflight: Vec<crate::preflight::Finding>,
    /// CPU signature, microcode, hypervisor, mitigations, clock, idle states, THP.
    #[serde(default)]
    pub machine: super::machine::Machine,
    /// The unit costs measured on the servers' cores before the run (`None`: runs from
    /// before calibration).
    #[serde(default)]
    pub calibration: Option<crate::calibrate::Calibration>,
}

impl Environment {
    /// The environment of a run on `host` (as preflight read it), with versions from
    /// `root`'s Cargo.lock.
    pub fn collect(root: &std::path::Path, host: &Host) -> Self {
        let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
        let meminfo = read("/proc/meminfo").unwrap_or_default();
        let os = read("/etc/os-release").and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        });
        let rustc =
            std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
                .arg("--version")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
        Self {
            hostname: read("/proc/sys/kernel/hostname"),
            cpu_model: cpuinfo.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            }),
            cores: host.cores,
            memory_kib: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok()),
            kernel: host.kernel.clone(),
            os,
            rustc,
            crates: crate_versions(&root.join("Cargo.lock")),
            librdkafka,
            somaxconn: host.somaxconn.map(|v| v.to_string()),
            ip_local_port_range: host.port_range.map(|(lo, hi)| format!("{lo}-{hi}")),
            tcp_tw_reuse: host.tcp_tw_reuse.map(|v| v.to_string()),
            nofile: host.nofile,
            io_uring: match &host.io_uring {
                Ok(()) => "available".into(),
                Err(why) => format!("unavailable: {why}"),
            },
            cpu_layout: "shared (no pinning)".into(),
            topology: None,
            profile: String::new(),
            kafka: String::new(),
            preflight: Vec::new(),
            machine: super::machine::Machine::read(),
            calibration: None,
        }
    }
}

fn crate_versions(lock: &std::path::Path) -> BTreeMap<String, String> {
    const WANTED: [&str; 7] = [
        "tokio",
        "tokio-uring",
        "io-uring",
        "rdkafka",
        "rdkafka-sys",
        "httparse",
        "criterion",
    ];
    let text = std::fs::read_to_string(lock).unwrap_or_default();
    let mut out = BTreeMap::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            if WANTED.contains(&n.as_str()) {
                out.insert(n, v.trim_matches('"').to_string());
            }
        }
    }
    out
}
