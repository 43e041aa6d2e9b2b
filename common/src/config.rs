//! The one CLI both servers share. Bad values are refused by clap with a message that
//! names the flag.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::http::{parse::MAX_HEADERS_CAP, Limits};
use crate::kafka::{AckMode, ProducerSettings, SinkKind};

/// How the tokio server lays out its runtime (server-uring is always per-core).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flavour {
    /// One work-stealing multi-thread runtime with one listener: how most services run.
    MultiThread,
    /// One current-thread runtime per thread, each with its own SO_REUSEPORT listener.
    PerCore,
}

/// A server binary's command line: the flags both servers share, then its own (`X`).
///
/// An HTTP ingest server that publishes request bodies to Kafka.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Cli<X: clap::Args> {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub own: X,
}

/// No flags of its own (server-tokio: everything it takes is shared).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct NoFlags {}

/// The flags both servers share.
///
/// An HTTP ingest server that publishes request bodies to Kafka.
#[derive(Debug, Clone, Parser, serde::Serialize)]
#[command(version, about)]
pub struct ServerArgs {
    /// Address to listen on; port 0 picks a free port (printed on the readiness line).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Worker threads (runtimes for per-core and server-uring); default: available cores.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,

    /// Runtime layout (server-tokio only; server-uring is per-core by construction).
    #[arg(long, value_enum, default_value_t = Flavour::MultiThread)]
    pub flavour: Flavour,

    /// listen() backlog; the kernel caps it at net.core.somaxconn.
    #[arg(long, default_value_t = 4096)]
    pub backlog: u32,

    /// Largest request body, e.g. 1MiB, 16KiB, 1000; larger gets 413.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub max_body: usize,

    /// Largest request head (request line + headers); larger gets 431.
    #[arg(long, default_value = "8KiB", value_parser = parse_size)]
    pub max_header_bytes: usize,

    /// Most header fields per request (at most 128); more gets 431.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=MAX_HEADERS_CAP as i64))]
    pub max_headers: u16,

    /// Time allowed for a request head to arrive once it started (slowloris gets 408).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// Time a keep-alive connection may sit idle, or a body may stall, before it is closed.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Time a whole request body may take once its head is in (a trickling body gets 408).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,

    /// On SIGTERM/SIGINT: how long in-flight requests and the producer flush may take.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// When a POST counts as done: queued in the producer (202) or acknowledged by the broker (200).
    #[arg(long, value_enum, default_value_t = AckMode::Enqueued)]
    pub ack: AckMode,

    /// How long a record may wait for the broker (message.timeout.ms); then 503 with ack delivered.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub delivery_timeout: Duration,

    /// Monitor each connection task's polls and scheduling delay (tokio-metrics), exposed on
    /// /metrics; `false` spawns connections unmonitored.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub task_metrics: bool,

    /// A poll, or a wait between a task's wake-up and its poll, longer than this counts as
    /// slow in the task metrics.
    #[arg(long, default_value = "50us", value_parser = parse_duration)]
    pub slow_poll: Duration,

    /// Where records go; `null` measures the server without Kafka.
    #[arg(long, value_enum, default_value_t = SinkKind::Kafka)]
    pub sink: SinkKind,

    /// Kafka bootstrap servers; absent: start an embedded broker in this process.
    #[arg(long, env = "KAFKA_BROKERS")]
    pub brokers: Option<String>,

    /// Topic to publish to (created if missing).
    #[arg(long, default_value = "ingest")]
    pub topic: String,

    /// Partitions when the topic is created.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub partitions: i32,

    /// librdkafka producer property, kcat-style: -X linger.ms=10 (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub producer_property: Vec<(String, String)>,

    /// Print the effective producer configuration at start.
    #[arg(long)]
    pub print_config: bool,
}

impl ServerArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_header_bytes: self.max_header_bytes,
            max_headers: usize::from(self.max_headers),
            max_body: self.max_body,
        }
    }

    /// Threads to use: `--threads` or the available cores.
    pub fn threads(&self) -> usize {
        self.threads.map(usize::from).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    pub fn producer_settings(&self, brokers: &str) -> ProducerSettings {
        ProducerSettings {
            brokers: brokers.to_string(),
            topic: self.topic.clone(),
            delivery_timeout: self.delivery_timeout,
            ack: self.ack,
            overrides: self.producer_property.clone(),
        }
    }
}

/// `10s`, `500ms`, `2m`, `1.5s`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" => n / 1e6,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit `{other}` in `{s}` (use ms, s, m, h)")),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `1MiB`, `16KiB`, `100`, `1k`, `2M`; binary and decimal units.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 100, 16KiB, 1MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{s}` (use KiB, MiB, k, M)"
            ))
        }
    };
    n.checked_mul(mult)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| format!("`{s}` is too large"))
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE (e.g. -X linger.ms=10)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3 parsecs").is_err());
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("16KiB"), Ok(16 << 10));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("2k"), Ok(2000));
        assert!(parse_size("-1").is_err());
        assert!(parse_size("1 parsec").is_err());
        assert!(parse_size("99999999999999999999").is_err());
    }

    #[test]
    fn bad_flag_values_name_the_flag() {
        for (args, flag) in [
            (&["s", "--max-body", "lots"][..], "--max-body"),
            (&["s", "--header-timeout", "soon"][..], "--header-timeout"),
            (&["s", "--ack", "maybe"][..], "--ack"),
            (&["s", "--listen", "localhost"][..], "--listen"),
            (&["s", "-X", "linger.ms"][..], "-X"),
            (&["s", "--threads", "0"][..], "--threads"),
        ] {
            let err = ServerArgs::try_parse_from(args)
                .expect_err("must refuse")
                .to_string();
            assert!(err.contains(flag), "{args:?}: {err}");
        }
    }

    #[test]
    fn defaults_parse() {
        let a = ServerArgs::try_parse_from(["s"]).expect("defaults");
        assert_eq!(a.limits(), Limits::default());
        assert_eq!(a.ack, AckMode::Enqueued);
        let a = ServerArgs::try_parse_from(["s", "-X", "linger.ms=10", "-X", "acks=1"])
            .expect("overrides");
        assert_eq!(
            a.producer_property,
            vec![
                ("linger.ms".into(), "10".into()),
                ("acks".into(), "1".into())
            ]
        );
    }
}
