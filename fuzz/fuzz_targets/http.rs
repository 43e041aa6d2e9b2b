//! Fuzzes the HTTP parser and the connection state; the property is
//! `common::http::fuzzing::check` (see there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::http::fuzzing::check(data));
