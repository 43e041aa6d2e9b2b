//! The machine a run was measured on, as facts read from the system (env.json).

use std::collections::BTreeMap;

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
    /// `BENCH_PROFILE`.
    pub profile: String,
    /// `KAFKA_BROKERS`, or "embedded".
    pub kafka: String,
    /// What preflight found (and fixed) before the run.
    #[serde(default)]
    pub preflight: Vec<crate::preflight::Finding>,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

impl Environment {
    pub fn collect(root: &std::path::Path) -> Self {
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
            cores: crate::layout::online_cpus(),
            memory_kib: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok()),
            kernel: read("/proc/sys/kernel/osrelease"),
            os,
            rustc,
            crates: crate_versions(&root.join("Cargo.lock")),
            librdkafka,
            somaxconn: read("/proc/sys/net/core/somaxconn"),
            ip_local_port_range: read("/proc/sys/net/ipv4/ip_local_port_range")
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join("-")),
            tcp_tw_reuse: read("/proc/sys/net/ipv4/tcp_tw_reuse"),
            nofile: nofile(),
            io_uring: match io_uring_available() {
                Ok(()) => "available".into(),
                Err(why) => format!("unavailable: {why}"),
            },
            cpu_layout: "shared (no pinning)".into(),
            profile: String::new(),
            kafka: String::new(),
            preflight: Vec::new(),
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

fn nofile() -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (rc == 0).then_some((r.rlim_cur, r.rlim_max))
}

/// Tries io_uring_setup(2) for a 1-entry ring: kernels, seccomp profiles and sysctls
/// (kernel.io_uring_disabled) can each forbid it.
pub fn io_uring_available() -> Result<(), String> {
    let mut params = [0u8; 120]; // struct io_uring_params, zeroed
                                 // SAFETY: io_uring_setup reads and writes `params`, which is large enough; the fd it
                                 // returns is closed at once.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("io_uring_setup failed: {e}"));
    }
    // SAFETY: closing the fd we were just given.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}
