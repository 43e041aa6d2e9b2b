//! The broker a `cargo bench` run publishes to: embedded in this process (librdkafka's
//! mock cluster), or the cluster `KAFKA_BROKERS` names.

use std::time::Duration;

use anyhow::{Context, Result};
use common::embedded::EmbeddedKafka;
use common::landed::CountMethod;

/// The broker the suite publishes to: embedded in this process, or `KAFKA_BROKERS`.
pub struct Broker {
    embedded: Option<EmbeddedKafka>,
    pub addr: String,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Broker({}, embedded: {})",
            self.addr,
            self.embedded.is_some()
        )
    }
}

/// Partitions per topic: several, since each mock partition keeps only ~5 MiB.
const PARTITIONS: i32 = 6;

impl Broker {
    /// The cluster at `brokers` (`KAFKA_BROKERS`), or an embedded one.
    pub fn start(brokers: Option<&str>) -> Result<Self> {
        match brokers {
            Some(addr) => Ok(Self {
                embedded: None,
                addr: addr.to_string(),
            }),
            None => {
                // The harness asks librdkafka for a mock cluster; the "setup" topic only
                // exists so the cluster has one before the first workload makes its own.
                let e = EmbeddedKafka::start("runtime-bench-setup", 1)
                    .context("starting the embedded Kafka broker")?;
                let addr = e.bootstrap().to_string();
                Ok(Self {
                    embedded: Some(e),
                    addr,
                })
            }
        }
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    pub fn method(&self) -> CountMethod {
        CountMethod::for_broker(self.is_embedded())
    }

    /// Creates `topic` (fresh per workload and runtime, so counts do not mix).
    pub fn topic(&self, topic: &str) -> Result<()> {
        match &self.embedded {
            Some(e) => e
                .create_topic(topic, PARTITIONS)
                .with_context(|| format!("creating topic {topic}")),
            None => {
                common::kafka::ensure_topic(&self.addr, topic, PARTITIONS, Duration::from_secs(30))
                    .with_context(|| format!("creating topic {topic} on {}", self.addr))
            }
        }
    }
}
