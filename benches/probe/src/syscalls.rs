//! Counting a process's syscalls with the kernel's tracepoints (perf_event_open on
//! `raw_syscalls/sys_enter` and `syscalls/sys_enter_<name>`), one counter per thread and
//! tracepoint, with `inherit` so threads the counted ones start later (io_uring workers)
//! count too. Needs tracefs (for the tracepoint ids) and permission (root, or
//! `kernel.perf_event_paranoid` low enough); where either is missing, [`Counter::attach`]
//! says why and the caller reports "not available: <why>".

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::perf::{open_event, Attr, IOC_ENABLE, IOC_RESET};

/// Where tracefs is usually mounted.
pub const TRACEFS: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The tracepoints the bench counts: every syscall, and the ones each runtime waits in.
pub const EVENTS: &[&str] = &[
    "raw_syscalls/sys_enter",
    "syscalls/sys_enter_epoll_wait",
    "syscalls/sys_enter_epoll_pwait",
    "syscalls/sys_enter_io_uring_enter",
];

const PERF_TYPE_TRACEPOINT: u32 = 2;

/// Open counters on every thread of one process.
#[derive(Debug)]
pub struct Counter {
    /// (event index, fd) per thread and event.
    fds: Vec<(usize, OwnedFd)>,
    events: usize,
}

/// The tracefs folder that has `events/`, mounted or not.
pub fn tracefs() -> Result<PathBuf, String> {
    TRACEFS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("events").is_dir())
        .ok_or_else(|| {
            format!(
                "tracefs is not mounted (mount -t tracefs nodev {})",
                TRACEFS[0]
            )
        })
}

/// Mounts tracefs at its usual place if it is not mounted (root only), so syscalls can be
/// counted with tracepoints; the folder with `events/`, or why there is none.
pub fn mount_tracefs() -> Result<std::path::PathBuf, String> {
    if let Ok(p) = tracefs() {
        return Ok(p);
    }
    let target = TRACEFS[0];
    // SAFETY: mount(2) with NUL-terminated strings that outlive the call and no data.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!(
            "tracefs is not mounted and mounting it at {target} failed: {e}"
        ));
    }
    tracefs()
}

fn tracepoint_id(tracefs: &Path, event: &str) -> Result<u64, String> {
    let path = tracefs.join("events").join(event).join("id");
    std::fs::read_to_string(&path)
        .map_err(|e| format!("tracepoint {event}: {}: {e}", path.display()))?
        .trim()
        .parse()
        .map_err(|e| format!("tracepoint {event}: {e}"))
}

/// A counting event on tracepoint `id` for thread `tid`, disabled, inherited by the
/// threads it starts.
fn open(id: u64, tid: i32) -> std::io::Result<OwnedFd> {
    let attr = Attr {
        kind: PERF_TYPE_TRACEPOINT,
        config: id,
        // disabled (bit 0) | inherit (bit 1)
        flags: 0b11,
        ..Attr::default()
    };
    open_event(&attr, tid, -1)
}

impl Counter {
    /// Opens `events` on every current thread of `pid`, reset and enabled.
    pub fn attach(pid: u32, tracefs: &Path, events: &[&str]) -> Result<Self, String> {
        let ids = events
            .iter()
            .map(|e| tracepoint_id(tracefs, e))
            .collect::<Result<Vec<_>, _>>()?;
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map_err(|e| format!("/proc/{pid}/task: {e}"))?;
        let mut fds = Vec::new();
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<i32>().ok())
            else {
                continue;
            };
            for (i, &id) in ids.iter().enumerate() {
                match open(id, tid) {
                    Ok(fd) => fds.push((i, fd)),
                    // The thread exited since the listing: nothing to count.
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                    Err(e) => return Err(format!("perf_event_open({}): {e}", events[i])),
                }
            }
        }
        if fds.is_empty() {
            return Err(format!("no thread of process {pid} to count"));
        }
        for (_, fd) in &fds {
            // SAFETY: ioctls on perf fds we own, no memory passed.
            unsafe {
                libc::ioctl(fd.as_raw_fd(), IOC_RESET, 0);
                libc::ioctl(fd.as_raw_fd(), IOC_ENABLE, 0);
            }
        }
        Ok(Self {
            fds,
            events: events.len(),
        })
    }

    /// Counts so far, one per event (summed over threads).
    pub fn read(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.events];
        for (i, fd) in &self.fds {
            let mut v = 0u64;
            // SAFETY: reads one u64 (read_format 0) into memory we own.
            let n = unsafe {
                libc::read(
                    fd.as_raw_fd(),
                    std::ptr::addr_of_mut!(v).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
            if n == std::mem::size_of::<u64>() as isize {
                out[*i] += v;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    #[test]
    fn counts_a_childs_known_syscalls() {
        // As root, mount tracefs if needed (as `cargo bench`'s preflight does).
        let tracefs = match mount_tracefs() {
            Ok(t) => t,
            Err(why) => {
                eprintln!("SKIPPED counts_a_childs_known_syscalls: {why}");
                return;
            }
        };
        // A child that waits, makes exactly 10,000 getppid calls, says so, and waits again.
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import os,sys\nprint('ready', flush=True)\nsys.stdin.readline()\nfor _ in range(10000): os.getppid()\nprint('done', flush=True)\nsys.stdin.readline()",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        // Attach only once the interpreter has started (its start-up makes syscalls too).
        out.read_line(&mut line).expect("ready");
        assert_eq!(line.trim(), "ready");
        let events = ["syscalls/sys_enter_getppid", "raw_syscalls/sys_enter"];
        let counter = match Counter::attach(child.id(), &tracefs, &events) {
            Ok(c) => c,
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                eprintln!("SKIPPED counts_a_childs_known_syscalls: not permitted here: {why}");
                return;
            }
        };
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "go").expect("go");
        line.clear();
        out.read_line(&mut line).expect("done");
        assert_eq!(line.trim(), "done");
        let counts = counter.read();
        assert_eq!(counts[0], 10_000, "getppid calls counted: {counts:?}");
        assert!(counts[1] >= 10_000, "all syscalls: {counts:?}");
        writeln!(stdin, "bye").expect("bye");
        let _ = child.wait();
    }

    #[test]
    fn missing_tracefs_or_tracepoint_says_why() {
        let e = Counter::attach(std::process::id(), Path::new("/nonexistent"), EVENTS)
            .expect_err("no tracefs");
        assert!(e.contains("tracepoint raw_syscalls/sys_enter"), "{e}");
        if let Ok(t) = tracefs() {
            let e = Counter::attach(std::process::id(), &t, &["syscalls/sys_enter_no_such_call"])
                .expect_err("no such tracepoint");
            assert!(e.contains("sys_enter_no_such_call"), "{e}");
        }
    }
}
