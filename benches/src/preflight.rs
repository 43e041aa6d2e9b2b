//! Preflight: before any load, check (and where possible fix) what would otherwise bend
//! the numbers or break a run, and say so. [`decide`] is pure (facts in, findings out) so
//! every decision is unit-tested; [`run`] raises the fd limit, reads the machine
//! ([`crate::host`]) and decides. The load side's checks (open files, ephemeral ports) are
//! the load generator's own (`loadgen::preflight`, which its CLI runs alone); this adds the
//! servers' (backlog, io_uring, memlock, cores, port).

use std::net::SocketAddr;

use loadgen::preflight::{ephemeral_ports, open_files, raise_nofile};

use crate::host::Host;

pub use loadgen::preflight::{Finding, Level};

/// What the run will need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    /// Most concurrent connections any workload opens.
    pub connections: usize,
    /// The servers' listen backlog.
    pub backlog: u32,
    /// Some workload opens a connection per request.
    pub conn_per_request: bool,
    /// Source addresses connection-per-request rotates over.
    pub source_addrs: u32,
    /// tokio-uring runs are planned.
    pub io_uring: bool,
    /// A fixed port that must be free (`None`: servers bind port 0).
    pub port: Option<SocketAddr>,
}

/// What the system looks like, as far as a decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// RLIMIT_NOFILE (soft, hard).
    pub nofile: Option<(u64, u64)>,
    pub port_range: Option<(u32, u32)>,
    pub tcp_tw_reuse: Option<u32>,
    pub somaxconn: Option<u32>,
    /// Ok, or why io_uring_setup failed.
    pub io_uring: Result<(), String>,
    /// RLIMIT_MEMLOCK soft, bytes.
    pub memlock: Option<u64>,
    /// (major, minor).
    pub kernel: Option<(u32, u32)>,
    pub cores: usize,
    /// Whether `Needs::port` could be bound (plain bind, no SO_REUSEPORT).
    pub port_free: Option<bool>,
}

/// Decides what each fact means for this run.
pub fn decide(f: &Facts, needs: &Needs) -> Vec<Finding> {
    let mut out = Vec::new();
    out.push(open_files(f.nofile, needs.connections, None));
    if let Some(range) = f.port_range {
        out.push(ephemeral_ports(
            range,
            needs.connections,
            needs.conn_per_request,
            needs.source_addrs,
        ));
    }
    let mut say = |check: &str, level: Level, detail: String| {
        out.push(Finding {
            check: check.into(),
            level,
            detail,
        })
    };
    if let Some(tw) = f.tcp_tw_reuse {
        let meaning = match tw {
            0 => "off",
            1 => "on for all connections",
            2 => "on for loopback only (the kernel default)",
            _ => "unknown value",
        };
        say(
            "tcp_tw_reuse",
            Level::Ok,
            format!("{tw}: {meaning}; recorded, not changed"),
        );
    }
    match f.somaxconn {
        Some(m) if m < needs.backlog => say(
            "somaxconn",
            Level::Warn,
            format!("{m} caps the servers' listen backlog of {}: connection bursts beyond it are dropped or refused (sysctl -w net.core.somaxconn={})", needs.backlog, needs.backlog),
        ),
        Some(m) => say("somaxconn", Level::Ok, format!("{m} >= backlog {}", needs.backlog)),
        None => {}
    }
    match (&f.io_uring, needs.io_uring) {
        (Ok(()), _) => say("io_uring", Level::Ok, "io_uring_setup works".into()),
        (Err(why), true) => say(
            "io_uring",
            Level::Warn,
            format!("unavailable ({why}): tokio-uring runs are skipped, tokio runs go ahead"),
        ),
        (Err(why), false) => say(
            "io_uring",
            Level::Ok,
            format!("unavailable ({why}); not needed"),
        ),
    }
    // Before 5.12 a ring's memory counts against RLIMIT_MEMLOCK; one 1024-entry ring per
    // server thread needs well under 1 MiB, but the classic default was 64 KiB.
    match (f.kernel, f.memlock) {
        (Some(k), Some(m)) if k < (5, 12) && needs.io_uring && m < 8 << 20 => say(
            "memlock",
            Level::Warn,
            format!("RLIMIT_MEMLOCK {m} bytes on kernel {}.{} (< 5.12 charges io_uring rings to it): ring creation may fail; raise it (ulimit -l)", k.0, k.1),
        ),
        (Some(k), Some(m)) => say("memlock", Level::Ok, format!("RLIMIT_MEMLOCK {m} bytes; kernel {}.{}", k.0, k.1)),
        _ => {}
    }
    if f.cores < 2 {
        say("cores", Level::Warn, format!("{} core: servers, load generator and broker share it; ratios still compare, absolute numbers mean little", f.cores));
    } else {
        say("cores", Level::Ok, format!("{} cores", f.cores));
    }
    match (needs.port, f.port_free) {
        (Some(p), Some(false)) => say(
            "port",
            Level::Fail,
            format!("{p} is already bound: a stale server there (with SO_REUSEPORT) would silently take a share of the connections"),
        ),
        (Some(p), _) => say("port", Level::Ok, format!("{p} is free")),
        (None, _) => say("port", Level::Ok, "servers bind port 0: a fresh port each, no stale server can share it".into()),
    }
    out
}

/// Preflight's outcome: the machine as read (after raising the fd limit) and the findings.
#[derive(Debug, Clone)]
pub struct Preflight {
    pub host: Host,
    pub findings: Vec<Finding>,
}

impl Preflight {
    /// Whether a finding says the run cannot work as asked.
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.level == Level::Fail)
    }
}

/// The facts `decide` needs, from the machine and the run's needs.
pub fn facts(host: &Host, needs: &Needs) -> Facts {
    Facts {
        nofile: host.nofile,
        port_range: host.port_range,
        tcp_tw_reuse: host.tcp_tw_reuse,
        somaxconn: host.somaxconn,
        io_uring: host.io_uring.clone(),
        memlock: host.memlock,
        kernel: host.kernel_version(),
        cores: host.cores,
        port_free: needs.port.map(|p| std::net::TcpListener::bind(p).is_ok()),
    }
}

/// [`run`], with every finding printed to stderr; an error if one says the run cannot work.
pub fn check(needs: &Needs) -> anyhow::Result<Preflight> {
    let pre = run(needs);
    for f in &pre.findings {
        eprintln!("preflight: {f}");
    }
    if pre.failed() {
        anyhow::bail!("preflight failed (see above)");
    }
    Ok(pre)
}

/// The checks about the servers' machine, when it is another one (ssh topology): their fd
/// limit, `somaxconn`, io_uring and cores, from its probe; each named `server host ...`.
pub fn server_host(h: &probe::Host, needs: &Needs) -> Vec<Finding> {
    let kernel = h
        .kernel
        .split(['.', '-'])
        .filter_map(|p| p.parse().ok())
        .collect::<Vec<u32>>();
    let f = Facts {
        nofile: h.nofile,
        port_range: None,
        tcp_tw_reuse: None,
        somaxconn: h.somaxconn,
        io_uring: if h.io_uring_available() {
            Ok(())
        } else {
            Err(h.io_uring.clone())
        },
        memlock: None,
        kernel: kernel.first().copied().zip(kernel.get(1).copied()),
        cores: h.cpus.len(),
        port_free: None,
    };
    decide(&f, needs)
        .into_iter()
        .filter(|x| ["open files", "somaxconn", "io_uring", "cores"].contains(&x.check.as_str()))
        .map(|mut x| {
            x.check = format!("server host {}", x.check);
            x
        })
        .collect()
}

/// Raises the fd soft limit towards [`nofile_target`] (children inherit it: the servers
/// this process starts), then reads the machine and decides.
pub fn run(needs: &Needs) -> Preflight {
    let raised = raise_nofile(needs.connections);
    let host = Host::read();
    let mut findings = decide(&facts(&host, needs), needs);
    if let Some(f) = findings.iter_mut().find(|f| f.check == "open files") {
        *f = open_files(host.nofile, needs.connections, raised);
    }
    Preflight { host, findings }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs() -> Needs {
        Needs {
            connections: 256,
            backlog: 4096,
            conn_per_request: true,
            source_addrs: 64,
            io_uring: true,
            port: None,
        }
    }

    fn facts() -> Facts {
        Facts {
            nofile: Some((65_536, 1_048_576)),
            port_range: Some((32_768, 60_999)),
            tcp_tw_reuse: Some(2),
            somaxconn: Some(4096),
            io_uring: Ok(()),
            memlock: Some(8 << 20),
            kernel: Some((6, 1)),
            cores: 2,
            port_free: None,
        }
    }

    fn level(fs: &[Finding], check: &str) -> Level {
        fs.iter()
            .find(|f| f.check == check)
            .unwrap_or_else(|| panic!("no {check} in {fs:?}"))
            .level
    }

    #[test]
    fn a_good_machine_is_all_ok() {
        let fs = decide(&facts(), &needs());
        assert!(fs.iter().all(|f| f.level == Level::Ok), "{fs:#?}");
        let ports = fs
            .iter()
            .find(|f| f.check == "ephemeral ports")
            .expect("ports");
        // 28232 ports x 64 addresses / 60 s.
        assert!(
            ports.detail.contains("~30114 new connections/s"),
            "{}",
            ports.detail
        );
    }

    #[test]
    fn shortfalls_are_warned_with_numbers() {
        let f = Facts {
            nofile: Some((200, 200)),
            somaxconn: Some(128),
            port_range: Some((60_000, 60_999)),
            ..facts()
        };
        let fs = decide(&f, &needs());
        assert_eq!(level(&fs, "open files"), Level::Warn);
        assert!(fs.iter().any(|x| x.detail.contains("312 short")), "{fs:#?}");
        assert_eq!(level(&fs, "somaxconn"), Level::Warn);
        assert_eq!(level(&fs, "ephemeral ports"), Level::Warn);
    }

    #[test]
    fn io_uring_missing_is_a_warning_only_when_needed() {
        let f = Facts {
            io_uring: Err("Operation not permitted".into()),
            ..facts()
        };
        assert_eq!(level(&decide(&f, &needs()), "io_uring"), Level::Warn);
        assert_eq!(
            level(
                &decide(
                    &f,
                    &Needs {
                        io_uring: false,
                        ..needs()
                    }
                ),
                "io_uring"
            ),
            Level::Ok
        );
    }

    #[test]
    fn old_kernels_need_memlock_for_rings() {
        let f = Facts {
            kernel: Some((5, 4)),
            memlock: Some(64 << 10),
            ..facts()
        };
        assert_eq!(level(&decide(&f, &needs()), "memlock"), Level::Warn);
        let f = Facts {
            kernel: Some((6, 1)),
            memlock: Some(64 << 10),
            ..facts()
        };
        assert_eq!(level(&decide(&f, &needs()), "memlock"), Level::Ok);
    }

    #[test]
    fn a_bound_port_fails_and_one_core_warns() {
        let n = Needs {
            port: Some("127.0.0.1:8080".parse().expect("addr")),
            ..needs()
        };
        let f = Facts {
            port_free: Some(false),
            cores: 1,
            ..facts()
        };
        let fs = decide(&f, &n);
        assert_eq!(level(&fs, "port"), Level::Fail);
        assert_eq!(level(&fs, "cores"), Level::Warn);
    }

    #[test]
    fn run_raises_the_soft_limit_when_allowed() {
        let fs = run(&Needs {
            connections: 100,
            ..needs()
        })
        .findings;
        let f = fs
            .iter()
            .find(|f| f.check == "open files")
            .expect("finding");
        assert!(
            matches!(f.level, Level::Ok | Level::Fixed | Level::Warn),
            "{f}"
        );
        let (soft, hard) = loadgen::preflight::rlimit(libc::RLIMIT_NOFILE).expect("rlimit");
        assert!(soft >= loadgen::preflight::nofile_target(100).min(hard));
    }

    #[test]
    fn the_server_host_s_own_limits_are_checked_from_its_probe() {
        let host = probe::Host {
            cpus: vec![0, 1],
            kernel: "5.15.0-1042-gcp".into(),
            io_uring: "unavailable: io_uring_setup failed: Operation not permitted".into(),
            nofile: Some((256, 256)),
            somaxconn: Some(128),
            ..probe::Host::default()
        };
        let fs = server_host(&host, &needs());
        let checks: Vec<&str> = fs.iter().map(|f| f.check.as_str()).collect();
        assert_eq!(
            checks,
            [
                "server host open files",
                "server host somaxconn",
                "server host io_uring",
                "server host cores"
            ]
        );
        assert_eq!(level(&fs, "server host open files"), Level::Warn);
        assert_eq!(level(&fs, "server host somaxconn"), Level::Warn);
        assert_eq!(level(&fs, "server host io_uring"), Level::Warn);
        assert_eq!(level(&fs, "server host cores"), Level::Ok);
    }
}
