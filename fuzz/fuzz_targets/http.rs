//! Fuzzes the HTTP parser and the connection state; the property is
//! `common::fuzzing::check` (see there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::fuzzing::check(data));
