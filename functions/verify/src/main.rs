//! `verify` Lambda: `kubectl rollout status` for the state machine's wait loop
//! (input: a request or an outcome; output `{"state", "message", "target"}`).

use lambda_runtime::service_fn;
use selfheal_lambda::handle_verify;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    selfheal_lambda::init_logging();
    // Built once per process; every warm invocation borrows it.
    let state = selfheal_lambda::init_state("verify").await?;
    let state = &state;
    lambda_runtime::run(service_fn(move |event| handle_verify(state, event))).await
}
