//! The Kafka publisher: one librdkafka producer per process, shared by every connection.
//!
//! - A [`ThreadedProducer`] (a `BaseProducer` polled by its own thread) whose delivery
//!   callback counts the outcome and, in `--ack delivered` mode, completes a per-record
//!   oneshot. The oneshot is runtime-agnostic, so tokio and tokio-uring await it alike.
//!   With `--ack enqueued` only failures are reported back ([`producer_config`]).
//! - Records go through a topic handle made once (`topic.rs`), not rdkafka's `send`,
//!   which looks the topic up by name for every record.
//! - Not `FutureProducer`: on QueueFull it sleeps 100 ms and retries, which shows up as
//!   latency cliffs. Here QueueFull surfaces at once as [`PublishError::QueueFull`] (503).
//! - [`Publisher::null`] has the same interface and publishes nowhere, to attribute cost.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use tokio::sync::oneshot;

use crate::metrics::Metrics;
pub use config::{
    effective_config, ensure_topic, producer_config, ProducerSettings, PRODUCER_DEFAULTS,
};
use topic::TopicHandle;

mod config;
mod topic;

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

type Waiter = oneshot::Sender<Result<(), PublishError>>;

/// A record's delivery opaque: `0` when nobody waits for its report (no allocation),
/// else a boxed [`Waiter`] (`--ack delivered`).
fn into_opaque(waiter: Option<Waiter>) -> usize {
    waiter.map_or(0, |w| Box::into_raw(Box::new(w)) as usize)
}

/// The waiter behind an opaque made by [`into_opaque`].
///
/// # Safety
/// `opaque` came from [`into_opaque`] and is taken back at most once: librdkafka hands a
/// record's opaque to exactly one delivery report, and only for records it accepted; a
/// record it refused gives its opaque back to the caller instead.
unsafe fn from_opaque(opaque: usize) -> Option<Waiter> {
    // SAFETY: see the function's contract.
    (opaque != 0).then(|| *unsafe { Box::from_raw(opaque as *mut Waiter) })
}

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
    /// See [`into_opaque`].
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        // SAFETY: every opaque given to librdkafka is made by `into_opaque` (`publish`),
        // and this is the one report of its record.
        let waiter = unsafe { from_opaque(opaque) };
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
        if let Some(tx) = waiter {
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
        /// The topic's handle, which holds the producer.
        handle: TopicHandle<DeliveryContext>,
        topic: String,
        /// Delivery reports come for every record (`false`: only for failures,
        /// `delivery.report.only.error`; delivered records are then counted from the
        /// producer's queue).
        success_reports: bool,
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
        let success_reports = config.get("delivery.report.only.error") != Some("true");
        let handle = TopicHandle::new(&producer, topic)?;
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
                handle,
                topic: topic.to_string(),
                success_reports,
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
            handle,
            success_reports,
            ..
        } = &self.sink
        else {
            self.metrics.records_enqueued.fetch_add(1, Relaxed);
            self.metrics.records_delivered.fetch_add(1, Relaxed);
            return Ok(Ack::Done);
        };
        let (waiter, rx) = match ack {
            AckMode::Enqueued => (None, None),
            AckMode::Delivered if !success_reports => {
                return Err(PublishError::Enqueue(
                    "delivery reports are for failures only (delivery.report.only.error=true): a record's delivery cannot be awaited".into(),
                ))
            }
            AckMode::Delivered => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
        };
        let opaque = into_opaque(waiter);
        match handle.produce(key, value, opaque) {
            Ok(()) => {
                self.metrics.records_enqueued.fetch_add(1, Relaxed);
                Ok(rx.map_or(Ack::Done, |rx| Ack::Pending(Delivery(rx))))
            }
            Err(code) => {
                // SAFETY: librdkafka refused the record, so its opaque was not taken.
                drop(unsafe { from_opaque(opaque) });
                if code == RDKafkaErrorCode::QueueFull {
                    self.metrics.queue_full.fetch_add(1, Relaxed);
                    Err(PublishError::QueueFull)
                } else {
                    Err(PublishError::Enqueue(code.to_string()))
                }
            }
        }
    }

    /// Records the broker acknowledged so far (also kept in the metrics'
    /// `records_delivered`). Without success reports: every record enqueued that is
    /// neither in the producer's queue nor failed, read in an order whose races can only
    /// undercount, and never below what was said before.
    pub fn delivered(&self) -> u64 {
        let m = &self.metrics;
        if let Sink::Kafka {
            success_reports: false,
            ..
        } = &self.sink
        {
            let enqueued = m.records_enqueued.load(Relaxed);
            let queued = self.in_flight();
            let failed = m.records_failed.load(Relaxed);
            m.records_delivered
                .fetch_max(enqueued.saturating_sub(queued + failed), Relaxed);
        }
        m.records_delivered.load(Relaxed)
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
            Sink::Kafka { handle, .. } => handle.producer().in_flight_count().max(0) as u64,
            Sink::Null => 0,
        }
    }

    /// Waits up to `timeout` for every queued record to be delivered (or fail).
    pub fn flush(&self, timeout: Duration) -> FlushReport {
        if let Sink::Kafka { handle, .. } = &self.sink {
            let _ = handle.producer().flush(timeout);
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
