//! Planners: decide what one remediation writes, as one guarded JSON Patch.
//!
//! [`decide`] reads like kubectl's `rollback.go`: validate the object, run the
//! guards in a fixed order (namespace, opt-in, GitOps), then the action's own
//! rules, build the patch, and only then the cooldown: an action with nothing
//! to write ("already paused") is `skipped` rather than refused, a dry run
//! inside the cooldown still previews, and any other answer inside the
//! window is the cooldown. The patch always starts
//! with `test /metadata/generation` (and the labels), so a write against an
//! object whose spec, annotations or labels moved fails with 422 and the
//! adapter re-reads and re-plans; status-only updates do not conflict.

mod patch;
mod rollback;
mod rollout;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};

use crate::guards::{self, Refusal};
use crate::{
    Action, Error, GitopsManager, OutcomeStatus, Policy, RemediationOutcome, RemediationRequest,
    RevisionInfo, Scope, Target, ValidRequest, history,
};

pub use patch::rfc3339;

/// Everything a planner may look at. Built by the adapter after its reads.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// Validated by the caller, once: planning does not repeat the check.
    pub request: &'a ValidRequest,
    pub deployment: &'a Deployment,
    /// The Deployment's ReplicaSets (only needed for rollback; may be empty otherwise).
    pub replica_sets: &'a [ReplicaSet],
    /// The Deployment's pods (only listed for a half-brick rollback that
    /// names no container, [`needs_pods`]; empty otherwise): their statuses
    /// say which container is failing (`crate::evidence`).
    pub pods: &'a [Pod],
    pub policy: &'a Policy,
    /// Clock for cooldown and `restartedAt`; injected so planning stays pure.
    pub now: jiff::Timestamp,
}

/// What to send. Every write is one JSON Patch whose first ops `test`
/// `/metadata/generation` and the labels (plus container name/image for
/// rollbacks), so a moved object fails with 422 and is re-read and re-planned,
/// never half-applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub patch: json_patch::Patch,
    /// The outcome to report once the patch is accepted (`status: applied`;
    /// the adapter switches it to `dryRun` for a server dry run).
    pub outcome: RemediationOutcome,
    /// Message for the core/v1 Event recorded on the Deployment.
    pub event_message: String,
    /// The annotations the patch sets (audit trail, `paused-by`,
    /// `kubernetes.io/change-cause`), for logs and tests. Removals (e.g.
    /// `paused-by` on resume) are not listed.
    pub annotations: BTreeMap<String, String>,
    /// Send with `dryRun=All` (request or policy asked for a dry run).
    pub dry_run: bool,
}

impl Plan {
    /// The `refused` outcome for a plan a guard turned down after planning
    /// (the cooldown, which only applies to a plan that would write, and the
    /// adapter's rate limit, which needs a LIST the pure planner cannot
    /// make): nothing is written, so no changes are reported.
    pub fn refuse(self, refusal: Refusal) -> RemediationOutcome {
        RemediationOutcome {
            status: OutcomeStatus::Refused,
            message: refusal.message,
            changes: Vec::new(),
            revision: None,
            guard: Some(refusal.guard),
            ..self.outcome
        }
    }
}

/// The planner's verdict.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "public contract shape; the outcome is moved once per invocation"
)]
pub enum Decision {
    /// Send `plan.patch`.
    Apply(Box<Plan>),
    /// Nothing to write: `skipped` or `refused` (with `guard`).
    Done(RemediationOutcome),
}

impl Decision {
    /// The outcome either way (for an `Apply`, the one to report once sent).
    pub fn outcome(&self) -> &RemediationOutcome {
        match self {
            Decision::Apply(plan) => &plan.outcome,
            Decision::Done(outcome) => outcome,
        }
    }
}

/// Whether planning `action` needs the ReplicaSet list (one extra LIST).
pub fn needs_replica_sets(request: &RemediationRequest) -> bool {
    request.action == crate::Action::Rollback
}

/// Whether planning needs the Deployment's pods (one extra LIST): a
/// half-brick rollback that names no container chooses from their evidence.
pub fn needs_pods(request: &RemediationRequest) -> bool {
    request.action == crate::Action::Rollback
        && request.scope == Scope::Container
        && request.target.container.is_none()
}

/// Decide what to do. Pure: same input, same decision.
///
/// Errors only for input no real API server would produce (a Deployment
/// without name, spec or pod spec) or a request for another Deployment than
/// the one given; every "no" is a `refused` outcome.
pub fn decide(input: PlanInput<'_>) -> Result<Decision, Error> {
    let ctx = Ctx::new(input)?;
    if let Err(refusal) = ctx.common_guards() {
        return Ok(ctx.refused(refusal));
    }
    let decision = match (input.request.action, input.request.scope) {
        (Action::Rollback, Scope::Container) => rollback::half_brick(&ctx),
        (Action::Rollback, Scope::Template) => rollback::undo(&ctx),
        (Action::Pause, _) => rollout::pause(&ctx),
        (Action::Resume, _) => rollout::resume(&ctx),
        (Action::Restart, _) => rollout::restart(&ctx),
    }?;
    Ok(ctx.cooldown(decision))
}

/// The validated view of one planning call, shared by every planner.
#[derive(Debug)]
struct Ctx<'a> {
    input: PlanInput<'a>,
    /// `namespace/name`, for messages.
    who: String,
    template: &'a PodTemplateSpec,
    gitops: Option<GitopsManager>,
    target: Target,
}

impl<'a> Ctx<'a> {
    fn new(input: PlanInput<'a>) -> Result<Self, Error> {
        let deployment = input.deployment;
        let name = deployment
            .metadata
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::deployment("metadata.name is missing"))?;
        let spec: &DeploymentSpec = deployment
            .spec
            .as_ref()
            .ok_or_else(|| Error::deployment(format!("{name}: spec is missing")))?;
        if spec.template.spec.is_none() {
            return Err(Error::deployment(format!(
                "{name}: spec.template.spec is missing"
            )));
        }
        if let Some(wanted) = &input.request.target.deployment
            && wanted != name
        {
            return Err(Error::InvalidRequest(format!(
                "request targets deployment {wanted:?} but the object given is {name:?}"
            )));
        }
        let namespace = deployment
            .metadata
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| input.request.target.namespace.clone());
        let mut target = input.request.target.clone();
        target.namespace = namespace;
        target.deployment = Some(name.to_owned());
        Ok(Ctx {
            input,
            who: format!("{}/{name}", target.namespace),
            template: &spec.template,
            gitops: guards::gitops_manager(deployment),
            target,
        })
    }

    fn deployment(&self) -> &'a Deployment {
        self.input.deployment
    }

    fn request(&self) -> &'a RemediationRequest {
        self.input.request
    }

    fn action(&self) -> Action {
        self.input.request.action
    }

    /// Name without namespace, as kubectl quotes it.
    fn name(&self) -> &str {
        self.target.deployment.as_deref().unwrap_or_default()
    }

    fn paused(&self) -> bool {
        self.deployment()
            .spec
            .as_ref()
            .and_then(|s| s.paused)
            .unwrap_or(false)
    }

    fn paused_by_selfheal(&self) -> bool {
        guards::paused_by_selfheal(self.deployment())
    }

    /// Guards every action passes first, in the project's fixed order.
    fn common_guards(&self) -> Result<(), Refusal> {
        let (policy, deployment) = (self.input.policy, self.deployment());
        guards::namespace(policy, deployment)?;
        guards::opt_in(policy, deployment)?;
        guards::gitops(policy, deployment, self.gitops)
    }

    /// The cooldown, applied after planning so that "already in the wanted
    /// state" stays `skipped` and a dry run still previews its patch (the
    /// server validates it; the message says a real run would be refused).
    /// A planner's own refusal inside the window reports the cooldown, as
    /// before planning: "selfheal acted moments ago" is what a person
    /// reading a repeated alarm's outcome needs first.
    fn cooldown(&self, decision: Decision) -> Decision {
        let request = self.request();
        let Err(refusal) = guards::cooldown(
            self.input.policy,
            self.deployment(),
            request.action,
            self.input.now,
            request.force,
        ) else {
            return decision;
        };
        let dry_run = request.dry_run || self.input.policy.dry_run;
        match decision {
            Decision::Apply(mut plan) if plan.dry_run => {
                plan.outcome.message.push_str(&format!(
                    "; a real run would be refused by the cooldown ({})",
                    refusal.message
                ));
                Decision::Apply(plan)
            }
            Decision::Apply(plan) => Decision::Done(plan.refuse(refusal)),
            Decision::Done(outcome) if outcome.status == OutcomeStatus::Refused && !dry_run => {
                self.refused(refusal)
            }
            done @ Decision::Done(_) => done,
        }
    }

    fn outcome(&self, status: OutcomeStatus, message: String) -> RemediationOutcome {
        RemediationOutcome {
            status,
            action: self.action(),
            message,
            target: self.target.clone(),
            changes: Vec::new(),
            evidence: Vec::new(),
            revision: None,
            guard: None,
            gitops: self.gitops,
            execution: self.request().execution.clone(),
        }
    }

    fn refused(&self, refusal: Refusal) -> Decision {
        let mut outcome = self.outcome(OutcomeStatus::Refused, refusal.message);
        outcome.guard = Some(refusal.guard);
        Decision::Done(outcome)
    }

    fn skipped(&self, message: String) -> Decision {
        Decision::Done(self.outcome(OutcomeStatus::Skipped, message))
    }

    /// `revision.before`, from the Deployment's own annotation.
    fn revision_before(&self) -> RevisionInfo {
        RevisionInfo {
            before: history::deployment_revision(self.deployment()),
            ..RevisionInfo::default()
        }
    }
}
