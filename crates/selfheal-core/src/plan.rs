//! Planners: decide what one remediation writes, as one guarded JSON Patch.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use crate::{Error, Policy, RemediationOutcome, RemediationRequest};

/// Everything a planner may look at. Built by the adapter after its reads.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub request: &'a RemediationRequest,
    pub deployment: &'a Deployment,
    /// The Deployment's ReplicaSets (only needed for rollback; may be empty otherwise).
    pub replica_sets: &'a [ReplicaSet],
    pub policy: &'a Policy,
    /// Clock for cooldown and `restartedAt`; injected so planning stays pure.
    pub now: jiff::Timestamp,
}

/// What to send. Every write is one JSON Patch whose first op `test`s
/// `/metadata/resourceVersion` (plus container name/image for rollbacks), so a
/// moved object fails with 422 and is re-read and re-planned, never half-applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub patch: json_patch::Patch,
    /// The outcome to report once the patch is accepted (`status: applied`;
    /// the adapter switches it to `dryRun` for a server dry run).
    pub outcome: RemediationOutcome,
    /// Message for the core/v1 Event recorded on the Deployment.
    pub event_message: String,
    /// Annotations the patch writes (audit trail), for logs and tests.
    pub annotations: BTreeMap<String, String>,
    /// Send with `dryRun=All` (request or policy asked for a dry run).
    pub dry_run: bool,
}

/// The planner's verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Send `plan.patch`.
    Apply(Box<Plan>),
    /// Nothing to write: `skipped` or `refused` (with `guard`).
    Done(RemediationOutcome),
}

/// Whether planning `action` needs the ReplicaSet list (one extra LIST).
pub fn needs_replica_sets(request: &RemediationRequest) -> bool {
    request.action == crate::Action::Rollback
}

/// Decide what to do. Pure: same input, same decision.
pub fn decide(input: PlanInput<'_>) -> Result<Decision, Error> {
    todo!("{input:?}")
}
