//! Folded stacks: one line per distinct call chain, `root;caller;...;leaf count`, the
//! format flame graph tools read (Brendan Gregg's `stackcollapse` output, inferno's input).
//! Kernel frames carry the `_[k]` suffix those tools colour by.

use std::collections::{BTreeMap, HashMap};

use super::symbols::Kallsyms;
use probe::sampler::RawSample;

use crate::transport::Transport;

/// A profile as folded stacks: chain → samples.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stacks {
    pub counts: BTreeMap<String, u64>,
}

/// The root frame of samples of the idle task, and of processes other than the one
/// profiled (on the same cores: the whole core is sampled).
pub const IDLE: &str = "[idle]";
pub const OTHER: &str = "[other processes]";

impl Stacks {
    /// Folds samples: the profiled process's under `root` and its thread's frame
    /// ([`thread_frame`] of its name in `threads`), the idle task's under [`IDLE`], any
    /// other process's under [`OTHER`]; user frames (from `user`, outermost first per
    /// address) above kernel frames (from `kernel`).
    pub fn fold(
        samples: &[RawSample],
        (pid, root): (u32, &str),
        threads: &HashMap<u32, String>,
        user: &HashMap<u64, Vec<String>>,
        kernel: Option<&Kallsyms>,
    ) -> Self {
        let mut counts = BTreeMap::new();
        for s in samples {
            let who = match s.pid {
                p if p == pid => root,
                0 => IDLE,
                _ => OTHER,
            };
            let mut frames = vec![who.to_string()];
            if s.pid == pid {
                frames.push(thread_frame(threads.get(&s.tid).map(String::as_str)));
                // Leaf first in the sample; a return address is looked up one byte back
                // (inside the call), the leaf's own address as it is.
                for (i, ip) in s.user.iter().enumerate().rev() {
                    let at = if i == 0 { *ip } else { ip.saturating_sub(1) };
                    match user.get(&at) {
                        Some(names) => frames.extend(names.iter().cloned()),
                        None => frames.push("[unknown]".into()),
                    }
                }
            }
            for ip in s.kernel.iter().rev() {
                let name = kernel.and_then(|k| k.name(*ip)).unwrap_or("[kernel]");
                frames.push(format!("{name}_[k]"));
            }
            *counts.entry(frames.join(";")).or_insert(0) += 1;
        }
        Self { counts }
    }

    /// Every user address a fold of `samples` for `pid` looks up.
    pub fn user_addresses(samples: &[RawSample], pid: u32) -> Vec<u64> {
        samples
            .iter()
            .filter(|s| s.pid == pid)
            .flat_map(|s| {
                s.user
                    .iter()
                    .enumerate()
                    .map(|(i, ip)| if i == 0 { *ip } else { ip.saturating_sub(1) })
            })
            .collect()
    }

    /// The samples' total.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The samples whose root frame is `root`.
    pub fn under(&self, root: &str) -> Stacks {
        let prefix = format!("{root};");
        Stacks {
            counts: self
                .counts
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix) || k.as_str() == root)
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }

    /// The folded text: `chain count` per line.
    pub fn to_folded(&self) -> String {
        self.counts
            .iter()
            .map(|(k, v)| format!("{k} {v}\n"))
            .collect()
    }

    /// Reads folded text back; a line without a count is an error naming it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut counts = BTreeMap::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let (chain, count) = line
                .rsplit_once(' ')
                .and_then(|(c, n)| Some((c, n.trim().parse::<u64>().ok()?)))
                .ok_or_else(|| format!("line {}: not `chain count`: {line}", n + 1))?;
            *counts.entry(chain.to_string()).or_insert(0) += count;
        }
        Ok(Self { counts })
    }
}

/// The frame under the root that says which thread a sample ran on: the runtime's own
/// threads are one frame, `[server threads]` (so tokio's and tokio-uring's profiles share
/// it in a differential); helper threads keep their names: librdkafka's (`rdk:main`,
/// `rdk:broker1`, ...), the producer's delivery thread, the health probe, the signal
/// thread. A thread that exited before its name was read is `[thread: exited]`.
pub fn thread_frame(comm: Option<&str>) -> String {
    match comm {
        None => "[thread: exited]".into(),
        // rdkafka's ThreadedProducer names its thread "producer polling thread"; the
        // kernel keeps 15 bytes of a name.
        Some(c) if c.starts_with("producer pol") => "[thread: delivery (producer polling)]".into(),
        Some(c) if c.starts_with("rdk:") || c == "kafka-health" || c == "signals" => {
            format!("[thread: {c}]")
        }
        Some(_) => SERVER_THREADS.into(),
    }
}

/// The thread frame of the runtime's own threads (see [`thread_frame`]).
pub const SERVER_THREADS: &str = "[server threads]";

/// Every thread of `pid` on `host` now: thread id → its name (`/proc/PID/task/TID/comm`).
pub fn thread_names(host: &Transport, pid: u32) -> HashMap<u32, String> {
    let tids: Vec<u32> = host
        .list(&format!("/proc/{pid}/task"))
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
    let paths: Vec<String> = tids
        .iter()
        .map(|t| format!("/proc/{pid}/task/{t}/comm"))
        .collect();
    tids.into_iter()
        .zip(host.read(&paths))
        .filter_map(|(tid, comm)| Some((tid, comm?.trim_end().to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_fold_by_process_and_read_back() {
        let k = None;
        let user: HashMap<u64, Vec<String>> = [
            (0x10, vec!["leaf".to_string()]),
            // 0x21 is a return address: looked up at 0x20.
            (0x20, vec!["main".to_string(), "inlined_caller".to_string()]),
        ]
        .into();
        let s = |pid, user: Vec<u64>, kernel: Vec<u64>| RawSample {
            pid,
            tid: pid,
            kernel,
            user,
        };
        let samples = [
            s(7, vec![0x10, 0x21], vec![]),
            s(7, vec![0x10, 0x21], vec![]),
            s(7, vec![0x99, 0x21], vec![0xffff_0000]),
            s(0, vec![], vec![0xffff_0000]),
            s(8, vec![0x10], vec![]),
        ];
        let threads: HashMap<u32, String> = [(7, "tokio-runtime-w".to_string())].into();
        let st = Stacks::fold(&samples, (7, "server"), &threads, &user, k);
        assert_eq!(
            st.counts["server;[server threads];main;inlined_caller;leaf"],
            2
        );
        assert_eq!(
            st.counts["server;[server threads];main;inlined_caller;[unknown];[kernel]_[k]"],
            1
        );
        assert_eq!(st.counts["[idle];[kernel]_[k]"], 1);
        assert_eq!(
            st.counts["[other processes]"], 1,
            "another process's frames are not looked up"
        );
        assert_eq!(st.under("server").total(), 3);
        assert_eq!(Stacks::parse(&st.to_folded()), Ok(st.clone()));
        assert!(Stacks::parse("a;b\n").is_err());
        assert_eq!(
            Stacks::user_addresses(&samples, 7),
            [0x10, 0x20, 0x10, 0x20, 0x99, 0x20]
        );
    }

    #[test]
    fn helper_threads_keep_their_names_and_the_runtime_s_are_one_frame() {
        assert_eq!(thread_frame(Some("rdk:broker1")), "[thread: rdk:broker1]");
        assert_eq!(
            thread_frame(Some("producer pollin")),
            "[thread: delivery (producer polling)]"
        );
        assert_eq!(thread_frame(Some("tokio-runtime-w")), SERVER_THREADS);
        assert_eq!(thread_frame(Some("server-uring")), SERVER_THREADS);
        assert_eq!(thread_frame(None), "[thread: exited]");
        let me = thread_names(&Transport::Local, std::process::id());
        let tid = unsafe { libc::gettid() } as u32;
        assert!(me.contains_key(&tid), "{me:?}");
    }
}
