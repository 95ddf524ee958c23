//! `approve` Lambda (Function URL, auth NONE: the link id is the capability).
//! Redeems the single-use approve/deny links `notify` mints; see the library docs.

use lambda_runtime::{LambdaEvent, service_fn};
use selfheal_approve::http::{HttpResponse, handle, parse_event};
use selfheal_approve::{DEFAULT_PARAM_PREFIX, Error, PARAM_PREFIX_VAR, SfnCallback, SsmStore};
use serde_json::Value;

// One thread: at 256 MB (template.yaml) a sandbox gets a fraction of a vCPU,
// so worker threads only add start-up and cross-thread wake-ups (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // Built once per process; every warm invocation borrows them.
    let config = selfheal_aws::load().await;
    let prefix =
        std::env::var(PARAM_PREFIX_VAR).unwrap_or_else(|_| DEFAULT_PARAM_PREFIX.to_owned());
    let store = match SsmStore::new(aws_sdk_ssm::Client::new(&config), &prefix) {
        Ok(store) => store,
        Err(e) => {
            tracing::error!(error_type = e.error_type(), error = %e, "approve initialisation failed");
            // Still serve (exiting would surface as Lambda's Runtime.ExitError):
            // each invocation answers the start-up error's errorType and message.
            let failure = lambda_runtime::Diagnostic::from(e);
            return lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
                std::future::ready(Err::<Value, _>(failure.clone()))
            }))
            .await;
        }
    };
    let callback = SfnCallback::new(aws_sdk_sfn::Client::new(&config));
    let (store, callback) = (&store, &callback);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let request = parse_event(&event.payload);
        let result: Result<HttpResponse, Error> =
            handle(store, callback, jiff::Timestamp::now(), &request).await;
        if let Err(e) = &result {
            tracing::error!(error_type = e.error_type(), error = %e, "approval request failed");
        }
        result
    }))
    .await
}
