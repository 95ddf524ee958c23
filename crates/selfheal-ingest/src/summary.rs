//! What one invocation did: the JSON returned to EventBridge/SNS invokers and
//! sent as the webhook's response body.

use selfheal_events::{EventKind, Ignored};
use serde::Serialize;

/// Result of starting the executions for one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub kind: EventKind,
    /// Execution names started by this invocation.
    pub started: Vec<String>,
    /// Execution names that existed already (a re-delivered alert): success.
    pub already_existed: Vec<String>,
    /// Alerts that started nothing, with the reason.
    pub ignored: Vec<Ignored>,
    /// Starts that failed; non-empty means the caller should retry.
    pub failed: Vec<FailedStart>,
}

/// One StartExecution that failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedStart {
    pub execution_name: String,
    /// The service's error code (`ExecutionLimitExceeded`, `StateMachineDoesNotExist`…)
    /// or `Transport` when no answer came back.
    pub error_code: String,
    pub message: String,
    /// Whether retrying the same start can succeed.
    pub retryable: bool,
}

impl Summary {
    pub(crate) fn new(kind: EventKind, ignored: Vec<Ignored>) -> Self {
        Summary {
            kind,
            started: Vec::new(),
            already_existed: Vec::new(),
            ignored,
            failed: Vec::new(),
        }
    }

    /// Executions this event asked for.
    pub fn requested(&self) -> usize {
        self.started.len() + self.already_existed.len() + self.failed.len()
    }

    /// Every requested execution exists now.
    pub fn all_started(&self) -> bool {
        self.failed.is_empty()
    }

    /// The failures as one line, for an error message.
    pub(crate) fn failure_text(&self) -> String {
        self.failed
            .iter()
            .map(|f| format!("{} ({}: {})", f.execution_name, f.error_code, f.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}
