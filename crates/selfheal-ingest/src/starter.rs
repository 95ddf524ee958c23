//! StartExecution behind a small trait, so the handler can be exercised
//! with a real Step Functions client (moto in tests, AWS in production) and
//! with wrappers that make chosen starts fail.

use std::future::Future;
use std::time::{Duration, SystemTime};

use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::operation::start_execution::StartExecutionError;

/// A start that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// A new execution.
    New { execution_arn: String },
    /// The name was taken already: by the same request (Step Functions
    /// answers such an idempotent start with the existing execution) or by an
    /// earlier delivery of the same alert with different details
    /// (`ExecutionAlreadyExists`). Either way the alert is being handled.
    Existing { execution_arn: Option<String> },
}

/// A start that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    /// Service error code, or `Transport` when no answer came back.
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

/// Starts one execution of the configured state machine.
pub trait StartExecution: Send + Sync {
    /// Start execution `name` with `input` (the request JSON).
    fn start(
        &self,
        name: &str,
        input: &str,
    ) -> impl Future<Output = Result<Started, StartFailure>> + Send;
}

/// How far before our call a returned execution's `startDate` must lie for
/// the answer to be taken as "it existed already" (an idempotent start
/// returns the original execution and its original date). Generous against
/// clock skew between the function and Step Functions.
const EXISTING_IF_OLDER_THAN: Duration = Duration::from_secs(1);

/// The real thing: `aws-sdk-sfn` StartExecution on one state machine.
#[derive(Debug, Clone)]
pub struct SfnStarter {
    client: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

impl SfnStarter {
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: impl Into<String>) -> Self {
        SfnStarter {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    pub fn state_machine_arn(&self) -> &str {
        &self.state_machine_arn
    }
}

impl StartExecution for SfnStarter {
    async fn start(&self, name: &str, input: &str) -> Result<Started, StartFailure> {
        let sent_at = SystemTime::now();
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await;
        match result {
            Ok(output) => {
                let execution_arn = output.execution_arn().to_owned();
                let started_earlier = SystemTime::try_from(*output.start_date())
                    .ok()
                    .is_some_and(|date| date + EXISTING_IF_OLDER_THAN < sent_at);
                Ok(if started_earlier {
                    Started::Existing {
                        execution_arn: Some(execution_arn),
                    }
                } else {
                    Started::New { execution_arn }
                })
            }
            Err(SdkError::ServiceError(context)) if context.err().is_execution_already_exists() => {
                Ok(Started::Existing {
                    execution_arn: None,
                })
            }
            Err(error) => Err(classify(&error)),
        }
    }
}

/// Error code and whether a retry can help.
fn classify(
    error: &SdkError<StartExecutionError, aws_smithy_runtime_api::http::Response>,
) -> StartFailure {
    let message = DisplayErrorContext(error).to_string();
    match error {
        SdkError::ServiceError(context) => {
            let service = context.err();
            let code = service.code().unwrap_or("Unknown").to_owned();
            let retryable =
                service.is_execution_limit_exceeded() || selfheal_aws::retry::is_retryable(error);
            StartFailure {
                message: service.message().map(str::to_owned).unwrap_or(message),
                code,
                retryable,
            }
        }
        // No usable answer (timeout, connection, unparseable response): the
        // start may or may not have happened; a retry is safe because names
        // are deterministic.
        _ => StartFailure {
            code: "Transport".to_owned(),
            message,
            retryable: true,
        },
    }
}
