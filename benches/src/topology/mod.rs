//! Where each role of a run runs (`BENCH_TOPOLOGY`).
//!
//! - `local` (the default): every process on this machine's own network, over loopback.
//! - `netns`: the servers in a network namespace of their own, the bench (load generator,
//!   embedded broker, the delivery check's readers) in another, joined by a veth pair: a
//!   real kernel network path between two stacks instead of loopback, with an optional
//!   rate limit (`tbf`) and delay (`netem`, where the kernel has it). The servers reach the
//!   embedded broker, which listens on the bench's loopback, through a relay that can
//!   delay it (`relay.rs`). CPU is still shared, so netns figures are not a substitute for
//!   real hosts; the report records the topology and the link's measured round trip.
//!
//! Namespaces are named `rbench-<pid>-{load,srv}` and removed when the run ends, when it
//! is interrupted (SIGINT, SIGTERM, SIGHUP), and, if it was killed, at the next run's start.

mod netns;
mod relay;
mod ssh;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Result};

pub use netns::{leftovers, Netns};

use crate::layout::Layout;
use crate::transport::{SshHost, SshSettings};

/// What `BENCH_TOPOLOGY` and its link settings ask for.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Plan {
    #[default]
    Local,
    Netns(Links),
    Ssh(SshSettings),
}

/// The links of a `netns` topology.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Links {
    /// One-way delay each way on the load generator ↔ server link (`BENCH_NET_DELAY`).
    pub delay: Option<Duration>,
    /// That link's rate limit, in tc's units (`BENCH_NET_RATE`, e.g. `1gbit`).
    pub rate: Option<String>,
    /// One-way delay each way between the servers and the broker (`BENCH_KAFKA_DELAY`),
    /// added by the broker relay.
    pub kafka_delay: Option<Duration>,
}

impl Plan {
    /// From `(variable, value)` pairs (tests; a later pair overrides an earlier one).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self> {
        Self::parse(&|n: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        })
    }

    /// From the variables (`get` gives a variable's value, `None`: unset).
    pub fn parse(get: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let [topology, delay, rate, kafka_delay] = [
            "BENCH_TOPOLOGY",
            "BENCH_NET_DELAY",
            "BENCH_NET_RATE",
            "BENCH_KAFKA_DELAY",
        ]
        .map(get);
        let (topology, delay, rate, kafka_delay) = (
            topology.as_deref(),
            delay.as_deref(),
            rate.as_deref(),
            kafka_delay.as_deref(),
        );
        let ssh_vars = ["BENCH_SERVER_HOST", "BENCH_SSH_OPTS", "BENCH_SERVER_ADDR"];
        if topology != Some("ssh") {
            if let Some(v) = ssh_vars.iter().find(|v| get(v).is_some()) {
                bail!("{v} needs BENCH_TOPOLOGY=ssh");
            }
        }
        let duration = |name: &str, v: Option<&str>| -> Result<Option<Duration>> {
            v.map(|v| {
                common::config::parse_duration(v)
                    .map_err(|e| anyhow::anyhow!("{name}={v}: {e} (expected e.g. 100us or 1ms)"))
            })
            .transpose()
        };
        let links = Links {
            delay: duration("BENCH_NET_DELAY", delay)?,
            rate: rate
                .map(|r| {
                    r.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.')
                        .then(|| r.to_string())
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "BENCH_NET_RATE={r}: expected a tc rate such as 1gbit or 100mbit"
                            )
                        })
                })
                .transpose()?,
            kafka_delay: duration("BENCH_KAFKA_DELAY", kafka_delay)?,
        };
        match topology {
            None | Some("local") => {
                if links != Links::default() {
                    bail!("BENCH_NET_DELAY, BENCH_NET_RATE and BENCH_KAFKA_DELAY need BENCH_TOPOLOGY=netns (local runs over loopback)");
                }
                Ok(Self::Local)
            }
            Some("netns") => Ok(Self::Netns(links)),
            Some("ssh") => {
                if links != Links::default() {
                    bail!("BENCH_NET_DELAY, BENCH_NET_RATE and BENCH_KAFKA_DELAY need BENCH_TOPOLOGY=netns (over ssh the network between the hosts is what it is)");
                }
                let target = get("BENCH_SERVER_HOST")
                    .filter(|t| !t.trim().is_empty())
                    .ok_or_else(|| anyhow::anyhow!("BENCH_TOPOLOGY=ssh needs BENCH_SERVER_HOST=[user@]host (the servers' host, reachable by ssh without a prompt)"))?;
                let listen = get("BENCH_SERVER_ADDR")
                    .map(|a| {
                        a.parse::<IpAddr>().map_err(|e| {
                            anyhow::anyhow!("BENCH_SERVER_ADDR={a}: {e} (expected an IP address)")
                        })
                    })
                    .transpose()?;
                Ok(Self::Ssh(SshSettings {
                    target: target.trim().to_string(),
                    opts: get("BENCH_SSH_OPTS")
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(String::from)
                        .collect(),
                    listen,
                }))
            }
            Some(other) => bail!("BENCH_TOPOLOGY={other}: expected local, netns or ssh"),
        }
    }
}

/// A topology in force; for `netns`, its namespaces (removed on drop).
#[derive(Debug)]
pub enum Topology {
    Local,
    Netns(Netns),
    /// The servers' host; its sessions end (and the probe cleans up) on drop.
    Ssh(Arc<SshHost>),
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.close();
    }
}

/// Where this process starts its servers: set once a `netns` topology is up (servers are
/// started from deep inside the suite and its tests; a local run never sets it).
#[derive(Debug, Clone)]
pub struct ServerNet {
    /// `ip netns exec` this namespace.
    pub netns: String,
    /// The address to listen on there.
    pub ip: IpAddr,
}

static SERVER_NET: OnceLock<ServerNet> = OnceLock::new();

/// Where servers go in this process: `None` on the host's own network (loopback).
pub fn server_net() -> Option<&'static ServerNet> {
    SERVER_NET.get()
}

/// What a run records about its topology (env.json).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TopologyRecord {
    /// `local` or `netns`.
    pub kind: String,
    /// One line: the namespaces, addresses and link settings.
    pub description: String,
    /// A 100 B TCP round trip from the load generator to the servers' address, median, µs.
    pub link_rtt_us: Option<f64>,
    /// The link settings asked for, as given.
    pub delay: Option<String>,
    pub rate: Option<String>,
    pub kafka_delay: Option<String>,
    /// The servers' host as its probe saw it (ssh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_host: Option<probe::Host>,
}

impl Topology {
    /// Sets `plan` up. For `netns` this thread (and every thread it starts later) moves
    /// into the bench's namespace; start it before any other thread that uses the network.
    pub fn start(plan: &Plan) -> Result<Self> {
        match plan {
            Plan::Local => Ok(Self::Local),
            Plan::Netns(links) => {
                let n = Netns::create(std::process::id(), links)?;
                let _ = SERVER_NET.set(ServerNet {
                    netns: n.server_ns(),
                    ip: n.server_ip(),
                });
                Ok(Self::Netns(n))
            }
            Plan::Ssh(settings) => Ok(Self::Ssh(ssh::start(settings)?)),
        }
    }

    /// The CPU layout over an ssh topology's two hosts (`None` for local and netns, whose
    /// layout is chosen before the topology starts).
    pub fn layout(&self, layout_choice: Option<&str>) -> Option<Result<Layout>> {
        match self {
            Self::Ssh(h) => Some(ssh::layout(h, layout_choice)),
            _ => None,
        }
    }

    /// The servers' host when it is another one.
    pub fn server_host(&self) -> Option<&SshHost> {
        match self {
            Self::Ssh(h) => Some(h),
            _ => None,
        }
    }

    /// Makes the embedded broker at `addr` (on this process's loopback) reachable from the
    /// servers at the same address, through the relay.
    pub fn reach_broker(&mut self, addr: &str) -> Result<()> {
        match self {
            Self::Local => Ok(()),
            Self::Netns(n) => n.relay_broker(addr),
            Self::Ssh(h) => h.forward(addr),
        }
    }

    /// Ends what the topology started on other hosts (the probe's and the port forward's
    /// ssh sessions); namespaces go when a [`Netns`] drops.
    pub fn close(&self) {
        if let Self::Ssh(h) = self {
            h.close();
        }
    }

    /// Makes a real cluster (`KAFKA_BROKERS`) reachable where the servers and the bench
    /// run: through relays at its brokers' addresses under netns; as it is elsewhere.
    pub fn reach_cluster(&mut self, bootstrap: &str) -> Result<()> {
        match self {
            Self::Netns(n) => n.relay_cluster(bootstrap).map(|_| ()),
            Self::Local | Self::Ssh(_) => Ok(()),
        }
    }

    /// What the run records; `embedded_broker`: Kafka is this process's mock cluster.
    pub fn record(&self, embedded_broker: bool) -> TopologyRecord {
        match self {
            Self::Ssh(h) => ssh::record(h, embedded_broker),
            Self::Local => TopologyRecord {
                kind: "local".into(),
                description: "local: every process on this machine's network (loopback)".into(),
                ..TopologyRecord::default()
            },
            Self::Netns(n) => n.record(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_bad_ones_name_their_variable() {
        let parse = Plan::from_pairs;
        assert_eq!(parse(&[]).expect("local"), Plan::Local);
        let p = parse(&[
            ("BENCH_TOPOLOGY", "netns"),
            ("BENCH_NET_DELAY", "100us"),
            ("BENCH_NET_RATE", "1gbit"),
            ("BENCH_KAFKA_DELAY", "500us"),
        ])
        .expect("netns");
        assert_eq!(
            p,
            Plan::Netns(Links {
                delay: Some(Duration::from_micros(100)),
                rate: Some("1gbit".into()),
                kafka_delay: Some(Duration::from_micros(500)),
            })
        );
        let ssh = parse(&[
            ("BENCH_TOPOLOGY", "ssh"),
            ("BENCH_SERVER_HOST", "bench@10.0.0.2"),
            ("BENCH_SSH_OPTS", "-i /k  -p 2222"),
        ])
        .expect("ssh");
        assert_eq!(
            ssh,
            Plan::Ssh(SshSettings {
                target: "bench@10.0.0.2".into(),
                opts: vec!["-i".into(), "/k".into(), "-p".into(), "2222".into()],
                listen: None,
            })
        );
        let err = |pairs: &[(&str, &str)]| parse(pairs).expect_err("bad").to_string();
        assert!(err(&[("BENCH_TOPOLOGY", "mesh")]).contains("BENCH_TOPOLOGY=mesh"));
        assert!(
            err(&[("BENCH_TOPOLOGY", "netns"), ("BENCH_NET_DELAY", "soon")])
                .contains("BENCH_NET_DELAY=soon")
        );
        assert!(err(&[
            ("BENCH_TOPOLOGY", "netns"),
            ("BENCH_NET_RATE", "1 gbit; reboot")
        ])
        .contains("BENCH_NET_RATE"));
        assert!(err(&[("BENCH_KAFKA_DELAY", "1ms")]).contains("need BENCH_TOPOLOGY=netns"));
        assert!(err(&[("BENCH_TOPOLOGY", "ssh")]).contains("needs BENCH_SERVER_HOST"));
        assert!(err(&[("BENCH_SERVER_HOST", "h")])
            .contains("BENCH_SERVER_HOST needs BENCH_TOPOLOGY=ssh"));
        assert!(err(&[
            ("BENCH_TOPOLOGY", "ssh"),
            ("BENCH_SERVER_HOST", "h"),
            ("BENCH_SERVER_ADDR", "the-host")
        ])
        .contains("BENCH_SERVER_ADDR=the-host"));
        assert!(err(&[
            ("BENCH_TOPOLOGY", "ssh"),
            ("BENCH_SERVER_HOST", "h"),
            ("BENCH_NET_RATE", "1gbit")
        ])
        .contains("need BENCH_TOPOLOGY=netns"));
    }
}
