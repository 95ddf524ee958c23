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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod kinds_tests;
mod patch;
mod rollback;
mod rollout;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ControllerRevision, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};

use crate::guards::{self, Refusal};
use crate::history::History;
use crate::workload::{Hold, WorkloadRef};
use crate::{
    Action, Error, GitopsManager, OutcomeStatus, Policy, RemediationOutcome, RemediationRequest,
    RevisionInfo, Scope, Target, ValidRequest, WorkloadKind, history,
};

pub use patch::rfc3339;

/// Everything a planner may look at. Built by the adapter after its reads.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// Validated by the caller, once: planning does not repeat the check.
    pub request: &'a ValidRequest,
    /// The Deployment, StatefulSet or DaemonSet the request names (a pod
    /// target resolved to its owner first).
    pub workload: WorkloadRef<'a>,
    /// A Deployment's ReplicaSets ([`needs_replica_sets`]; empty otherwise).
    pub replica_sets: &'a [ReplicaSet],
    /// A StatefulSet's or DaemonSet's ControllerRevisions
    /// ([`needs_controller_revisions`]; empty otherwise).
    pub controller_revisions: &'a [ControllerRevision],
    /// The workload's pods (only listed for a half-brick rollback that
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

/// Whether planning `action` on a Deployment needs its ReplicaSets (one
/// extra LIST by the Deployment's selector).
pub fn needs_replica_sets(request: &RemediationRequest) -> bool {
    request.action == crate::Action::Rollback
}

/// Whether planning the request on a workload of `kind` needs its history
/// list: ReplicaSets for a Deployment ([`needs_replica_sets`]),
/// ControllerRevisions (LIST by the workload's selector) for a StatefulSet
/// or DaemonSet ([`needs_controller_revisions`]).
pub fn needs_history(request: &RemediationRequest, kind: WorkloadKind) -> bool {
    match kind {
        WorkloadKind::Deployment => needs_replica_sets(request),
        _ => needs_controller_revisions(request, kind),
    }
}

/// Whether planning the request on a workload of `kind` needs its
/// ControllerRevisions (one LIST by the workload's selector): a rollback of
/// a StatefulSet or DaemonSet. Never for a Deployment.
pub fn needs_controller_revisions(request: &RemediationRequest, kind: WorkloadKind) -> bool {
    kind != WorkloadKind::Deployment && request.action == crate::Action::Rollback
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
/// Errors only for input no real API server would produce (a workload
/// without name, spec or pod spec) or a request for another workload than
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
    /// Built on first use: a ControllerRevision's template is parsed.
    history: std::cell::OnceCell<History<'a>>,
}

impl<'a> Ctx<'a> {
    fn new(input: PlanInput<'a>) -> Result<Self, Error> {
        let workload = input.workload;
        let kind = workload.kind();
        let invalid = |reason: String| Error::InvalidObject {
            kind: kind.as_str(),
            reason,
        };
        let name = workload
            .metadata()
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("metadata.name is missing".into()))?;
        let template = workload
            .template()
            .ok_or_else(|| invalid(format!("{name}: spec is missing")))?;
        if template.spec.is_none() {
            return Err(invalid(format!("{name}: spec.template.spec is missing")));
        }
        let request = &input.request.target;
        if let Some(wanted) = request.workload_kind()
            && wanted != kind
        {
            return Err(Error::InvalidRequest(format!(
                "request targets a {} but the object given is a {}",
                wanted.as_str(),
                kind.as_str()
            )));
        }
        if let Some(wanted) = request.workload_name(kind)
            && wanted != name
        {
            return Err(Error::InvalidRequest(format!(
                "request targets {} {wanted:?} but the object given is {name:?}",
                kind.noun()
            )));
        }
        let namespace = workload
            .metadata()
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| request.namespace.clone());
        let mut target = request.clone();
        target.namespace = namespace;
        target.set_workload(kind, name);
        Ok(Ctx {
            input,
            who: format!("{}/{name}", target.namespace),
            template,
            gitops: guards::gitops_manager(workload),
            target,
            history: std::cell::OnceCell::new(),
        })
    }

    fn workload(&self) -> WorkloadRef<'a> {
        self.input.workload
    }

    /// An object that lacks what every real one has: `who: reason`.
    fn invalid(&self, reason: &str) -> Error {
        Error::InvalidObject {
            kind: self.kind().as_str(),
            reason: format!("{}: {reason}", self.who),
        }
    }

    fn kind(&self) -> WorkloadKind {
        self.input.workload.kind()
    }

    /// `deployment`, `statefulset` or `daemonset`, for messages.
    fn noun(&self) -> &'static str {
        self.kind().noun()
    }

    /// The workload's revisions from the list its kind keeps them in.
    fn history(&self) -> &History<'a> {
        self.history.get_or_init(|| {
            History::of_workload(
                self.workload(),
                self.input.replica_sets,
                self.input.controller_revisions,
            )
        })
    }

    fn request(&self) -> &'a RemediationRequest {
        self.input.request
    }

    fn action(&self) -> Action {
        self.input.request.action
    }

    /// Name without namespace, as kubectl quotes it.
    fn name(&self) -> &'a str {
        self.workload().name()
    }

    /// Paused (Deployment) or held (StatefulSet, DaemonSet).
    fn paused(&self) -> bool {
        self.workload().hold().is_held()
    }

    /// A pause or hold selfheal made (and, for a hold, recorded).
    fn paused_by_selfheal(&self) -> bool {
        match self.workload().hold() {
            Hold::Paused => guards::paused_by_selfheal(self.workload()),
            _ => self.workload().held_by_selfheal(),
        }
    }

    /// Whether a rollback lifts a pause or hold in the same patch: yes when
    /// selfheal made it. A Deployment paused by someone else is refused with
    /// kubectl's words; a StatefulSet's partition or a DaemonSet's
    /// `OnDelete` someone else set is their update strategy, which the new
    /// template then follows, as after `kubectl rollout undo`.
    fn lift_on_rollback(&self) -> Result<bool, Refusal> {
        if !self.paused() {
            return Ok(false);
        }
        if self.paused_by_selfheal() {
            return Ok(true);
        }
        match self.kind() {
            WorkloadKind::Deployment => Err(rollback::paused_refusal(self.name())),
            _ => Ok(false),
        }
    }

    /// The message's note when a rollback lifted selfheal's pause or hold.
    fn resumed_note(&self) -> &'static str {
        match self.kind() {
            WorkloadKind::Deployment => ", and resumed it (selfheal had paused it)",
            _ => ", and resumed it (selfheal had held it)",
        }
    }

    /// Guards every action passes first, in the project's fixed order.
    fn common_guards(&self) -> Result<(), Refusal> {
        let (policy, workload) = (self.input.policy, self.workload());
        guards::namespace(policy, workload)?;
        guards::opt_in(policy, workload)?;
        guards::gitops(policy, workload, self.gitops)
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
            self.workload(),
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

    /// `revision.before`: a Deployment's own revision annotation; for a
    /// StatefulSet or DaemonSet the newest ControllerRevision running its
    /// template, when they were listed.
    fn revision_before(&self) -> RevisionInfo {
        let before = match self.workload() {
            WorkloadRef::Deployment(d) => history::deployment_revision(d),
            _ => self
                .history()
                .newest_first()
                .find(|r| {
                    r.template()
                        .is_some_and(|t| history::equal_ignoring_hash(t, self.template))
                })
                .map(|r| r.number),
        };
        RevisionInfo {
            before,
            ..RevisionInfo::default()
        }
    }
}
