//! Server processes under test: build once, start on port 0, wait for the readiness line,
//! stop with SIGTERM (SIGKILL if it hangs), and never leave one behind (`Drop` kills).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use probe::Stream;

use crate::runtime::Runtime;
use crate::transport::{Event, Proc, Transport};

mod build;

pub use build::{probe_binary, server_binaries, BuildProfile};

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
    proc: Proc,
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
        let host = crate::transport::servers();
        // In a netns topology the server runs in its namespace, on the link's address; in
        // an ssh topology on its host, on the address the load generator reaches it at.
        let net = crate::topology::server_net();
        let ip = match host {
            Transport::Ssh(h) => h.listen_ip(),
            Transport::Local => net.map_or(IpAddr::from([127, 0, 0, 1]), |n| n.ip),
        };
        let mut args: Vec<String> = vec![
            "--listen".into(),
            SocketAddr::new(ip, 0).to_string(),
            "--topic".into(),
            cfg.topic.clone(),
        ];
        args.extend(cfg.runtime.flavour_args().iter().map(|s| s.to_string()));
        if let Some(b) = &cfg.brokers {
            args.extend(["--brokers".into(), b.clone()]);
        }
        args.extend(cfg.args.iter().cloned());
        let name = if cfg.runtime.is_uring() {
            "server-uring"
        } else {
            "server-tokio"
        };
        let (proc, events) = match host {
            Transport::Local => {
                let (tokio_bin, uring_bin) = server_binaries(cfg.profile)?;
                let bin = if cfg.runtime.is_uring() {
                    uring_bin
                } else {
                    tokio_bin
                };
                spawn_local(cfg, &bin, &args, net)?
            }
            Transport::Ssh(h) => {
                let argv = with_nofile(cfg.nofile, h.binary(name), args);
                let (child, pid, events) = h.spawn(argv, cfg.cpus.clone())?;
                (
                    Proc::Remote {
                        host: h.clone(),
                        child,
                        pid,
                    },
                    events,
                )
            }
        };
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                let mut sent = false;
                for Event::Line(stream, line) in events {
                    match stream {
                        Stream::Stdout if !sent => {
                            if let Some(addr) = common::service::parse_ready_line(&line) {
                                let _ = tx.send((addr, line));
                                sent = true;
                            }
                        }
                        Stream::Stdout => {}
                        Stream::Stderr => {
                            if let Ok(mut s) = stderr.lock() {
                                s.push_str(&line);
                                s.push('\n');
                            }
                        }
                    }
                }
            });
        }
        let mut proc = Self {
            proc,
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
                    if let Some(status) = proc.proc.try_wait()? {
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
        self.proc.pid()
    }

    /// The process, on whichever host (to count its syscalls there).
    pub fn process(&self) -> &Proc {
        &self.proc
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.proc.signal(libc::SIGTERM);
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
            if let Some(status) = self.proc.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                self.proc.kill();
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
        if let Ok(None) = self.proc.try_wait() {
            self.proc.kill();
        }
    }
}

/// `argv` run under a shell that first sets `ulimit -n` (accept-error tests): no unsafe
/// pre_exec needed, and the same on a remote host.
fn with_nofile(nofile: Option<u32>, bin: String, args: Vec<String>) -> Vec<String> {
    match nofile {
        Some(n) => [
            "sh".to_string(),
            "-c".into(),
            format!("ulimit -n {n} && exec \"$0\" \"$@\""),
            bin,
        ]
        .into_iter()
        .chain(args)
        .collect(),
        None => std::iter::once(bin).chain(args).collect(),
    }
}

/// Starts a server on this machine (in the servers' namespace under netns), its lines
/// forwarded as [`Event`]s.
fn spawn_local(
    cfg: &ServerConfig,
    bin: &Path,
    args: &[String],
    net: Option<&crate::topology::ServerNet>,
) -> Result<(Proc, mpsc::Receiver<Event>)> {
    let argv = with_nofile(cfg.nofile, bin.display().to_string(), args.to_vec());
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
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
    // A KAFKA_BROKERS in the caller's environment must not leak into a server that was
    // meant to use its embedded broker.
    cmd.env_remove("KAFKA_BROKERS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    drop(netns);
    let (tx, rx) = mpsc::channel();
    let pipes: [(Stream, Box<dyn std::io::Read + Send>); 2] = [
        (
            Stream::Stdout,
            Box::new(child.stdout.take().context("server stdout")?),
        ),
        (
            Stream::Stderr,
            Box::new(child.stderr.take().context("server stderr")?),
        ),
    ];
    for (stream, pipe) in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(Event::Line(stream, line)).is_err() {
                    break;
                }
            }
        });
    }
    Ok((Proc::Local(child), rx))
}
