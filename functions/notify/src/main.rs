//! `notify` Lambda: one state machine event in, one SNS message (and Slack
//! post) out; returns deploymentHealth / fleet summary. See the library docs.

use lambda_runtime::{LambdaEvent, service_fn};
use selfheal_notify::{Error, Notifier, NotifyConfig, NotifyEvent, NotifyOutput};
use serde_json::Value;

// One thread: at 256 MB (template.yaml) a sandbox gets a fraction of a vCPU,
// so worker threads only add start-up and cross-thread wake-ups (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // Built once per process: configuration, SDK clients, the Slack URL.
    let init = async {
        let config = NotifyConfig::from_env()?;
        let sdk = selfheal_aws::load().await;
        Notifier::new(config, &sdk).await
    };
    let notifier = match init.await {
        Ok(notifier) => notifier,
        Err(e) => {
            tracing::error!(error_type = e.error_type(), error = %e, "notify initialisation failed");
            // Still serve (exiting would surface as Lambda's Runtime.ExitError):
            // each invocation answers the start-up error's errorType and message.
            let failure = lambda_runtime::Diagnostic::from(e);
            return lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
                std::future::ready(Err::<Value, _>(failure.clone()))
            }))
            .await;
        }
    };
    let notifier = &notifier;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let result: Result<NotifyOutput, Error> = async {
            let event = NotifyEvent::from_value(event.payload)?;
            notifier.notify(&event, jiff::Timestamp::now()).await
        }
        .await;
        if let Err(e) = &result {
            tracing::error!(error_type = e.error_type(), error = %e, "notification failed");
        }
        result
    }))
    .await
}
