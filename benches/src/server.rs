//! Server processes under test: build once, start on port 0, wait for the readiness line,
//! stop with SIGTERM (SIGKILL if it hangs), and never leave one behind (`Drop` kills).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::runtime::Runtime;

/// Cargo profile the server binaries are built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildProfile {
    Release,
    Debug,
}

static BUILT: OnceLock<Mutex<Vec<(BuildProfile, PathBuf, PathBuf)>>> = OnceLock::new();

/// Paths of (server-tokio, server-uring), built with `profile` by a nested `cargo build`
/// (a no-op when up to date). Built once per process.
pub fn server_binaries(profile: BuildProfile) -> Result<(PathBuf, PathBuf)> {
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().map_err(|_| anyhow!("build lock poisoned"))?;
    if let Some((_, t, u)) = built.iter().find(|(p, _, _)| *p == profile) {
        return Ok((t.clone(), u.clone()));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "-p",
            "server-tokio",
            "-p",
            "server-uring",
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if profile == BuildProfile::Release {
        cmd.arg("--release");
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {cargo} build for the servers"))?;
    if !out.status.success() {
        bail!(
            "building the servers failed ({}); see the compiler output above",
            out.status
        );
    }
    let mut found = (None, None);
    for line in out.stdout.split(|&b| b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(name), Some(exe)) = (
            msg.pointer("/target/name").and_then(|v| v.as_str()),
            msg.get("executable").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        match name {
            "server-tokio" => found.0 = Some(PathBuf::from(exe)),
            "server-uring" => found.1 = Some(PathBuf::from(exe)),
            _ => {}
        }
    }
    let (Some(t), Some(u)) = found else {
        bail!("cargo build did not report the server executables");
    };
    built.push((profile, t.clone(), u.clone()));
    Ok((t, u))
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub runtime: Runtime,
    pub profile: BuildProfile,
    /// `--brokers`; `None` lets the server start its own embedded broker.
    pub brokers: Option<String>,
    pub topic: String,
    /// Further flags, e.g. `["--ack", "delivered"]`.
    pub args: Vec<String>,
    /// Shell `ulimit -n` for the server process (accept-error tests).
    pub nofile: Option<u32>,
    /// How long to wait for the readiness line.
    pub ready_timeout: Duration,
    /// Pin the server to these CPUs (the `split` layout).
    pub cpus: Option<Vec<usize>>,
}

impl ServerConfig {
    pub fn new(runtime: Runtime) -> Self {
        Self {
            runtime,
            profile: BuildProfile::Release,
            brokers: None,
            topic: "ingest".into(),
            args: Vec::new(),
            nofile: None,
            ready_timeout: Duration::from_secs(30),
            cpus: None,
        }
    }
}

/// The server could not set up io_uring (kernel, seccomp or sysctl forbids it): it exited
/// with [`common::service::EXIT_IO_URING_UNAVAILABLE`]. The suite then skips tokio-uring
/// and says why, instead of failing the run.
#[derive(Debug, thiserror::Error)]
#[error("io_uring unavailable: {0}")]
pub struct IoUringUnavailable(pub String);

/// A running server. Dropping it kills the process.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    pub runtime: Runtime,
    /// The address from the readiness line.
    pub addr: SocketAddr,
    /// The readiness line itself: the server's own account of its setup (runtime, threads,
    /// ring setup, Kafka).
    pub ready_line: String,
    /// Everything the server wrote to stderr so far.
    stderr: Arc<Mutex<String>>,
}

impl ServerProcess {
    pub fn start(cfg: &ServerConfig) -> Result<Self> {
        let (tokio_bin, uring_bin) = server_binaries(cfg.profile)?;
        let bin = if cfg.runtime.is_uring() {
            uring_bin
        } else {
            tokio_bin
        };
        // In a netns topology the server runs in its namespace, on the link's address.
        let net = crate::topology::server_net();
        let listen = net.map_or("127.0.0.1:0".to_string(), |n| format!("{}:0", n.ip));
        let mut args: Vec<String> = vec![
            "--listen".into(),
            listen,
            "--topic".into(),
            cfg.topic.clone(),
        ];
        args.extend(cfg.runtime.flavour_args().iter().map(|s| s.to_string()));
        if let Some(b) = &cfg.brokers {
            args.extend(["--brokers".into(), b.clone()]);
        }
        args.extend(cfg.args.iter().cloned());
        let mut cmd = match cfg.nofile {
            // A shell applies the limit, then execs the server: no unsafe pre_exec needed.
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(&bin)
                    .args(&args);
                c
            }
            None => {
                let mut c = Command::new(&bin);
                c.args(&args);
                c
            }
        };
        // A KAFKA_BROKERS in the caller's environment must not leak into a server that was
        // meant to use its embedded broker.
        // If this process dies (even by SIGKILL), the server gets SIGTERM: no orphans holding
        // ports. (PDEATHSIG follows the spawning thread; every caller keeps it alive while
        // the server is in use.)
        // Pinning (split layout) happens in the child too, before exec.
        let cpus = cfg.cpus.clone();
        // And into its network namespace (netns topology): opened here, entered there.
        let netns = net
            .map(|n| {
                std::fs::File::open(format!("/run/netns/{}", n.netns))
                    .with_context(|| format!("opening network namespace {}", n.netns))
            })
            .transpose()?;
        let netns_fd = netns.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
        // SAFETY: prctl, setns and sched_setaffinity are async-signal-safe; `cpus` was
        // allocated before the fork and is only read; the namespace's fd stays open
        // (`netns`) until the spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(fd) = netns_fd {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(cpus) = &cpus {
                    crate::layout::set_affinity(cpus)?;
                }
                Ok(())
            });
        }
        cmd.env_remove("KAFKA_BROKERS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        drop(netns);
        let stdout = child.stdout.take().context("server stdout")?;
        let stderr_pipe = child.stderr.take().context("server stderr")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                    if let Ok(mut s) = stderr.lock() {
                        s.push_str(&line);
                        s.push('\n');
                    }
                }
            });
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(addr) = common::service::parse_ready_line(&line) {
                        let _ = tx.send((addr, line));
                        sent = true;
                    }
                }
            }
        });
        let mut proc = Self {
            child,
            runtime: cfg.runtime,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            ready_line: String::new(),
            stderr,
        };
        let deadline = Instant::now() + cfg.ready_timeout;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok((addr, line)) => {
                    proc.addr = addr;
                    proc.ready_line = line;
                    return Ok(proc);
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Some(status) = proc.child.try_wait()? {
                        std::thread::sleep(Duration::from_millis(100));
                        if status.code()
                            == Some(i32::from(common::service::EXIT_IO_URING_UNAVAILABLE))
                        {
                            return Err(IoUringUnavailable(proc.stderr().trim().to_string()).into());
                        }
                        bail!(
                            "{} exited ({status}) before it was ready:\n{}",
                            cfg.runtime.label(),
                            proc.stderr()
                        );
                    }
                }
                Err(_) => bail!(
                    "{} printed no readiness line within {:?}:\n{}",
                    cfg.runtime.label(),
                    cfg.ready_timeout,
                    proc.stderr()
                ),
            }
        }
    }

    /// The server's PID (for fd counts and socket states in stall reports).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        // SAFETY: kill(2) with a PID we spawned and have not reaped; no memory involved.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
    }

    /// SIGTERM, then waits up to `timeout` for exit; SIGKILL after that (and says so).
    pub fn stop(self, timeout: Duration) -> Result<ExitStatus> {
        self.terminate();
        self.wait(timeout)
    }

    /// Waits up to `timeout` for exit (after [`ServerProcess::terminate`]); SIGKILL after
    /// that (and says so). A second SIGTERM would make the server exit at once, unflushed.
    pub fn wait(mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!(
                    "{} did not exit within {timeout:?} of SIGTERM; killed:\n{}",
                    self.runtime.label(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
