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
    /// Compare result folders instead (two or more; each rebuilt from its config.json,
    /// env.json and raw/; the first is the base), e.g. `--compare
    /// results/reference/dev-2core-efficiency-1 results/latest`: prints Markdown and writes
    /// one self-contained HTML page (`--out`).
    #[arg(long, num_args = 2.., value_names = ["BASE", "RUN"])]
    compare: Option<Vec<PathBuf>>,
    /// Where `--compare` writes its page.
    #[arg(long, default_value = "compare.html", requires = "compare")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(dirs) = &args.compare {
        return compare(dirs, &args.out);
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

fn compare(dirs: &[PathBuf], out: &std::path::Path) -> ExitCode {
    // Rebuilt, not read back: every run through this version's analysis. Criterion's
    // folder is not consulted (it holds this machine's latest run, not theirs).
    let mut runs = Vec::new();
    for dir in dirs {
        match report::build(dir, None) {
            Ok(summary) => runs.push(report::compare::Run {
                name: dir.display().to_string(),
                summary,
            }),
            Err(e) => {
                eprintln!("report: --compare {}: {e:#}", dir.display());
                return ExitCode::from(2);
            }
        }
    }
    print!("{}", report::compare::markdown(&runs));
    if let Err(e) = std::fs::write(out, report::compare::html(&runs)) {
        eprintln!("report: --out {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    eprintln!("report: wrote {}", out.display());
    ExitCode::SUCCESS
}
