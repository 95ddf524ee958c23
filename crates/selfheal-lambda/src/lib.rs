//! Shared plumbing of the selfheal Lambda functions (`functions/*`).
//!
//! Each function's `main` does the same three things, in this order (the
//! shape of aws-lambda-rust-runtime's `basic-shared-resource`):
//! [`init_logging`], [`init_state`] (configuration from the environment and
//! clients, once per process), then the runtime loop over
//! [`Startup::handle_action`] or [`Startup::handle_verify`] borrowing that
//! state. A failed start-up does not end the process: the runtime still
//! starts and every invocation answers the start-up error's `errorType`
//! (e.g. `NonRetryableConfig`), which a state machine can `Catch`, instead
//! of Lambda's runtime exit error. The loop is `lambda_runtime::run`'s own
//! composition (`Runtime::new(handler).layer(TracingLayer::new())`) plus
//! [`RejectNonJson`], so even a non-JSON payload gets our `errorType`. Errors carry
//! stable `errorType` names ([`HandlerError::error_type`]) for the state
//! machine's `Retry`/`Catch`.

pub mod config;
pub mod error;
pub mod handler;
pub mod metrics;
pub mod payload;
pub mod startup;
pub mod state;
pub mod verify;

pub use config::{ClusterAccess, ConfiguredEndpoint, FunctionConfig};
pub use error::HandlerError;
pub use handler::{VerifyOutput, handle_action, handle_verify, parse_request};
pub use payload::RejectNonJson;
pub use selfheal_core::{Action, RemediationOutcome, RemediationRequest};
pub use selfheal_runtime::{init_logging, run};
pub use startup::{InitFailure, Startup};
pub use state::AppState;

/// A remediation function's `main`: [`init_logging`], [`init_state`], then
/// [`run`] over [`Startup::handle_action`] for `action`. Built once per
/// process, the state is borrowed by every warm invocation; a failed
/// start-up still runs the loop and each invocation answers its typed error.
pub async fn serve_action(action: Action) -> Result<(), lambda_runtime::Error> {
    init_logging();
    let startup = init_state(action.as_str()).await;
    let startup = &startup;
    run(move |event| startup.handle_action(action, event)).await
}

/// The `verify` function's `main`: as [`serve_action`], over
/// [`Startup::handle_verify`].
pub async fn serve_verify() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let startup = init_state("verify").await;
    let startup = &startup;
    run(move |event| startup.handle_verify(event)).await
}

/// Build the per-process state from the environment. A failure is logged
/// once, with its `errorType`, and kept in the [`Startup`]: `main` still
/// starts the runtime, and every invocation answers with that error.
pub async fn init_state(function: &str) -> Startup {
    let result = AppState::from_env().await;
    match &result {
        Ok(state) => tracing::info!(
            function,
            pid = std::process::id(),
            config = ?state.config(),
            "selfheal function initialised"
        ),
        Err(error) => tracing::error!(
            function,
            error_type = error.error_type(),
            error = %error,
            "selfheal function initialisation failed"
        ),
    }
    Startup::from(result)
}
