//! The produce call: one librdkafka topic handle, made once, and `rd_kafka_produce`.
//!
//! rdkafka's `BaseProducer::send` names the topic on every record: it allocates a C string
//! of the name, and librdkafka looks the topic up by name under its client lock
//! (`rd_kafka_producev` with `RD_KAFKA_VTYPE_TOPIC`, then a reference taken and dropped).
//! A handle made once (`rd_kafka_topic_new`) and `rd_kafka_produce` skip both; the record
//! takes the same path from there on (partitioner, queue, delivery report with its
//! opaque), so rdkafka's delivery callback reads the opaque as it would from `send`.

use std::ffi::{c_void, CString};
use std::ptr::NonNull;

use rdkafka::bindings as rdsys;
use rdkafka::error::KafkaError;
use rdkafka::producer::{Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

/// `RD_KAFKA_PARTITION_UA` (a C macro, not in the bindings): let the partitioner choose.
const PARTITION_UNASSIGNED: i32 = -1;

/// A producer's handle on one topic; keeps the producer (its librdkafka client) alive.
pub(super) struct TopicHandle<C: ProducerContext + 'static> {
    rkt: NonNull<rdsys::rd_kafka_topic_t>,
    producer: ThreadedProducer<C>,
}

// SAFETY: librdkafka's topic handles may be used from any thread (its produce path locks
// what it shares); the handle is only produced to and destroyed.
unsafe impl<C: ProducerContext + 'static> Send for TopicHandle<C> {}
unsafe impl<C: ProducerContext + 'static> Sync for TopicHandle<C> {}

impl<C: ProducerContext + 'static> TopicHandle<C> {
    /// A handle on `topic` for `producer` (its default topic configuration).
    pub(super) fn new(producer: &ThreadedProducer<C>, topic: &str) -> Result<Self, KafkaError> {
        let name = CString::new(topic)
            .map_err(|_| KafkaError::ClientCreation(format!("topic {topic:?} contains NUL")))?;
        // SAFETY: a live client; a NUL-terminated name; a null conf takes the client's
        // default topic configuration.
        let rkt = unsafe {
            rdsys::rd_kafka_topic_new(
                producer.client().native_ptr(),
                name.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        let rkt = NonNull::new(rkt).ok_or_else(|| {
            // SAFETY: reads this thread's last librdkafka error.
            let code: RDKafkaErrorCode = unsafe { rdsys::rd_kafka_last_error() }.into();
            KafkaError::ClientCreation(format!("topic handle for {topic}: {code}"))
        })?;
        Ok(Self {
            rkt,
            producer: producer.clone(),
        })
    }

    /// Enqueues one record (payload and key copied), partitioned by librdkafka. On an
    /// error librdkafka did not take the record, and `opaque` is still the caller's.
    pub(super) fn produce(
        &self,
        key: Option<&[u8]>,
        value: &[u8],
        opaque: usize,
    ) -> Result<(), RDKafkaErrorCode> {
        let (key_ptr, key_len) = key.map_or((std::ptr::null(), 0), |k| (k.as_ptr(), k.len()));
        // SAFETY: a live handle (its client is kept by `self.producer`); payload and key
        // are valid for their lengths and copied (`RD_KAFKA_MSG_F_COPY`) before returning.
        let rc = unsafe {
            rdsys::rd_kafka_produce(
                self.rkt.as_ptr(),
                PARTITION_UNASSIGNED,
                rdsys::RD_KAFKA_MSG_F_COPY,
                value.as_ptr() as *mut c_void,
                value.len(),
                key_ptr as *const c_void,
                key_len,
                opaque as *mut c_void,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            // SAFETY: reads this thread's last librdkafka error, set by the call above.
            Err(unsafe { rdsys::rd_kafka_last_error() }.into())
        }
    }

    pub(super) fn producer(&self) -> &ThreadedProducer<C> {
        &self.producer
    }
}

impl<C: ProducerContext + 'static> Drop for TopicHandle<C> {
    fn drop(&mut self) {
        // SAFETY: made by rd_kafka_topic_new, destroyed once, while `self.producer` (the
        // client) is still alive: fields drop after this.
        unsafe { rdsys::rd_kafka_topic_destroy(self.rkt.as_ptr()) };
    }
}
