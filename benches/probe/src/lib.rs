//! The probe's protocol: what the harness asks the server host, and what it answers.
//!
//! One JSON object per line each way. The harness writes [`Request`]s on the probe's
//! stdin; the probe writes [`Line`]s on its stdout: a [`Line::Reply`] per request (same
//! `id`; `id` is `null` when the line could not be read as a request), and, for the
//! processes it started, their output ([`Line::Output`]) and their end ([`Line::Exit`]) as
//! they happen. The probe exits when its stdin ends (the ssh session is over): it sends
//! its processes SIGTERM, SIGKILL after [`GRACE`], and removes its directory if asked.
//!
//! The crate also holds the kernel instruments both ends run: [`perf`] (`perf_event_open`),
//! [`syscalls`] (a process's syscalls by tracepoint) and [`sampler`] (cores sampled on the
//! CPU clock, with call chains), so the probe measures a server on its own host exactly as
//! the harness measures a local one.

pub mod perf;
pub mod sampler;
pub mod syscalls;

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long the probe waits for its processes after SIGTERM at the end of its session.
pub const GRACE: Duration = Duration::from_secs(10);

/// Paths the probe reads or lists: process and CPU accounting, nothing else.
pub const READABLE: [&str; 2] = ["/proc/", "/sys/devices/system/cpu/"];

/// Whether the probe may read `path`.
pub fn readable(path: &str) -> bool {
    READABLE.iter().any(|p| path.starts_with(p)) && !path.split('/').any(|c| c == "..")
}

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub op: Op,
}

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The host's facts ([`Host`]).
    Hello,
    /// The text of each path (`None` where it cannot be read).
    Read { paths: Vec<String> },
    /// The entries of a directory (`None` if it cannot be listed).
    List { path: String },
    /// Starts a process (stdin null, stdout and stderr streamed), pinned to `cpus` if
    /// given, without the variables in `env_remove`.
    Spawn {
        argv: Vec<String>,
        #[serde(default)]
        cpus: Option<Vec<usize>>,
        #[serde(default)]
        env_remove: Vec<String>,
    },
    /// Sends `signal` to a process this probe started.
    Signal { child: u64, signal: i32 },
    /// Starts counting the syscalls of a process this probe started (every thread, and
    /// those it starts later), by tracepoint ([`syscalls::EVENTS`] names them); mounts
    /// tracefs first if it is not mounted and the probe may. Answers a counter number.
    CountSyscalls { child: u64, events: Vec<String> },
    /// A counter's counts so far, one per event.
    ReadCounter { counter: u64 },
    /// Stops a counter.
    DropCounter { counter: u64 },
    /// Starts sampling `cpus` on the CPU clock every `period_us` µs of their time, with
    /// call chains ([`sampler`]), for at most `limit_s` seconds. Answers a sampling number.
    Sample {
        cpus: Vec<usize>,
        period_us: u64,
        limit_s: u64,
    },
    /// Stops a sampling and answers its samples (addresses: naming them is the harness's).
    StopSampling { sampling: u64 },
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Hello(Host),
    Texts(Vec<Option<String>>),
    Names(Option<Vec<String>>),
    Spawned { child: u64, pid: u32 },
    Counter { counter: u64 },
    Counts(Vec<u64>),
    Sampling { sampling: u64 },
    Samples(sampler::Collected),
    Done,
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of the probe's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Line {
    Reply {
        id: Option<u64>,
        #[serde(flatten)]
        result: Reply,
    },
    Output {
        child: u64,
        stream: Stream,
        line: String,
    },
    /// A started process ended; `status` is the raw wait status (`ExitStatusExt::from_raw`).
    Exit { child: u64, status: i32 },
}

/// A request's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Ok(Answer),
    Error(String),
}

/// The server host, as the probe sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// The probe's version (the harness refuses another).
    pub version: String,
    pub hostname: String,
    pub kernel: String,
    pub cpu_model: String,
    /// Cores this probe (and the processes it starts) may run on.
    pub cpus: Vec<usize>,
    /// `available`, or why not (`io_uring_setup` refused).
    pub io_uring: String,
    /// USER_HZ.
    pub clock_ticks: u64,
    /// RLIMIT_NOFILE (soft, hard) the servers inherit: the probe raises its soft limit to
    /// the hard one at start.
    #[serde(default)]
    pub nofile: Option<(u64, u64)>,
    /// `net.core.somaxconn`: caps the servers' listen backlog.
    #[serde(default)]
    pub somaxconn: Option<u32>,
}

impl Host {
    pub fn io_uring_available(&self) -> bool {
        self.io_uring == "available"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_read_as_documented() {
        let req: Request =
            serde_json::from_str(r#"{"id":3,"op":"read","paths":["/proc/stat"]}"#).expect("read");
        assert_eq!(
            req.op,
            Op::Read {
                paths: vec!["/proc/stat".into()]
            }
        );
        let spawn: Request =
            serde_json::from_str(r#"{"id":4,"op":"spawn","argv":["true"]}"#).expect("spawn");
        assert!(matches!(spawn.op, Op::Spawn { cpus: None, .. }));
        let reply = Line::Reply {
            id: Some(3),
            result: Reply::Error("no".into()),
        };
        let text = serde_json::to_string(&reply).expect("json");
        assert_eq!(text, r#"{"kind":"reply","id":3,"error":"no"}"#);
        assert_eq!(serde_json::from_str::<Line>(&text).expect("back"), reply);
    }

    #[test]
    fn only_accounting_paths_are_readable() {
        assert!(readable("/proc/12/task/13/schedstat"));
        assert!(readable("/sys/devices/system/cpu/cpu1/cpuidle"));
        assert!(!readable("/etc/shadow"));
        assert!(!readable("/proc/../etc/shadow"));
        assert!(!readable("/home/user/.ssh/id_ed25519"));
    }
}
