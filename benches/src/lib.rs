//! The instruments: the load generator, server process control, the comparison suite behind
//! `cargo bench`, and its report.
//!
//! - [`loadgen`]: the load generator engine (the `loadgen` binary is its CLI).
//! - [`server`]: build, start and stop server processes; never leave one behind.
//! - [`suite`]: profiles, workloads, and the per-workload runner with its delivery check
//!   (`benches/compare.rs` is the criterion entry point).
//! - [`report`]: env.json, summary.json/md and report.html (the `report` binary rebuilds them).
//! - [`preflight`]: limits and sysctls checked (and the fd limit raised) before any load.
//! - [`layout`]: CPU layouts (`shared`, `split`) for servers vs load generator and broker.

pub mod layout;
pub mod loadgen;
pub mod preflight;
pub mod report;
pub mod server;
pub mod suite;
