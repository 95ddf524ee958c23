//! `kubectl rollout status` rules and messages (design.md §3.2).
//!
//! A line-for-line port of kubectl's `DeploymentStatusViewer.Status` for
//! revision 0, so a verify step and a human running kubectl agree on the
//! words as well as the verdict. kubectl's trailing newline is dropped.

use k8s_openapi::api::apps::v1::Deployment;
use serde::{Deserialize, Serialize};

/// Progressing reason the controller sets once `progressDeadlineSeconds` passed.
pub const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RolloutState {
    Done,
    Waiting,
    Failed,
}

/// Result of evaluating a Deployment's rollout, with kubectl's exact message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    pub state: RolloutState,
    pub message: String,
}

impl RolloutStatus {
    fn new(state: RolloutState, message: String) -> Self {
        RolloutStatus { state, message }
    }

    pub fn is_done(&self) -> bool {
        self.state == RolloutState::Done
    }
}

/// Evaluate like kubectl's `DeploymentStatusViewer.Status` (revision 0).
///
/// Absent numbers count as 0, as Go's zero values do; a Deployment without a
/// status therefore waits for its spec to be observed.
pub fn rollout_status(deployment: &Deployment) -> RolloutStatus {
    let name = deployment.metadata.name.as_deref().unwrap_or_default();
    let generation = deployment.metadata.generation.unwrap_or(0);
    let status = deployment.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return RolloutStatus::new(
            RolloutState::Waiting,
            "Waiting for deployment spec update to be observed...".into(),
        );
    }
    let timed_out = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some(TIMED_OUT_REASON));
    if timed_out {
        return RolloutStatus::new(
            RolloutState::Failed,
            format!("deployment {name:?} exceeded its progress deadline"),
        );
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let waiting = |detail: String| {
        RolloutStatus::new(
            RolloutState::Waiting,
            format!("Waiting for deployment {name:?} rollout to finish: {detail}..."),
        )
    };
    if let Some(desired) = deployment.spec.as_ref().and_then(|s| s.replicas)
        && updated < desired
    {
        return waiting(format!(
            "{updated} out of {desired} new replicas have been updated"
        ));
    }
    if replicas > updated {
        return waiting(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return waiting(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    RolloutStatus::new(
        RolloutState::Done,
        format!("deployment {name:?} successfully rolled out"),
    )
}
