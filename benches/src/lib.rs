//! The instruments: the load generator, server process control, and (in `benches/`) the
//! criterion suite that compares server-tokio and server-uring.
//!
//! - [`loadgen`]: the load generator engine (library; the `loadgen` binary is its CLI).
//! - [`server`]: build, start, and stop server processes; never leave one behind.

pub mod loadgen;
pub mod server;
