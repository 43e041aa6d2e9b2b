//! The harness: server process control, the comparison suite behind `cargo bench`, its
//! verdicts and its report. ARCHITECTURE.md (at the repository root) draws the flows. The
//! load generator is its own crate (`benches/loadgen/`, `loadgen`): this one drives it.
//!
//! - [`settings`]: every variable a run reads, read once; [`run`]: a whole `cargo bench`
//!   (prepare, measure each workload, finish), which `benches/compare.rs` calls.
//! - [`runtime`]: the runtimes and ring setups compared (a vocabulary type).
//! - [`server`]: build, start and stop server processes; never leave one behind.
//! - [`workload`]: profiles, their timings and the workload catalogue.
//! - [`suite`]: the per-workload runner (blocks of fresh processes, criterion, curves, the
//!   delivery account).
//! - [`analysis`]: the verdict over blocks, its interval and turn order, who limited each
//!   turn, capacities (pure), for the runner and the report.
//! - [`results`]: the results schema and the one delivery check (by count and by request
//!   id), shared by the suite, `soak` and the report.
//! - [`report`]: env.json, summary.json/md and report.html (the `report` binary rebuilds them).
//! - [`host`]: the machine's limits, sysctls, cores and io_uring, read once;
//!   [`preflight`]: what those mean for a run (and the fd limit raised) before any load.
//! - [`layout`]: CPU layouts (`shared`, `split`) for servers vs load generator and broker.
//! - [`topology`]: where the servers run on the network (`local`, `netns` namespaces).
//! - [`calibrate`]: the machine's unit costs (syscall, epoll, io_uring NOP, loopback,
//!   wake-up, context switch), measured once per run on the servers' cores.
//! - [`cores`], [`usage`], [`syscalls`]: whole-core accounting, a process's CPU and
//!   scheduler figures, syscall counting by tracepoints — what a turn measures besides
//!   its rate; [`sampling`]: CPU profiles (flame graphs) of a server under load.

pub mod analysis;
pub mod calibrate;
pub mod cores;
pub mod host;
pub mod layout;
pub mod preflight;
pub mod report;
pub mod results;
pub mod run;
pub mod runtime;
pub mod sampling;
pub mod server;
pub mod settings;
pub mod suite;
pub mod topology;
pub mod transport;
pub mod usage;
pub mod workload;
