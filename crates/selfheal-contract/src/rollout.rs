//! `verify`'s answer: the rollout's verdict with kubectl's message
//! (`selfheal-core`'s `status` module evaluates it from a Deployment).

use serde::{Deserialize, Serialize};

/// `kubectl rollout status`'s verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RolloutState {
    Done,
    Waiting,
    Failed,
}

impl RolloutState {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Done => "done",
            RolloutState::Waiting => "waiting",
            RolloutState::Failed => "failed",
        }
    }
}

/// Compares with the JSON name, as the state machine's `Choice` states do.
impl PartialEq<&str> for RolloutState {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

impl std::fmt::Display for RolloutState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Result of evaluating a workload's rollout, with kubectl's exact message.
/// kubectl says nothing about a pause (a paused rollout just waits), so
/// `paused` and `pausedBy` tell an on-call person why it is not moving;
/// both are absent from the JSON when the workload is not paused or held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    pub state: RolloutState,
    pub message: String,
    /// A Deployment's `spec.paused`; a StatefulSet or DaemonSet held by its
    /// update strategy (partition at or above replicas, `OnDelete`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Who paused it, from `selfheal.dev/paused-by` (`selfheal` when selfheal
    /// did); absent when not paused or when the pause is not marked (a
    /// `kubectl rollout pause`, for example).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_by: Option<String>,
}

impl RolloutStatus {
    /// Not paused; the evaluation sets `paused` and `pausedBy` afterwards.
    pub fn new(state: RolloutState, message: String) -> Self {
        RolloutStatus {
            state,
            message,
            paused: false,
            paused_by: None,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == RolloutState::Done
    }
}
