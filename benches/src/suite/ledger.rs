//! One runtime's delivery account over a workload: its Kafka topic (shared by the
//! runtime's server processes, one per block, which run one after another), what was sent
//! to each of them, how each exited, and at the end the one delivery check.

use anyhow::Result;
use common::kafka::SinkKind;
use common::landed::TopicReader;

use super::Broker;
use crate::results::{verify, Evidence, Exit, Landed, Tally, Verification};
use crate::runtime::Runtime;
use crate::workload::Spec;

pub(super) struct Ledger {
    pub(super) topic: String,
    reader: Option<TopicReader>,
    /// Records in the topic before any load (0 for a fresh topic, but counted, not assumed).
    before: u64,
    tally: Tally,
    /// The first unclean exit of any of its processes.
    exit: Exit,
    /// The first load failure (stall, time limit, load-generator error).
    pub(super) failure: Option<String>,
}

impl Ledger {
    /// Creates the runtime's topic for this workload and counts what it holds.
    pub(super) fn open(spec: &Spec, runtime: Runtime, broker: &Broker) -> Result<Self> {
        let topic = format!(
            "bench-{}-{}-{}",
            spec.name,
            runtime.label(),
            std::process::id()
        );
        let reader = if spec.sink == SinkKind::Null {
            None
        } else {
            broker.topic(&topic)?;
            Some(TopicReader::new(&broker.addr, &topic, broker.method())?)
        };
        let before = reader
            .as_ref()
            .map(TopicReader::count)
            .transpose()?
            .unwrap_or(0);
        Ok(Self {
            topic,
            reader,
            before,
            tally: Tally::default(),
            exit: Exit::Clean,
            failure: None,
        })
    }

    /// Adds one stopped process's account.
    pub(super) fn close_life(&mut self, tally: Tally, exit: Exit, failure: Option<String>) {
        self.tally += tally;
        if self.exit == Exit::Clean {
            self.exit = exit;
        }
        if self.failure.is_none() {
            self.failure = failure;
        }
    }

    /// Counts what landed once every process has stopped, and checks it against every 2xx
    /// answer of every process.
    pub(super) fn verify(self, broker: &Broker) -> (Tally, Verification) {
        let landed = match self.reader.as_ref().map(TopicReader::count) {
            None => Landed::NotCounted,
            Some(Ok(n)) => Landed::Counted(n.saturating_sub(self.before)),
            Some(Err(e)) => Landed::Unreadable(format!("{e:#}")),
        };
        let v = verify(Evidence {
            tally: self.tally,
            landed,
            method: broker.method(),
            exit: self.exit,
            failure: self.failure,
        });
        (self.tally, v)
    }
}
