//! Shared plumbing of the five Kubernetes functions (`functions/{rollback,
//! pause,resume,restart,verify}`).
//!
//! Each function's `main` does the same three things, in this order (the
//! shape of aws-lambda-rust-runtime's `basic-shared-resource`):
//! [`init_logging`], [`init_state`] (configuration from the environment and
//! clients, once per process, kept in selfheal-runtime's [`Startup`]), then
//! the runtime loop ([`run`]: `lambda_runtime::run`'s composition plus
//! [`RejectNonJson`]) over [`invoke_action`] or [`invoke_verify`] borrowing
//! that state. A failed start-up does not end the process: every invocation
//! answers the start-up error's `errorType` (e.g. `NonRetryableConfig`),
//! which a state machine can `Catch`, instead of Lambda's runtime exit
//! error. Errors carry stable `errorType` names
//! ([`HandlerError::error_type`]) for the state machine's `Retry`/`Catch`.

pub mod config;
pub mod error;
pub mod handler;
pub mod metrics;
pub mod startup;
pub mod state;
pub mod verify;

pub use config::{ClusterAccess, ConfiguredEndpoint, FunctionConfig};
pub use error::HandlerError;
pub use handler::{VerifyOutput, handle_action, handle_verify, parse_request};
pub use selfheal_core::{Action, RemediationOutcome, RemediationRequest};
pub use selfheal_runtime::{RejectNonJson, init_logging, run};
pub use startup::{Startup, init_state, invoke_action, invoke_verify};
pub use state::AppState;

/// A remediation function's `main`: [`init_logging`], [`init_state`], then
/// [`run`] over [`invoke_action`] for `action`, its metric records on
/// stdout. Built once per process, the state is borrowed by every warm
/// invocation; a failed start-up still runs the loop and each invocation
/// answers its typed error.
pub async fn serve_action(action: Action) -> Result<(), lambda_runtime::Error> {
    init_logging();
    let startup = init_state(action.as_str()).await;
    let startup = &startup;
    run(move |event| async move {
        invoke_action(startup, action, event, &mut std::io::stdout()).await
    })
    .await
}

/// The `verify` function's `main`: as [`serve_action`], over
/// [`invoke_verify`].
pub async fn serve_verify() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let startup = init_state("verify").await;
    let startup = &startup;
    run(move |event| async move { invoke_verify(startup, event, &mut std::io::stdout()).await })
        .await
}
