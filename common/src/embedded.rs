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
