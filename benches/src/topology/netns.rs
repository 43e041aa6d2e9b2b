//! The `netns` topology: two network namespaces joined by a veth pair, made and removed
//! with iproute2 (`ip`, `tc`), entered per thread with `setns(2)`.
//!
//! ```text
//!  rbench-<pid>-load  (the bench: load generator, embedded broker, readers)
//!     rb<pid>l 10.213.0.1/30 ──veth── rb<pid>s 10.213.0.2/30
//!                                            rbench-<pid>-srv  (the servers; the broker
//!                                            relay listens on its 127.0.0.1)
//! ```
//!
//! With a real cluster (`KAFKA_BROKERS`), reachable from the host's own network, each
//! address the cluster advertises gets a relay in both namespaces (listening at that
//! address there, on the namespace's loopback) that connects out from the host's
//! namespace: clients in either namespace then reach the brokers at the addresses the
//! metadata names.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{relay, Links, TopologyRecord};

const PREFIX: &str = "rbench-";
const LOAD_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 2);

/// The namespaces of one run; removed on drop (and on SIGINT/SIGTERM/SIGHUP).
#[derive(Debug)]
pub struct Netns {
    pid: u32,
    links: Links,
    link_rtt_us: Option<f64>,
    relays: Vec<relay::Relay>,
    /// The namespace this process started in (the host's), kept to reach a real cluster.
    host_ns: std::fs::File,
    /// A real cluster's broker addresses, relayed into both namespaces.
    cluster: Vec<SocketAddr>,
}

/// Names the signal watcher removes if the run is interrupted.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl Netns {
    fn load_ns(pid: u32) -> String {
        format!("{PREFIX}{pid}-load")
    }

    pub fn server_ns(&self) -> String {
        format!("{PREFIX}{}-srv", self.pid)
    }

    pub fn server_ip(&self) -> IpAddr {
        IpAddr::V4(SERVER_IP)
    }

    /// Creates the namespaces and the link, applies `links`, moves this thread into the
    /// bench's namespace and measures the link's round trip. Stops with the fix on any
    /// refusal (not root, no `ip`, a delay without netem), leaving nothing behind.
    pub fn create(pid: u32, links: &Links) -> Result<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!("BENCH_TOPOLOGY=netns needs root: the run creates and removes network namespaces and links (run as root, or use BENCH_TOPOLOGY=local)");
        }
        if Command::new("ip").arg("-V").output().is_err() {
            bail!(
                "BENCH_TOPOLOGY=netns needs the `ip` command (iproute2): apt-get install iproute2"
            );
        }
        if (links.delay.is_some() || links.rate.is_some())
            && Command::new("tc").arg("-V").output().is_err()
        {
            bail!("BENCH_NET_DELAY/BENCH_NET_RATE need the `tc` command (iproute2): apt-get install iproute2");
        }
        for gone in leftovers()? {
            eprintln!(
                "runtime-bench: removing namespace {gone} left by a run that no longer exists"
            );
            let _ = ip(&["netns", "del", &gone]);
        }
        install_signal_cleanup();
        let mut n = Self {
            pid,
            links: links.clone(),
            link_rtt_us: None,
            relays: Vec::new(),
            host_ns: std::fs::File::open("/proc/thread-self/ns/net")
                .context("opening this thread's network namespace")?,
            cluster: Vec::new(),
        };
        let (load, srv) = (Self::load_ns(pid), n.server_ns());
        let (lv, sv) = (format!("rb{pid}l"), format!("rb{pid}s"));
        for ns in [&load, &srv] {
            ip(&["netns", "add", ns])?;
            LIVE.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(ns.clone());
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        ip(&["link", "add", &lv, "type", "veth", "peer", "name", &sv])?;
        ip(&["link", "set", &lv, "netns", &load])?;
        ip(&["link", "set", &sv, "netns", &srv])?;
        for (ns, dev, addr) in [(&load, &lv, LOAD_IP), (&srv, &sv, SERVER_IP)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            shape(ns, dev, links)?;
        }
        // Connection-per-request from one source address: TIME_WAIT would exhaust its
        // ports (the loopback spread over 127.0.0.x does not apply); this namespace's own
        // setting, not the host's.
        run(Command::new("ip").args([
            "netns",
            "exec",
            &load,
            "sysctl",
            "-qw",
            "net.ipv4.tcp_tw_reuse=1",
        ]))?;
        enter(&load)?;
        n.link_rtt_us = Some(n.measure_rtt()?);
        Ok(n)
    }

    /// A relay in the servers' namespace at `addr` (a `127.0.0.1:port` of this process's
    /// namespace, where the embedded broker listens) to `addr` here, delayed by
    /// `BENCH_KAFKA_DELAY` each way.
    pub fn relay_broker(&mut self, addr: &str) -> Result<()> {
        let to: std::net::SocketAddr = addr
            .parse()
            .with_context(|| format!("the embedded broker's address {addr}"))?;
        let here = Self::load_ns(self.pid);
        let listener = in_namespace(&self.server_ns(), &here, || TcpListener::bind(to))
            .with_context(|| {
                format!("the broker relay's listener on {to} in the servers' namespace")
            })?;
        self.relays.push(relay::Relay::start(
            listener,
            to,
            self.links.kafka_delay.unwrap_or_default(),
        )?);
        Ok(())
    }

    /// Makes the real cluster at `bootstrap` (reachable from the host's network) reachable
    /// from both namespaces at every address it advertises: a relay per address and
    /// namespace, listening there (the address added to the namespace's loopback unless it
    /// is a loopback one) and connecting out from the host's namespace. The servers' relays
    /// are delayed by `BENCH_KAFKA_DELAY`. Returns the addresses.
    pub fn relay_cluster(&mut self, bootstrap: &str) -> Result<Vec<SocketAddr>> {
        let here = Self::load_ns(self.pid);
        let addrs = self.in_host(|| cluster_addresses(bootstrap))??;
        let delay = self.links.kafka_delay.unwrap_or_default();
        for a in &addrs {
            for (ns, delay) in [(self.server_ns(), delay), (here.clone(), Duration::ZERO)] {
                if !a.ip().is_loopback() {
                    let _ = ip(&[
                        "-n",
                        &ns,
                        "addr",
                        "add",
                        &format!("{}/32", a.ip()),
                        "dev",
                        "lo",
                    ]);
                }
                let listener = in_namespace(&ns, &here, || TcpListener::bind(a))
                    .with_context(|| format!("a relay's listener on {a} in {ns}"))?;
                // Started from the host's namespace: the relay's thread connects out from it.
                let relay = self.in_host(|| relay::Relay::start(listener, *a, delay))??;
                self.relays.push(relay);
            }
        }
        self.cluster = addrs.clone();
        Ok(addrs)
    }

    /// Runs `f` with this thread in the host's namespace, then back in the bench's: sockets
    /// and threads it makes belong to the host's network.
    fn in_host<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        // SAFETY: a valid namespace fd; setns affects this thread only.
        if unsafe { libc::setns(self.host_ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns(host): {}", std::io::Error::last_os_error());
        }
        let r = f();
        enter(&Self::load_ns(self.pid))?;
        Ok(r)
    }

    /// The median of 200 round trips of 100 B from here to a listener at the servers'
    /// address, µs.
    fn measure_rtt(&self) -> Result<f64> {
        let here = Self::load_ns(self.pid);
        let listener = in_namespace(&self.server_ns(), &here, || {
            TcpListener::bind((SERVER_IP, 0))
        })
        .context("a listener in the servers' namespace")?;
        let mut round_trip =
            crate::calibrate::tcp_round_trip_on(listener).context("connecting across the link")?;
        let mut rtts = Vec::with_capacity(200);
        for _ in 0..200 {
            let t = Instant::now();
            round_trip()?;
            rtts.push(t.elapsed().as_secs_f64() * 1e6);
        }
        crate::analysis::median(&rtts).context("no round trips")
    }

    pub fn record(&self) -> TopologyRecord {
        let l = &self.links;
        let fmt = |d: Option<Duration>| d.map(|d| format!("{d:?}"));
        TopologyRecord {
            kind: "netns".into(),
            description: format!(
                "netns: servers in {} ({SERVER_IP}), load generator{} in {} ({LOAD_IP}), one veth pair (MTU 1500, loopback's is 65536){}{}; {}{}; CPU shared as in the local layout",
                self.server_ns(),
                if self.cluster.is_empty() { " and embedded broker" } else { "" },
                Self::load_ns(self.pid),
                l.delay.map_or(String::new(), |d| format!(", netem delay {d:?} each way")),
                l.rate.as_ref().map_or(String::new(), |r| format!(", tbf rate {r}")),
                if self.cluster.is_empty() {
                    "the servers reach the broker through a relay in the bench".to_string()
                } else {
                    let a: Vec<String> = self.cluster.iter().map(ToString::to_string).collect();
                    format!("Kafka at KAFKA_BROKERS, on the host's network, reached from both namespaces through relays in the bench at its brokers' addresses ({})", a.join(", "))
                },
                l.kafka_delay.map_or(String::new(), |d| format!(" delaying {d:?} each way")),
            ),
            link_rtt_us: self.link_rtt_us,
            delay: fmt(l.delay),
            rate: l.rate.clone(),
            kafka_delay: fmt(l.kafka_delay),
            server_host: None,
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for r in self.relays.drain(..) {
            r.stop();
        }
        remove_live();
    }
}

/// Removes every namespace this run made (idempotent).
fn remove_live() {
    let names: Vec<String> = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for ns in names {
        if let Err(e) = ip(&["netns", "del", &ns]) {
            eprintln!("runtime-bench: removing namespace {ns}: {e:#}");
        }
    }
}

/// Namespaces named like ours whose run's process is gone.
pub fn leftovers() -> Result<Vec<String>> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .context("ip netns list")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| {
            name.strip_prefix(PREFIX)
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        })
        .map(String::from)
        .collect())
}

/// The cluster's bootstrap addresses and every broker its metadata names, resolved.
fn cluster_addresses(bootstrap: &str) -> Result<Vec<SocketAddr>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("a metadata client for KAFKA_BROKERS")?;
    let md = c
        .fetch_metadata(None, Duration::from_secs(10))
        .with_context(|| format!("KAFKA_BROKERS={bootstrap}: no metadata from the cluster"))?;
    let mut names: Vec<(String, u16)> = bootstrap
        .split(',')
        .filter_map(|b| {
            let (h, p) = b.trim().rsplit_once(':')?;
            Some((h.to_string(), p.parse().ok()?))
        })
        .collect();
    names.extend(
        md.brokers()
            .iter()
            .filter_map(|b| Some((b.host().to_string(), u16::try_from(b.port()).ok()?))),
    );
    let mut addrs = Vec::new();
    for (h, p) in names {
        let a = (h.as_str(), p)
            .to_socket_addrs()
            .with_context(|| format!("resolving the broker {h}:{p}"))?
            .find(SocketAddr::is_ipv4)
            .with_context(|| format!("the broker {h}:{p} has no IPv4 address"))?;
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    Ok(addrs)
}

/// Rate limit and delay on one end of the link (each end shapes what it sends).
fn shape(ns: &str, dev: &str, links: &Links) -> Result<()> {
    if let Some(d) = links.delay {
        let us = format!("{}us", d.as_micros());
        let mut args = vec![
            "-n", ns, "qdisc", "add", "dev", dev, "root", "netem", "delay", &us,
        ];
        let rate;
        if let Some(r) = &links.rate {
            rate = r.clone();
            args.extend(["rate", &rate]);
        }
        return run(Command::new("tc").args(&args)).map_err(|e| {
            anyhow::anyhow!("BENCH_NET_DELAY={d:?}: this kernel's netem qdisc refused ({e:#}); a kernel without CONFIG_NET_SCH_NETEM cannot delay the server link (BENCH_KAFKA_DELAY, done by the broker relay, works anywhere)")
        });
    }
    if let Some(r) = &links.rate {
        run(Command::new("tc").args([
            "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", r, "burst", "256kb",
            "latency", "50ms",
        ]))
        .map_err(|e| anyhow::anyhow!("BENCH_NET_RATE={r}: tc tbf refused: {e:#}"))?;
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<()> {
    run(Command::new("ip").args(args))
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Moves this thread into namespace `name`.
pub fn enter(name: &str) -> Result<()> {
    let f = std::fs::File::open(format!("/run/netns/{name}"))
        .with_context(|| format!("opening namespace {name}"))?;
    // SAFETY: a valid namespace fd; setns affects this thread only.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns({name}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` with this thread in namespace `there`, then back in `here`: a socket made by
/// `f` stays in `there`.
fn in_namespace<T>(there: &str, here: &str, f: impl FnOnce() -> std::io::Result<T>) -> Result<T> {
    enter(there)?;
    let r = f();
    enter(here)?;
    Ok(r?)
}

/// On SIGINT, SIGTERM or SIGHUP: remove the namespaces, then exit as the signal would
/// have. The handler only writes to a pipe; a thread does the work.
fn install_signal_cleanup() {
    static ONCE: AtomicBool = AtomicBool::new(false);
    static PIPE_WR: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);
    if ONCE.swap(true, Ordering::SeqCst) {
        return;
    }
    extern "C" fn on_signal(sig: libc::c_int) {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the fd is the pipe's write end.
        unsafe {
            libc::write(
                PIPE_WR.load(Ordering::Relaxed),
                std::ptr::addr_of!(b).cast(),
                1,
            )
        };
    }
    let mut fds = [0; 2];
    // SAFETY: a two-int array for pipe(2).
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return;
    }
    PIPE_WR.store(fds[1], Ordering::Relaxed);
    let read_end = fds[0];
    let stopping = Arc::new(AtomicBool::new(false));
    let _ = std::thread::Builder::new()
        .name("netns-cleanup".into())
        .spawn(move || {
            let mut b = 0u8;
            // SAFETY: reads one byte into `b` from the pipe's read end.
            let n = unsafe { libc::read(read_end, std::ptr::addr_of_mut!(b).cast(), 1) };
            if n == 1 && !stopping.swap(true, Ordering::SeqCst) {
                eprintln!("runtime-bench: signal {b}: removing the run's namespaces");
                remove_live();
                std::process::exit(128 + i32::from(b));
            }
        });
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs a handler that only calls write(2).
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}
