//! The machine, read once: the sysctls, limits, cores and io_uring availability that both
//! preflight ([`crate::preflight`], which decides what they mean for a run) and the
//! environment record ([`crate::report::env`], env.json) need.

/// What the system looks like (Linux; `None` where a value could not be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// RLIMIT_NOFILE (soft, hard).
    pub nofile: Option<(u64, u64)>,
    /// RLIMIT_MEMLOCK soft, bytes.
    pub memlock: Option<u64>,
    /// net.ipv4.ip_local_port_range.
    pub port_range: Option<(u32, u32)>,
    /// net.ipv4.tcp_tw_reuse.
    pub tcp_tw_reuse: Option<u32>,
    /// net.core.somaxconn.
    pub somaxconn: Option<u32>,
    /// Ok, or why io_uring_setup failed.
    pub io_uring: Result<(), String>,
    /// kernel.osrelease, e.g. `6.1.0-18-amd64`.
    pub kernel: Option<String>,
    /// Logical CPUs online on the machine (not this process's affinity).
    pub cores: usize,
}

impl Host {
    pub fn read() -> Self {
        Self {
            nofile: loadgen::preflight::rlimit(libc::RLIMIT_NOFILE),
            memlock: loadgen::preflight::rlimit(libc::RLIMIT_MEMLOCK).map(|(soft, _)| soft),
            port_range: loadgen::preflight::port_range(),
            tcp_tw_reuse: proc("/proc/sys/net/ipv4/tcp_tw_reuse").and_then(|s| s.parse().ok()),
            somaxconn: proc("/proc/sys/net/core/somaxconn").and_then(|s| s.parse().ok()),
            io_uring: io_uring_available(),
            kernel: proc("/proc/sys/kernel/osrelease"),
            cores: crate::layout::online_cpus(),
        }
    }

    /// The kernel's (major, minor).
    pub fn kernel_version(&self) -> Option<(u32, u32)> {
        let mut it = self
            .kernel
            .as_deref()?
            .split(['.', '-'])
            .map(|p| p.parse::<u32>().ok());
        Some((it.next()??, it.next()??))
    }
}

/// A /proc (or other text) file's content, trimmed.
pub fn proc(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine() {
        let h = Host::read();
        assert!(h.cores >= 1);
        let (soft, hard) = h.nofile.expect("RLIMIT_NOFILE");
        assert!(soft <= hard);
        assert!(
            h.kernel_version().is_some_and(|(major, _)| major >= 3),
            "{h:?}"
        );
    }
}
