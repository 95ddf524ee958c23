//! `resume` Lambda: one `resume` of one Deployment per invocation
//! (input `RemediationRequest` with `"action": "resume"`, output `RemediationOutcome`).

use lambda_runtime::service_fn;
use selfheal_lambda::{Action, handle_action};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    selfheal_lambda::init_logging();
    // Built once per process; every warm invocation borrows it.
    let state = selfheal_lambda::init_state("resume").await?;
    let state = &state;
    lambda_runtime::run(service_fn(move |event| {
        handle_action(state, Action::Resume, event)
    }))
    .await
}
