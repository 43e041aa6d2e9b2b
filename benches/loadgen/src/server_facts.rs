//! Server-side facts for a stall report: open fds, TCP socket states on the server's port,
//! and where each server thread was waiting (its state, wchan, and its kernel stack where
//! readable: root), read from /proc (Linux).

use std::collections::BTreeMap;

/// What the server looked like when progress stopped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerFacts {
    pub pid: u32,
    /// Open file descriptors (`/proc/PID/fd`); `None` if unreadable (process gone?).
    pub open_fds: Option<usize>,
    /// The fd soft limit (`/proc/PID/limits`, "Max open files").
    pub fd_limit: Option<u64>,
    /// TCP sockets with the server's port on either end, by state (ESTABLISHED, TIME_WAIT...).
    pub socket_states: BTreeMap<String, u64>,
    /// Each server thread at that moment.
    #[serde(default)]
    pub threads: Vec<ThreadFacts>,
}

/// One server thread when progress stopped: which future was stuck is the runtime's
/// business, but where its thread was in the kernel says whether it waited for work
/// (`ep_poll`, `io_cqring_wait`), for a lock (`futex_wait`), or was running.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ThreadFacts {
    pub tid: u32,
    /// `/proc/PID/task/TID/comm`.
    pub name: String,
    /// The scheduler state letter (R running, S sleeping, D uninterruptible, ...).
    pub state: String,
    /// The kernel function it sleeps in (`wchan`; empty or `0` when running).
    pub wchan: String,
    /// Its kernel stack, innermost first (`/proc/PID/task/TID/stack`: root only; `None`
    /// where unreadable).
    pub kernel_stack: Option<Vec<String>>,
}

impl ThreadFacts {
    /// `name tid state wchan`, e.g. `tokio-runtime-w 1234 S ep_poll`.
    pub fn short(&self) -> String {
        format!("{} {} {} {}", self.name, self.tid, self.state, self.wchan)
    }
}

/// Every thread of `pid` now.
pub fn thread_facts(pid: u32) -> Vec<ThreadFacts> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out: Vec<ThreadFacts> = tasks
        .flatten()
        .filter_map(|t| {
            let tid: u32 = t.file_name().to_str()?.parse().ok()?;
            let read = |f: &str| std::fs::read_to_string(t.path().join(f)).ok();
            let stat = read("stat")?;
            // The state letter follows the parenthesised name, which may hold spaces.
            let state = stat[stat.rfind(')')? + 1..]
                .split_ascii_whitespace()
                .next()?
                .to_string();
            Some(ThreadFacts {
                tid,
                name: read("comm").unwrap_or_default().trim().to_string(),
                state,
                wchan: read("wchan").unwrap_or_default().trim().to_string(),
                kernel_stack: read("stack").map(|s| {
                    s.lines()
                        .map(|l| l.split_once(' ').map_or(l, |(_, f)| f).to_string())
                        .collect()
                }),
            })
        })
        .collect();
    out.sort_by_key(|t| t.tid);
    out
}

pub fn server_facts(pid: u32, port: u16) -> ServerFacts {
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count());
    let fd_limit = std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        });
    let mut socket_states = BTreeMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            for (state, n) in socket_states_on_port(&text, port) {
                *socket_states.entry(state).or_default() += n;
            }
        }
    }
    ServerFacts {
        pid,
        open_fds,
        fd_limit,
        socket_states,
        threads: thread_facts(pid),
    }
}

/// Counts sockets whose local or remote port is `port`, by state, from /proc/net/tcp text.
///
/// Runs when a load has stalled, often right after heavy connection churn has left tens of
/// thousands of TIME_WAIT sockets in the table: so it allocates nothing per line and compares
/// the port as the kernel prints it (`:1F90`) instead of parsing every address.
pub fn socket_states_on_port(table: &str, port: u16) -> BTreeMap<String, u64> {
    let suffix = format!(":{port:04X}");
    let mut counts = [0u64; 12];
    for line in table.lines().skip(1) {
        let mut f = line.split_ascii_whitespace().skip(1);
        let (Some(local), Some(remote), Some(state)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if !local.ends_with(&suffix) && !remote.ends_with(&suffix) {
            continue;
        }
        // Codes 1..=11 are named below; anything else (0, NEW_SYN_RECV...) counts as OTHER.
        let code = usize::from(u8::from_str_radix(state, 16).unwrap_or(0));
        counts[if code < counts.len() { code } else { 0 }] += 1;
    }
    const NAMES: [&str; 12] = [
        "OTHER",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
    ];
    let mut out = BTreeMap::new();
    for (name, n) in NAMES.iter().zip(counts) {
        if n > 0 {
            *out.entry((*name).to_string()).or_default() += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_states_on_the_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000\n\
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000\n\
   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000\n\
   3: 0100007F:1F90 0200007F:C351 06 00000000:00000000\n\
   4: 0100007F:0050 0100007F:C352 01 00000000:00000000\n";
        let s = socket_states_on_port(table, 8080);
        assert_eq!(s.get("LISTEN"), Some(&1));
        assert_eq!(s.get("ESTABLISHED"), Some(&2));
        assert_eq!(s.get("TIME_WAIT"), Some(&1));
        assert_eq!(s.values().sum::<u64>(), 4);
        // Another port's sockets and unknown states are not mistaken for ours.
        let odd = "  sl  local_address rem_address   st\n\
   0: 0100007F:1F90 0100007F:C350 0C 00000000:00000000\n\
   1: 0100007F:1F91 0100007F:C350 01 00000000:00000000\n\
   2: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A\n";
        let s = socket_states_on_port(odd, 8080);
        assert_eq!(s.get("OTHER"), Some(&1));
        assert_eq!(s.get("LISTEN"), Some(&1));
        assert_eq!(s.values().sum::<u64>(), 2);
    }

    #[test]
    fn reads_own_process() {
        let f = server_facts(std::process::id(), 1);
        assert!(f.open_fds.is_some_and(|n| n >= 3));
        assert!(f.fd_limit.is_some());
        // A thread parked on a channel sleeps in the kernel (futex); this one is running.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let parked = std::thread::Builder::new()
            .name("parked-test".into())
            .spawn(move || rx.recv().is_ok())
            .expect("spawn");
        let t0 = std::time::Instant::now();
        let late = || t0.elapsed() > std::time::Duration::from_secs(5);
        let seen = loop {
            let f = server_facts(std::process::id(), 1);
            match f.threads.into_iter().find(|t| t.name == "parked-test") {
                Some(t) if t.state == "S" || late() => break Some(t),
                _ if late() => break None,
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        };
        drop(tx);
        let _ = parked.join();
        let seen = seen.expect("the parked thread is listed");
        assert_eq!(seen.state, "S", "{seen:?}");
        // wchan names the kernel function where kallsyms is readable (root); else "0".
        if seen.wchan != "0" {
            assert!(seen.wchan.contains("futex"), "{seen:?}");
        }
        assert!(seen.short().starts_with("parked-test "), "{}", seen.short());
    }
}
