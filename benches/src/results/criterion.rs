//! Criterion's files, in one place: where its saved estimates are
//! (`target/criterion/<group>/<bench>/new/estimates.json`), read as req/s, from criterion's
//! folder or from a run's own copy of them ([`super::Paths::keep_estimate`]).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::analysis::Interval;

/// Criterion's estimates file for one benchmark
/// (`<criterion>/<group>/<bench>/new/estimates.json`), if it exists and was written at or
/// after `not_before` (criterion leaves the files of benchmarks that did not run).
pub fn criterion_estimate(
    criterion: &Path,
    group: &str,
    bench: &str,
    not_before: Option<SystemTime>,
) -> Option<PathBuf> {
    let path = criterion
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    if let Some(t) = not_before {
        if std::fs::metadata(&path).ok()?.modified().ok()? < t {
            return None;
        }
    }
    Some(path)
}

/// Reads criterion's estimate for one benchmark as req/s (1 element per iteration).
///
/// With `not_before`, an estimate written before it (criterion keeps `new/estimates.json` of
/// benchmarks that did not run this time) is `None`, never passed off as this run's.
pub fn criterion_interval(
    criterion: &Path,
    group: &str,
    bench: &str,
    not_before: Option<SystemTime>,
) -> Option<Interval> {
    let path = criterion_estimate(criterion, group, bench, not_before)?;
    interval_from(&path)
}

/// The req/s interval in an estimates file (criterion's, or a run's kept copy).
pub fn interval_from(path: &Path) -> Option<Interval> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    // Criterion prints the slope when it has one (linear sampling), else the mean.
    let est = v
        .get("slope")
        .filter(|s| !s.is_null())
        .or_else(|| v.get("mean"))?;
    let ns = |p: &str| est.pointer(p).and_then(serde_json::Value::as_f64);
    let (point, lo, hi) = (
        ns("/point_estimate")?,
        ns("/confidence_interval/lower_bound")?,
        ns("/confidence_interval/upper_bound")?,
    );
    // Time per request -> requests per second: the interval's ends swap.
    Some(Interval {
        lower: 1e9 / hi,
        estimate: 1e9 / point,
        upper: 1e9 / lo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criterion_estimates_become_req_per_s() {
        let dir = std::env::temp_dir().join(format!("rb-crit-{}", std::process::id()));
        let est = dir.join("g").join("tokio").join("new");
        std::fs::create_dir_all(&est).expect("mkdir");
        std::fs::write(
            est.join("estimates.json"),
            r#"{"mean":{"point_estimate":20000.0,"confidence_interval":{"lower_bound":19000.0,"upper_bound":21000.0}},
               "slope":{"point_estimate":10000.0,"confidence_interval":{"lower_bound":9000.0,"upper_bound":12500.0}}}"#,
        )
        .expect("write");
        let i = criterion_interval(&dir, "g", "tokio", None).expect("interval");
        assert!((i.estimate - 100_000.0).abs() < 1e-6);
        assert!((i.lower - 80_000.0).abs() < 1e-6);
        assert!((i.upper - 1e9 / 9000.0).abs() < 1e-6);
        assert!(criterion_interval(&dir, "g", "tokio-uring", None).is_none());
        // An estimate older than the run's start is an earlier run's: not used.
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        assert!(criterion_interval(&dir, "g", "tokio", Some(later)).is_none());
        let earlier = SystemTime::now() - std::time::Duration::from_secs(60);
        assert!(criterion_interval(&dir, "g", "tokio", Some(earlier)).is_some());
        let _ = std::fs::remove_dir_all(dir);
    }
}
