//! Where server processes run, and how the harness reads their host: the one seam between
//! the suite and a server's host (`BENCH_TOPOLOGY`).
//!
//! - [`Transport::Local`]: this machine (`local`, `netns`): processes are children of this
//!   one, `/proc` and `/sys` are read directly.
//! - [`Transport::Ssh`]: another host (`ssh`): a probe (`benches/probe/`) started over
//!   ssh starts the servers there, streams their output, signals them and reads that
//!   host's `/proc` and `/sys` for the same accounting, and counts the servers' syscalls
//!   and samples its cores there (`ssh.rs`, `client.rs`, `instruments.rs`).
//!
//! The suite asks [`servers`] for the servers' transport; the run sets it once
//! ([`set_servers`]) when the topology is up.

mod client;
mod instruments;
mod link;
mod ssh;

use std::process::{Child, ExitStatus};
use std::sync::{Arc, OnceLock};

use anyhow::Result;

pub use client::Event;
pub use instruments::{Sampling, SyscallCounter};
pub use ssh::{SshHost, SshSettings};

/// A host's processes and counters.
#[derive(Debug, Clone, Default)]
pub enum Transport {
    #[default]
    Local,
    Ssh(Arc<SshHost>),
}

static SERVERS: OnceLock<Transport> = OnceLock::new();

/// Where this process's servers run: [`Transport::Local`] unless an ssh topology is up.
pub fn servers() -> &'static Transport {
    static LOCAL: Transport = Transport::Local;
    SERVERS.get().unwrap_or(&LOCAL)
}

/// Sets where servers run (once per process; later calls are ignored).
pub fn set_servers(t: Transport) {
    let _ = SERVERS.set(t);
}

impl Transport {
    pub fn is_local(&self) -> bool {
        matches!(self, Self::Local)
    }

    /// The text of each path (`None` where unreadable).
    pub fn read(&self, paths: &[String]) -> Vec<Option<String>> {
        match self {
            Self::Local => paths
                .iter()
                .map(|p| std::fs::read_to_string(p).ok())
                .collect(),
            Self::Ssh(h) => h.read(paths),
        }
    }

    pub fn read_one(&self, path: &str) -> Option<String> {
        self.read(&[path.to_string()]).pop().flatten()
    }

    /// A directory's entries, by name.
    pub fn list(&self, dir: &str) -> Option<Vec<String>> {
        match self {
            Self::Local => Some(
                std::fs::read_dir(dir)
                    .ok()?
                    .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                    .collect(),
            ),
            Self::Ssh(h) => h.list(dir),
        }
    }

    /// USER_HZ on that host.
    pub fn clock_ticks(&self) -> u64 {
        match self {
            Self::Local => crate::usage::clock_ticks(),
            Self::Ssh(h) => h.facts().clock_ticks.max(1),
        }
    }
}

/// A started server process, on whichever host.
#[derive(Debug)]
pub enum Proc {
    Local(Child),
    Remote {
        host: Arc<SshHost>,
        child: u64,
        pid: u32,
    },
}

impl Proc {
    /// Its pid on its host.
    pub fn pid(&self) -> u32 {
        match self {
            Self::Local(c) => c.id(),
            Self::Remote { pid, .. } => *pid,
        }
    }

    pub fn signal(&self, sig: i32) {
        match self {
            // SAFETY: kill(2) with a pid we spawned and have not reaped.
            Self::Local(c) => unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            },
            Self::Remote { host, child, .. } => host.signal(*child, sig),
        }
    }

    /// Its exit, once it has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        match self {
            Self::Local(c) => Ok(c.try_wait()?),
            Self::Remote { host, child, .. } => host.exit(*child),
        }
    }

    /// SIGKILL, and reap it (a remote one: until the probe reports its end, ≤ 2 s).
    pub fn kill(&mut self) {
        match self {
            Self::Local(c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            Self::Remote { host, child, .. } => {
                host.signal(*child, libc::SIGKILL);
                let t0 = std::time::Instant::now();
                while matches!(host.exit(*child), Ok(None))
                    && t0.elapsed() < std::time::Duration::from_secs(2)
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    }
}
