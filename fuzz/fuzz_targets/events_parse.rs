#![no_main]
//! See `selfheal_fuzz::events_parse` (fuzz/src) for what is checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| selfheal_fuzz::events_parse(data));
