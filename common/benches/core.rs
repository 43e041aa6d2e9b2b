//! Micro-benchmarks of the shared core (targets, not tests):
//! - parse + encode of small pipelined requests: target >= 2 M requests/s on one core;
//! - publisher enqueue of 100 B records to the embedded broker: target >= 500 k records/s
//!   from one thread, all delivered (checked by high watermark after the group).
//!
//! - a connection task's poll through the task metrics (tokio-metrics' monitor and the wait
//!   histogram) against a bare one: what `--task-metrics` costs per poll.
//!
//! `cargo bench -p runtime-bench-common --bench core`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::conn::{Conn, Timeouts};
use common::embedded::EmbeddedKafka;
use common::http::parse::Parsed;
use common::http::{Limits, Parser, Response, Status};
use common::ingest::App;
use common::kafka::{self, AckMode, ProducerSettings, Publisher};
use common::landed::{CountMethod, TopicReader};
use common::metrics::Metrics;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const PIPELINE: usize = 16;

fn pipelined_batch() -> Vec<u8> {
    let one = b"POST /ingest HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: loadgen\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n";
    let mut v = Vec::new();
    for _ in 0..PIPELINE {
        v.extend_from_slice(one);
        v.extend_from_slice(&[b'x'; 100]);
    }
    v
}

fn http(c: &mut Criterion) {
    let batch = pipelined_batch();
    let mut g = c.benchmark_group("core/http");
    g.throughput(Throughput::Elements(PIPELINE as u64));
    g.bench_function(
        BenchmarkId::new("parse+encode", "100B x16 pipelined"),
        |b| {
            let mut rbuf = BytesMut::with_capacity(batch.len());
            let mut wbuf = BytesMut::with_capacity(4096);
            let accepted = Response::empty(Status::Accepted);
            b.iter(|| {
                let mut p = Parser::new(Limits::default());
                rbuf.extend_from_slice(&batch);
                while let Ok(Some(Parsed::Request(r))) = p.parse(&mut rbuf) {
                    std::hint::black_box(&r);
                    accepted.encode(&mut wbuf);
                }
                wbuf.clear();
            })
        },
    );
    // The same through the connection state and handler, with the null sink.
    let metrics = Arc::new(Metrics::new());
    let app = App {
        publisher: Publisher::null(metrics.clone()),
        metrics,
        ack: AckMode::Enqueued,
        tasks: None,
    };
    g.bench_function(
        BenchmarkId::new("conn.serve null-sink", "100B x16 pipelined"),
        |b| {
            let mut conn = Conn::new(
                Limits::default(),
                Timeouts {
                    header: Duration::from_secs(10),
                    idle: Duration::from_secs(60),
                    body: Duration::from_secs(30),
                },
            );
            let mut rbuf = BytesMut::with_capacity(batch.len());
            let mut wbuf = BytesMut::with_capacity(4096);
            b.iter(|| {
                rbuf.extend_from_slice(&batch);
                common::block_on(conn.serve(std::time::Instant::now(), &mut rbuf, &mut wbuf, &app));
                wbuf.clear();
            })
        },
    );
    g.finish();
}

fn publish(c: &mut Criterion) {
    let broker = EmbeddedKafka::start("bench", 6).expect("embedded broker");
    let settings = ProducerSettings {
        brokers: broker.bootstrap().to_string(),
        topic: "bench".into(),
        delivery_timeout: Duration::from_secs(30),
        ack: AckMode::Enqueued,
        overrides: vec![],
    };
    let metrics = Arc::new(Metrics::new());
    let p = Publisher::kafka(&kafka::producer_config(&settings), "bench", metrics.clone())
        .expect("producer");
    let reader =
        TopicReader::new(broker.bootstrap(), "bench", CountMethod::Watermarks).expect("reader");
    let value = [b'v'; 100];
    let mut sent = 0u64;
    let mut g = c.benchmark_group("core/publish");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("enqueue", "100B embedded"), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                // The queue holds 100k records; a full queue is waited out (and not timed
                // away: the wait is real cost of sustaining this rate).
                loop {
                    match p.publish(None, &value, AckMode::Enqueued) {
                        Ok(_) => break,
                        Err(kafka::PublishError::QueueFull) => {
                            std::thread::sleep(Duration::from_micros(50))
                        }
                        Err(e) => panic!("publish failed: {e}"),
                    }
                }
            }
            sent += iters;
            start.elapsed()
        })
    });
    g.finish();
    let report = p.flush(Duration::from_secs(60));
    let landed = reader.count().expect("count");
    assert_eq!(report.undelivered, 0, "records not delivered");
    assert_eq!(
        landed, sent,
        "high watermarks {landed} != records sent {sent}"
    );
    eprintln!(
        "core/publish: {sent} records sent, {landed} landed (high watermarks), 0 undelivered"
    );
}

/// A task that wakes itself and yields `n` times: `n` polls, each after a wake-up.
async fn yields(n: u64) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

fn task_metrics(c: &mut Criterion) {
    const POLLS: u64 = 10_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let tasks = common::tasks::Tasks::new(Duration::from_micros(50));
    let mut g = c.benchmark_group("core/task-poll");
    g.throughput(Throughput::Elements(POLLS));
    g.bench_function("bare", |b| {
        b.iter(|| rt.block_on(async { tokio::spawn(yields(POLLS)).await }))
    });
    g.bench_function("tokio-metrics monitor only", |b| {
        b.iter(|| {
            rt.block_on(async { tokio::spawn(tasks.monitor.instrument(yields(POLLS))).await })
        })
    });
    g.bench_function("wait histogram only", |b| {
        b.iter(|| rt.block_on(async { tokio::spawn(tasks.waits.wrap(yields(POLLS))).await }))
    });
    g.bench_function("with task metrics", |b| {
        b.iter(|| rt.block_on(async { tokio::spawn(tasks.instrument(yields(POLLS))).await }))
    });
    g.finish();
}

criterion_group!(benches, http, publish, task_metrics);
criterion_main!(benches);
