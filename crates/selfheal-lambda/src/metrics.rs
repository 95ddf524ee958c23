//! Each invocation's metric record (README "Metrics"): selfheal-metrics
//! builds it from the handler's result and time; [`crate::invoke_action`]
//! and [`crate::invoke_verify`] write it, one line per invocation, start-up
//! errors and bodies that were not JSON included.

use std::time::Duration;

use jiff::Timestamp;
use selfheal_core::{Action, OutcomeStatus, RemediationOutcome};
use selfheal_metrics::{Ended, InvocationBody, Record};

use crate::error::HandlerError;
use crate::handler::VerifyOutput;

/// `rollback` / `pause` / `resume` / `restart`: `Remediations` by action and
/// status, by guard for a refusal.
pub fn action_record(
    action: Action,
    result: &Result<RemediationOutcome, HandlerError>,
    elapsed: Duration,
    at: Timestamp,
) -> Record<InvocationBody> {
    let ended = ended(result, |outcome| Ended::Status {
        status: outcome.status.as_str(),
        guard: outcome
            .guard
            .filter(|_| outcome.status == OutcomeStatus::Refused)
            .map(|g| g.as_str()),
    });
    selfheal_metrics::remediation(action.as_str(), ended, elapsed, at)
}

/// `verify`: `RolloutChecks` by the rollout state.
pub fn verify_record(
    result: &Result<VerifyOutput, HandlerError>,
    elapsed: Duration,
    at: Timestamp,
) -> Record<InvocationBody> {
    let ended = ended(result, |out| Ended::Status {
        status: out.status.state.as_str(),
        guard: None,
    });
    selfheal_metrics::rollout_check(ended, elapsed, at)
}

/// How an invocation ended: what `answered` says of its answer, or its
/// error's `errorType`.
fn ended<T>(
    result: &Result<T, HandlerError>,
    answered: impl FnOnce(&T) -> Ended<'static>,
) -> Ended<'static> {
    match result {
        Ok(answer) => answered(answer),
        Err(error) => Ended::Error {
            error_type: error.error_type(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn outcome(status: &str, guard: Option<&str>) -> RemediationOutcome {
        serde_json::from_value(json!({
            "status": status,
            "action": "rollback",
            "message": "m",
            "target": {"namespace": "shop", "deployment": "checkout"},
            "guard": guard,
        }))
        .unwrap()
    }

    /// Only a refusal is counted by `Guard`: a dry run inside the cooldown
    /// names the guard a real run would meet, but was not refused.
    #[test]
    fn only_a_refusal_carries_its_guard() {
        let at = Timestamp::UNIX_EPOCH;
        let d = Duration::from_millis(2);
        let refused = action_record(
            Action::Rollback,
            &Ok(outcome("refused", Some("cooldown"))),
            d,
            at,
        );
        assert_eq!(refused.body().guard.as_deref(), Some("cooldown"));
        let preview = action_record(
            Action::Rollback,
            &Ok(outcome("dryRun", Some("cooldown"))),
            d,
            at,
        );
        assert_eq!(preview.body().status, "dryRun");
        assert_eq!(preview.body().guard, None);
        for record in [refused, preview] {
            selfheal_metrics::emf::validate(&record.to_line().unwrap()).unwrap();
        }
    }
}
