//! A whole `cargo bench` run: [`Run::prepare`] (settings, layout, preflight, tracefs, the
//! servers' build, the broker, a fresh results folder with config.json and env.json),
//! [`Run::measure`] per workload (the suite), [`Run::finish`] (the report and the lines
//! printed at the end). `benches/benches/compare.rs` is these three calls around criterion.

use anyhow::{Context, Result};
use clap::Parser as _;
use criterion::Criterion;

use crate::layout::Layout;
use crate::preflight;
use crate::report::{self, Environment, RunSetup};
use crate::results::write_json;
use crate::server::{server_binaries, BuildProfile};
use crate::settings::Settings;
use crate::suite::{self, Broker};
use crate::topology::Topology;
use crate::workload::{self, Spec};
use loadgen::{Mode, RunConfig, Workload};

/// A prepared run: what it measures, where, against which broker.
#[derive(Debug)]
pub struct Run {
    pub settings: Settings,
    pub layout: Layout,
    pub broker: Broker,
    /// Where the servers run (`BENCH_TOPOLOGY`); a netns topology's namespaces are removed
    /// when the run is dropped.
    pub topology: Topology,
    /// The workloads the filter selected, in catalogue order.
    pub specs: Vec<Spec>,
}

impl Run {
    /// Everything before the first load. `filter` selects workloads by substring
    /// (alternatives with `|`, as criterion reads the same argument as a regex).
    pub fn prepare(settings: Settings, filter: Option<&str>) -> Result<Self> {
        // Criterion estimates written before this instant are an earlier run's.
        let started_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .ok();
        // Pin first: every thread started later (load generator, embedded broker) inherits it.
        // (Over ssh the layout spans two hosts: it is known once the server host answers.)
        let ssh = matches!(settings.topology, crate::topology::Plan::Ssh(_));
        let layout = if ssh {
            None
        } else {
            let layout = Layout::choose(settings.layout.as_deref())?;
            layout
                .pin_this_process()
                .context("pinning the bench to its cores")?;
            Some(layout)
        };
        // Before any thread that uses the network: with netns this thread, and every
        // thread it starts from here on, moves into the bench's namespace.
        let mut topology = Topology::start(&settings.topology)?;
        // A real cluster: reachable from where the servers and the bench run before any
        // client (the broker's own checks below included) connects.
        if let Some(b) = &settings.brokers {
            topology.reach_cluster(b)?;
        }
        let layout = match (layout, topology.layout(settings.layout.as_deref())) {
            (Some(l), _) => l,
            (None, Some(l)) => l?,
            (None, None) => anyhow::bail!("no CPU layout for this topology"),
        };
        let topo = topology.record(settings.brokers.is_none());
        eprintln!(
            "runtime-bench: topology {}{}",
            topo.description,
            topo.link_rtt_us
                .map_or(String::new(), |us| format!("; link round trip {us:.0} µs"))
        );
        let specs: Vec<Spec> = workload::catalogue(settings.profile)
            .into_iter()
            .filter(|s| filter.is_none_or(|f| f.split('|').any(|part| s.name.contains(part))))
            .collect();
        if specs.is_empty() {
            anyhow::bail!("no workload matches {filter:?}");
        }
        let defaults =
            common::config::ServerArgs::try_parse_from(["server"]).context("server defaults")?;
        let needs = needs(&specs, defaults.backlog);
        if let Some(h) = topology.server_host() {
            if needs.io_uring && !h.facts().io_uring_available() {
                anyhow::bail!(
                    "BENCH_SERVER_HOST={}: io_uring is {} there, so tokio-uring cannot run on it; use a host whose kernel allows io_uring (kernel.io_uring_disabled=0, no seccomp filter)",
                    h.target(),
                    h.facts().io_uring
                );
            }
        }
        let mut pre = preflight::check(&needs)?;
        if let Some(h) = topology.server_host() {
            let theirs = preflight::server_host(h.facts(), &needs);
            for f in &theirs {
                eprintln!("preflight: {f}");
            }
            pre.findings.extend(theirs);
            if pre.failed() {
                anyhow::bail!("preflight failed on the server host (see above)");
            }
        }
        // Syscall counting needs tracefs: mounted here if it is not (root), else each
        // server's syscall columns say why they are empty. Over ssh the probe counts on
        // the servers' host and mounts it there.
        let syscalls = if let (true, Some(h)) = (settings.count_syscalls, topology.server_host()) {
            format!("counted on {} by the probe, with tracepoints", h.target())
        } else if settings.count_syscalls {
            match probe::syscalls::mount_tracefs() {
                Ok(p) => format!("counted with tracepoints ({})", p.display()),
                Err(why) => format!("not available: {why}"),
            }
        } else {
            "not counted (BENCH_SYSCALLS=0)".to_string()
        };
        eprintln!("runtime-bench: syscalls {syscalls}");
        eprintln!("runtime-bench: layout {}", layout.label());
        if settings.aa {
            eprintln!(
                "runtime-bench: A/A run (BENCH_AA=1): server-tokio in every tokio-uring slot"
            );
        }
        // Build (or find) the release servers before anything is timed.
        let (tokio_bin, uring_bin) = server_binaries(BuildProfile::Release)?;
        let broker = Broker::start(settings.brokers.as_deref())?;
        if broker.is_embedded() {
            topology.reach_broker(&broker.addr)?;
        }
        let kafka = if broker.is_embedded() {
            "embedded (librdkafka mock cluster)".to_string()
        } else {
            broker.addr.clone()
        };
        eprintln!(
            "runtime-bench: profile {}, {} workloads, Kafka {kafka}, servers {} and {}",
            settings.profile.label(),
            specs.len(),
            tokio_bin.display(),
            uring_bin.display()
        );
        // A fresh results folder: a run never mixes with an older one's files.
        let results = &settings.paths.results;
        if results.exists() {
            std::fs::remove_dir_all(results)
                .with_context(|| format!("clearing {}", results.display()))?;
        }
        let producer = common::kafka::producer_config(&defaults.producer_settings(&broker.addr));
        let setup = RunSetup {
            started_unix_ms,
            rules: Some(settings.rules),
            aa: settings.aa,
            seed: Some(settings.seed),
            curves: Some(settings.curves.clone()),
            syscalls,
            profile: settings.profile.label().into(),
            kafka: kafka.clone(),
            producer_config: common::kafka::effective_config(&producer),
            server_args: server_args(&broker.addr, &settings.uring_flags),
            workloads: specs.clone(),
        };
        write_json(&results.join("config.json"), &setup)?;
        let mut env = Environment::collect(&settings.paths.root, &pre.host);
        env.profile = settings.profile.label().into();
        env.kafka = kafka;
        env.cpu_layout = layout.label();
        env.topology = Some(topo);
        env.preflight = pre.findings;
        // On the servers' cores when they are on this host; over ssh on this host's first
        // core, and the calibration says the servers' host was not measured.
        let mut cal = crate::calibrate::run(layout.calibration_cpus().as_deref());
        if let Some(h) = topology.server_host() {
            cal.unavailable.push(format!(
                "the servers' host ({}): these unit costs are the load generator's host's",
                h.target()
            ));
        }
        eprintln!(
            "runtime-bench: calibration ({:.1} s): {}",
            cal.seconds,
            calibration_line(&cal)
        );
        env.calibration = Some(cal);
        if let Some(h) = topology.server_host() {
            env.io_uring = h.facts().io_uring.clone();
        }
        if env.io_uring != "available" {
            eprintln!(
                "runtime-bench: io_uring {}; tokio-uring runs will be skipped and reported as such",
                env.io_uring
            );
        }
        write_json(&results.join("env.json"), &env)?;
        Ok(Self {
            settings,
            layout,
            broker,
            topology,
            specs,
        })
    }

    /// Measures one workload (criterion, blocks, curve, delivery check); its problems.
    pub fn measure(&self, c: &mut Criterion, spec: &Spec) -> Vec<String> {
        suite::run_workload(
            c,
            spec,
            &self.settings,
            &self.layout,
            &self.broker,
            &self.settings.paths,
        )
    }

    /// Builds and writes the report, prints the verdicts; `Ok(true)` when every workload
    /// verified and nothing went wrong (`problems`: the workloads' own).
    pub fn finish(self, mut problems: Vec<String>) -> Result<bool> {
        let paths = &self.settings.paths;
        let criterion_index = paths.criterion.join("report").join("index.html");
        let summary = report::build(&paths.results, Some(&paths.criterion))?;
        report::write(&summary, &paths.results, &criterion_index)?;
        report::console::print(&summary, &paths.results, &criterion_index);
        problems.extend(summary.problems.iter().cloned());
        if problems.is_empty() && !summary.passed() {
            problems.push("a workload has no verified runtime".into());
        }
        problems.sort();
        problems.dedup();
        if problems.is_empty() {
            println!("runtime-bench: every workload verified (records in Kafka == 2xx answers, by count and by request id; no errors, no stalls)");
            return Ok(true);
        }
        eprintln!("runtime-bench: VERIFICATION FAILED:");
        for p in &problems {
            eprintln!("  - {p}");
        }
        Ok(false)
    }
}

/// The calibration in one line: each cost, in ns and in null syscalls.
fn calibration_line(c: &crate::calibrate::Calibration) -> String {
    let mut parts: Vec<String> = c
        .costs
        .iter()
        .map(|u| match c.in_syscalls(&u.name) {
            Some(x) if u.name != crate::calibrate::NULL_SYSCALL => {
                format!("{} {:.0} ns ({x:.1}x)", u.name, u.ns)
            }
            _ => format!("{} {:.0} ns", u.name, u.ns),
        })
        .collect();
    parts.extend(c.unavailable.iter().map(|u| format!("not measured: {u}")));
    parts.join("; ")
}

/// What the selected workloads need of the machine.
fn needs(specs: &[Spec], backlog: u32) -> preflight::Needs {
    let loadgen_defaults = RunConfig::new(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        Workload::post("/ingest", 0, 0),
    );
    preflight::Needs {
        connections: specs.iter().map(|s| s.connections).max().unwrap_or(1),
        backlog,
        conn_per_request: specs.iter().any(|s| s.mode == Mode::ConnPerRequest),
        source_addrs: u32::from(loadgen_defaults.source_addrs),
        io_uring: specs
            .iter()
            .any(|s| s.runtimes.iter().any(|r| r.is_uring())),
        port: None,
    }
}

/// The flags every server gets, as config.json records them.
fn server_args(brokers: &str, uring_flags: &[String]) -> Vec<String> {
    let mut a = vec![
        "--listen 127.0.0.1:0".into(),
        format!("--brokers {brokers}"),
        "--topic <one per workload and runtime>".into(),
    ];
    if !uring_flags.is_empty() {
        a.push(format!(
            "server-uring (BENCH_URING_FLAGS): {}",
            uring_flags.join(" ")
        ));
    }
    a
}
