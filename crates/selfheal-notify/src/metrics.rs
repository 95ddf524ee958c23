//! The final report's metric record (README "Metrics"): how long the
//! Deployment took to recover, how many `verify` checks it took, whether the
//! execution escalated. Pure; `Notifier::notify` writes the line.

use jiff::Timestamp;
use selfheal_metrics::{Record, ReportBody};

use crate::{EventKind, NotifyEvent, RolloutState, Span};

/// The record of a `completed` or `failed` event; `None` for the others.
/// `TimeToRecoveredMs` runs from the execution's start to the end of the
/// `verify` that saw the rollout done (else the report's time), and only
/// for a completed execution whose last check says `done`.
pub fn report_record(event: &NotifyEvent, at: Timestamp) -> Option<Record<ReportBody>> {
    if !matches!(event.event, EventKind::Completed | EventKind::Failed) {
        return None;
    }
    let verify = crate::verify_span(event.verify.as_ref(), event.timings.verify.as_ref());
    let recovered = event.event == EventKind::Completed
        && event
            .verify
            .as_ref()
            .is_some_and(|v| v.state == RolloutState::Done);
    let time_to_recovered_ms = if recovered {
        let end = verify
            .as_ref()
            .and_then(|span| span.finished_at)
            .or(event.reported_at);
        crate::since_start(event, end)
    } else {
        None
    };
    let attempts = |span: Option<&Span>| span.and_then(|s| s.attempts).unwrap_or(0);
    let escalation = event.escalation.as_ref();
    let body = ReportBody {
        action: event
            .request
            .as_ref()
            .map_or("unknown", |r| r.action.as_str())
            .to_owned(),
        time_to_recovered_ms,
        verify_checks: attempts(verify.as_ref())
            + attempts(
                escalation
                    .and_then(|e| crate::verify_span(e.verify.as_ref(), e.timings.verify.as_ref()))
                    .as_ref(),
            ),
        escalations: u32::from(escalation.is_some()),
        execution: event.execution.id.clone(),
    };
    Some(selfheal_metrics::report(body, at))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(kind: &str, state: &str) -> NotifyEvent {
        crate::parse_event(json!({
            "event": kind,
            "execution": {
                "id": "arn:aws:states:eu-west-1:123456789012:execution:remediate:x",
                "startedAt": "2026-12-06T04:00:00Z"
            },
            "request": {
                "action": "pause",
                "target": {"namespace": "shop", "deployment": "checkout"}
            },
            "verify": {"state": state, "message": "m"},
            "escalation": {
                "reason": "rollout failed",
                "from": {
                    "status": "applied", "action": "pause", "message": "paused",
                    "target": {"namespace": "shop", "deployment": "checkout"}
                },
                "timings": {"verify": {"startedAt": "2026-12-06T04:00:05Z", "attempts": 2}}
            },
            "timings": {"verify": {
                "startedAt": "2026-12-06T04:00:20Z",
                "finishedAt": "2026-12-06T04:01:30.250Z",
                "attempts": 3
            }},
            "reportedAt": "2026-12-06T04:01:31Z"
        }))
        .unwrap()
    }

    #[test]
    fn a_recovery_reports_its_time_checks_and_escalation() {
        let at = Timestamp::UNIX_EPOCH;
        let record = report_record(&event("completed", "done"), at).unwrap();
        let body = record.body();
        assert_eq!(body.action, "pause");
        assert_eq!(body.time_to_recovered_ms, Some(90_250));
        assert_eq!((body.verify_checks, body.escalations), (5, 1));
        selfheal_metrics::emf::validate(&record.to_line().unwrap()).unwrap();

        let failed = report_record(&event("failed", "failed"), at).unwrap();
        assert_eq!(failed.body().time_to_recovered_ms, None);
        assert_eq!(failed.body().verify_checks, 5);
        assert!(report_record(&event("rolloutFrozen", "done"), at).is_none());
    }
}
