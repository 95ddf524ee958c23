//! `verify`'s answer: the JSON the state machine's wait loop reads
//! (`CheckRollout` on `$.state`), passes back as `previous`, and hands to
//! notify as `$.verify`. One definition, so verify, the state machine and
//! notify cannot drift apart.

use serde::{Deserialize, Serialize};

use crate::{RolloutStatus, Target};

/// The watch's record so far, in `verify`'s answer (`watch`): when the state
/// machine started watching, how many windows it took, and when the last one
/// ended. The answer carries it so the state machine needs no counting state
/// of its own between two windows (notify reports it as the verify step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchSpan {
    pub started_at: jiff::Timestamp,
    pub attempts: u32,
    pub finished_at: jiff::Timestamp,
}

/// `verify`'s answer, shaped for the state machine's wait loop (a `Choice` on `$.state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyOutput {
    /// `state` (`done` | `waiting` | `failed`, as `kubectl rollout status`
    /// decides), kubectl's `message`, `paused` and `pausedBy`, at the top
    /// level of the answer.
    #[serde(flatten)]
    pub status: RolloutStatus,
    /// The target checked, with its cluster and workload (a pod's owner, of
    /// its kind) filled in.
    pub target: Target,
    /// Seconds of the state machine's rollout budget left after this watch
    /// (only when the input gave `watch`): `CheckRollout` watches again
    /// while a `waiting` rollout has some left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_seconds: Option<u64>,
    /// The watch so far, this window counted (only with `watch`): the state
    /// machine passes the answer back as `previous` for the next window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchSpan>,
}
