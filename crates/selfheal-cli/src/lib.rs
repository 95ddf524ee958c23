//! The `selfheal` command: the same planner the Lambdas run, driven from a
//! terminal against a kubeconfig cluster or, with no cluster at all, against
//! a `kubectl get -o yaml` snapshot (the pure [`selfheal_snapshot`] crate;
//! this crate only reads and writes its files).

pub mod cli;
pub mod error;
pub mod event;
mod live;
pub mod watch;

pub use cli::{Cli, Output, execute};
pub use error::Error;
