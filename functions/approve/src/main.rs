//! `approve` Lambda (Function URL, auth NONE: the link id is the capability).
//! Redeems the single-use approve/deny links `notify` mints; see `selfheal_approval`.

// One thread: at 256 MB (template.yaml) a sandbox gets a fraction of a vCPU,
// so worker threads only add start-up and cross-thread wake-ups (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    selfheal_runtime::init_logging();
    // Built once per process; every warm invocation borrows it. A failed
    // start-up still runs the loop: each invocation answers its typed error.
    let approver = selfheal_approval::Approver::from_env().await;
    let startup = selfheal_runtime::Startup::new("approve", approver);
    selfheal_runtime::serve(&startup, |approver, event| async move {
        approver.handle_event(&event.payload).await
    })
    .await
}
