//! The kernel instruments on a server's own host: its syscalls counted
//! ([`probe::syscalls::Counter`]) and its cores sampled ([`probe::sampler::Background`]),
//! here directly, over ssh by the probe running the same code there (`CountSyscalls`,
//! `ReadCounter`, `DropCounter`; `Sample`, `StopSampling`).

use std::sync::Arc;
use std::time::Duration;

use probe::sampler::{Background, Collected};
use probe::syscalls::{self, Counter};
use probe::{Answer, Op};

use super::{Proc, SshHost, Transport};

/// Syscall counters attached to one server process.
#[derive(Debug)]
pub enum SyscallCounter {
    Local(Counter),
    Remote { host: Arc<SshHost>, counter: u64 },
}

impl Transport {
    /// Attaches [`syscalls::EVENTS`] to every thread of `proc` (and threads it starts
    /// later), on the host it runs on; or why they cannot be.
    pub fn count_syscalls(&self, proc: &Proc) -> Result<SyscallCounter, String> {
        match proc {
            Proc::Local(c) => syscalls::tracefs()
                .and_then(|t| Counter::attach(c.id(), &t, syscalls::EVENTS))
                .map(SyscallCounter::Local),
            Proc::Remote { host, child, .. } => {
                let events = syscalls::EVENTS.iter().map(|e| e.to_string()).collect();
                let op = Op::CountSyscalls {
                    child: *child,
                    events,
                };
                ask(host, op, "a counter", |a| match a {
                    Answer::Counter { counter } => Some(counter),
                    _ => None,
                })
                .map(|counter| SyscallCounter::Remote {
                    host: host.clone(),
                    counter,
                })
            }
        }
    }
}

impl SyscallCounter {
    /// Counts so far, one per event (`None` if the probe could not be asked).
    pub fn read(&self) -> Option<Vec<u64>> {
        match self {
            Self::Local(c) => Some(c.read()),
            Self::Remote { host, counter } => {
                match host.call(Op::ReadCounter { counter: *counter }) {
                    Ok(Answer::Counts(c)) if c.len() == syscalls::EVENTS.len() => Some(c),
                    _ => None,
                }
            }
        }
    }
}

impl Drop for SyscallCounter {
    fn drop(&mut self) {
        if let Self::Remote { host, counter } = self {
            let _ = host.call(Op::DropCounter { counter: *counter });
        }
    }
}

/// A sampling of a host's cores, running.
#[derive(Debug)]
pub enum Sampling {
    Local(Background),
    Remote { host: Arc<SshHost>, sampling: u64 },
}

impl Transport {
    /// Starts sampling `cpus` of this host every `period` of their CPU time, for at most
    /// `limit`; or why the kernel (or the probe) refused.
    pub fn start_sampling(
        &self,
        cpus: &[usize],
        period: Duration,
        limit: Duration,
    ) -> Result<Sampling, String> {
        match self {
            Self::Local => Background::start(cpus, period, limit).map(Sampling::Local),
            Self::Ssh(host) => {
                let op = Op::Sample {
                    cpus: cpus.to_vec(),
                    period_us: period.as_micros() as u64,
                    limit_s: limit.as_secs().max(1),
                };
                ask(host, op, "a sampling", |a| match a {
                    Answer::Sampling { sampling } => Some(sampling),
                    _ => None,
                })
                .map(|sampling| Sampling::Remote {
                    host: host.clone(),
                    sampling,
                })
            }
        }
    }
}

impl Sampling {
    /// Stops it; the samples (addresses, not yet named).
    pub fn finish(self) -> Result<Collected, String> {
        match self {
            Self::Local(b) => b.finish(),
            Self::Remote { host, sampling } => ask(
                &host,
                Op::StopSampling { sampling },
                "samples",
                |a| match a {
                    Answer::Samples(c) => Some(c),
                    _ => None,
                },
            ),
        }
    }
}

/// Sends `op` to the probe there; `expected` takes what it should answer (`what`, named
/// in the error if it answers something else).
fn ask<T>(
    host: &SshHost,
    op: Op,
    what: &str,
    expected: impl FnOnce(Answer) -> Option<T>,
) -> Result<T, String> {
    match host.call(op) {
        Ok(a) => expected(a).ok_or_else(|| format!("the probe did not answer with {what}")),
        Err(e) => Err(format!("on {}: {e:#}", host.target())),
    }
}
