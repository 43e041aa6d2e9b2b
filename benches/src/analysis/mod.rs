//! Deciding from measurements: the verdict per workload from its blocks of fresh server
//! processes ([`verdict`], intervals over blocks in [`blocks`], the turn order inside a
//! block in [`design`]); the per-round paired ratio of CPU per request ([`Paired`]); criterion's
//! req/s intervals and their ratio ([`Interval`]); and
//! each runtime's capacity at a latency objective from its latency curve ([`capacity`]).
//! Pure functions, shared by the runner and the report.

pub mod blocks;
pub mod capacity;
pub mod design;
mod efficiency;
mod interval;
pub mod limits;
mod paired;
pub mod verdict;

pub use blocks::{BlockEstimate, Variance};
pub use interval::Interval;
pub use limits::{Limit, Limits};
pub use paired::{median, Paired};
pub use verdict::{assess, decide, Assessment, Rules, Verdict};
