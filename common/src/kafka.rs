//! The Kafka publisher: one librdkafka producer per process, shared by every connection.
//!
//! - A [`ThreadedProducer`] (a `BaseProducer` polled by its own thread) whose delivery
//!   callback counts the outcome and, in `--ack delivered` mode, completes a per-record
//!   oneshot. The oneshot is runtime-agnostic, so tokio and tokio-uring await it alike.
//! - Not `FutureProducer`: on QueueFull it sleeps 100 ms and retries, which shows up as
//!   latency cliffs. Here QueueFull surfaces at once as [`PublishError::QueueFull`] (503).
//! - [`Publisher::null`] has the same interface and publishes nowhere, to attribute cost.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use tokio::sync::oneshot;

use crate::metrics::Metrics;

/// When a request counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AckMode {
    /// Answer 202 once the record is in the producer's queue.
    Enqueued,
    /// Answer 200 once the broker acknowledged the record.
    Delivered,
}

/// Where records go.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum SinkKind {
    /// A Kafka cluster (embedded unless `--brokers` is given).
    #[default]
    Kafka,
    /// Nowhere: measures the server without Kafka's cost.
    Null,
}

/// Why a record was not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The producer queue (`queue.buffering.max.*`) is full: backpressure, retry later.
    #[error("producer queue full, retry later")]
    QueueFull,
    /// The broker did not take the record (error or `message.timeout.ms` passed).
    #[error("delivery failed: {0}")]
    Delivery(String),
    /// librdkafka refused the record for another reason (e.g. too large for `message.max.bytes`).
    #[error("record not enqueued: {0}")]
    Enqueue(String),
    /// The producer shut down before reporting.
    #[error("producer closed before delivery was reported")]
    Closed,
}

/// Producer settings that come from the CLI.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    pub topic: String,
    /// `message.timeout.ms`: how long a record may wait for delivery before it fails.
    pub delivery_timeout: Duration,
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

type Waiter = Option<oneshot::Sender<Result<(), PublishError>>>;

/// Counts delivery outcomes and completes waiters; runs on the producer's poll thread.
struct DeliveryContext {
    metrics: Arc<Metrics>,
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("kafka: {error}: {reason}");
    }
}

impl ProducerContext for DeliveryContext {
    // One small allocation per record; the oneshot inside allocates anyway in delivered mode.
    type DeliveryOpaque = Box<Waiter>;

    fn delivery(&self, result: &DeliveryResult<'_>, waiter: Self::DeliveryOpaque) {
        let outcome = match result {
            Ok(_) => {
                self.metrics.records_delivered.fetch_add(1, Relaxed);
                Ok(())
            }
            Err((e, _)) => {
                self.metrics.records_failed.fetch_add(1, Relaxed);
                Err(PublishError::Delivery(e.to_string()))
            }
        };
        if let Some(tx) = *waiter {
            // The connection may have gone away; the outcome is counted either way.
            let _ = tx.send(outcome);
        }
    }
}

/// The result of [`Publisher::publish`].
#[derive(Debug)]
pub enum Ack {
    /// Done (enqueued, or the null sink).
    Done,
    /// Resolves once the broker acknowledged or the record failed.
    Pending(Delivery),
}

/// Future of one record's delivery report.
#[derive(Debug)]
pub struct Delivery(oneshot::Receiver<Result<(), PublishError>>);

impl Future for Delivery {
    type Output = Result<(), PublishError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(PublishError::Closed)))
    }
}

/// What [`Publisher::flush`] could not deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushReport {
    /// Records still in flight when the flush timeout passed.
    pub undelivered: u64,
}

/// Publishes records to Kafka or to nowhere; see the module doc.
pub struct Publisher {
    sink: Sink,
    metrics: Arc<Metrics>,
}

enum Sink {
    Kafka {
        producer: ThreadedProducer<DeliveryContext>,
        topic: String,
        /// Set by the health thread: the topic's metadata was fetched within the last probe.
        ready: Arc<AtomicBool>,
        stop: Arc<AtomicBool>,
        health: Option<JoinHandle<()>>,
    },
    Null,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sink {
            Sink::Kafka { topic, .. } => write!(f, "Publisher(kafka, topic {topic})"),
            Sink::Null => write!(f, "Publisher(null)"),
        }
    }
}

/// How often `/healthz` readiness is re-probed (one metadata request).
const HEALTH_PROBE_EVERY: Duration = Duration::from_secs(1);

impl Publisher {
    /// A producer for `settings.topic` with the effective `config`.
    pub fn kafka(
        config: &ClientConfig,
        topic: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Self, KafkaError> {
        let producer: ThreadedProducer<DeliveryContext> =
            config.create_with_context(DeliveryContext {
                metrics: metrics.clone(),
            })?;
        // The first probe runs before the server announces itself, so `/healthz` is right
        // from the readiness line on (costs up to one probe timeout when the broker is down).
        let ready = Arc::new(AtomicBool::new(probe(&producer, topic)));
        let stop = Arc::new(AtomicBool::new(false));
        let health = {
            let (producer, topic, ready, stop) = (
                producer.clone(),
                topic.to_string(),
                ready.clone(),
                stop.clone(),
            );
            std::thread::Builder::new()
                .name("kafka-health".into())
                .spawn(move || loop {
                    sleep_unless(&stop, HEALTH_PROBE_EVERY);
                    if stop.load(Relaxed) {
                        break;
                    }
                    ready.store(probe(&producer, &topic), Relaxed);
                })
                .map_err(|e| KafkaError::ClientCreation(e.to_string()))?
        };
        Ok(Self {
            sink: Sink::Kafka {
                producer,
                topic: topic.to_string(),
                ready,
                stop,
                health: Some(health),
            },
            metrics,
        })
    }

    /// The null sink: every record is "delivered" at once.
    pub fn null(metrics: Arc<Metrics>) -> Self {
        Self {
            sink: Sink::Null,
            metrics,
        }
    }

    /// Enqueues one record. Never blocks: a full queue is [`PublishError::QueueFull`] at once.
    pub fn publish(
        &self,
        key: Option<&[u8]>,
        value: &[u8],
        ack: AckMode,
    ) -> Result<Ack, PublishError> {
        let Sink::Kafka {
            producer, topic, ..
        } = &self.sink
        else {
            self.metrics.records_enqueued.fetch_add(1, Relaxed);
            self.metrics.records_delivered.fetch_add(1, Relaxed);
            return Ok(Ack::Done);
        };
        let (waiter, rx) = match ack {
            AckMode::Enqueued => (None, None),
            AckMode::Delivered => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
        };
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(waiter)).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        match producer.send(record) {
            Ok(()) => {
                self.metrics.records_enqueued.fetch_add(1, Relaxed);
                Ok(rx.map_or(Ack::Done, |rx| Ack::Pending(Delivery(rx))))
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                self.metrics.queue_full.fetch_add(1, Relaxed);
                Err(PublishError::QueueFull)
            }
            Err((e, _)) => Err(PublishError::Enqueue(e.to_string())),
        }
    }

    /// Whether `/healthz` should say ready: the broker answered the last metadata probe.
    pub fn is_ready(&self) -> bool {
        match &self.sink {
            Sink::Kafka { ready, .. } => ready.load(Relaxed),
            Sink::Null => true,
        }
    }

    /// Records enqueued but not yet acknowledged or failed.
    pub fn in_flight(&self) -> u64 {
        match &self.sink {
            Sink::Kafka { producer, .. } => producer.in_flight_count().max(0) as u64,
            Sink::Null => 0,
        }
    }

    /// Waits up to `timeout` for every queued record to be delivered (or fail).
    pub fn flush(&self, timeout: Duration) -> FlushReport {
        if let Sink::Kafka { producer, .. } = &self.sink {
            let _ = producer.flush(timeout);
        }
        FlushReport {
            undelivered: self.in_flight(),
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if let Sink::Kafka { stop, health, .. } = &mut self.sink {
            stop.store(true, Relaxed);
            if let Some(h) = health.take() {
                let _ = h.join();
            }
        }
    }
}

/// One readiness probe: the topic's metadata, with a leader for every partition.
fn probe(producer: &ThreadedProducer<DeliveryContext>, topic: &str) -> bool {
    producer
        .client()
        .fetch_metadata(Some(topic), HEALTH_PROBE_EVERY)
        .map(|md| {
            md.topics().iter().any(|t| {
                t.error().is_none()
                    && !t.partitions().is_empty()
                    && t.partitions().iter().all(|p| p.leader() >= 0)
            })
        })
        .unwrap_or(false)
}

fn sleep_unless(stop: &AtomicBool, total: Duration) {
    let end = Instant::now() + total;
    while !stop.load(Relaxed) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
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
