//! Deciding from measurements: the interleaved rounds' paired ratio ([`Paired`]), and the
//! verdict per workload with the rules behind it ([`verdict`]): equivalence band, the A/A
//! noise floor, client-bound rounds, and when to stop adding rounds; and each runtime's
//! capacity at a latency objective from its latency curve ([`capacity`]). Pure functions,
//! shared by the runner (its stopping rule) and the report.

pub mod capacity;
mod paired;
pub mod verdict;

pub use paired::{median, Paired};
pub use verdict::{assess, decide, keep_going, Assessment, Rules, Verdict};
