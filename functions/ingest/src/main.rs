//! `ingest` Lambda: alarms and alerts in (EventBridge, SNS, alarm action and
//! manual requests by invocation; Alertmanager, and nothing else, through a
//! Function URL), one remediate-deployment execution per request out.

use lambda_runtime::{LambdaEvent, service_fn};

// One thread: at 256 MB (template.yaml) a sandbox gets a fraction of a vCPU,
// so worker threads only add start-up and cross-thread wake-ups (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    // The same subscriber as `selfheal_lambda::init_logging` (honours
    // AWS_LAMBDA_LOG_FORMAT / AWS_LAMBDA_LOG_LEVEL), called directly so this
    // function does not link the kube stack it never uses.
    lambda_runtime::tracing::init_default_subscriber();
    // Built once per process; every warm invocation borrows it.
    let ingest = match selfheal_ingest::init().await {
        Ok(ingest) => ingest,
        Err(error) => {
            tracing::error!(
                error_type = error.error_type(),
                error = %error,
                "ingest initialisation failed"
            );
            // Still serve (exiting would surface as Lambda's Runtime.ExitError):
            // each invocation answers the start-up error's errorType and message.
            let failure = lambda_runtime::Diagnostic::from(error);
            return lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| {
                std::future::ready(Err::<serde_json::Value, _>(failure.clone()))
            }))
            .await;
        }
    };
    let ingest = &ingest;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            ingest.handle(event.payload).await
        },
    ))
    .await
}
