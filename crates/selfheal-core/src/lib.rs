//! Pure remediation logic for selfheal: no I/O, no async.
//!
//! The adapters (kube, CLI snapshot mode, Lambda handlers) fetch a Deployment,
//! its ReplicaSets and (half-brick rollback) its pods, call
//! [`plan::decide`], send the one JSON Patch it returns, and report the
//! [`model::RemediationOutcome`]. Keeping every
//! decision here means the same rules run against a live cluster, a snapshot
//! file and unit tests.

pub mod evidence;
pub mod guards;
pub mod history;
pub mod plan;
pub mod pod;
pub mod policy;
pub mod status;
pub mod workload;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod testutil;

// The public contract (request, outcome, errors, errorType names,
// configuration rule) is its own crate so that crates without Kubernetes
// types can use it; re-exported here under the paths the adapters know.
pub use selfheal_contract::{
    ErrorType, VerifyOutput, WatchSpan, cluster, env, error, error_type, model,
};

pub use error::{Error, Malformed, decode, decode_str};
pub use evidence::{ContainerEvidence, Verdict};
pub use model::{
    Action, AlarmRef, ApprovedBy, Change, GitopsManager, Guard, OutcomeStatus, RemediationOutcome,
    RemediationRequest, RevisionInfo, Scope, Target, ValidRequest, Workload, WorkloadKind,
};
pub use plan::{Decision, Plan, PlanInput, decide, needs_pods, needs_replica_sets};
pub use policy::{POLICY_VARIABLES, Policy};
pub use status::{RolloutState, RolloutStatus, rollout_status};
pub use workload::{Hold, WorkloadRef};

/// Annotation and label keys (README.md, "Audit trail").
pub mod keys {
    pub const ENABLED_LABEL: &str = "selfheal.dev/enabled";
    pub const LAST_REMEDIATION: &str = "selfheal.dev/last-remediation";
    /// The last [`HISTORY_KEEP`] applied actions, most recent last: the
    /// per-action cooldown clock and the audit trail.
    pub const HISTORY: &str = "selfheal.dev/history";
    pub const BAD_IMAGES: &str = "selfheal.dev/bad-images";
    pub const PAUSED_BY: &str = "selfheal.dev/paused-by";
    /// On a StatefulSet or DaemonSet selfheal holds: the `spec.updateStrategy`
    /// the hold replaced, as JSON, which `resume` restores.
    pub const HELD_STRATEGY: &str = "selfheal.dev/held-strategy";
    /// The label a StatefulSet's or DaemonSet's pods carry naming their
    /// ControllerRevision (the full name for a StatefulSet, its hash suffix
    /// for a DaemonSet).
    pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";
    pub const REVISION: &str = "deployment.kubernetes.io/revision";
    pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
    pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
    pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
    pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
    pub const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
    pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
    pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
    /// What `kubectl rollout history` prints per revision (the controller
    /// copies it from the Deployment onto the ReplicaSet it rolls out).
    pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
    /// Value of `selfheal.dev/paused-by` written by selfheal.
    pub const PAUSED_BY_SELFHEAL: &str = "selfheal";
    /// How many images per container `selfheal.dev/bad-images` remembers.
    pub const BAD_IMAGES_KEEP: usize = 10;
    /// How many records `selfheal.dev/history` keeps.
    pub const HISTORY_KEEP: usize = 10;
}
