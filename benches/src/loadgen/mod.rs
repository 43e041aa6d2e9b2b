//! The load generator.

pub mod response;
