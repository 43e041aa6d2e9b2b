//! `cargo bench`: tokio vs tokio-uring, workload by workload. See `bench::run` for the run
//! and `bench::settings` for the variables it reads (the README's table lists them).
//!
//! A positional argument filters workloads by substring: `cargo bench -- keepalive`;
//! alternatives with `|`: `cargo bench -- 'c256|pipelined'`.

use std::process::ExitCode;

use bench::run::Run;
use bench::settings::Settings;
use criterion::Criterion;

fn main() -> ExitCode {
    let outcome = Settings::from_env().and_then(|settings| {
        let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
        let run = Run::prepare(settings, filter.as_deref())?;
        let mut c = Criterion::default().configure_from_args();
        let problems = run
            .specs
            .iter()
            .flat_map(|s| run.measure(&mut c, s))
            .collect();
        c.final_summary();
        run.finish(problems)
    });
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cargo bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
