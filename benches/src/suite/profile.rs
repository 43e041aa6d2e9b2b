//! The profiling pass: after everything else on the mechanism block's processes, each compared
//! runtime's server runs a closed loop while its cores are sampled ([`crate::sampling`]);
//! its folded stacks and flame graph go to `raw/<workload>/profile/`, and tokio-uring's
//! differential flame graph against tokio's beside them.

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
    let mut tokio: Option<Stacks> = None;
    for (raw, s) in live.iter_mut() {
        if !raw.runtime.is_compared() {
            continue;
        }
        let label = raw.runtime.label();
        let pid = s.server.pid();
        let (captured, pass) = sampling::capture(&cpus, pid, label, || s.timed_run(duration));
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
        match raw.runtime {
            Runtime::Tokio => tokio = Some(server),
            Runtime::Uring => {
                if let Some(before) = &tokio {
                    // Frames are compared by name: the root (each runtime's label) is
                    // renamed to one name so the two profiles share their root.
                    let strip = |st: &Stacks, root: &str| Stacks {
                        counts: st
                            .counts
                            .iter()
                            .map(|(k, v)| (k.replacen(root, "server", 1), *v))
                            .collect(),
                    };
                    let title =
                        "tokio-uring vs tokio (red: larger share in tokio-uring, blue: smaller)";
                    record.differential_svg = flame::differential_svg(
                        &strip(before, Runtime::Tokio.label()),
                        &strip(&server, label),
                        title,
                        &raw.workload.name,
                    )
                    .map_err(|e| eprintln!("{label}: {e}"))
                    .ok()
                    .and_then(|svg| write(&dir, "tokio-uring-vs-tokio.svg", &svg));
                }
            }
            _ => {}
        }
        raw.cpu_profile = Some(record);
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
