//! The producer's configuration: settings from the CLI, the defaults chosen for this
//! workload, the effective configuration; and creating the topic on a cluster that does
//! not auto-create it.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::AckMode;

/// Producer settings that come from the CLI.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    pub topic: String,
    /// `message.timeout.ms`: how long a record may wait for delivery before it fails.
    pub delivery_timeout: Duration,
    /// When requests are answered: with `enqueued`, only failed records are reported
    /// back (`delivery.report.only.error`), see [`producer_config`].
    pub ack: AckMode,
    /// kcat-style `-X key=value` overrides, applied last.
    pub overrides: Vec<(String, String)>,
}

/// Throughput defaults, each overridable with `-X`. Chosen for small records at high rates:
/// batches fill in a few ms instead of one request per record.
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    // Wait up to 5 ms to fill a batch (librdkafka's own default since 1.9, stated so reports
    // record it).
    ("linger.ms", "5"),
    ("batch.num.messages", "10000"),
    ("batch.size", "1000000"),
    // Bench bodies are random bytes: compression would burn the CPU the servers compete for
    // and save nothing on loopback.
    ("compression.type", "none"),
    // Bounded queue: once full, requests get 503 (backpressure) instead of unbounded memory.
    ("queue.buffering.max.messages", "100000"),
    ("queue.buffering.max.kbytes", "262144"),
    // After a broker outage, reconnect within a second instead of backing off up to 10 s
    // (librdkafka's default), so throughput recovers promptly.
    ("reconnect.backoff.max.ms", "1000"),
    ("acks", "all"),
    // A produce request the broker stored but whose answer was lost (a dropped connection)
    // is resent; without idempotence that lands the record twice, and a count-only check
    // could then hide a lost record behind the duplicate.
    ("enable.idempotence", "true"),
];

/// The effective producer configuration: defaults, then CLI settings, then `-X` overrides.
pub fn producer_config(s: &ProducerSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in PRODUCER_DEFAULTS {
        c.set(*k, *v);
    }
    c.set("bootstrap.servers", &s.brokers);
    c.set(
        "message.timeout.ms",
        s.delivery_timeout.as_millis().to_string(),
    );
    // With --ack enqueued nobody waits for a record's delivery: a report per delivered
    // record would only feed a counter, and handling it cost the delivery thread ~0.14 µs
    // per record (profiled, keepalive-100b-c32). Failures are still reported (counted, and
    // a failure after a 202 fails the server's exit); delivered records are counted from
    // the producer's queue instead ([`Publisher::delivered`]).
    if s.ack == AckMode::Enqueued {
        c.set("delivery.report.only.error", "true");
    }
    for (k, v) in &s.overrides {
        c.set(k, v);
    }
    c
}

/// The configuration as sorted key/value pairs, for printing and reports.
pub fn effective_config(c: &ClientConfig) -> BTreeMap<String, String> {
    c.config_map()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Creates `topic` with `partitions` partitions unless it exists (many clusters, tansu
/// among them, do not auto-create). Not for the embedded broker, which lacks CreateTopics.
pub fn ensure_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let md = admin.inner().fetch_metadata(Some(topic), timeout)?;
    if md
        .topics()
        .iter()
        .any(|t| t.error().is_none() && !t.partitions().is_empty())
    {
        return Ok(());
    }
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(timeout));
    let results = crate::block_on(admin.create_topics([&new], &opts))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(KafkaError::AdminOp(code)),
        }
    }
    Ok(())
}
