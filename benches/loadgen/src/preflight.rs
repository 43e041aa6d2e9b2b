//! The load side's preflight: the host limits a load generator runs into (open files, ephemeral
//! ports), checked and where possible fixed before any load. The `loadgen` CLI runs it; the
//! harness's preflight (`bench::preflight`) adds the servers' checks to the same findings.

/// How a finding should be read.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// As needed.
    Ok,
    /// Was not as needed; preflight changed it (e.g. raised the fd soft limit).
    Fixed,
    /// Will limit or skew results; the run goes on and the report says so.
    Warn,
    /// The run cannot work as asked.
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    pub check: String,
    pub level: Level,
    pub detail: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = match self.level {
            Level::Ok => "ok",
            Level::Fixed => "fixed",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        write!(f, "[{tag}] {}: {}", self.check, self.detail)
    }
}

/// File descriptors a process needs for `connections`, plus a base for everything else
/// (a server's librdkafka sockets and pipes, its ring, stdio).
pub fn fds_needed(connections: usize) -> u64 {
    connections as u64 + 256
}

/// The soft limit [`raise_nofile`] raises `nofile` to, if the hard limit allows.
pub fn nofile_target(connections: usize) -> u64 {
    fds_needed(connections).max(65_536)
}

/// Raises RLIMIT_NOFILE's soft limit towards [`nofile_target`] (children inherit it);
/// `Some((from, to))` if it did.
pub fn raise_nofile(connections: usize) -> Option<(u64, u64)> {
    let (soft, hard) = rlimit(libc::RLIMIT_NOFILE)?;
    let want = nofile_target(connections).min(hard);
    (soft < want && set_nofile_soft(want, hard).is_ok()).then_some((soft, want))
}

/// Whether `nofile` (soft, hard) covers `connections`; `raised`: what [`raise_nofile`] did.
pub fn open_files(
    nofile: Option<(u64, u64)>,
    connections: usize,
    raised: Option<(u64, u64)>,
) -> Finding {
    let need = fds_needed(connections);
    let (level, detail) = match nofile {
        Some((soft, _)) if soft >= need => (Level::Ok, format!("soft limit {soft} >= {need} needed")),
        Some((soft, hard)) => (
            Level::Warn,
            format!("soft limit {soft} (hard {hard}) is {} short of the {need} needed; connections beyond it will fail to open (raise the hard limit: ulimit -Hn)", need - soft),
        ),
        None => (Level::Warn, "RLIMIT_NOFILE unreadable".into()),
    };
    let (level, detail) = match raised {
        Some((from, to)) => (
            if level == Level::Ok {
                Level::Fixed
            } else {
                level
            },
            format!("raised soft limit {from} -> {to}; {detail}"),
        ),
        None => (level, detail),
    };
    Finding {
        check: "open files".into(),
        level,
        detail,
    }
}

/// Whether the ephemeral port range `(lo, hi)` carries the load: a connection per request
/// rotates over `source_addrs` addresses and leaves each 4-tuple in TIME_WAIT for 60 s.
pub fn ephemeral_ports(
    (lo, hi): (u32, u32),
    connections: usize,
    conn_per_request: bool,
    source_addrs: u32,
) -> Finding {
    let span = u64::from(hi.saturating_sub(lo) + 1);
    let (level, detail) = if conn_per_request {
        let per_s = span * u64::from(source_addrs.max(1)) / 60;
        (
            if span < 10_000 { Level::Warn } else { Level::Ok },
            format!("{lo}-{hi} ({span} ports) x {} source addresses: ~{per_s} new connections/s sustainable before TIME_WAIT exhausts them", source_addrs.max(1)),
        )
    } else {
        (
            Level::Ok,
            format!("{lo}-{hi} ({span} ports); keep-alive workloads need {connections}"),
        )
    };
    Finding {
        check: "ephemeral ports".into(),
        level,
        detail,
    }
}

/// `net.ipv4.ip_local_port_range`.
pub fn port_range() -> Option<(u32, u32)> {
    let s = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = s.split_whitespace().map(|p| p.parse().ok());
    Some((it.next()??, it.next()??))
}

/// The load side's checks for a run with `connections`: raises the fd limit, then decides.
pub fn run(connections: usize, conn_per_request: bool, source_addrs: u32) -> Vec<Finding> {
    let raised = raise_nofile(connections);
    let mut out = vec![open_files(rlimit(libc::RLIMIT_NOFILE), connections, raised)];
    out.extend(
        port_range().map(|r| ephemeral_ports(r, connections, conn_per_request, source_addrs)),
    );
    out
}

/// (soft, hard) of a resource limit.
pub fn rlimit(resource: libc::__rlimit_resource_t) -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct we own.
    (unsafe { libc::getrlimit(resource, &mut r) } == 0).then_some((r.rlim_cur, r.rlim_max))
}

/// Sets RLIMIT_NOFILE's soft limit (children inherit it).
pub fn set_nofile_soft(soft: u64, hard: u64) -> std::io::Result<()> {
    let r = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads one rlimit struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_files_counts_the_shortfall_and_says_what_was_raised() {
        let f = open_files(Some((1024, 4096)), 2000, None);
        assert_eq!(f.level, Level::Warn);
        assert!(f.detail.contains("1232 short of the 2256"), "{}", f.detail);
        let f = open_files(Some((65_536, 65_536)), 2000, Some((1024, 65_536)));
        assert_eq!(f.level, Level::Fixed);
        assert!(
            f.detail.starts_with("raised soft limit 1024 -> 65536"),
            "{}",
            f.detail
        );
    }

    #[test]
    fn a_narrow_port_range_warns_only_for_a_connection_per_request() {
        assert_eq!(
            ephemeral_ports((60_000, 61_000), 64, true, 1).level,
            Level::Warn
        );
        assert_eq!(
            ephemeral_ports((60_000, 61_000), 64, false, 1).level,
            Level::Ok
        );
        let f = ephemeral_ports((32_768, 60_999), 1, true, 4);
        assert!(f.detail.contains("~1882 new connections/s"), "{}", f.detail);
    }

    #[test]
    fn run_raises_the_soft_limit_when_allowed() {
        let fs = run(10, false, 1);
        let (soft, hard) = rlimit(libc::RLIMIT_NOFILE).expect("readable");
        assert!(soft >= nofile_target(10).min(hard));
        assert_eq!(fs[0].check, "open files");
    }
}
