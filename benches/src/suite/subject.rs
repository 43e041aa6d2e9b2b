//! One runtime's server under test during a workload: its process, its load-generator
//! session, its topic, and what was sent to it; ends with the delivery check.

use std::time::{Duration, Instant};

use anyhow::Result;
use common::kafka::SinkKind;
use common::landed::{CountMethod, TopicReader};

use super::{Broker, RunOptions};
use crate::layout::Layout;
use crate::loadgen::{self, LoadError, RunConfig, Session, Workload};
use crate::results::{verify, Evidence, Exit, Landed, RoundSample, Tally, Verification};
use crate::server::{Runtime, ServerConfig, ServerProcess};
use crate::syscalls;
use crate::usage::{self, HostCpu};
use crate::workload::Spec;

/// What one load sends: a number of requests (a criterion sample), a closed loop for a
/// time, or an open loop at a rate.
#[derive(Debug, Clone, Copy)]
enum Pass {
    Requests(u64),
    Closed(Duration),
    Open { rate: f64, duration: Duration },
}

/// One runtime's server under test, with its load-generator session and its Kafka topic.
pub(super) struct Subject {
    pub(super) server: ServerProcess,
    /// The flags the server was started with (beyond listen, brokers, topic).
    pub(super) flags: Vec<String>,
    session: Session,
    reader: Option<TopicReader>,
    /// Records in the topic before any load (0 for a fresh topic, but counted, not assumed).
    before: u64,
    tally: Tally,
    /// The first failure (stall, time limit, load-generator error): later loads are skipped.
    failure: Option<String>,
    /// Criterion samples that could not be timed (see [`Subject::sample`]).
    pub(super) failed_samples: u64,
    /// The server's syscalls, counted per thread by tracepoints, or why they cannot be.
    pub(super) syscalls: Result<syscalls::Counter, String>,
    /// Cores the server was given and cores the bench process may use (CPU shares).
    server_cores: usize,
    bench_cores: usize,
}

impl Subject {
    /// Creates the topic, starts the server (waiting for its readiness line) and opens the
    /// load generator's connections.
    pub(super) fn start(
        spec: &Spec,
        runtime: Runtime,
        broker: &Broker,
        layout: &Layout,
        loadgen_threads: usize,
        opts: &RunOptions,
    ) -> Result<Self> {
        let pass = opts.profile.timing().latency_pass;
        let topic = format!(
            "bench-{}-{}-{}",
            spec.name,
            runtime.label(),
            std::process::id()
        );
        let null_sink = spec.sink == SinkKind::Null;
        if !null_sink {
            broker.topic(&topic)?;
        }
        let mut cfg = ServerConfig::new(runtime);
        cfg.brokers = Some(broker.addr.clone());
        cfg.topic = topic.clone();
        cfg.args = spec.server_flags();
        cfg.args
            .extend(["--threads".to_string(), layout.server_threads().to_string()]);
        cfg.cpus = layout.server_cpus();
        if runtime.is_uring() {
            cfg.args.extend(opts.uring_flags.iter().cloned());
        }
        // The SQPOLL thread polls on the server's own core (split layout): say which.
        if let (Runtime::UringSqpoll, Some(cpus)) = (runtime, &cfg.cpus) {
            cfg.args
                .extend(["--sqpoll-cpu".to_string(), cpus[0].to_string()]);
        }
        let server = ServerProcess::start(&cfg)?;
        let flags = cfg.args.clone();
        // Every server thread exists once it is ready (threads it starts later inherit).
        let syscalls = if opts.count_syscalls {
            syscalls::tracefs()
                .and_then(|t| syscalls::Counter::attach(server.pid(), &t, syscalls::EVENTS))
        } else {
            Err("BENCH_SYSCALLS=0".into())
        };
        let reader = if null_sink {
            None
        } else {
            Some(TopicReader::new(&broker.addr, &topic, broker.method())?)
        };
        let before = reader
            .as_ref()
            .map(TopicReader::count)
            .transpose()?
            .unwrap_or(0);
        let mut load = RunConfig::new(server.addr, Workload::post("/ingest", spec.body_size, 1));
        load.mode = spec.mode;
        load.connections = spec.connections;
        load.threads = loadgen_threads;
        load.requests = None;
        load.duration = Some(pass);
        load.server_pid = Some(server.pid());
        // One session for everything sent to this server: each criterion sample times
        // requests over connections that are already open and warm.
        let session = Session::start(&load)?;
        Ok(Self {
            server,
            flags,
            session,
            reader,
            before,
            tally: Tally::default(),
            failure: None,
            failed_samples: 0,
            syscalls,
            server_cores: layout.server_threads(),
            bench_cores: layout.bench_cores(),
        })
    }

    /// One criterion sample: `iters` requests, timed by the load generator.
    ///
    /// A sample that fails (or comes after a failure: a broken server is not hammered) has
    /// no true time, but criterion needs one: it gets a stand-in, and the sample is counted
    /// in `failed_samples` so the report discards criterion's estimate for this runtime.
    pub(super) fn sample(&mut self, iters: u64) -> Duration {
        let measured = match self.failure {
            Some(_) => None,
            None => self.load(Pass::Requests(iters)),
        };
        match measured {
            Some(r) if self.failure.is_none() => Duration::from_secs_f64(r.elapsed_s.max(1e-9)),
            _ => {
                self.failed_samples += 1;
                Duration::from_secs(1)
            }
        }
    }

    /// A closed-loop run of `duration` (an interleaved round's turn, or the latency pass),
    /// with what the server and this process used over it.
    pub(super) fn timed_run(
        &mut self,
        duration: Duration,
    ) -> Option<(loadgen::Report, RoundSample)> {
        self.measured(Pass::Closed(duration))
    }

    /// An open-loop run of `duration` at `rate` (a latency curve's point), with what the
    /// server used over it.
    pub(super) fn paced_run(
        &mut self,
        rate: f64,
        duration: Duration,
    ) -> Option<(loadgen::Report, RoundSample)> {
        self.measured(Pass::Open { rate, duration })
    }

    fn measured(&mut self, pass: Pass) -> Option<(loadgen::Report, RoundSample)> {
        if self.failure.is_some() {
            return None;
        }
        let pid = self.server.pid();
        let me = std::process::id();
        let count = |c: &Result<syscalls::Counter, String>| c.as_ref().ok().map(|c| c.read());
        let (server0, me0, host0, sys0) = (
            usage::process(pid),
            usage::process(me),
            HostCpu::now(),
            count(&self.syscalls),
        );
        let t0 = Instant::now();
        let report = self.load(pass)?;
        let wall = t0.elapsed().as_secs_f64();
        let (server1, me1, host1, sys1) = (
            usage::process(pid),
            usage::process(me),
            HostCpu::now(),
            count(&self.syscalls),
        );
        let server = server0.zip(server1).map(|(a, b)| b.since(&a));
        let bench = me0.zip(me1).map(|(a, b)| b.since(&a));
        let calls = sys0.zip(sys1).map(|(a, b)| {
            let d: Vec<u64> = a
                .iter()
                .zip(&b)
                .map(|(x, y)| y.saturating_sub(*x))
                .collect();
            d
        });
        let share = |cpu: Duration, cores: usize| cpu.as_secs_f64() / (wall * cores.max(1) as f64);
        let sample = RoundSample {
            rate: report.rate,
            answered: report.completed,
            wall_s: wall,
            server_user_s: server.map(|u| u.user.as_secs_f64()),
            server_system_s: server.map(|u| u.system.as_secs_f64()),
            server_share: server.map(|u| share(u.cpu(), self.server_cores)),
            load_share: bench.map(|u| share(u.cpu(), self.bench_cores)),
            steal: host0.zip(host1).and_then(|(a, b)| b.steal_since(&a)),
            ctx_voluntary: server.map(|u| u.ctx_voluntary),
            ctx_involuntary: server.map(|u| u.ctx_involuntary),
            // EVENTS: all syscalls, epoll_wait, epoll_pwait, io_uring_enter.
            syscalls: calls.as_ref().map(|c| c[0]),
            epoll_waits: calls.as_ref().map(|c| c[1] + c[2]),
            io_uring_enters: calls.as_ref().map(|c| c[3]),
        };
        Some((report, sample))
    }

    /// Runs a load, counts what it got, and remembers the first failure. A stalled run's
    /// report is still returned (and counted): it says what was measured before the stall.
    fn load(&mut self, pass: Pass) -> Option<loadgen::Report> {
        let result = match pass {
            Pass::Requests(n) => self.session.run(Some(n), None),
            Pass::Closed(d) => self.session.run(None, Some(d)),
            Pass::Open { rate, duration } => self.session.run_paced(rate, duration),
        };
        match result {
            Ok(r) => {
                self.tally.add(&r);
                Some(r)
            }
            Err(LoadError::Stalled(r)) | Err(LoadError::TimeLimit { report: r, .. }) => {
                self.tally.add(&r);
                self.failure = Some(r.stall_summary());
                None
            }
            Err(e) => {
                self.failure = Some(e.to_string());
                None
            }
        }
    }

    /// Closes the load generator's connections, stops the server (SIGTERM: it flushes) and
    /// checks that every 2xx answer has its record in Kafka.
    pub(super) fn finish(self, method: CountMethod) -> (Tally, Verification) {
        let Self {
            server,
            session,
            reader,
            before,
            tally,
            failure,
            ..
        } = self;
        drop(session);
        let exit = match server.stop(Duration::from_secs(60)) {
            Ok(s) if s.success() => Exit::Clean,
            Ok(s) => Exit::Unclean(format!("server exited with {s} after SIGTERM")),
            Err(e) => Exit::Unclean(format!("{e:#}")),
        };
        let landed = match reader.as_ref().map(TopicReader::count) {
            None => Landed::NotCounted,
            Some(Ok(n)) => Landed::Counted(n.saturating_sub(before)),
            Some(Err(e)) => Landed::Unreadable(format!("{e:#}")),
        };
        let v = verify(Evidence {
            tally,
            landed,
            method,
            exit,
            failure,
        });
        (tally, v)
    }
}
