//! One runtime's delivery account over a workload: its Kafka topic (shared by the
//! runtime's server processes, one per block, which run one after another), what was sent
//! to each of them, how each exited, and at the end the one delivery check.

use anyhow::Result;
use common::landed::{CountMethod, TopicReader};
use loadgen::ids::Ids;

use super::Broker;
use crate::results::ids::{IdCheck, IdChecker, IdScope};
use crate::results::{verify, Evidence, Exit, Landed, Tally, Verification};
use crate::runtime::Runtime;
use crate::workload::Spec;

pub(super) struct Ledger {
    pub(super) topic: String,
    reader: Option<TopicReader>,
    /// Records in the topic before any load (0 for a fresh topic, but counted, not assumed).
    before: u64,
    tally: Tally,
    /// Every request id sent to its processes, and which were answered 2xx.
    ids: Ids,
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
        let reader = if !spec.publishes(runtime) {
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
            ids: Ids::default(),
            exit: Exit::Clean,
            failure: None,
        })
    }

    /// Adds one stopped process's account.
    pub(super) fn close_life(
        &mut self,
        tally: Tally,
        ids: &Ids,
        exit: Exit,
        failure: Option<String>,
    ) {
        self.tally += tally;
        self.ids.merge(ids);
        if self.exit == Exit::Clean {
            self.exit = exit;
        }
        if self.failure.is_none() {
            self.failure = failure;
        }
    }

    /// Counts what landed once every process has stopped, reads it back by request id,
    /// and checks both against every 2xx answer of every process.
    pub(super) fn verify(self, broker: &Broker) -> (Tally, Verification) {
        let (landed, ids) = match &self.reader {
            None => (Landed::NotCounted, None),
            Some(r) => read_back(r, self.before, &self.ids),
        };
        let v = verify(Evidence {
            tally: self.tally,
            landed,
            method: broker.method(),
            exit: self.exit,
            failure: self.failure,
            ids,
        });
        (self.tally, v)
    }
}

/// What landed in the topic since `before`, counted by the reader's method, and the records
/// matched to `ids`: all of them where every record can still be read (a broker we did not
/// start; the mock cluster while its topic fits its retention), else the ones it still holds.
pub fn read_back(r: &TopicReader, before: u64, ids: &Ids) -> (Landed, Option<IdCheck>) {
    let unreadable = |e: rdkafka::error::KafkaError| (Landed::Unreadable(format!("{e:#}")), None);
    if ids.is_empty() && r.method() == CountMethod::Watermarks {
        // Nothing to match: the count alone.
        return match r.count() {
            Ok(n) => (Landed::Counted(n.saturating_sub(before)), None),
            Err(e) => unreadable(e),
        };
    }
    let mut checker = (!ids.is_empty()).then(|| IdChecker::new(ids));
    let read = match r.values(|v| {
        if let Some(c) = checker.as_mut() {
            c.see(v);
        }
    }) {
        Ok(n) => n,
        Err(e) => return unreadable(e),
    };
    let total = match r.method() {
        CountMethod::Consume => read,
        CountMethod::Watermarks => match r.count() {
            Ok(n) => n,
            Err(e) => return unreadable(e),
        },
    };
    let scope = if read == total {
        IdScope::Everything
    } else {
        IdScope::Retained
    };
    (
        Landed::Counted(total.saturating_sub(before)),
        checker.map(|c| c.finish(scope)),
    )
}
