//! `ingest` Lambda: alarms and alerts in (EventBridge, SNS, alarm action and
//! manual requests by invocation; Alertmanager, and nothing else, through a
//! Function URL), one remediate-deployment execution per request out.

// One thread: at 256 MB (template.yaml) a sandbox gets a fraction of a vCPU,
// so worker threads only add start-up and cross-thread wake-ups (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    // selfheal_runtime, not selfheal_lambda: this function does not link the
    // kube stack it never uses.
    selfheal_runtime::init_logging();
    // Built once per process; every warm invocation borrows it. A failed
    // start-up still runs the loop: each invocation answers its typed error.
    let startup = selfheal_runtime::Startup::new("ingest", selfheal_ingest::init().await);
    // The event size limit counts the bytes Lambda delivered.
    selfheal_runtime::serve_measured(&startup, |ingest, event, received_bytes| {
        ingest.handle(event.payload, received_bytes)
    })
    .await
}
