//! The publisher against the embedded broker (a real Kafka protocol endpoint on loopback):
//! what landed is read back from the broker, not taken from the producer's word.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::embedded::EmbeddedKafka;
use common::kafka::{self, Ack, AckMode, ProducerSettings, PublishError, Publisher};
use common::landed::{CountMethod, TopicReader};
use common::metrics::Metrics;

fn settings(brokers: &str, topic: &str, overrides: &[(&str, &str)]) -> ProducerSettings {
    ProducerSettings {
        brokers: brokers.to_string(),
        topic: topic.to_string(),
        delivery_timeout: Duration::from_secs(10),
        ack: AckMode::Delivered,
        overrides: overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// A loopback address nothing listens on: the port of a listener bound and closed.
fn absent_broker() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    format!("127.0.0.1:{port}")
}

fn publisher(s: &ProducerSettings) -> (Publisher, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let p =
        Publisher::kafka(&kafka::producer_config(s), &s.topic, metrics.clone()).expect("producer");
    (p, metrics)
}

#[test]
fn both_ack_modes_land_every_record() {
    const N: usize = 1000;
    let broker = EmbeddedKafka::start("acks", 3).expect("embedded broker");
    let s = settings(broker.bootstrap(), "acks", &[]);
    let reader =
        TopicReader::new(broker.bootstrap(), "acks", CountMethod::Watermarks).expect("reader");
    let before = reader.count().expect("count");
    assert_eq!(before, 0);
    let (p, metrics) = publisher(&s);

    // Enqueued: done at once.
    for i in 0..N {
        let v = format!("enqueued-{i}");
        let ack = p
            .publish(Some(b"k"), v.as_bytes(), AckMode::Enqueued)
            .expect("enqueue");
        assert!(matches!(ack, Ack::Done));
    }
    // Delivered: each resolves once the broker acknowledged.
    let pending: Vec<_> = (0..N)
        .map(|i| {
            let v = format!("delivered-{i}");
            match p
                .publish(None, v.as_bytes(), AckMode::Delivered)
                .expect("enqueue")
            {
                Ack::Pending(d) => d,
                Ack::Done => panic!("delivered mode must wait"),
            }
        })
        .collect();
    for d in pending {
        assert_eq!(common::block_on(d), Ok(()));
    }
    assert_eq!(p.flush(Duration::from_secs(10)).undelivered, 0);
    assert_eq!(metrics.records_delivered.load(Relaxed), 2 * N as u64);
    assert_eq!(metrics.records_failed.load(Relaxed), 0);
    assert_eq!(
        reader.count().expect("count") - before,
        2 * N as u64,
        "high watermarks"
    );

    // And the values are the ones sent.
    let mut values: Vec<String> = reader
        .records()
        .expect("consume")
        .into_iter()
        .map(|r| String::from_utf8(r.value).expect("utf8"))
        .collect();
    values.sort();
    let mut expected: Vec<String> = (0..N)
        .flat_map(|i| [format!("enqueued-{i}"), format!("delivered-{i}")])
        .collect();
    expected.sort();
    assert_eq!(values, expected);
}

#[test]
fn queue_full_is_backpressure_at_once() {
    let broker = EmbeddedKafka::start("tiny", 1).expect("embedded broker");
    // A 10-record queue that is not drained for a second: the 11th record must bounce.
    let s = settings(
        broker.bootstrap(),
        "tiny",
        &[
            ("queue.buffering.max.messages", "10"),
            ("linger.ms", "1000"),
        ],
    );
    let (p, metrics) = publisher(&s);
    let started = Instant::now();
    let results: Vec<_> = (0..50)
        .map(|_| p.publish(None, b"x", AckMode::Enqueued))
        .collect();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "publish must not block or sleep"
    );
    let full = results
        .iter()
        .filter(|r| matches!(r, Err(PublishError::QueueFull)))
        .count();
    assert!(full >= 40, "{full} of 50 rejected as queue full");
    assert_eq!(metrics.queue_full.load(Relaxed), full as u64);
    assert_eq!(p.flush(Duration::from_secs(10)).undelivered, 0);
}

#[test]
fn delivery_failure_surfaces() {
    let s = ProducerSettings {
        delivery_timeout: Duration::from_millis(1500),
        ..settings(&absent_broker(), "nowhere", &[])
    };
    let (p, metrics) = publisher(&s);
    let d = match p
        .publish(None, b"lost", AckMode::Delivered)
        .expect("enqueue")
    {
        Ack::Pending(d) => d,
        Ack::Done => panic!("must wait"),
    };
    let started = Instant::now();
    let outcome = common::block_on(d);
    assert!(
        matches!(outcome, Err(PublishError::Delivery(_))),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by message.timeout.ms"
    );
    assert_eq!(metrics.records_failed.load(Relaxed), 1);
    assert!(!p.is_ready());
    assert_eq!(p.flush(Duration::from_millis(100)).undelivered, 0);
}

/// With `--ack enqueued` librdkafka reports failures only: delivered records are counted
/// from the producer's queue, failures still surface, and a delivery cannot be awaited.
#[test]
fn enqueued_mode_reports_failures_only_and_still_counts_deliveries() {
    const N: u64 = 500;
    let broker = EmbeddedKafka::start("only-errors", 3).expect("embedded broker");
    let s = ProducerSettings {
        ack: AckMode::Enqueued,
        ..settings(broker.bootstrap(), "only-errors", &[])
    };
    let c = kafka::effective_config(&kafka::producer_config(&s));
    assert_eq!(
        c.get("delivery.report.only.error").map(String::as_str),
        Some("true")
    );
    let reader = TopicReader::new(broker.bootstrap(), "only-errors", CountMethod::Watermarks)
        .expect("reader");
    let (p, metrics) = publisher(&s);
    for i in 0..N {
        p.publish(None, format!("r{i}").as_bytes(), AckMode::Enqueued)
            .expect("enqueue");
    }
    assert!(
        matches!(p.publish(None, b"x", AckMode::Delivered), Err(PublishError::Enqueue(e)) if e.contains("delivery.report.only.error")),
        "a delivery cannot be awaited without success reports"
    );
    assert_eq!(p.flush(Duration::from_secs(10)).undelivered, 0);
    assert_eq!(reader.count().expect("count"), N);
    assert_eq!(p.delivered(), N, "counted from the producer's queue");
    assert_eq!(metrics.records_delivered.load(Relaxed), N);

    // A record that cannot be delivered is still reported, and not counted delivered.
    let s = ProducerSettings {
        delivery_timeout: Duration::from_millis(1500),
        ack: AckMode::Enqueued,
        ..settings(&absent_broker(), "nowhere", &[])
    };
    let (p, metrics) = publisher(&s);
    p.publish(None, b"lost", AckMode::Enqueued)
        .expect("enqueue");
    assert_eq!(p.flush(Duration::from_secs(5)).undelivered, 0);
    assert_eq!(metrics.records_failed.load(Relaxed), 1);
    assert_eq!(p.delivered(), 0);
}

#[test]
fn null_sink_counts_without_a_broker() {
    let metrics = Arc::new(Metrics::new());
    let p = Publisher::null(metrics.clone());
    assert!(matches!(
        p.publish(None, b"x", AckMode::Delivered),
        Ok(Ack::Done)
    ));
    assert!(p.is_ready());
    assert_eq!(metrics.records_delivered.load(Relaxed), 1);
}

#[test]
fn effective_config_has_defaults_and_overrides() {
    let s = settings("127.0.0.1:1", "t", &[("linger.ms", "20")]);
    let c = kafka::effective_config(&kafka::producer_config(&s));
    assert_eq!(c.get("linger.ms").map(String::as_str), Some("20"));
    assert_eq!(
        c.get("batch.num.messages").map(String::as_str),
        Some("10000")
    );
    assert_eq!(
        c.get("message.timeout.ms").map(String::as_str),
        Some("10000")
    );
}

/// The broker-aware count equals the records sent, on the embedded broker and (with
/// `KAFKA_BROKERS`, as CI runs it against tansu) on a real one, where watermarks may not.
#[test]
fn broker_aware_count_is_exact() {
    const N: u64 = 600;
    let external = std::env::var("KAFKA_BROKERS")
        .ok()
        .filter(|b| !b.is_empty());
    let topic = format!("landed-{}", std::process::id());
    let embedded;
    let brokers = match &external {
        Some(b) => {
            kafka::ensure_topic(b, &topic, 3, Duration::from_secs(20)).expect("topic");
            b.clone()
        }
        None => {
            embedded = EmbeddedKafka::start(&topic, 3).expect("embedded broker");
            embedded.bootstrap().to_string()
        }
    };
    let method = CountMethod::for_broker(external.is_none());
    let reader = TopicReader::new(&brokers, &topic, method).expect("reader");
    let before = reader.count().expect("count");
    let (p, _) = publisher(&settings(&brokers, &topic, &[("linger.ms", "20")]));
    for i in 0..N {
        p.publish(None, format!("r{i}").as_bytes(), AckMode::Enqueued)
            .expect("enqueue");
    }
    assert_eq!(p.flush(Duration::from_secs(20)).undelivered, 0);
    let landed = reader.count().expect("count") - before;
    assert_eq!(landed, N, "counted by {method:?} on {brokers}");
    let watermarks = TopicReader::new(&brokers, &topic, CountMethod::Watermarks)
        .and_then(|r| r.count())
        .expect("watermarks");
    eprintln!("{N} records sent; {method:?} counts {landed}; high watermarks sum to {watermarks}");
}
