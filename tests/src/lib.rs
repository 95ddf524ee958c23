//! Shared helpers for the cross-crate tests.
//!
//! This crate only exists for the tests: a helper that cannot do its job
//! panics with the reason, which is how a test reports a broken environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod asl;
pub mod emulator;
pub mod recordings;
pub mod secrets;
pub mod stats;
pub mod tools;
pub mod yaml;
