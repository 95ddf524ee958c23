//! `rollback` Lambda: one `rollback` of one Deployment per invocation
//! (input `RemediationRequest` with `"action": "rollback"`, output `RemediationOutcome`).

use selfheal_lambda::Action;

// One thread: at 256 MB (template.yaml) a sandbox gets a fraction of a vCPU,
// so worker threads only add start-up and cross-thread wake-ups (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    selfheal_lambda::init_logging();
    // Built once per process; every warm invocation borrows it. A failed
    // start-up still runs the loop: each invocation answers its typed error.
    let startup = selfheal_lambda::init_state("rollback").await;
    let startup = &startup;
    // `lambda_runtime::run` plus RejectNonJson (typed error for non-JSON payloads).
    selfheal_lambda::run(move |event| startup.handle_action(Action::Rollback, event)).await
}
