//! The `ssh` topology: the servers on another host, reached and measured through the
//! probe ([`crate::transport::SshHost`]); the load generator, criterion and the embedded
//! broker here. The embedded broker reaches the servers through an ssh port forward (its
//! traffic then costs sshd CPU on the server host: the report says so); a real cluster
//! (`KAFKA_BROKERS`) is reached directly.

use std::sync::Arc;

use anyhow::{bail, Result};

use super::TopologyRecord;
use crate::layout::Layout;
use crate::server::{probe_binary, server_binaries, BuildProfile};
use crate::transport::{self, SshHost, SshSettings, Transport};

/// Builds the binaries, copies them to the host, opens the probe's session, and makes
/// every server of this process start there.
pub fn start(settings: &SshSettings) -> Result<Arc<SshHost>> {
    let (tokio, uring) = server_binaries(BuildProfile::Release)?;
    let probe = probe_binary(BuildProfile::Release)?;
    eprintln!(
        "runtime-bench: copying the servers and the probe to {} over ssh",
        settings.target
    );
    let host = Arc::new(SshHost::connect(
        settings,
        &[
            ("probe", probe.as_path()),
            ("server-tokio", tokio.as_path()),
            ("server-uring", uring.as_path()),
        ],
    )?);
    transport::set_servers(Transport::Ssh(host.clone()));
    Ok(host)
}

/// Servers on every core of their host; the load generator on every core here.
pub fn layout(host: &SshHost, layout_choice: Option<&str>) -> Result<Layout> {
    if let Some(l) = layout_choice {
        bail!("BENCH_LAYOUT={l} does not apply to BENCH_TOPOLOGY=ssh: the servers have their host's cores, the load generator this one's; unset BENCH_LAYOUT");
    }
    let server = host.facts().cpus.clone();
    if server.is_empty() {
        bail!("the probe on {} reported no usable cores", host.target());
    }
    Ok(Layout::Hosts {
        server,
        bench: crate::layout::allowed_cpus(),
        server_host: host.facts().hostname.clone(),
    })
}

pub fn record(host: &SshHost, embedded_broker: bool) -> TopologyRecord {
    let f = host.facts();
    TopologyRecord {
        kind: "ssh".into(),
        description: format!(
            "ssh: servers on {} ({}, {}, {} cores, kernel {}) listening on {}; load generator on this host; {}{}",
            host.target(),
            f.hostname,
            f.cpu_model,
            f.cpus.len(),
            f.kernel,
            host.listen_ip(),
            if embedded_broker {
                "the embedded broker here, reached by the servers through an ssh port forward (its traffic costs sshd CPU on the server host)"
            } else {
                "Kafka at KAFKA_BROKERS"
            },
            if host.same_machine() {
                "; NOT a separate host: it has this machine's boot id (a namespace or container), so CPU is shared"
            } else {
                ""
            }
        ),
        link_rtt_us: host.round_trip_us(),
        server_host: Some(f.clone()),
        ..TopologyRecord::default()
    }
}
