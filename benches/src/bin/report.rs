//! `report`: regenerates the comparison report from criterion's saved estimates and the raw
//! results of the last `cargo bench` (no load is run).
//!
//! `cargo run -p runtime-bench --bin report [-- --results DIR]`

use std::path::PathBuf;
use std::process::ExitCode;

use bench::report;
use bench::results::Paths;
use clap::Parser;

/// Rebuild results/latest/{summary.json,summary.md,report.html} from saved data.
#[derive(Debug, Parser)]
struct Args {
    /// Results folder of a run (holds config.json, env.json, raw/).
    #[arg(long)]
    results: Option<PathBuf>,
    /// Criterion's output folder (default: target/criterion of this workspace). Read only
    /// for runs that did not keep their estimates beside their raw results
    /// (`raw/<workload>/<runtime>.criterion.json`, kept since 2026-11-22).
    #[arg(long)]
    criterion: Option<PathBuf>,
    /// Compare two result folders instead (each rebuilt from its config.json, env.json and
    /// raw/), e.g. `--compare results/reference/dev-2core results/latest`: prints Markdown.
    #[arg(long, num_args = 2, value_names = ["BASE", "NEW"])]
    compare: Option<Vec<PathBuf>>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(dirs) = &args.compare {
        return compare(&dirs[0], &dirs[1]);
    }
    let mut paths = Paths::discover();
    if let Some(r) = args.results {
        paths.results = r;
    }
    if let Some(c) = args.criterion {
        paths.criterion = c;
    }
    let summary = match report::build(&paths.results, Some(&paths.criterion)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("report: {e:#} (run `cargo bench` first, or pass --results)");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = report::write(
        &summary,
        &paths.results,
        &paths.criterion.join("report").join("index.html"),
    ) {
        eprintln!("report: {e:#}");
        return ExitCode::FAILURE;
    }
    println!(
        "report: wrote {}/summary.md, summary.json, report.html",
        paths.results.display()
    );
    for p in &summary.problems {
        eprintln!("report: problem: {p}");
    }
    if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn compare(base: &std::path::Path, new: &std::path::Path) -> ExitCode {
    // Rebuilt, not read back: both runs through this version's analysis. Criterion's
    // folder is not consulted (it holds this machine's latest run, not theirs).
    let load = |dir: &std::path::Path| {
        report::build(dir, None).map_err(|e| format!("--compare {}: {e:#}", dir.display()))
    };
    match (load(base), load(new)) {
        (Ok(a), Ok(b)) => {
            print!(
                "{}",
                report::compare::markdown(
                    &base.display().to_string(),
                    &a,
                    &new.display().to_string(),
                    &b
                )
            );
            ExitCode::SUCCESS
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("report: {e}");
            ExitCode::from(2)
        }
    }
}
