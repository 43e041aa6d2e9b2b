//! One runtime's server under test during a workload: its process, its load-generator
//! session, its topic, and what was sent to it; ends with the delivery check.

use std::time::Duration;

use anyhow::Result;
use common::kafka::SinkKind;
use common::landed::{CountMethod, TopicReader};

use super::Broker;
use crate::layout::Layout;
use crate::loadgen::{self, LoadError, RunConfig, Session, Workload};
use crate::results::{verify, Evidence, Exit, Landed, Tally, Verification};
use crate::server::{Runtime, ServerConfig, ServerProcess};
use crate::workload::Spec;

/// One runtime's server under test, with its load-generator session and its Kafka topic.
pub(super) struct Subject {
    server: ServerProcess,
    session: Session,
    reader: Option<TopicReader>,
    /// Records in the topic before any load (0 for a fresh topic, but counted, not assumed).
    before: u64,
    tally: Tally,
    /// The first failure (stall, time limit, load-generator error): later loads are skipped.
    failure: Option<String>,
    /// Criterion samples that could not be timed (see [`Subject::sample`]).
    pub(super) failed_samples: u64,
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
        pass: Duration,
    ) -> Result<Self> {
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
        let server = ServerProcess::start(&cfg)?;
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
            session,
            reader,
            before,
            tally: Tally::default(),
            failure: None,
            failed_samples: 0,
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
            None => self.load(Some(iters), None),
        };
        match measured {
            Some(r) if self.failure.is_none() => Duration::from_secs_f64(r.elapsed_s.max(1e-9)),
            _ => {
                self.failed_samples += 1;
                Duration::from_secs(1)
            }
        }
    }

    /// A fixed-duration run (an interleaved round's turn, or the latency pass), with the
    /// server's CPU µs per answered request over it.
    pub(super) fn timed_run(
        &mut self,
        duration: Duration,
    ) -> Option<(loadgen::Report, Option<f64>)> {
        if self.failure.is_some() {
            return None;
        }
        let before = self.server.cpu_time();
        let report = self.load(None, Some(duration))?;
        let cpu = match (before, self.server.cpu_time()) {
            (Some(a), Some(b)) if report.completed > 0 => {
                Some(b.saturating_sub(a).as_secs_f64() * 1e6 / report.completed as f64)
            }
            _ => None,
        };
        Some((report, cpu))
    }

    /// Runs a load, counts what it got, and remembers the first failure. A stalled run's
    /// report is still returned (and counted): it says what was measured before the stall.
    fn load(
        &mut self,
        requests: Option<u64>,
        duration: Option<Duration>,
    ) -> Option<loadgen::Report> {
        match self.session.run(requests, duration) {
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
            failed_samples: _,
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
