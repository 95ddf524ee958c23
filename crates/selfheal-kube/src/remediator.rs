//! One remediation against a live API server: read, plan (pure core), send the
//! one guarded JSON Patch, re-plan if the object moved, record an Event.
//! The same code serves Deployments, StatefulSets and DaemonSets
//! ([`WorkloadObject`]); only the history differs (ReplicaSets or
//! ControllerRevisions, listed by the workload's selector).
//! Round trips for a rollback: GET + LIST + PATCH (+ Event POST); for
//! pause/resume/restart: GET + PATCH (+ Event POST). A pod target adds the
//! pod GET (and the ReplicaSet GET for a Deployment's pod) and always the
//! LIST: the stale-pod guard needs the workload's current revision. A
//! rollback that names no container adds one LIST of the current revision's
//! pods, whose statuses say which changed container is failing
//! (`selfheal_core::evidence`).

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use selfheal_core::plan::needs_history;
use selfheal_core::pod::check_pod_target_of;
use selfheal_core::{
    Action, Decision, OutcomeStatus, Plan, PlanInput, Policy, RemediationOutcome,
    RemediationRequest, RevisionInfo, RolloutStatus, ValidRequest, Workload, WorkloadKind,
    WorkloadRef, decide, keys, rollout_status,
};

use crate::FIELD_MANAGER;
use crate::error::{Call, Error, Result};
use crate::events::{Reporter, build_event, post_event};
use crate::kind::WorkloadObject;
use crate::resolve::{label_selector, pod_owner};

/// Injected clock, so cooldowns and `restartedAt` are testable.
pub type Clock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// Re-plans after a 409/422 before giving up with a retryable error.
pub const DEFAULT_REPLAN_BUDGET: u32 = 3;

/// A workload and (when read) its history and current pods, as one
/// consistent input to planning.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot<K = Deployment> {
    pub workload: K,
    /// A Deployment's ReplicaSets (empty for the other kinds).
    pub replica_sets: Vec<ReplicaSet>,
    /// A StatefulSet's or DaemonSet's ControllerRevisions (empty for a Deployment).
    pub controller_revisions: Vec<ControllerRevision>,
    /// The pods of the current revision (only for a rollback that names no
    /// container; empty otherwise).
    pub pods: Vec<Pod>,
}

/// Built once per process (Lambda init, CLI start) and shared by invocations:
/// it holds the client's connection pool and the policy.
#[derive(Clone)]
pub struct Remediator {
    client: kube::Client,
    policy: Policy,
    replan_budget: u32,
    reporter: Reporter,
    clock: Clock,
}

impl std::fmt::Debug for Remediator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remediator")
            .field("policy", &self.policy)
            .field("replan_budget", &self.replan_budget)
            .field("reporter", &self.reporter)
            .finish_non_exhaustive()
    }
}

/// Lambda function name, else host name, so Events say which function acted.
fn default_instance() -> String {
    ["AWS_LAMBDA_FUNCTION_NAME", "HOSTNAME"]
        .iter()
        .find_map(|k| selfheal_core::env::get(selfheal_core::env::process, k))
        .unwrap_or_else(|| crate::REPORTING_COMPONENT.to_owned())
}

impl Remediator {
    pub fn new(client: kube::Client, policy: Policy) -> Self {
        Remediator {
            client,
            policy,
            replan_budget: DEFAULT_REPLAN_BUDGET,
            reporter: Reporter {
                component: crate::REPORTING_COMPONENT.to_owned(),
                instance: default_instance(),
            },
            clock: Arc::new(jiff::Timestamp::now),
        }
    }

    /// How many times a rejected patch (409/422) is re-read and re-planned.
    pub fn with_replan_budget(mut self, budget: u32) -> Self {
        self.replan_budget = budget;
        self
    }

    /// `reportingComponent` / `source.component` of the Events (default `selfheal`).
    pub fn with_reporting_component(mut self, component: impl Into<String>) -> Self {
        self.reporter.component = component.into();
        self
    }

    /// `reportingInstance` of the Events (default: Lambda function name or host).
    pub fn with_reporting_instance(mut self, instance: impl Into<String>) -> Self {
        self.reporter.instance = instance.into();
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Carry out one request: validate it, then [`Self::remediate_valid`].
    pub async fn remediate(&self, request: &RemediationRequest) -> Result<RemediationOutcome> {
        let request = ValidRequest::new(request.clone())
            .map_err(|source| Error::InvalidRequest { source })?;
        self.remediate_valid(&request).await
    }

    /// Carry out one validated request. Guard refusals and no-ops are `Ok`
    /// outcomes; `Err` is for what the state machine should retry or catch.
    pub async fn remediate_valid(&self, request: &ValidRequest) -> Result<RemediationOutcome> {
        let namespace = request.target.namespace.as_str();
        let resolved = self.resolve(namespace, request.workload()).await?;
        // The core plans for the workload; the outcome gets the pod back.
        let planned = match resolved.pod {
            Some(_) => request
                .for_workload(resolved.kind, &resolved.name)
                .map_err(|e| Error::from_core(e, &resolved.name))?,
            None => request.clone(),
        };
        match resolved.kind {
            WorkloadKind::Deployment => {
                self.remediate_as::<Deployment>(request, &planned, resolved)
                    .await
            }
            WorkloadKind::StatefulSet => {
                self.remediate_as::<StatefulSet>(request, &planned, resolved)
                    .await
            }
            WorkloadKind::DaemonSet => {
                self.remediate_as::<DaemonSet>(request, &planned, resolved)
                    .await
            }
        }
    }

    /// [`Self::remediate_valid`] on a workload of kind `K`: `planned` is the
    /// request naming it (a pod target resolved).
    async fn remediate_as<K: WorkloadObject>(
        &self,
        request: &ValidRequest,
        planned: &ValidRequest,
        resolved: Resolved,
    ) -> Result<RemediationOutcome> {
        let namespace = request.target.namespace.as_str();
        let Resolved {
            name, pod, owner, ..
        } = resolved;
        let kind = K::KIND;
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let patch_call = Call {
            verb: "patch",
            kind: kind.as_str(),
            namespace,
            name: &name,
        };
        let mut attempts = 0u32;
        // What the first plan of a rollback reverts: a re-plan (after 409/422
        // or a lost answer) must revert the same images, else someone changed
        // the workload in between and their change wins.
        let mut first_changes: Option<Vec<selfheal_core::Change>> = None;
        loop {
            attempts += 1;
            let mut snapshot: Snapshot<K> = self
                .read(
                    namespace,
                    &name,
                    needs_history(planned, kind) || pod.is_some(),
                )
                .await?;
            if let Some(uid) = &owner {
                same_owner(namespace, &pod, &snapshot.workload, uid)?;
            }
            if selfheal_core::needs_pods(planned) {
                snapshot.pods = self.list_current_pods(namespace, &name, &snapshot).await?;
            }
            let workload = snapshot.workload.workload();
            let decision = decide(PlanInput {
                request: planned,
                workload,
                controller_revisions: &snapshot.controller_revisions,
                replica_sets: &snapshot.replica_sets,
                pods: &snapshot.pods,
                policy: &self.policy,
                now: (self.clock)(),
            })
            .map_err(|e| Error::from_core(e, &name))?;
            let plan = match decision {
                Decision::Done(outcome) => {
                    tracing::info!(
                        action = %request.action,
                        namespace,
                        kind = kind.as_str(),
                        name = %name,
                        status = ?outcome.status,
                        guard = outcome.guard.map(|g| g.as_str()),
                        message = %outcome.message,
                        "nothing to write"
                    );
                    return Ok(with_target(outcome, request, kind, &name));
                }
                Decision::Apply(plan) => plan,
            };
            let moved = match (&first_changes, request.action) {
                (_, action) if action != Action::Rollback => Ok(()),
                (None, _) => {
                    first_changes = Some(plan.outcome.changes.clone());
                    Ok(())
                }
                (Some(planned), _) => {
                    selfheal_core::guards::same_changes(workload, planned, &plan.outcome.changes)
                }
            };
            // Only a write needs the pod to speak for the workload: a
            // refusal or skip the planner already decided stands as it is.
            let stale = pod.as_ref().map_or(Ok(()), |pod| {
                check_pod_target_of(
                    pod,
                    request,
                    workload,
                    &snapshot.replica_sets,
                    &snapshot.controller_revisions,
                )
            });
            let refusal = match stale.and(moved) {
                Err(refusal) => Err(refusal),
                Ok(()) => self.rate_limit(workload).await?,
            };
            if let Err(refusal) = refusal {
                let outcome = plan.refuse(refusal);
                tracing::info!(
                    action = %request.action,
                    namespace,
                    kind = kind.as_str(),
                    name = %name,
                    guard = outcome.guard.map(|g| g.as_str()),
                    message = %outcome.message,
                    "nothing to write"
                );
                return Ok(with_target(outcome, request, kind, &name));
            }
            match send(&api, &name, &plan).await {
                Ok(patched) => return Ok(self.applied(request, &name, *plan, &patched).await),
                Err(kube::Error::Api(status)) if matches!(status.code, 409 | 422) => {
                    if attempts > self.replan_budget {
                        return Err(Error::ConflictBudgetExhausted {
                            namespace: namespace.to_owned(),
                            name,
                            attempts,
                            last_code: status.code,
                        });
                    }
                    tracing::info!(
                        namespace,
                        kind = kind.as_str(),
                        name = %name,
                        code = status.code,
                        attempt = attempts,
                        "workload moved between read and patch; re-reading and re-planning"
                    );
                }
                Err(e) => {
                    let error = patch_call.error(e);
                    if !matches!(error, Error::Transport { .. }) || plan.dry_run {
                        return Err(error);
                    }
                    // The connection broke after the body was sent: the patch
                    // may have landed. Only a re-read tells, and only our own
                    // audit record (same action, same second, same execution)
                    // proves it was this patch.
                    tracing::warn!(
                        namespace,
                        kind = kind.as_str(),
                        name = %name,
                        error = %error,
                        "no answer to the patch; re-reading to see whether it landed"
                    );
                    match self.landed(&api, &name, &plan).await {
                        Some(current) => {
                            let mut outcome = self.applied(request, &name, *plan, &current).await;
                            outcome.message.push_str(&format!(
                                " (confirmed by re-reading the {} after the connection broke)",
                                kind.noun()
                            ));
                            return Ok(outcome);
                        }
                        // Not written: the guarded patch is safe to re-plan and resend.
                        None if attempts <= self.replan_budget => {}
                        None => return Err(error),
                    }
                }
            }
        }
    }

    /// After a PATCH without an answer: the workload as it is now when our
    /// patch's audit annotation is on it, `None` when it is not or the
    /// re-read fails too (then the caller's transport error stands).
    async fn landed<K: WorkloadObject>(&self, api: &Api<K>, name: &str, plan: &Plan) -> Option<K> {
        let ours = plan.annotations.get(keys::LAST_REMEDIATION)?;
        let current = api.get(name).await.ok()?;
        let theirs = current.workload().annotation(keys::LAST_REMEDIATION);
        (theirs == Some(ours.as_str())).then_some(current)
    }

    /// The policy's `max_actions_per_window` (guard `rateLimit`): one LIST of
    /// each workload kind (in the allowed namespaces, else cluster-wide),
    /// counted together by their audit annotations (see
    /// [`selfheal_core::guards::rate_limit`] for why annotations and not
    /// Events). No LIST when no limit is configured.
    async fn rate_limit(
        &self,
        target: WorkloadRef<'_>,
    ) -> Result<Result<(), selfheal_core::guards::Refusal>> {
        if self.policy.max_actions_per_window.is_none() {
            return Ok(Ok(()));
        }
        let namespaces: Vec<Option<&str>> = match &self.policy.allowed_namespaces {
            Some(namespaces) => namespaces.iter().map(|ns| Some(ns.as_str())).collect(),
            None => vec![None],
        };
        let (mut deployments, mut stateful_sets, mut daemon_sets) = (vec![], vec![], vec![]);
        for namespace in namespaces {
            deployments.extend(self.list_all::<Deployment>(namespace).await?);
            stateful_sets.extend(self.list_all::<StatefulSet>(namespace).await?);
            daemon_sets.extend(self.list_all::<DaemonSet>(namespace).await?);
        }
        let fleet = (deployments.iter().map(WorkloadRef::from))
            .chain(stateful_sets.iter().map(WorkloadRef::from))
            .chain(daemon_sets.iter().map(WorkloadRef::from));
        Ok(selfheal_core::guards::rate_limit(
            &self.policy,
            target,
            fleet,
            (self.clock)(),
        ))
    }

    /// Every `K` in `namespace` (cluster-wide for `None`): one LIST.
    async fn list_all<K: WorkloadObject>(&self, namespace: Option<&str>) -> Result<Vec<K>> {
        let api: Api<K> = match namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let list = api.list(&ListParams::default()).await.map_err(|e| {
            Call {
                verb: "list",
                kind: K::KIND.as_str(),
                namespace: namespace.unwrap_or_default(),
                name: "",
            }
            .error(e)
        })?;
        Ok(list.items)
    }

    /// Report on a patch the server accepted: dry-run status, revision, Event, log line.
    async fn applied<K: WorkloadObject>(
        &self,
        request: &RemediationRequest,
        name: &str,
        plan: Plan,
        patched: &K,
    ) -> RemediationOutcome {
        let workload = patched.workload();
        let mut outcome = with_target(plan.outcome, request, K::KIND, name);
        if plan.dry_run {
            // The core words messages for a write ("rolled back …"); a dry run wrote nothing.
            outcome.status = OutcomeStatus::DryRun;
            outcome.message = format!("dry run, nothing written: would have {}", outcome.message);
        } else {
            if let Some(after) = workload
                .as_deployment()
                .and_then(|d| revision_after(request.action, d))
            {
                outcome
                    .revision
                    .get_or_insert_with(RevisionInfo::default)
                    .after = Some(after);
            }
            let event = build_event(
                workload,
                request.action,
                &plan.event_message,
                &self.reporter,
                (self.clock)(),
            );
            // The change is made; a lost audit Event must not make the state
            // machine retry (and re-apply) it.
            if let Err(error) = post_event(&self.client, &event).await {
                tracing::warn!(
                    namespace = %request.target.namespace,
                    kind = K::KIND.as_str(),
                    name,
                    error = %error,
                    error_type = error.error_type(),
                    "could not record the audit Event"
                );
            }
        }
        tracing::info!(
            action = %request.action,
            namespace = %request.target.namespace,
            kind = K::KIND.as_str(),
            name,
            status = ?outcome.status,
            changes = ?outcome.changes,
            annotations = ?plan.annotations,
            message = %outcome.message,
            "remediation written"
        );
        outcome
    }

    /// GET the workload and, when asked, LIST its history by its selector:
    /// ReplicaSets for a Deployment, ControllerRevisions otherwise.
    pub(crate) async fn read<K: WorkloadObject>(
        &self,
        namespace: &str,
        name: &str,
        with_history: bool,
    ) -> Result<Snapshot<K>> {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let workload = api.get(name).await.map_err(|e| {
            Call {
                verb: "get",
                kind: K::KIND.as_str(),
                namespace,
                name,
            }
            .error(e)
        })?;
        let mut snapshot = Snapshot {
            workload,
            replica_sets: Vec::new(),
            controller_revisions: Vec::new(),
            pods: Vec::new(),
        };
        if with_history {
            let selector = workload_selector(snapshot.workload.workload(), name)?;
            match K::KIND {
                WorkloadKind::Deployment => {
                    snapshot.replica_sets = self
                        .list_selected("ReplicaSet", namespace, &selector)
                        .await?;
                }
                WorkloadKind::StatefulSet | WorkloadKind::DaemonSet => {
                    snapshot.controller_revisions = self
                        .list_selected("ControllerRevision", namespace, &selector)
                        .await?;
                }
            }
        }
        Ok(snapshot)
    }

    /// One LIST of `kind` in `namespace` by `selector`; an error names the
    /// selector where a GET would name the object.
    async fn list_selected<R>(
        &self,
        kind: &'static str,
        namespace: &str,
        selector: &kube::core::Selector,
    ) -> Result<Vec<R>>
    where
        R: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + k8s_openapi::serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<R> = Api::namespaced(self.client.clone(), namespace);
        let list = api
            .list(&ListParams::default().labels_from(selector))
            .await
            .map_err(|e| {
                Call {
                    verb: "list",
                    kind,
                    namespace,
                    name: &selector.to_string(),
                }
                .error(e)
            })?;
        Ok(list.items)
    }

    /// The pods of the workload's current revision: one LIST by its
    /// selector plus the current revision's label (`pod-template-hash` of
    /// the newest ReplicaSet, `controller-revision-hash` of the newest
    /// ControllerRevision), so pods of older revisions are not even
    /// transferred. None while no revision runs the template yet.
    async fn list_current_pods<K: WorkloadObject>(
        &self,
        namespace: &str,
        name: &str,
        snapshot: &Snapshot<K>,
    ) -> Result<Vec<Pod>> {
        let workload = snapshot.workload.workload();
        let Some((key, value)) = selfheal_core::history::current_revision_label(
            workload,
            &snapshot.replica_sets,
            &snapshot.controller_revisions,
        ) else {
            return Ok(Vec::new());
        };
        let mut selector = workload_selector(workload, name)?;
        selector.extend(kube::core::Expression::Equal(key.to_owned(), value));
        self.list_selected("Pod", namespace, &selector).await
    }

    /// The Deployment and its ReplicaSets (GET + LIST), e.g. for a CLI snapshot.
    pub async fn deployment_snapshot(&self, namespace: &str, name: &str) -> Result<Snapshot> {
        self.read(namespace, name, true).await
    }

    /// `kubectl rollout status` verdict of a Deployment from one GET.
    pub async fn status(&self, namespace: &str, name: &str) -> Result<RolloutStatus> {
        self.status_of(namespace, WorkloadKind::Deployment, name)
            .await
    }

    /// `kubectl rollout status` verdict of any workload kind from one GET.
    pub async fn status_of(
        &self,
        namespace: &str,
        kind: WorkloadKind,
        name: &str,
    ) -> Result<RolloutStatus> {
        match kind {
            WorkloadKind::Deployment => self.status_as::<Deployment>(namespace, name).await,
            WorkloadKind::StatefulSet => self.status_as::<StatefulSet>(namespace, name).await,
            WorkloadKind::DaemonSet => self.status_as::<DaemonSet>(namespace, name).await,
        }
    }

    async fn status_as<K: WorkloadObject>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<RolloutStatus> {
        let snapshot: Snapshot<K> = self.read(namespace, name, false).await?;
        Ok(rollout_status(snapshot.workload.workload()))
    }

    /// The workload `workload` names: itself, or the one that owns the pod
    /// (ReplicaSet → Deployment: two GETs; StatefulSet or DaemonSet: one),
    /// with the pod as read for the stale-pod guard.
    pub async fn resolve(&self, namespace: &str, workload: Workload<'_>) -> Result<Resolved> {
        match (workload.kind(), workload) {
            (Some(kind), _) => Ok(Resolved {
                kind,
                name: workload.name().to_owned(),
                pod: None,
                owner: None,
            }),
            (None, _) => {
                let owner = pod_owner(&self.client, namespace, workload.name()).await?;
                Ok(Resolved {
                    kind: owner.kind,
                    name: owner.name,
                    pod: Some(owner.pod),
                    owner: owner.uid,
                })
            }
        }
    }
}

/// What a target names, resolved to a workload of a known kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub kind: WorkloadKind,
    pub name: String,
    /// The pod as read, when the target named one.
    pub pod: Option<Pod>,
    /// The uid the pod's ownerReference names, when it names the workload
    /// directly (StatefulSet, DaemonSet): the workload read must be that one.
    pub owner: Option<String>,
}

/// A pod's owner deleted and recreated under the same name is not the pod's
/// owner: refuse rather than act on a different object.
fn same_owner<K: WorkloadObject>(
    namespace: &str,
    pod: &Option<Pod>,
    workload: &K,
    uid: &str,
) -> Result<()> {
    let meta = workload.workload().metadata();
    if meta.uid.as_deref() == Some(uid) {
        return Ok(());
    }
    Err(Error::PodNotOwnedByDeployment {
        namespace: namespace.to_owned(),
        pod: pod
            .as_ref()
            .and_then(|p| p.metadata.name.clone())
            .unwrap_or_default(),
        found: format!(
            "owner {}/{} was replaced (uid {uid} is gone)",
            K::KIND.as_str(),
            meta.name.as_deref().unwrap_or_default()
        ),
    })
}

async fn send<K: WorkloadObject>(api: &Api<K>, name: &str, plan: &Plan) -> kube::Result<K> {
    let params = PatchParams {
        dry_run: plan.dry_run,
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    api.patch(name, &params, &Patch::Json::<()>(plan.patch.clone()))
        .await
}

/// The workload's `spec.selector` for a LIST of what it owns.
fn workload_selector(workload: WorkloadRef<'_>, name: &str) -> Result<kube::core::Selector> {
    let selector = workload.selector().ok_or_else(|| Error::InvalidObject {
        kind: workload.kind().as_str(),
        name: name.to_owned(),
        reason: "has no spec".into(),
        source: None,
    })?;
    label_selector(selector, name)
}

/// The outcome names the workload acted on, and the pod when the request named one.
fn with_target(
    mut outcome: RemediationOutcome,
    request: &RemediationRequest,
    kind: WorkloadKind,
    name: &str,
) -> RemediationOutcome {
    outcome.target.set_workload(kind, name);
    if request.target.pod.is_some() {
        outcome.target.pod = request.target.pod.clone();
    }
    outcome
}

/// The revision after the write, where the PATCH response already knows it:
/// a pause never changes the template, and otherwise only a response whose
/// generation the controller has observed carries the new revision (a
/// template change answers with the old annotation, json-patch-single-container.json).
fn revision_after(action: Action, patched: &Deployment) -> Option<i64> {
    let revision = patched
        .metadata
        .annotations
        .as_ref()?
        .get(keys::REVISION)?
        .parse()
        .ok()?;
    let generation = patched.metadata.generation.unwrap_or(0);
    let observed = patched
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or(0);
    (action == Action::Pause || observed >= generation).then_some(revision)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn deployment(revision: &str, generation: i64, observed: i64) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "checkout", "generation": generation,
                "annotations": {"deployment.kubernetes.io/revision": revision}},
            "status": {"observedGeneration": observed}
        }))
        .unwrap()
    }

    #[test]
    fn revision_after_only_when_known() {
        // Recorded PATCH response of a template change: generation 5, observed 4, old revision 4.
        assert_eq!(
            revision_after(Action::Rollback, &deployment("4", 5, 4)),
            None
        );
        assert_eq!(
            revision_after(Action::Restart, &deployment("4", 5, 4)),
            None
        );
        assert_eq!(
            revision_after(Action::Pause, &deployment("4", 5, 4)),
            Some(4)
        );
        assert_eq!(
            revision_after(Action::Resume, &deployment("7", 9, 9)),
            Some(7)
        );
        assert_eq!(revision_after(Action::Pause, &deployment("x", 1, 1)), None);
    }
}
