//! The netns topology with real namespaces, a real server in one of them and the embedded
//! broker reached through the relay: requests cross the link, records land, and every
//! namespace is gone afterwards, also when the run is interrupted. Needs root and `ip`
//! (CI has both); without either the refusal must name the fix.
//!
//! One binary of its own: a netns topology moves the calling thread into its namespace
//! and tells the whole process where servers go.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bench::runtime::Runtime;
use bench::topology::{Plan, Topology};
use support::{post_when_ready, Broker};

fn ours(pid: u32) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("rbench-{pid}-")))
        .map(String::from)
        .collect()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// iproute2's `ip` (scripts/setup.sh installs it; a bare container may lack it).
fn has_ip() -> bool {
    Command::new("ip").arg("-V").output().is_ok()
}

#[test]
fn a_server_in_its_namespace_serves_across_the_link_and_the_namespaces_go() {
    let plan = Plan::from_pairs(&[("BENCH_TOPOLOGY", "netns"), ("BENCH_KAFKA_DELAY", "2ms")])
        .expect("plan");
    if !is_root() || !has_ip() {
        let e = Topology::start(&plan).expect_err("not root").to_string();
        let fix = if is_root() { "iproute2" } else { "needs root" };
        assert!(e.contains(fix), "{e}");
        return;
    }
    if std::env::var("RB_TOPOLOGY_CHILD").is_ok() {
        return interrupted_child(&plan);
    }
    let pid = std::process::id();
    // A delay on the server link needs the kernel's netem: applied where it exists,
    // refused with the reason where it does not (this project's dev VM), and either way
    // nothing left behind. (In this test, not one of its own: the namespaces are named by
    // pid, so two topologies of one process cannot exist at once.)
    let delayed = Plan::from_pairs(&[("BENCH_TOPOLOGY", "netns"), ("BENCH_NET_DELAY", "100us")])
        .expect("plan");
    match Topology::start(&delayed) {
        // The names, addresses and the server placement are the same for the topology
        // below, which this thread then enters instead.
        Ok(t) => assert_eq!(t.record(true).delay.as_deref(), Some("100µs")),
        Err(e) => {
            let e = format!("{e:#}");
            assert!(e.contains("BENCH_NET_DELAY") && e.contains("netem"), "{e}");
        }
    }
    assert!(
        ours(pid).is_empty(),
        "a refused topology left {:?}",
        ours(pid)
    );
    {
        let mut topology = Topology::start(&plan).expect("netns topology");
        assert_eq!(ours(pid).len(), 2, "two namespaces: {:?}", ours(pid));
        let record = topology.record(true);
        assert_eq!(record.kind, "netns");
        assert!(record.link_rtt_us.is_some_and(|us| us > 0.0), "{record:?}");
        // The broker in the bench's namespace, reached by the server through the relay; or,
        // with KAFKA_BROKERS (tansu in CI), a real cluster on the host's network, reached
        // from both namespaces through relays at the addresses it advertises.
        let broker = match std::env::var("KAFKA_BROKERS") {
            Ok(b) if !b.is_empty() => {
                topology.reach_cluster(&b).expect("relays to the cluster");
                assert!(
                    topology.record(false).description.contains("KAFKA_BROKERS"),
                    "{:?}",
                    topology.record(false)
                );
                Broker::new("netns-cluster")
            }
            _ => {
                let b = Broker::embedded("netns", 3);
                topology.reach_broker(&b.addr).expect("relay");
                b
            }
        };
        let server = broker.server(Runtime::Tokio, &[]);
        assert_eq!(
            server.addr.ip().to_string(),
            "10.213.0.2",
            "the server listens on its end of the link"
        );
        post_when_ready(server.addr, 20);
        let exit = server.stop(Duration::from_secs(20)).expect("exit");
        assert!(exit.success(), "{exit}");
        assert_eq!(broker.values().len(), 20, "every record crossed the relay");
    }
    assert!(ours(pid).is_empty(), "left behind: {:?}", ours(pid));
}

/// The child half of the interruption test: set up, say so, wait to be interrupted.
fn interrupted_child(plan: &Plan) {
    let _topology = Topology::start(plan).expect("netns topology");
    println!("topology-ready");
    std::thread::sleep(Duration::from_secs(60));
    panic!("not interrupted within 60 s");
}

#[test]
fn an_interrupted_run_removes_its_namespaces() {
    if !is_root() || !has_ip() || std::env::var("RB_TOPOLOGY_CHILD").is_ok() {
        return;
    }
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "a_server_in_its_namespace_serves_across_the_link_and_the_namespaces_go",
            "--nocapture",
        ])
        .env("RB_TOPOLOGY_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("child");
    let pid = child.id();
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let ready = out
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("topology-ready"));
    assert!(ready, "the child never set up its topology");
    // The child's namespaces carry the test harness's pid: the process we started.
    assert_eq!(ours(pid).len(), 2, "{:?}", ours(pid));
    // SAFETY: signals the child we started.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the child did not exit on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130), "{status}");
    assert!(ours(pid).is_empty(), "left behind: {:?}", ours(pid));
}
