//! Why a server could not start. Its own module: `listen.rs` and `service.rs` both return
//! it, and neither should import the other for a type. (The HTTP contract's errors are
//! `http::HttpError`, inside the sans-IO parser; publishing's are `kafka::PublishError`.)

use std::net::SocketAddr;

/// Why a server could not start: printed as is, then the process exits 1 (or
/// [`crate::service::EXIT_IO_URING_UNAVAILABLE`]).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the embedded Kafka broker: {0}")]
    EmbeddedBroker(rdkafka::error::KafkaError),
    #[error("cannot create the Kafka producer: {0}")]
    Producer(rdkafka::error::KafkaError),
    #[error("--listen {addr}: address already in use (is another server still running? SO_REUSEPORT would silently share its port, so we refuse)")]
    PortInUse { addr: SocketAddr },
    #[error("--listen {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("io_uring unavailable: {0}")]
    IoUringUnavailable(String),
    #[error("{0}")]
    Conflict(String),
}
