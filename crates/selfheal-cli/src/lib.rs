//! The `selfheal` command: the same planner the Lambdas run, driven from a
//! terminal against a kubeconfig cluster or, with no cluster at all, against
//! a `kubectl get -o yaml` snapshot (see [`snapshot`]).

pub mod cli;
pub mod error;
pub mod event;
mod live;
pub mod snapshot;

pub use cli::{Cli, Output, execute};
pub use error::Error;
pub use snapshot::Snapshot;
