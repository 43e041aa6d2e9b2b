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

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Result};

pub use netns::{leftovers, Netns};

/// What `BENCH_TOPOLOGY` and its link settings ask for.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Plan {
    #[default]
    Local,
    Netns(Links),
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
    /// From the variables' values (`None`: unset).
    pub fn parse(
        topology: Option<&str>,
        delay: Option<&str>,
        rate: Option<&str>,
        kafka_delay: Option<&str>,
    ) -> Result<Self> {
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
            Some("ssh") => bail!("BENCH_TOPOLOGY=ssh: not built yet (servers on another host over ssh); use local or netns"),
            Some(other) => bail!("BENCH_TOPOLOGY={other}: expected local or netns"),
        }
    }
}

/// A topology in force; for `netns`, its namespaces (removed on drop).
#[derive(Debug)]
pub enum Topology {
    Local,
    Netns(Netns),
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
        }
    }

    /// Makes the embedded broker at `addr` (on this process's loopback) reachable from the
    /// servers at the same address, through the relay.
    pub fn reach_broker(&mut self, addr: &str) -> Result<()> {
        match self {
            Self::Local => Ok(()),
            Self::Netns(n) => n.relay_broker(addr),
        }
    }

    pub fn record(&self) -> TopologyRecord {
        match self {
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
        assert_eq!(
            Plan::parse(None, None, None, None).expect("local"),
            Plan::Local
        );
        let p =
            Plan::parse(Some("netns"), Some("100us"), Some("1gbit"), Some("500us")).expect("netns");
        assert_eq!(
            p,
            Plan::Netns(Links {
                delay: Some(Duration::from_micros(100)),
                rate: Some("1gbit".into()),
                kafka_delay: Some(Duration::from_micros(500)),
            })
        );
        let err = |t, d, r, k| Plan::parse(t, d, r, k).expect_err("bad").to_string();
        assert!(err(Some("mesh"), None, None, None).contains("BENCH_TOPOLOGY=mesh"));
        assert!(err(Some("netns"), Some("soon"), None, None).contains("BENCH_NET_DELAY=soon"));
        assert!(err(Some("netns"), None, Some("1 gbit; reboot"), None).contains("BENCH_NET_RATE"));
        assert!(err(None, None, None, Some("1ms")).contains("need BENCH_TOPOLOGY=netns"));
        assert!(err(Some("ssh"), None, None, None).contains("not built yet"));
    }
}
