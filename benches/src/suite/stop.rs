//! The end of a block's processes: load-generator sessions closed, every server sent
//! SIGTERM at once, and what each leaves for its runtime's ledger.

use std::time::Duration;

use super::subject::Subject;
use crate::results::{Exit, Tally};
use crate::server::ServerProcess;

/// What a stopped process leaves for its runtime's ledger: what was sent to it, how it
/// exited after SIGTERM, its first load failure, and its failed criterion samples.
pub(super) struct Ended {
    pub(super) tally: Tally,
    pub(super) ids: loadgen::ids::Ids,
    pub(super) exit: Exit,
    pub(super) failure: Option<String>,
    pub(super) failed_samples: u64,
}

/// Stops a block's processes: closes every load-generator session, sends every server
/// SIGTERM at once (they drain and flush in parallel: one flush's wait per block instead
/// of one per runtime), then waits for each. Index for index with `subjects`.
pub(super) fn finish_all(subjects: Vec<Option<Subject>>) -> Vec<Option<Ended>> {
    let stopping: Vec<Option<(ServerProcess, Ended)>> =
        subjects.into_iter().map(|s| Some(s?.end())).collect();
    stopping
        .into_iter()
        .map(|s| {
            let (server, mut ended) = s?;
            ended.exit = match server.wait(Duration::from_secs(60)) {
                Ok(st) if st.success() => Exit::Clean,
                Ok(st) => Exit::Unclean(format!("server exited with {st} after SIGTERM")),
                Err(e) => Exit::Unclean(format!("{e:#}")),
            };
            Some(ended)
        })
        .collect()
}
