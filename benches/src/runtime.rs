//! The runtimes (and ring setups) a run compares: a vocabulary type shared by the runner,
//! the results schema and the report, apart from the process control that starts them
//! (`server/`).

/// Which server, and for tokio which runtime layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    /// server-tokio, work-stealing multi-thread runtime (default flavour).
    Tokio,
    /// server-tokio, one current-thread runtime per core (same layout as server-uring).
    TokioPerCore,
    /// server-uring.
    Uring,
    /// A second server-tokio, same binary and flags as [`Runtime::Tokio`]: the A/A control
    /// whose ratio to tokio in the interleaved rounds is the machine's noise floor.
    TokioTwin,
    /// server-uring with `--coop-taskrun --single-issuer`.
    UringCoopSingle,
    /// server-uring with `--sqpoll` (a kernel thread polls the submission queue).
    UringSqpoll,
    /// server-tokio with `--sink null` (publishes nowhere): beside [`Runtime::Tokio`] in the
    /// same blocks, what Kafka costs it.
    TokioNullSink,
    /// server-uring with `--sink null`: what Kafka costs [`Runtime::Uring`].
    UringNullSink,
}

impl Runtime {
    pub const ALL: [Runtime; 8] = [
        Runtime::Tokio,
        Runtime::TokioPerCore,
        Runtime::Uring,
        Runtime::TokioTwin,
        Runtime::UringCoopSingle,
        Runtime::UringSqpoll,
        Runtime::TokioNullSink,
        Runtime::UringNullSink,
    ];

    /// Short label used in benchmark ids and reports.
    pub fn label(self) -> &'static str {
        match self {
            Runtime::Tokio => "tokio",
            Runtime::TokioPerCore => "tokio-per-core",
            Runtime::Uring => "tokio-uring",
            Runtime::TokioTwin => "tokio-twin",
            Runtime::UringCoopSingle => "tokio-uring-coop-single",
            Runtime::UringSqpoll => "tokio-uring-sqpoll",
            Runtime::TokioNullSink => "tokio-null-sink",
            Runtime::UringNullSink => "tokio-uring-null-sink",
        }
    }

    /// Runs server-uring (with whatever ring setup).
    pub fn is_uring(self) -> bool {
        matches!(
            self,
            Runtime::Uring
                | Runtime::UringCoopSingle
                | Runtime::UringSqpoll
                | Runtime::UringNullSink
        )
    }

    /// Measured by criterion, the latency pass and the latency curve: the runtimes being
    /// compared. The A/A twin and the null sinks (controls) run in the blocks, the
    /// mechanism round and, null sinks only, the profiling pass.
    pub fn is_compared(self) -> bool {
        !matches!(self, Runtime::TokioTwin) && self.kafka_partner().is_none()
    }

    /// Profiled in the mechanism block (every runtime but the twin, a copy of tokio).
    pub fn is_profiled(self) -> bool {
        self != Runtime::TokioTwin
    }

    /// For a null-sink control, the runtime it measures Kafka's cost for.
    pub fn kafka_partner(self) -> Option<Runtime> {
        match self {
            Runtime::TokioNullSink => Some(Runtime::Tokio),
            Runtime::UringNullSink => Some(Runtime::Uring),
            _ => None,
        }
    }

    /// The flags that make a server binary this runtime (flavour, ring setup).
    pub fn flavour_args(self) -> &'static [&'static str] {
        match self {
            Runtime::TokioPerCore => &["--flavour", "per-core"],
            Runtime::UringCoopSingle => &["--coop-taskrun", "--single-issuer"],
            Runtime::UringSqpoll => &["--sqpoll"],
            Runtime::TokioNullSink | Runtime::UringNullSink => &["--sink", "null"],
            _ => &[],
        }
    }
}
