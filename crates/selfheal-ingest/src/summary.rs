//! What one invocation did: the JSON returned to EventBridge/SNS invokers and
//! sent as the webhook's response body.

use selfheal_events::{EventKind, IgnoreReason, Ignored};
use selfheal_metrics::{IgnoredReason, IngestRecords};
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

    /// The invocation's metric records (README "Metrics"): `received`
    /// alerts, the executions started, the ignored alerts by reason
    /// (`truncated` counts the alerts Alertmanager left out).
    pub fn metric_records(&self, received: usize, at: jiff::Timestamp) -> IngestRecords {
        let ignored: Vec<(IgnoredReason, u64)> = self
            .ignored
            .iter()
            .map(|alert| match &alert.reason {
                IgnoreReason::NotFiring { .. } => (IgnoredReason::NotFiring, 1),
                IgnoreReason::Truncated { count } => (IgnoredReason::Truncated, *count),
                IgnoreReason::Suppressed { .. } => (IgnoredReason::Suppressed, 1),
                IgnoreReason::Rejected(_) => (IgnoredReason::Rejected, 1),
                IgnoreReason::Disabled { .. } => (IgnoredReason::Disabled, 1),
            })
            .collect();
        selfheal_metrics::ingest(received as u64, self.started.len() as u64, &ignored, at)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use selfheal_events::Rejection;

    use super::*;

    fn ignored(reason: IgnoreReason) -> Ignored {
        Ignored {
            name: None,
            id: None,
            message: reason.to_string(),
            reason,
        }
    }

    #[test]
    fn metric_records_count_received_started_and_ignored_by_reason() {
        let mut summary = Summary::new(
            EventKind::Alertmanager,
            vec![
                ignored(IgnoreReason::NotFiring {
                    state: "resolved".into(),
                }),
                ignored(IgnoreReason::NotFiring {
                    state: "resolved".into(),
                }),
                ignored(IgnoreReason::Truncated { count: 4 }),
                ignored(IgnoreReason::Rejected(Rejection::NoState)),
            ],
        );
        summary.started = vec!["a".into(), "b".into()];
        summary.already_existed = vec!["c".into()];
        let records = summary.metric_records(6, jiff::Timestamp::UNIX_EPOCH);
        // One count per ignored alert, a truncation counting what it left
        // out; summing by reason is the metrics crate's own job.
        let by_reason = [
            (IgnoredReason::NotFiring, 1),
            (IgnoredReason::NotFiring, 1),
            (IgnoredReason::Truncated, 4),
            (IgnoredReason::Rejected, 1),
        ];
        assert_eq!(
            records,
            selfheal_metrics::ingest(6, 2, &by_reason, jiff::Timestamp::UNIX_EPOCH)
        );
        for line in records.to_lines().unwrap() {
            selfheal_metrics::emf::validate(&line).unwrap();
        }
    }
}
