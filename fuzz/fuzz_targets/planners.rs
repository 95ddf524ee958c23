#![no_main]
//! See `selfheal_fuzz::planners` (fuzz/src) for what is checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| selfheal_fuzz::planners(data));
