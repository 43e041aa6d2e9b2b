//! The profiling pass: after everything else on the mechanism block's processes, each compared
//! runtime's server runs a closed loop while its cores are sampled ([`crate::sampling`]);
//! its folded stacks and flame graph go to `raw/<workload>/profile/`, with differential
//! flame graphs beside them: tokio-uring against tokio, and each runtime against its
//! null-sink control (what publishing to Kafka adds).

use std::path::Path;
use std::time::Duration;

use super::Subject;
use crate::layout::Layout;
use crate::results::RawResult;
use crate::runtime::Runtime;
use crate::sampling::{self, flame, stacks::Stacks};

/// Profiles every compared runtime; records each profile (or why there is none).
pub(super) fn run(
    live: &mut [(&mut RawResult, &mut Subject)],
    layout: &Layout,
    raw_dir: &Path,
    duration: Duration,
) {
    let cpus = layout.server_cpus().unwrap_or_else(|| layout.cores());
    let dir = raw_dir.join("profile");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        for (raw, _) in live.iter_mut() {
            raw.cpu_profile_skipped = Some(format!("creating {}: {e}", dir.display()));
        }
        return;
    }
    let mut profiled: Vec<(Runtime, Stacks)> = Vec::new();
    for (raw, s) in live.iter_mut() {
        if !raw.runtime.is_profiled() {
            continue;
        }
        let label = raw.runtime.label();
        let pid = s.server.pid();
        let (captured, pass) =
            sampling::capture(crate::transport::servers(), &cpus, pid, label, || {
                s.timed_run(duration)
            });
        let captured = match (captured, pass) {
            (Ok(c), Some(pass)) => (c, pass),
            (Err(why), _) => {
                eprintln!("{}: no CPU profile: {why}", raw.runtime.label());
                raw.cpu_profile_skipped = Some(why);
                continue;
            }
            (Ok(_), None) => {
                raw.cpu_profile_skipped = Some("the profiling pass's load failed".into());
                continue;
            }
        };
        let (c, (report, sample)) = captured;
        let stem = label;
        let mut record = c.record(label, &cpus);
        record.duration_s = sample.wall_s;
        record.rate = report.rate;
        record.cpu_us_per_request = sample.cpu_us_per_request();
        let server = c.stacks.under(label);
        record.folded = write(
            &dir,
            &format!("{stem}.folded"),
            server.to_folded().as_bytes(),
        );
        let subtitle = format!(
            "{} on cores {:?}: {} samples of the server, every {:.0} µs of CPU, over a {:.1} s closed-loop pass at {:.0} req/s",
            raw.workload.name,
            cpus,
            record.server_samples,
            record.period_us,
            record.duration_s,
            record.rate
        );
        record.svg = flame::svg(&server, label, &subtitle)
            .map_err(|e| eprintln!("{label}: {e}"))
            .ok()
            .and_then(|svg| write(&dir, &format!("{stem}.svg"), &svg));
        profiled.push((raw.runtime, server));
        raw.cpu_profile = Some(record);
    }
    // Differentials, each recorded on the second runtime's profile: tokio-uring against
    // tokio; tokio against its null-sink control (red: what publishing to Kafka adds).
    let stacks = |rt: Runtime| profiled.iter().find(|(r, _)| *r == rt).map(|(_, s)| s);
    for (raw, _) in live.iter_mut() {
        let rt = raw.runtime;
        let (before, after, file, title) = match (rt, rt.kafka_partner()) {
            (Runtime::Uring, _) => (
                Runtime::Tokio,
                Runtime::Uring,
                "tokio-uring-vs-tokio.svg".to_string(),
                "tokio-uring vs tokio (red: larger share in tokio-uring, blue: smaller)"
                    .to_string(),
            ),
            (null, Some(kafka)) => (
                null,
                kafka,
                format!("{}-vs-{}.svg", kafka.label(), null.label()),
                format!(
                    "{} vs {} (red: larger share when publishing to Kafka, blue: smaller)",
                    kafka.label(),
                    null.label()
                ),
            ),
            _ => continue,
        };
        let (Some(a), Some(b), Some(record)) =
            (stacks(before), stacks(after), raw.cpu_profile.as_mut())
        else {
            continue;
        };
        // Frames are compared by name: each profile's root (its runtime's label) is
        // renamed to one name so the two share their root.
        let strip = |st: &Stacks, root: &str| Stacks {
            counts: st
                .counts
                .iter()
                .map(|(k, v)| (k.replacen(root, "server", 1), *v))
                .collect(),
        };
        record.differential_svg = flame::differential_svg(
            &strip(a, before.label()),
            &strip(b, after.label()),
            &title,
            &raw.workload.name,
        )
        .map_err(|e| eprintln!("{}: {e}", rt.label()))
        .ok()
        .and_then(|svg| write(&dir, &file, &svg));
    }
}

/// Writes `profile/<name>`; its path relative to the raw folder, or `None` (said on
/// stderr) if it could not be written.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> Option<String> {
    match std::fs::write(dir.join(name), bytes) {
        Ok(()) => Some(format!("profile/{name}")),
        Err(e) => {
            eprintln!("profile: writing {}: {e}", dir.join(name).display());
            None
        }
    }
}
