//! A server's syscalls counted on its own host: locally with [`probe::syscalls::Counter`],
//! over ssh by the probe running the same counter there (`CountSyscalls`, `ReadCounter`,
//! `DropCounter`).

use std::sync::Arc;

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
                match host.call(Op::CountSyscalls {
                    child: *child,
                    events,
                }) {
                    Ok(Answer::Counter { counter }) => Ok(SyscallCounter::Remote {
                        host: host.clone(),
                        counter,
                    }),
                    Ok(other) => Err(format!("the probe answered with {other:?}")),
                    Err(e) => Err(format!("on {}: {e:#}", host.target())),
                }
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
