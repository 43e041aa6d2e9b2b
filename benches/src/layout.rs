//! CPU layouts: who runs where during a bench.
//!
//! - `shared`: no pinning; servers, load generator and the embedded broker share every core.
//! - `split`: servers pinned to the upper half of the cores this process may use, the load
//!   generator and the embedded broker (threads of this process) to the lower half.
//!
//! Chosen by `BENCH_LAYOUT`; recorded in env.json. The default is `split` (on 2+ cores):
//! measured on the 2-core dev machine (results/README.md, "CPU layout"), it gave the
//! servers a core of their own instead of one they share with the load generator and the
//! broker, with higher and less contended throughput; run-to-run stability was alike.

use anyhow::{bail, Result};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Layout {
    Shared {
        cores: Vec<usize>,
    },
    Split {
        server: Vec<usize>,
        bench: Vec<usize>,
    },
    /// The ssh topology: the servers on every core of their own host (`server` numbers
    /// that host's cores), the bench on this host's.
    Hosts {
        server: Vec<usize>,
        bench: Vec<usize>,
        server_host: String,
    },
}

impl Layout {
    /// `BENCH_LAYOUT`'s `choice`, `shared` or `split` (`None`: split, shared on one core),
    /// over the CPUs this process may run on.
    pub fn choose(choice: Option<&str>) -> Result<Self> {
        let cores = allowed_cpus();
        match choice {
            None if cores.len() >= 2 => Self::split(cores),
            None | Some("shared") => Ok(Self::Shared { cores }),
            Some("split") => Self::split(cores),
            Some(other) => bail!("BENCH_LAYOUT={other}: expected shared or split"),
        }
    }

    pub fn split(cores: Vec<usize>) -> Result<Self> {
        if cores.len() < 2 {
            bail!(
                "BENCH_LAYOUT=split needs at least 2 cores, this process may use {}",
                cores.len()
            );
        }
        let half = cores.len() / 2;
        Ok(Self::Split {
            bench: cores[..half].to_vec(),
            server: cores[half..].to_vec(),
        })
    }

    pub fn label(&self) -> String {
        match self {
            Self::Shared { cores } => {
                format!("shared: servers, load generator and broker on cores {cores:?}")
            }
            Self::Split { server, bench } => {
                format!("split: servers on cores {server:?}; load generator and embedded broker on cores {bench:?}")
            }
            Self::Hosts {
                server,
                bench,
                server_host,
            } => format!("hosts: servers on {server_host}'s cores {server:?}; load generator and embedded broker on this host's cores {bench:?}"),
        }
    }

    /// Threads each server runs (`--threads`).
    pub fn server_threads(&self) -> usize {
        match self {
            Self::Shared { cores } => cores.len(),
            Self::Split { server, .. } | Self::Hosts { server, .. } => server.len(),
        }
    }

    /// Load generator threads.
    pub fn loadgen_threads(&self) -> usize {
        match self {
            Self::Shared { cores } => (cores.len() / 2).max(1),
            Self::Split { bench, .. } | Self::Hosts { bench, .. } => bench.len(),
        }
    }

    /// Cores the bench process (load generator and embedded broker) may use.
    pub fn bench_cores(&self) -> usize {
        match self {
            Self::Shared { cores } => cores.len(),
            Self::Split { bench, .. } | Self::Hosts { bench, .. } => bench.len(),
        }
    }

    /// Every core of the layout on this host.
    pub fn cores(&self) -> Vec<usize> {
        match self {
            Self::Shared { cores } => cores.clone(),
            Self::Split { server, bench } => bench.iter().chain(server).copied().collect(),
            Self::Hosts { bench, .. } => bench.clone(),
        }
    }

    /// CPUs for server processes, if pinned (on the servers' host).
    pub fn server_cpus(&self) -> Option<Vec<usize>> {
        match self {
            Self::Shared { .. } => None,
            Self::Split { server, .. } | Self::Hosts { server, .. } => Some(server.clone()),
        }
    }

    /// Where the calibration thread is pinned: the servers' cores when they are on this host;
    /// over ssh this host's first core, so the unit costs (a loopback round trip, a wake-up on
    /// another core) are measured pinned, as in a split run. Unpinned in a shared run.
    pub fn calibration_cpus(&self) -> Option<Vec<usize>> {
        match self {
            Self::Shared { .. } => None,
            Self::Split { server, .. } => Some(server.clone()),
            Self::Hosts { bench, .. } => bench.first().map(|&c| vec![c]),
        }
    }

    /// CPUs for the bench process (load generator, embedded broker), if pinned.
    pub fn bench_cpus(&self) -> Option<Vec<usize>> {
        match self {
            Self::Shared { .. } => None,
            Self::Split { bench, .. } | Self::Hosts { bench, .. } => Some(bench.clone()),
        }
    }

    /// Pins the calling thread (and every thread it starts afterwards: the load generator's,
    /// the embedded broker's) to the bench's cores. Call first thing in `main`.
    pub fn pin_this_process(&self) -> std::io::Result<()> {
        match self {
            Self::Shared { .. } | Self::Hosts { .. } => Ok(()),
            Self::Split { bench, .. } => set_affinity(bench),
        }
    }
}

/// CPUs online on the machine, whatever this thread's affinity (which
/// `available_parallelism` would report after [`Layout::pin_this_process`]).
pub fn online_cpus() -> usize {
    // SAFETY: sysconf reads a system value.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1)
}

/// The CPUs online on the machine, by number.
pub fn online_cpus_list() -> Vec<usize> {
    (0..online_cpus()).collect()
}

/// The CPUs the calling thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; the size is the set's own.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        let n = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        return (0..n).collect();
    }
    // SAFETY: indices below CPU_SETSIZE, on an initialised set.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Restricts the calling thread to `cpus` (async-signal-safe: usable in `pre_exec`).
pub fn set_affinity(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
        // SAFETY: the index is below CPU_SETSIZE, the set initialised.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; the set is initialised and sized.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_halves_the_cores() {
        let l = Layout::split(vec![0, 1, 2, 3]).expect("split");
        assert_eq!(
            l,
            Layout::Split {
                bench: vec![0, 1],
                server: vec![2, 3]
            }
        );
        assert_eq!((l.server_threads(), l.loadgen_threads()), (2, 2));
        let l = Layout::split(vec![0, 1]).expect("split");
        assert_eq!(l.server_cpus(), Some(vec![1]));
        assert!(Layout::split(vec![0]).is_err());
        let s = Layout::Shared { cores: vec![0, 1] };
        assert_eq!(
            (s.server_threads(), s.loadgen_threads(), s.server_cpus()),
            (2, 1, None)
        );
    }

    #[test]
    fn calibration_is_pinned_unless_shared() {
        let split = Layout::split(vec![0, 1, 2, 3]).expect("split");
        assert_eq!(split.calibration_cpus(), Some(vec![2, 3]));
        let hosts = Layout::Hosts {
            server: vec![0, 1],
            bench: vec![4, 5],
            server_host: "s".into(),
        };
        assert_eq!(hosts.calibration_cpus(), Some(vec![4]));
        assert_eq!(
            Layout::Shared { cores: vec![0, 1] }.calibration_cpus(),
            None
        );
    }

    #[test]
    fn this_process_has_cpus() {
        assert!(!allowed_cpus().is_empty());
        assert!(online_cpus() >= allowed_cpus().len());
        // Pinning a thread does not change what the machine has.
        let before = online_cpus();
        std::thread::spawn(move || {
            set_affinity(&allowed_cpus()[..1]).expect("pin");
            assert_eq!(online_cpus(), before);
        })
        .join()
        .expect("thread");
    }
}
