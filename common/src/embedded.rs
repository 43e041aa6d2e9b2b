//! The embedded Kafka broker: librdkafka's mock cluster, a real Kafka protocol endpoint on a
//! loopback port that other processes can connect to. The default when no `--brokers` is
//! given, so `cargo bench` and the tests need no broker installed.
//!
//! Caveat (measured; ARCHITECTURE.md, "Decisions"): each mock partition keeps only ~5 MiB / 100k batches, so
//! count what landed with high watermarks ([`crate::landed`]), not by consuming everything.

use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A running mock cluster with one broker and the topic created. Stops on drop.
///
/// Not `Send`: keep it on the thread that started it (the server's `main`, the bench's).
pub struct EmbeddedKafka {
    cluster: MockCluster<'static, DefaultProducerContext>,
    bootstrap: String,
}

impl std::fmt::Debug for EmbeddedKafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EmbeddedKafka({})", self.bootstrap)
    }
}

/// The id of the mock cluster's only broker.
const BROKER_ID: i32 = 1;

impl EmbeddedKafka {
    /// Starts one broker on a loopback port and creates `topic` with `partitions` partitions.
    pub fn start(topic: &str, partitions: i32) -> Result<Self, KafkaError> {
        report_mock_failures();
        let cluster = MockCluster::new(1)?;
        cluster.create_topic(topic, partitions, 1)?;
        let bootstrap = cluster.bootstrap_servers();
        Ok(Self { cluster, bootstrap })
    }

    /// `host:port` to give clients as `bootstrap.servers`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Creates another topic.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), KafkaError> {
        self.cluster.create_topic(topic, partitions, 1)
    }

    /// Takes the broker down (its connections close, new ones are refused) for fault tests.
    pub fn broker_down(&self) -> Result<(), KafkaError> {
        self.cluster.broker_down(BROKER_ID)
    }

    /// Brings the broker back after [`EmbeddedKafka::broker_down`].
    pub fn broker_up(&self) -> Result<(), KafkaError> {
        self.cluster.broker_up(BROKER_ID)
    }
}

/// Prints the mock cluster's own errors to stderr. librdkafka logs why a mock broker failed
/// (e.g. "Failed to bind mock broker socket ...: Address already in use") just before it
/// aborts the process on an assertion; rdkafka forwards that line to the `log` crate, which
/// drops it unless a logger is installed. Installs a logger that prints only those lines
/// (facility `MOCK`, error or worse), once per process, unless the process has its own.
fn report_mock_failures() {
    struct MockErrors;
    impl log::Log for MockErrors {
        fn enabled(&self, m: &log::Metadata<'_>) -> bool {
            m.level() <= log::Level::Error && m.target() == "librdkafka"
        }
        fn log(&self, r: &log::Record<'_>) {
            let line = r.args().to_string();
            if self.enabled(r.metadata()) && line.starts_with("librdkafka: MOCK") {
                eprintln!("embedded broker: {line}");
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: MockErrors = MockErrors;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Error);
    }
}
