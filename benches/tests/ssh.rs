//! The ssh topology against a real sshd: one started by `scripts/sshd-netns.sh` in a
//! network namespace of its own, with a key made for the test. Over it the probe starts a
//! server, the server reaches the embedded broker through the ssh port forward, requests
//! cross the link, the probe's figures come back, and when the topology closes nothing is
//! left there: no process of ours, no run directory. Needs root, iproute2 and
//! openssh-server (CI has them; scripts/setup.sh installs them); without them the script's
//! refusal must name the fix.
//!
//! One binary of its own: an ssh topology tells the whole process where servers go.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bench::runtime::Runtime;
use bench::topology::{Plan, Topology};
use bench::transport::{self, Transport};
use bench::{cores, usage};
use support::{post_when_ready, Broker};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/sshd-netns.sh")
}

/// The sshd host; `down` on drop.
struct Sshd {
    name: String,
    dir: String,
    vars: Vec<(String, String)>,
}

impl Sshd {
    fn up() -> Result<Self, String> {
        let name = format!("rbench-{}-sshd", std::process::id());
        let dir = std::env::temp_dir()
            .join(format!("rbench-sshd-{}", std::process::id()))
            .display()
            .to_string();
        let out = Command::new(script())
            .args(["up", &name, &dir])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let vars = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(Self { name, dir, vars })
    }

    fn plan(&self, extra: &[(&str, &str)]) -> Plan {
        let mut pairs: Vec<(&str, &str)> = vec![("BENCH_TOPOLOGY", "ssh")];
        pairs.extend(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        pairs.extend(extra);
        Plan::from_pairs(&pairs).expect("plan")
    }

    /// Commands of every process in the namespace.
    fn processes(&self) -> Vec<String> {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .expect("ip");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).ok())
            .map(|c| c.replace('\0', " "))
            .collect()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["down", &self.name, &self.dir])
            .status();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Processes in the namespace other than sshd's listener, waiting up to `within` for
/// them to go.
fn left_running(sshd: &Sshd, within: Duration) -> Vec<String> {
    let t0 = Instant::now();
    loop {
        let left: Vec<String> = sshd
            .processes()
            .into_iter()
            .filter(|c| !c.contains("[listener]"))
            .collect();
        if left.is_empty() || t0.elapsed() > within {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The child half of the kill check: an ssh topology with a server running, then wait to
/// be killed.
fn killed_child(host: &str, opts: &str) {
    let plan = Plan::from_pairs(&[
        ("BENCH_TOPOLOGY", "ssh"),
        ("BENCH_SERVER_HOST", host),
        ("BENCH_SSH_OPTS", opts),
    ])
    .expect("plan");
    let mut topology = Topology::start(&plan).expect("ssh topology");
    let broker = Broker::embedded("ssh-killed", 1);
    topology.reach_broker(&broker.addr).expect("port forward");
    let _server = broker.server(Runtime::Tokio, &[]);
    println!("ssh-ready");
    std::thread::sleep(Duration::from_secs(60));
    panic!("not killed within 60 s");
}

#[test]
fn a_server_over_ssh_serves_is_measured_by_the_probe_and_leaves_nothing() {
    if let (Ok(host), Ok(opts)) = (std::env::var("RB_SSH_HOST"), std::env::var("RB_SSH_OPTS")) {
        return killed_child(&host, &opts);
    }
    let sshd = match Sshd::up() {
        Ok(s) => s,
        Err(why) => {
            // Only a machine without root or sshd may skip, and the refusal names the fix.
            let fix = if is_root() { "setup.sh" } else { "needs root" };
            assert!(why.contains(fix), "{why}");
            assert!(
                !is_root() || !std::path::Path::new("/usr/sbin/sshd").exists(),
                "{why}"
            );
            return;
        }
    };
    // A key the host does not accept: refused in seconds, naming the variable.
    let t0 = Instant::now();
    let wrong_key = std::env::temp_dir().join(format!("rbench-wrong-{}", std::process::id()));
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&wrong_key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let opts = format!(
        "-i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        wrong_key.display()
    );
    let refused = Topology::start(&sshd.plan(&[("BENCH_SSH_OPTS", &opts)]))
        .expect_err("a key the host does not accept");
    let refused = format!("{refused:#}");
    assert!(
        refused.contains("BENCH_SERVER_HOST") && refused.contains("Permission denied"),
        "{refused}"
    );
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    let _ = std::fs::remove_file(&wrong_key);
    let _ = std::fs::remove_file(wrong_key.with_extension("pub"));

    let run_dir = format!("/tmp/rbench-{}", std::process::id());
    // A probe that cannot run there (a wrong architecture, an older glibc: here a binary
    // that exits at once): refused with the reason, and its directory removed.
    let Plan::Ssh(settings) = sshd.plan(&[]) else {
        panic!("an ssh plan")
    };
    let broken = bench::transport::SshHost::connect(
        &settings,
        &[("probe", std::path::Path::new("/bin/false"))],
    )
    .expect_err("a probe that exits at once");
    assert!(
        format!("{broken:#}").contains("the probe did not start"),
        "{broken:#}"
    );
    assert!(
        !std::path::Path::new(&run_dir).exists(),
        "{run_dir} left by a failed start"
    );
    {
        let mut topology = Topology::start(&sshd.plan(&[])).expect("ssh topology");
        let record = topology.record(true);
        assert_eq!(record.kind, "ssh");
        let host = record.server_host.clone().expect("the probe's facts");
        assert!(!host.cpus.is_empty() && !host.kernel.is_empty(), "{host:?}");
        assert!(record.link_rtt_us.is_some_and(|us| us > 0.0), "{record:?}");
        assert!(
            record.description.contains("NOT a separate host"),
            "{record:?}"
        );
        let Transport::Ssh(remote) = transport::servers() else {
            panic!("servers go over ssh once the topology is up")
        };
        assert!(
            std::path::Path::new(&run_dir).exists(),
            "the copies are in {run_dir}"
        );
        let broker = Broker::embedded("ssh", 3);
        topology.reach_broker(&broker.addr).expect("port forward");
        let server = broker.server(Runtime::Tokio, &[]);
        assert_eq!(
            server.addr.ip().to_string(),
            "10.214.0.2",
            "it listens on the host's address"
        );
        // The process runs in the namespace (started by the probe there).
        let pid = server.pid();
        assert!(
            sshd.processes().iter().any(|c| c.contains("server-tokio")),
            "{:?}",
            sshd.processes()
        );
        let before = usage::process_on(transport::servers(), pid).expect("usage over ssh");
        // Its syscalls, counted there by the probe (root on the host: tracefs is there).
        let syscalls = transport::servers()
            .count_syscalls(server.process())
            .expect("syscalls counted over ssh");
        let calls0 = syscalls.read().expect("counts");
        post_when_ready(server.addr, 200);
        let calls = syscalls.read().expect("counts");
        assert_eq!(calls.len(), probe::syscalls::EVENTS.len());
        // Each request is read and answered with at least one syscall each way.
        assert!(
            calls[0] >= calls0[0] + 400,
            "syscalls over 200 requests: {calls0:?} -> {calls:?}"
        );
        drop(syscalls);
        // A CPU profile taken there by the probe, named here from the copied binary.
        let cpus = remote.facts().cpus.clone();
        let (captured, ()) =
            bench::sampling::capture(transport::servers(), &cpus, pid, "server", || {
                post_when_ready(server.addr, 2000)
            });
        let captured = captured.expect("a profile over ssh");
        let folded = captured.stacks.under("server").to_folded();
        assert!(
            captured.stacks.under("server").total() > 0 && folded.contains("server_tokio"),
            "the server's samples, its frames named from the local copy: {}",
            &folded[..folded.len().min(2000)]
        );
        assert!(
            captured.unknown_user_share < 0.5,
            "{}",
            captured.unknown_user_share
        );
        let after = usage::process_on(transport::servers(), pid).expect("usage over ssh");
        assert!(
            after.ctx_voluntary + after.ctx_involuntary
                > before.ctx_voluntary + before.ctx_involuntary,
            "the probe's figures move with the load: {before:?} -> {after:?}"
        );
        let cpus = cores::per_cpu_on(transport::servers()).expect("the host's /proc/stat");
        assert_eq!(cpus.len(), remote.facts().cpus.len().max(cpus.len()));
        assert!(usage::on_cpu_ns(transport::servers(), pid).is_some_and(|ns| ns > 0));
        let exit = server.stop(Duration::from_secs(20)).expect("exit");
        assert!(exit.success(), "{exit}");
        assert_eq!(
            broker.values().len(),
            2200,
            "every record crossed the port forward"
        );
        // A second server, left running: closing the topology must end it.
        let _left = broker.server(Runtime::Uring, &[]);
        topology.close();
    }
    assert!(
        !std::path::Path::new(&run_dir).exists(),
        "{run_dir} removed by the probe"
    );
    let left = left_running(&sshd, Duration::from_secs(5));
    assert!(left.is_empty(), "left running on the host: {left:?}");

    // A run killed outright (SIGKILL: none of its clean-up runs) leaves nothing either:
    // its ssh sessions end with it, and the probe ends what it started.
    let var = |k: &str| {
        sshd.vars
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .expect(k)
    };
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "a_server_over_ssh_serves_is_measured_by_the_probe_and_leaves_nothing",
            "--nocapture",
        ])
        .env("RB_SSH_HOST", var("BENCH_SERVER_HOST"))
        .env("RB_SSH_OPTS", var("BENCH_SSH_OPTS"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("child");
    let out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let ready = std::io::BufRead::lines(out)
        .map_while(Result::ok)
        .any(|l| l.contains("ssh-ready"));
    assert!(ready, "the child never started its server over ssh");
    assert!(
        sshd.processes().iter().any(|c| c.contains("server-tokio")),
        "{:?}",
        sshd.processes()
    );
    let child_dir = format!("/tmp/rbench-{}", child.id());
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let left = left_running(&sshd, 2 * probe::GRACE);
    assert!(left.is_empty(), "left running after a kill: {left:?}");
    assert!(
        !std::path::Path::new(&child_dir).exists(),
        "{child_dir} left behind"
    );
}
