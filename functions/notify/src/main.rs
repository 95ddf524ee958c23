//! `notify` Lambda: one state machine event in, one SNS message (and Slack
//! post) out; returns deploymentHealth / fleet summary. See `selfheal_notify`.

// One thread: at 256 MB (template.yaml) a sandbox gets a fraction of a vCPU,
// so worker threads only add start-up and cross-thread wake-ups (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    selfheal_runtime::init_logging();
    // Built once per process: configuration, SDK clients, the Slack URL. A
    // failed start-up still runs the loop: each invocation answers its typed error.
    let notifier = selfheal_notify::Notifier::from_env().await;
    let startup = selfheal_runtime::Startup::new("notify", notifier);
    selfheal_runtime::serve(&startup, |notifier, event| notifier.handle(event.payload)).await
}
