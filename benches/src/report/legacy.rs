//! The one thing a rebuilt report reads from the folder's own `summary.json`: the criterion
//! intervals it recorded, for runs from before a run kept its own copy of criterion's
//! estimates (their raw results hold everything else the report needs). The field sits at
//! the same place in v1 (fields copied) and v2 (raw result flattened) summaries, so a
//! folder rebuilt once keeps its intervals. Nothing else is read back: the report is
//! rebuilt from the run's folder.

use std::path::Path;

use crate::analysis::Interval;
use crate::runtime::Runtime;

/// The folder's summary.json, if it has one.
#[derive(Debug, Default)]
pub(super) struct RecordedIntervals(Option<serde_json::Value>);

impl RecordedIntervals {
    pub fn read(results: &Path) -> Self {
        Self(
            std::fs::read_to_string(results.join("summary.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok()),
        )
    }

    /// The criterion interval the summary recorded for `workload`/`runtime`.
    pub fn interval(&self, workload: &str, runtime: Runtime) -> Option<Interval> {
        let rt = serde_json::to_value(runtime).ok()?;
        let w = (self.0.as_ref()?.get("workloads")?.as_array()?.iter())
            .find(|w| w.pointer("/spec/name").and_then(|n| n.as_str()) == Some(workload))?;
        let r = (w.get("runtimes")?.as_array()?.iter()).find(|r| r.get("runtime") == Some(&rt))?;
        serde_json::from_value(r.get("thrpt")?.clone()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_recorded_interval_in_v1_and_v2_summaries() {
        let dir = std::env::temp_dir().join(format!("rb-legacy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let summary = |schema: &str| {
            format!(
                r#"{{"schema":"{schema}","workloads":[{{"spec":{{"name":"w"}},"runtimes":[
                {{"runtime":"uring","thrpt":{{"lower":1.0,"estimate":2.0,"upper":3.0}}}}]}}]}}"#
            )
        };
        for schema in ["runtime-bench/summary/v1", crate::report::SCHEMA] {
            std::fs::write(dir.join("summary.json"), summary(schema)).expect("write");
            let i = RecordedIntervals::read(&dir).interval("w", Runtime::Uring);
            assert_eq!(i.map(|i| i.estimate), Some(2.0));
            assert!(RecordedIntervals::read(&dir)
                .interval("w", Runtime::Tokio)
                .is_none());
            assert!(RecordedIntervals::read(&dir)
                .interval("x", Runtime::Uring)
                .is_none());
        }
        std::fs::remove_file(dir.join("summary.json")).expect("rm");
        assert!(RecordedIntervals::read(&dir)
            .interval("w", Runtime::Uring)
            .is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
