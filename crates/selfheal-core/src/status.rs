//! `kubectl rollout status` rules and messages (design.md §3.2).

use k8s_openapi::api::apps::v1::Deployment;
use serde::{Deserialize, Serialize};

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

/// Evaluate like kubectl's `DeploymentStatusViewer.Status` (revision 0).
pub fn rollout_status(deployment: &Deployment) -> RolloutStatus {
    todo!("{deployment:?}")
}
