//! What both server binaries do around their I/O loop, written once: start the broker and
//! publisher, bind listeners, announce readiness, catch SIGTERM/SIGINT, and at the end flush
//! the producer and report what was not delivered.

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{Cli, ServerArgs};
use crate::conn::{Conn, Timeouts};
use crate::embedded::EmbeddedKafka;
use crate::error::StartError;
use crate::ingest::App;
use crate::kafka::{self, AckMode, Publisher, SinkKind};
use crate::metrics::Metrics;

/// The prefix of the one readiness line a server prints once it listens.
pub const READY_PREFIX: &str = "listening on ";

/// Reads the bound address from a readiness line.
pub fn parse_ready_line(line: &str) -> Option<SocketAddr> {
    let rest = line.split(READY_PREFIX).nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// The exit status of a server that could not set up io_uring (a kernel, seccomp profile or
/// `kernel.io_uring_disabled` forbids it): harnesses skip tokio-uring on it instead of
/// failing. Any other start-up error exits 1.
pub const EXIT_IO_URING_UNAVAILABLE: u8 = 3;

/// The exit status of a server that stopped with records it could not deliver: records
/// still undelivered when the shutdown flush ran out of time, or (with `--ack enqueued`)
/// records that failed after their 202 was sent. A harness must not count such a run as
/// clean. (With `--ack delivered` a failed record was answered 503, so nothing acknowledged
/// was lost by it.)
pub const EXIT_RECORDS_LOST: u8 = 4;

/// A server binary's `main`: parse the shared CLI and the binary's own flags (`X`), start
/// the service, hand both to `run`
/// (the runtime and its accept loops, returning once they stopped), then flush and report.
/// Any start-up error is printed with the binary's name and exits 1.
pub fn main<X: clap::Args>(
    name: &'static str,
    run: impl FnOnce(&Service, &X) -> Result<(), Box<dyn std::error::Error>>,
) -> ExitCode {
    use clap::Parser;
    let cli = Cli::<X>::parse();
    let service = match Service::start(name, cli.server) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = run(&service, &cli.own) {
        eprintln!("{name}: {e}");
        if let Some(StartError::IoUringUnavailable(_)) = e.downcast_ref::<StartError>() {
            return ExitCode::from(EXIT_IO_URING_UNAVAILABLE);
        }
        return ExitCode::FAILURE;
    }
    service.finish()
}

/// Set once SIGTERM or SIGINT arrives.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown is asked for (at once if it already was).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|&s| s).await;
    }
}

/// A running server's shared state. Built by [`Service::start`], ended by [`Service::finish`].
pub struct Service {
    pub app: Arc<App>,
    pub shutdown: Shutdown,
    /// Starts shutdown from inside (a failed runtime thread), as a signal would.
    trigger: Arc<watch::Sender<bool>>,
    pub args: ServerArgs,
    /// `bootstrap.servers` in use.
    pub brokers: String,
    /// Held so the embedded broker lives as long as the server.
    embedded: Option<EmbeddedKafka>,
    name: &'static str,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Service({}, brokers {})", self.name, self.brokers)
    }
}

impl Service {
    /// Starts the embedded broker (unless `--brokers`), the publisher and the signal watcher.
    pub fn start(name: &'static str, args: ServerArgs) -> Result<Self, StartError> {
        let metrics = Arc::new(Metrics::new());
        let (embedded, brokers) = match (&args.brokers, args.sink) {
            (_, SinkKind::Null) => (None, String::new()),
            (Some(b), _) => (None, b.clone()),
            (None, SinkKind::Kafka) => {
                let e = EmbeddedKafka::start(&args.topic, args.partitions)
                    .map_err(StartError::EmbeddedBroker)?;
                let b = e.bootstrap().to_string();
                eprintln!(
                    "{name}: embedded Kafka broker at {b} (topic {})",
                    args.topic
                );
                (Some(e), b)
            }
        };
        let publisher = match args.sink {
            SinkKind::Null => Publisher::null(metrics.clone()),
            SinkKind::Kafka => {
                if embedded.is_none() {
                    // A broker that is down at start is not fatal: /healthz says not ready
                    // and requests get 503 until it is back.
                    if let Err(e) = kafka::ensure_topic(
                        &brokers,
                        &args.topic,
                        args.partitions,
                        Duration::from_secs(5),
                    ) {
                        eprintln!(
                            "{name}: warning: could not check or create topic {}: {e}",
                            args.topic
                        );
                    }
                }
                let config = kafka::producer_config(&args.producer_settings(&brokers));
                if args.ack == AckMode::Delivered
                    && config.get("delivery.report.only.error") == Some("true")
                {
                    return Err(StartError::Conflict(
                        "-X delivery.report.only.error=true with --ack delivered: every answer waits for its record's delivery report; leave it false (it is turned on for --ack enqueued)".into(),
                    ));
                }
                if args.print_config {
                    for (k, v) in kafka::effective_config(&config) {
                        eprintln!("{name}: producer {k}={v}");
                    }
                }
                Publisher::kafka(&config, &args.topic, metrics.clone())
                    .map_err(StartError::Producer)?
            }
        };
        let (shutdown, trigger) = watch_signals().map_err(StartError::Signals)?;
        let app = Arc::new(App {
            publisher,
            metrics,
            ack: args.ack,
            tasks: args
                .task_metrics
                .then(|| crate::tasks::Tasks::new(args.slow_poll)),
        });
        Ok(Self {
            app,
            shutdown,
            trigger,
            args,
            brokers,
            embedded,
            name,
        })
    }

    /// Binds `n` listeners on `--listen`: one plain listener for `n == 1`, else `n` sharing
    /// the port with SO_REUSEPORT (the kernel spreads connections over them).
    pub fn bind(&self, n: usize) -> Result<Vec<TcpListener>, StartError> {
        crate::listen::bind_listeners(self.args.listen, n, self.args.backlog)
    }

    /// Prints the readiness line (stdout, flushed) that harnesses wait for.
    pub fn announce(&self, addr: SocketAddr, detail: &str) {
        let kafka = match (&self.args.sink, &self.embedded) {
            (SinkKind::Null, _) => "sink null".to_string(),
            (_, Some(_)) => format!("kafka {} (embedded)", self.brokers),
            (_, None) => format!("kafka {}", self.brokers),
        };
        println!("{}: {READY_PREFIX}{addr} ({detail}; {kafka})", self.name);
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }

    /// Begins shutdown as SIGTERM would: accept loops stop, connections drain.
    pub fn stop(&self) {
        let _ = self.trigger.send(true);
    }

    /// What a runtime thread needs; `Send`, unlike the service (which may own the broker).
    pub fn worker(&self) -> Worker {
        Worker {
            app: self.app.clone(),
            shutdown: self.shutdown.clone(),
            limits: self.args.limits(),
            timeouts: Timeouts {
                header: self.args.header_timeout,
                idle: self.args.idle_timeout,
                body: self.args.body_timeout,
            },
            drain: self.args.shutdown_timeout,
        }
    }

    /// Flushes the producer (bounded by `--shutdown-timeout`), reports, and gives the exit code.
    pub fn finish(self) -> ExitCode {
        let m = &self.app.metrics;
        let open = m.open_connections.load(Relaxed);
        if open > 0 {
            eprintln!(
                "{}: {open} connection(s) still open at shutdown deadline, closed",
                self.name
            );
        }
        let report = self.app.publisher.flush(self.args.shutdown_timeout);
        let failed = m.records_failed.load(Relaxed);
        eprintln!(
            "{}: shutdown: {} enqueued, {} delivered, {failed} failed, {} not delivered at exit",
            self.name,
            m.records_enqueued.load(Relaxed),
            self.app.publisher.delivered(),
            report.undelivered,
        );
        let failed_after_202 = match self.args.ack {
            AckMode::Enqueued => failed,
            AckMode::Delivered => 0,
        };
        let lost = report.undelivered + failed_after_202;
        if lost > 0 {
            eprintln!(
                "{}: {lost} record(s) not delivered ({} still queued at exit, {failed_after_202} failed after a 202): exit {EXIT_RECORDS_LOST}",
                self.name, report.undelivered
            );
            return ExitCode::from(EXIT_RECORDS_LOST);
        }
        ExitCode::SUCCESS
    }
}

/// A thread waits for SIGTERM/SIGINT and flips the returned flag; a second signal exits at once.
fn watch_signals() -> std::io::Result<(Shutdown, Arc<watch::Sender<bool>>)> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    let (tx, rx) = watch::channel(false);
    let tx = Arc::new(tx);
    let trigger = tx.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                seen += 1;
                if seen > 1 {
                    eprintln!("second signal {sig}: exiting now");
                    std::process::exit(130);
                }
                let _ = tx.send(true);
            }
        })?;
    Ok((Shutdown(rx), trigger))
}

/// A runtime thread's share of the service: the app, the shutdown flag, connection settings.
#[derive(Debug, Clone)]
pub struct Worker {
    pub app: Arc<App>,
    pub shutdown: Shutdown,
    limits: crate::http::Limits,
    /// Also bounds each write: a client that stops reading is closed after `timeouts.idle`.
    pub timeouts: Timeouts,
    drain: Duration,
}

/// How many accept errors are logged one by one before only every 1000th is.
const ACCEPT_ERRORS_LOGGED: u64 = 10;

impl Worker {
    /// A fresh connection state with the configured limits and timeouts.
    pub fn conn(&self) -> Conn {
        Conn::new(self.limits, self.timeouts)
    }

    /// How long in-flight requests may take to finish once shutdown began
    /// (`--shutdown-timeout`): the bound for [`Worker::drained`].
    pub fn drain_timeout(&self) -> Duration {
        self.drain
    }

    /// Resolves once no connection is open; the server bounds it by [`Worker::drain_timeout`].
    pub async fn drained(&self) {
        self.app.metrics.all_closed().await;
    }

    /// Counts and logs a failed `accept`, and says how long to back off before the next.
    /// Out of file descriptors (EMFILE/ENFILE) or memory: back off so the loop does not spin
    /// while connections close. Never fatal: the accept loop goes on.
    pub fn accept_error(&self, e: &std::io::Error) -> Duration {
        let n = self.app.metrics.accept_errors.fetch_add(1, Relaxed) + 1;
        if n <= ACCEPT_ERRORS_LOGGED || n % 1000 == 0 {
            eprintln!("accept error #{n}: {e} (backing off, still accepting)");
        }
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                Duration::from_millis(10)
            }
            _ => Duration::from_millis(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_round_trip() {
        let line = "server-tokio: listening on 127.0.0.1:40123 (multi-thread; kafka x)";
        assert_eq!(
            parse_ready_line(line),
            Some("127.0.0.1:40123".parse().expect("addr"))
        );
        assert_eq!(
            parse_ready_line("embedded Kafka broker at 127.0.0.1:1"),
            None
        );
    }
}
