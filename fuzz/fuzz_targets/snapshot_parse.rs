#![no_main]
//! See `selfheal_fuzz::snapshot_parse` (fuzz/src) for what is checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| selfheal_fuzz::snapshot_parse(data));
