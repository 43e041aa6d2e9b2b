//! Deciding from measurements: the interleaved rounds' paired ratio ([`Paired`]), and the
//! verdict per workload with the rules behind it ([`verdict`]): equivalence band, the A/A
//! noise floor, client-bound rounds, and when to stop adding rounds. Pure functions, shared
//! by the runner (its stopping rule) and the report.

mod paired;
pub mod verdict;

pub use paired::Paired;
pub use verdict::{assess, decide, keep_going, Assessment, Rules, Verdict};
