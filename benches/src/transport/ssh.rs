//! The server host over ssh: the binaries copied to a run directory there, one ssh session
//! carrying the probe (which starts, watches and measures the servers), and, for the
//! embedded broker, a second session that forwards the broker's port to that host's
//! loopback. Every ssh runs in batch mode with timeouts, so a wrong host, key or option
//! fails in seconds with ssh's own words; nothing is left on the host when the sessions
//! end (the probe ends its processes and removes the directory).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use probe::{Answer, Host, Op};

use super::client::{Client, Event};

/// What `BENCH_SERVER_HOST`, `BENCH_SSH_OPTS` and `BENCH_SERVER_ADDR` ask for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SshSettings {
    /// `[user@]host` as ssh takes it.
    pub target: String,
    /// Further ssh options (`-i key -p 2222 -o ...`), split on whitespace.
    pub opts: Vec<String>,
    /// The address the servers listen on and the load generator connects to; by default
    /// the host's address as ssh resolves it.
    pub listen: Option<IpAddr>,
}

/// A server host reached over ssh, with its probe session open.
#[derive(Debug)]
pub struct SshHost {
    settings: SshSettings,
    /// The run directory there (removed by the probe when its session ends).
    dir: String,
    facts: Host,
    /// Each copied binary's path there, and the local file it is a copy of.
    copies: Vec<(String, PathBuf)>,
    listen: IpAddr,
    client: Client,
    session: Mutex<Option<Child>>,
    tunnels: Mutex<Vec<Child>>,
}

impl SshSettings {
    fn command(&self) -> Command {
        let mut c = Command::new("ssh");
        c.args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=3",
        ])
        .args(&self.opts)
        .arg(&self.target);
        c
    }

    /// Runs `remote` there, feeding it `input`, within `limit`.
    fn run(&self, remote: &str, input: Option<&Path>, limit: Duration) -> Result<String> {
        let mut c = self.command();
        c.arg(remote)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(match input {
                Some(p) => Stdio::from(
                    std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
                ),
                None => Stdio::null(),
            });
        let mut child = c
            .spawn()
            .context("running ssh (is the openssh client installed?)")?;
        let t0 = Instant::now();
        while child.try_wait()?.is_none() {
            if t0.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "ssh {} {remote:?} did not finish within {limit:?}",
                    self.target
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "ssh {} {remote:?} failed ({}): {}",
                self.target,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Where ssh would connect, from `ssh -G` (its options and config applied).
    fn resolve(&self) -> Result<SocketAddr> {
        let mut c = Command::new("ssh");
        let out = c
            .arg("-G")
            .args(&self.opts)
            .arg(&self.target)
            .output()
            .context("running ssh -G (is the openssh client installed?)")?;
        if !out.status.success() {
            bail!(
                "ssh -G {}: {}",
                self.target,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix(' ').map(str::to_string))
        };
        let host = field("hostname").context("ssh -G named no hostname")?;
        let port: u16 = field("port").and_then(|p| p.parse().ok()).unwrap_or(22);
        (host.as_str(), port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {host}"))?
            .next()
            .ok_or_else(|| anyhow!("{host} has no address"))
    }
}

impl SshHost {
    /// Reaches the host, copies `binaries` (name, local path; one must be `probe`) into a
    /// run directory named after this process, and opens the probe's session.
    pub fn connect(settings: &SshSettings, binaries: &[(&str, &Path)]) -> Result<Self> {
        let ssh_addr = settings.resolve()?;
        settings
            .run("true", None, Duration::from_secs(30))
            .context("BENCH_SERVER_HOST: the server host cannot be reached over ssh in batch mode (check the host, the key in BENCH_SSH_OPTS or ~/.ssh/config, and that it accepts it without a prompt)")?;
        let dir = format!("/tmp/rbench-{}", std::process::id());
        for (name, path) in binaries {
            let copied = settings
                .run(
                    &format!("mkdir -p {dir} && cat > {dir}/{name}.part && chmod +x {dir}/{name}.part && mv {dir}/{name}.part {dir}/{name}"),
                    Some(path),
                    Duration::from_secs(300),
                )
                .with_context(|| format!("copying {} to {}", path.display(), settings.target));
            if copied.is_err() {
                // No probe yet to remove the directory when its session ends.
                let _ = settings.run(&format!("rm -rf {dir}"), None, Duration::from_secs(30));
            }
            copied?;
        }
        let mut c = settings.command();
        c.arg(format!("{dir}/probe --remove-on-exit {dir}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut session = c.spawn().context("starting the probe over ssh")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = session.stderr.take() {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for l in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut s) = stderr.lock() {
                        s.push_str(&l);
                        s.push('\n');
                    }
                }
            });
        }
        let (stdin, stdout) = (
            session.stdin.take().context("probe stdin")?,
            session.stdout.take().context("probe stdout")?,
        );
        let why = stderr.clone();
        let client = Client::new(stdin, stdout, move || {
            let s = why.lock().map(|s| s.trim().to_string()).unwrap_or_default();
            if s.is_empty() {
                "ssh closed the session".into()
            } else {
                format!("ssh: {s}")
            }
        });
        let facts = match client.call(Op::Hello) {
            Ok(Answer::Hello(h)) => h,
            answer => {
                // A probe that never ran cannot remove its directory.
                let _ = session.kill();
                let _ = session.wait();
                let _ = settings.run(&format!("rm -rf {dir}"), None, Duration::from_secs(30));
                bail!(
                    "the probe did not start on {}: {} (the binaries are built here and copied: that host needs this CPU architecture and a glibc at least as new)",
                    settings.target,
                    match answer {
                        Err(e) => format!("{e:#}"),
                        Ok(other) => format!("it answered hello with {other:?}"),
                    }
                );
            }
        };
        if facts.version != env!("CARGO_PKG_VERSION") {
            bail!(
                "the probe on {} is version {}, this harness {}",
                settings.target,
                facts.version,
                env!("CARGO_PKG_VERSION")
            );
        }
        Ok(Self {
            listen: settings.listen.unwrap_or(ssh_addr.ip()),
            settings: settings.clone(),
            copies: binaries
                .iter()
                .map(|(name, path)| (format!("{dir}/{name}"), path.to_path_buf()))
                .collect(),
            dir,
            facts,
            client,
            session: Mutex::new(Some(session)),
            tunnels: Mutex::new(Vec::new()),
        })
    }

    pub fn target(&self) -> &str {
        &self.settings.target
    }

    pub fn facts(&self) -> &Host {
        &self.facts
    }

    /// Where the servers listen there.
    pub fn listen_ip(&self) -> IpAddr {
        self.listen
    }

    /// A binary copied there, by name.
    pub fn binary(&self, name: &str) -> String {
        format!("{}/{name}", self.dir)
    }

    /// The local file a path there is a copy of (to name a remote server's frames).
    pub fn local_copy(&self, there: &str) -> Option<&Path> {
        self.copies
            .iter()
            .find(|(p, _)| p == there)
            .map(|(_, local)| local.as_path())
    }

    pub fn read(&self, paths: &[String]) -> Vec<Option<String>> {
        match self.client.call(Op::Read {
            paths: paths.to_vec(),
        }) {
            Ok(Answer::Texts(t)) if t.len() == paths.len() => t,
            _ => vec![None; paths.len()],
        }
    }

    pub fn list(&self, dir: &str) -> Option<Vec<String>> {
        match self.client.call(Op::List { path: dir.into() }) {
            Ok(Answer::Names(n)) => n,
            _ => None,
        }
    }

    /// Starts `argv` there: (child number, pid there, its lines).
    pub fn spawn(
        &self,
        argv: Vec<String>,
        cpus: Option<Vec<usize>>,
    ) -> Result<(u64, u32, std::sync::mpsc::Receiver<Event>)> {
        match self.client.call(Op::Spawn {
            argv,
            cpus,
            env_remove: vec!["KAFKA_BROKERS".into()],
        })? {
            Answer::Spawned { child, pid } => Ok((
                child,
                pid,
                self.client.events(child).context("the process's lines")?,
            )),
            other => bail!("the probe answered spawn with {other:?}"),
        }
    }

    pub fn signal(&self, child: u64, sig: i32) {
        let _ = self.client.call(Op::Signal { child, signal: sig });
    }

    pub fn exit(&self, child: u64) -> Result<Option<std::process::ExitStatus>> {
        self.client.exit(child)
    }

    /// Sends the probe one request (the counters in `counter.rs`).
    pub(super) fn call(&self, op: Op) -> Result<Answer> {
        self.client.call(op)
    }

    /// Makes `addr` (a port on this host's loopback: the embedded broker) reachable at the
    /// same address on the server host, through an ssh port forward; waits until the
    /// forward listens there.
    pub fn forward(&self, addr: &str) -> Result<()> {
        let a: SocketAddr = addr
            .parse()
            .with_context(|| format!("the broker address {addr}"))?;
        let mut c = self.settings.command();
        c.args([
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            &format!("{a}:{a}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        // If this process dies without closing it, the forward still ends.
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut tunnel = c
            .spawn()
            .context("starting the broker's port forward over ssh")?;
        let want = format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(match a.ip() {
                IpAddr::V4(v4) => v4.octets(),
                IpAddr::V6(_) => bail!("the broker's address {a}: IPv4 expected"),
            }),
            a.port()
        );
        let t0 = Instant::now();
        loop {
            let listening = self
                .read(&["/proc/net/tcp".to_string()])
                .pop()
                .flatten()
                .is_some_and(|t| {
                    t.lines().any(|l| {
                        l.split_whitespace().nth(1) == Some(&want)
                            && l.split_whitespace().nth(3) == Some("0A")
                    })
                });
            if listening {
                break;
            }
            if let Some(st) = tunnel.try_wait()? {
                let mut why = String::new();
                if let Some(mut e) = tunnel.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut why);
                }
                bail!(
                    "the broker's port forward to {} ended ({st}): {}",
                    self.target(),
                    why.trim()
                );
            }
            if t0.elapsed() > Duration::from_secs(20) {
                let _ = tunnel.kill();
                let _ = tunnel.wait();
                bail!(
                    "the broker's port forward to {} did not listen within 20 s",
                    self.target()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.tunnels
            .lock()
            .map_err(|_| anyhow!("tunnels poisoned"))?
            .push(tunnel);
        Ok(())
    }

    /// Ends the sessions: the probe stops what it started and removes its directory
    /// (waits for it, at most twice the probe's grace, then kills ssh).
    pub fn close(&self) {
        if let Ok(mut t) = self.tunnels.lock() {
            for mut c in t.drain(..) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.client.close();
        let Some(mut session) = self.session.lock().ok().and_then(|mut s| s.take()) else {
            return;
        };
        let t0 = Instant::now();
        while matches!(session.try_wait(), Ok(None)) {
            if t0.elapsed() > 2 * probe::GRACE + Duration::from_secs(5) {
                eprintln!(
                    "runtime-bench: the probe on {} did not end; closing ssh",
                    self.target()
                );
                let _ = session.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = session.wait();
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        self.close();
    }
}
