//! One runtime's server process under test for one block: the process, its load-generator
//! session, and what was sent to it.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::scrape::{self, delivered};
use super::stop::Ended;
use super::Broker;
use crate::cores::{self, CoreSplit};
use crate::layout::Layout;
use crate::results::{Exit, RoundSample, Tally};
use crate::runtime::Runtime;
use crate::server::{ServerConfig, ServerProcess};
use crate::settings::Settings;
use crate::transport::{self, Transport};
use crate::usage::{self, HostCpu};
use crate::workload::Spec;
use loadgen::{self, LoadError, RunConfig, Session, Workload};

/// What one load sends: a number of requests (a criterion sample), a closed loop for a
/// time, or an open loop at a rate.
#[derive(Debug, Clone, Copy)]
enum Pass {
    Requests(u64),
    Closed(Duration),
    /// `warmup` first, on the same schedule and connections, counted but not measured.
    Open {
        rate: f64,
        warmup: Duration,
        duration: Duration,
    },
}

/// One runtime's server process under test (one block's life), with its load-generator
/// session. What it sent is tallied here and handed to the runtime's
/// [`super::ledger::Ledger`] when it stops.
pub(super) struct Subject {
    pub(super) server: ServerProcess,
    /// The flags the server was started with (beyond listen, brokers, topic).
    pub(super) flags: Vec<String>,
    session: Session,
    tally: Tally,
    /// Every request id sent to this server, and which were answered 2xx.
    ids: loadgen::ids::Ids,
    /// The first failure (stall, time limit, load-generator error): later loads are skipped.
    failure: Option<String>,
    /// Criterion samples that could not be timed (see [`Subject::sample`]).
    pub(super) failed_samples: u64,
    /// The server's syscalls, counted per thread by tracepoints while attached (mechanism
    /// rounds only), or why they cannot be.
    syscalls: Option<Result<transport::SyscallCounter, String>>,
    /// Cores the server was given and cores the bench process may use (CPU shares).
    server_cores: usize,
    bench_cores: usize,
    /// The server's cores and the load side's, where each side has its own (whole-core
    /// accounting); `None` in the shared layout.
    core_sets: Option<(Vec<usize>, Vec<usize>)>,
    /// The server publishes to Kafka (not `--sink null`).
    publishes: bool,
}

impl Subject {
    /// Starts the server on `topic` (waiting for its readiness line) and opens the load
    /// generator's connections. In an A/A run (`opts.aa`) every tokio-uring slot runs
    /// server-tokio, with tokio's flags, under tokio-uring's label. `monitored`: with task
    /// metrics (the mechanism block's processes; they cost each poll ~0.3 µs, so verdict
    /// blocks run without them).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        spec: &Spec,
        runtime: Runtime,
        topic: &str,
        broker: &Broker,
        layout: &Layout,
        loadgen_threads: usize,
        opts: &Settings,
        monitored: bool,
    ) -> Result<Self> {
        let pass = opts.profile.timing().latency_pass;
        let launch = match runtime {
            Runtime::UringNullSink if opts.aa => Runtime::TokioNullSink,
            _ if opts.aa && runtime.is_uring() => Runtime::Tokio,
            _ => runtime,
        };
        let mut cfg = ServerConfig::new(launch);
        cfg.brokers = Some(broker.addr.clone());
        cfg.topic = topic.to_string();
        cfg.args = spec.server_flags();
        cfg.args.extend([
            "--threads".to_string(),
            layout.server_threads().to_string(),
            "--task-metrics".to_string(),
            monitored.to_string(),
        ]);
        cfg.cpus = layout.server_cpus();
        if launch.is_uring() {
            cfg.args.extend(opts.uring_flags.iter().cloned());
        }
        // The SQPOLL thread polls on the server's own core (split layout): say which.
        if let (Runtime::UringSqpoll, Some(cpus)) = (launch, &cfg.cpus) {
            cfg.args
                .extend(["--sqpoll-cpu".to_string(), cpus[0].to_string()]);
        }
        let server = ServerProcess::start(&cfg)?;
        let flags = cfg.args.clone();
        let mut load = RunConfig::new(server.addr, Workload::post("/ingest", spec.body_size, 1));
        load.mode = spec.mode;
        load.connections = spec.connections;
        load.threads = loadgen_threads;
        load.requests = None;
        load.duration = Some(pass);
        // The watchdog reads the server's fds and sockets from /proc: on this host only.
        load.server_pid = transport::servers().is_local().then(|| server.pid());
        // One session for everything sent to this server: each criterion sample times
        // requests over connections that are already open and warm.
        let session = Session::start(&load)?;
        Ok(Self {
            server,
            flags,
            session,
            tally: Tally::default(),
            ids: loadgen::ids::Ids::default(),
            failure: None,
            failed_samples: 0,
            syscalls: None,
            server_cores: layout.server_threads(),
            bench_cores: layout.bench_cores(),
            core_sets: layout.server_cpus().zip(layout.bench_cpus()),
            publishes: spec.publishes(runtime),
        })
    }

    /// Attaches syscall tracepoints to every server thread (mechanism rounds). Attaching
    /// puts every thread of the system on the kernel's slow syscall path, so verdict
    /// rounds run with none attached.
    pub(super) fn count_syscalls(&mut self, on: bool) {
        // The old counters go first (over ssh their drop is a request to the probe).
        self.syscalls = None;
        self.syscalls = on.then(|| transport::servers().count_syscalls(self.server.process()));
    }

    /// Why syscalls could not be counted, if they were asked for and could not be.
    pub(super) fn syscalls_unavailable(&self) -> Option<String> {
        self.syscalls.as_ref()?.as_ref().err().cloned()
    }

    /// Waits (at most `max`) until the server's threads use under 10 % of one core over
    /// 10 ms: the previous turn's leftover work (queued records, a SQPOLL thread's idle
    /// spin, connection teardown) then does not run in the next turn. `Some(waited)` once
    /// idle, `None` if it did not go idle within `max`.
    pub(super) fn settle(&self, max: Duration) -> Option<Duration> {
        let pid = self.server.pid();
        let host = transport::servers();
        let t0 = Instant::now();
        let window = Duration::from_millis(10);
        let mut last = usage::on_cpu_ns(host, pid)?;
        loop {
            std::thread::sleep(window);
            let now = usage::on_cpu_ns(host, pid)?;
            if now.saturating_sub(last) < window.as_nanos() as u64 / 10 {
                return Some(t0.elapsed());
            }
            if t0.elapsed() >= max {
                return None;
            }
            last = now;
        }
    }

    /// Sends one request and waits (at most `max`) until the server has delivered a record
    /// to Kafka. A fresh idempotent producer holds every record until the broker has given
    /// it a producer id: on the dev VM that took ~0.5 s, during which a fresh server under
    /// pipelined load queued 100,000 records and refused the rest with 503 (38,000–122,000
    /// in a 0.3 s pass; none with `enable.idempotence=false`, none once a record had been
    /// delivered). A block measures servers in their steady state, so it starts here. The
    /// request is counted like any other. Returns how long it waited.
    pub(super) fn wait_until_publishing(&mut self, max: Duration) -> Result<Duration, String> {
        let t0 = Instant::now();
        if self.load(Pass::Requests(1)).is_none() {
            return Err(self.failure.clone().unwrap_or_default());
        }
        if !self.publishes {
            return Ok(t0.elapsed());
        }
        loop {
            if delivered(self.server.addr).is_some_and(|n| n > 0) {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() >= max {
                let why = format!(
                    "no record delivered to Kafka within {max:?} of the server's first request"
                );
                self.failure.get_or_insert(why.clone());
                return Err(why);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// An unmeasured closed-loop pass (a turn's warm-up); counted for the delivery check.
    pub(super) fn warm(&mut self, duration: Duration) -> bool {
        self.failure.is_none() && self.load(Pass::Closed(duration)).is_some()
    }

    /// An unmeasured paced pass at `rate` (an efficiency turn's warm-up): the server
    /// reaches the turn's steady state, not a closed loop's queues.
    pub(super) fn warm_paced(&mut self, rate: f64, duration: Duration) -> bool {
        self.failure.is_none()
            && self
                .load(Pass::Open {
                    rate,
                    warmup: Duration::ZERO,
                    duration,
                })
                .is_some()
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
    ) -> Option<(loadgen::LoadReport, RoundSample)> {
        self.measured(Pass::Closed(duration))
    }

    /// An open-loop run of `duration` at `rate` after `warmup` on the same schedule (an
    /// efficiency turn, a latency curve's pass), with what the server used over it. The
    /// CPU figures cover the whole run, warm-up included (as do `answered` and `wall_s`).
    pub(super) fn paced_run(
        &mut self,
        rate: f64,
        warmup: Duration,
        duration: Duration,
    ) -> Option<(loadgen::LoadReport, RoundSample)> {
        self.measured(Pass::Open {
            rate,
            warmup,
            duration,
        })
    }

    fn measured(&mut self, pass: Pass) -> Option<(loadgen::LoadReport, RoundSample)> {
        if self.failure.is_some() {
            return None;
        }
        let pid = self.server.pid();
        let me = std::process::id();
        let count = |c: &Option<Result<transport::SyscallCounter, String>>| {
            c.as_ref()
                .and_then(|c| c.as_ref().ok())
                .and_then(|c| c.read())
        };
        // The servers' host (this one, or another over ssh) and this one.
        let host = transport::servers();
        let local = Transport::Local;
        // One read of /proc/stat per host: the servers' host's steal and cores, this
        // host's cores (the same text when the servers run here).
        let stats = || {
            let there = host.read_one("/proc/stat");
            let here = if host.is_local() {
                there.clone()
            } else {
                local.read_one("/proc/stat")
            };
            (
                there.as_deref().and_then(HostCpu::from_stat),
                (
                    there.as_deref().map(cores::parse_per_cpu),
                    here.as_deref().map(cores::parse_per_cpu),
                ),
            )
        };
        let tasks0 = scrape::tasks(self.server.addr);
        let ((host0, cores0), server0, me0, sys0, threads0) = (
            stats(),
            usage::process_on(host, pid),
            usage::process(me),
            count(&self.syscalls),
            cores::own_threads(),
        );
        let sets = self.core_sets.clone();
        let idle = |server: bool| {
            let (server_cores, load_cores) = sets.as_ref()?;
            if server {
                cores::idle_us(host, server_cores)
            } else {
                cores::idle_us(&local, load_cores)
            }
        };
        let pid_text = pid.to_string();
        let server_threads0 = cores::threads_on(host, &pid_text);
        let idle0 = (idle(true), idle(false));
        let t0 = Instant::now();
        let report = self.load(pass)?;
        let wall = t0.elapsed().as_secs_f64();
        let idle1 = (idle(true), idle(false));
        let server_threads1 = cores::threads_on(host, &pid_text);
        let ((host1, cores1), threads1) = (stats(), cores::own_threads());
        let (server1, me1, sys1) = (
            usage::process_on(host, pid),
            usage::process(me),
            count(&self.syscalls),
        );
        let tasks1 = scrape::tasks(self.server.addr);
        // The server's cores (`true`) or the load side's, whole, over the pass; busy time
        // on the cpuidle µs clock where there is one.
        let whole = |server: bool| {
            let (server_cores, load_cores) = sets.as_ref()?;
            let (set, before, after) = if server {
                (server_cores, &cores0.0, &cores1.0)
            } else {
                (load_cores, &cores0.1, &cores1.1)
            };
            let split = CoreSplit::between(before.as_ref()?, after.as_ref()?, set)?;
            let (a, b) = if server {
                (idle0.0, idle1.0)
            } else {
                (idle0.1, idle1.1)
            };
            Some(match a.zip(b) {
                Some((a, b)) => split.refine(b.saturating_sub(a), wall, set.len()),
                None => split,
            })
        };
        let (loadgen_s, other_s) = cores::thread_split(&threads0, &threads1);
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
            answered: report.completed + report.warmup.answered,
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
            server_core: whole(true),
            load_core: whole(false),
            loadgen_cpu_s: Some(loadgen_s),
            broker_cpu_s: Some(other_s),
            server_sched_s: (!server_threads1.is_empty())
                .then(|| cores::cpu_since(&server_threads0, &server_threads1)),
            tasks: tasks0.zip(tasks1).map(|(a, b)| b.since(&a)),
            offered: match pass {
                Pass::Open { rate, .. } => Some(rate),
                _ => None,
            },
            ..RoundSample::default()
        };
        Some((report, sample))
    }

    /// Runs a load, counts what it got, and remembers the first failure. A stalled run's
    /// report is still returned (and counted): it says what was measured before the stall.
    fn load(&mut self, pass: Pass) -> Option<loadgen::LoadReport> {
        let result = match pass {
            Pass::Requests(n) => self.session.run(Some(n), None),
            Pass::Closed(d) => self.session.run(None, Some(d)),
            Pass::Open {
                rate,
                warmup,
                duration,
            } => self.session.run_paced(rate, warmup, duration),
        };
        match result {
            Ok(r) => {
                self.tally.add(&r);
                self.ids
                    .merge(r.ids.as_ref().unwrap_or(&Default::default()));
                Some(r)
            }
            Err(LoadError::Stalled(r)) | Err(LoadError::TimeLimit { report: r, .. }) => {
                self.tally.add(&r);
                self.ids
                    .merge(r.ids.as_ref().unwrap_or(&Default::default()));
                self.failure = Some(format!(
                    "{}; the server's connection tasks then: {}",
                    r.stall_summary(),
                    scrape::stalled_tasks(self.server.addr)
                ));
                None
            }
            Err(e) => {
                self.failure = Some(e.to_string());
                None
            }
        }
    }

    /// Closes the load generator's session and sends the server SIGTERM: the server (to
    /// wait for) and what this process leaves for the ledger ([`super::stop::finish_all`]).
    pub(super) fn end(self) -> (ServerProcess, Ended) {
        let Subject {
            server,
            session,
            tally,
            ids,
            failure,
            failed_samples,
            ..
        } = self;
        drop(session);
        server.terminate();
        let ended = Ended {
            tally,
            ids,
            exit: Exit::Clean,
            failure,
            failed_samples,
        };
        (server, ended)
    }
}
