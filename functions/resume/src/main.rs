//! `resume` Lambda: one `resume` of one Deployment per invocation
//! (input `RemediationRequest` with `"action": "resume"`, output `RemediationOutcome`).

use selfheal_lambda::Action;

// One thread: at 256 MB a sandbox has a fraction of a vCPU; more add only wake-ups (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    selfheal_lambda::serve_action(Action::Resume).await
}
