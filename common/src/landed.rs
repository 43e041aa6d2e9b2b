//! Counting what landed in Kafka, the right way for the broker at hand.
//!
//! - The embedded mock cluster keeps only ~5 MiB per partition, so consuming misses old
//!   records; its high watermarks count every record ever produced. -> [`CountMethod::Watermarks`]
//! - tansu 0.6 advances a high watermark by 1 per record *batch*, so watermarks undercount;
//!   every record comes back when consumed. -> [`CountMethod::Consume`]
//! - A real Kafka cluster is right either way; consuming is the method that needs no trust
//!   in the broker's offsets, so it is the default for any broker we did not start.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

/// How to count records in a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CountMethod {
    /// Sum of the partitions' high watermarks (records ever produced).
    Watermarks,
    /// Read everything from the beginning and count.
    Consume,
}

impl CountMethod {
    /// The method for a broker: watermarks for the embedded mock cluster, consuming otherwise.
    pub fn for_broker(embedded: bool) -> Self {
        if embedded {
            Self::Watermarks
        } else {
            Self::Consume
        }
    }
}

/// One record read back from the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
}

/// Reads a topic's record count or contents.
pub struct TopicReader {
    consumer: BaseConsumer,
    topic: String,
    method: CountMethod,
    timeout: Duration,
}

impl std::fmt::Debug for TopicReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TopicReader({}, {:?})", self.topic, self.method)
    }
}

/// How long consuming waits for one more record before it decides the topic is drained.
const DRAIN_IDLE: Duration = Duration::from_millis(1500);

impl TopicReader {
    pub fn new(brokers: &str, topic: &str, method: CountMethod) -> Result<Self, KafkaError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set(
                "group.id",
                format!("runtime-bench-reader-{}", std::process::id()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest")
            .create()?;
        Ok(Self {
            consumer,
            topic: topic.to_string(),
            method,
            timeout: Duration::from_secs(10),
        })
    }

    pub fn method(&self) -> CountMethod {
        self.method
    }

    fn partitions(&self) -> Result<Vec<i32>, KafkaError> {
        let md = self
            .consumer
            .fetch_metadata(Some(&self.topic), self.timeout)?;
        let parts: Vec<i32> = md
            .topics()
            .iter()
            .filter(|t| t.name() == self.topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if parts.is_empty() {
            return Err(KafkaError::MetadataFetch(
                rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
            ));
        }
        Ok(parts)
    }

    /// Records in the topic by this reader's method. Take it before and after a run: the
    /// difference is what the run landed.
    pub fn count(&self) -> Result<u64, KafkaError> {
        match self.method {
            CountMethod::Watermarks => {
                let mut total = 0u64;
                for p in self.partitions()? {
                    let (_, high) = self
                        .consumer
                        .fetch_watermarks(&self.topic, p, self.timeout)?;
                    total += high.max(0) as u64;
                }
                Ok(total)
            }
            CountMethod::Consume => {
                let mut n = 0u64;
                self.drain(|_| n += 1)?;
                Ok(n)
            }
        }
    }

    /// Every record the broker still holds, read from the beginning until none arrives for
    /// 1.5 s. On the mock cluster, old records past its retention are gone.
    pub fn records(&self) -> Result<Vec<Record>, KafkaError> {
        let mut out = Vec::new();
        self.drain(|m| {
            out.push(Record {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().unwrap_or_default().to_vec(),
            })
        })?;
        Ok(out)
    }

    /// Reads every record the broker still holds, as [`TopicReader::records`], handing each
    /// value to `each` without copying it; how many there were.
    pub fn values(&self, mut each: impl FnMut(&[u8])) -> Result<u64, KafkaError> {
        let mut n = 0;
        self.drain(|m| {
            n += 1;
            each(m.payload().unwrap_or_default());
        })?;
        Ok(n)
    }

    fn drain(
        &self,
        mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
    ) -> Result<(), KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for p in self.partitions()? {
            tpl.add_partition_offset(&self.topic, p, Offset::Beginning)?;
        }
        self.consumer.assign(&tpl)?;
        let mut last = Instant::now();
        while last.elapsed() < DRAIN_IDLE {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    each(&m);
                    last = Instant::now();
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        self.consumer.unassign()?;
        Ok(())
    }
}
