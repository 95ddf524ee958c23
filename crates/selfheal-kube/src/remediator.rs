//! One remediation against a live API server: read, plan (pure core), send the
//! one guarded JSON Patch, re-plan if the object moved, record an Event.
//! Round trips for a rollback: GET + LIST + PATCH (+ Event POST); for
//! pause/resume/restart: GET + PATCH (+ Event POST). A pod target adds the
//! pod and ReplicaSet GETs and always the LIST: the stale-pod guard needs the
//! Deployment's current revision. A rollback that names no container adds
//! one LIST of the current revision's pods, whose statuses say which changed
//! container is failing (`selfheal_core::evidence`).

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use selfheal_core::plan::needs_replica_sets;
use selfheal_core::pod::check_pod_target;
use selfheal_core::{
    Action, Decision, OutcomeStatus, Plan, PlanInput, Policy, RemediationOutcome,
    RemediationRequest, RevisionInfo, RolloutStatus, ValidRequest, Workload, decide, keys,
    rollout_status,
};

use crate::FIELD_MANAGER;
use crate::error::{Call, Error, Result};
use crate::events::{Reporter, build_event, post_event};
use crate::resolve::{label_selector, pod_owner};

/// Injected clock, so cooldowns and `restartedAt` are testable.
pub type Clock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// Re-plans after a 409/422 before giving up with a retryable error.
pub const DEFAULT_REPLAN_BUDGET: u32 = 3;

/// A Deployment and (when read) its ReplicaSets and current pods, as one
/// consistent input to planning.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub deployment: Deployment,
    pub replica_sets: Vec<ReplicaSet>,
    /// The pods of the current revision (only for a rollback that names no
    /// container; empty otherwise).
    pub pods: Vec<k8s_openapi::api::core::v1::Pod>,
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
        let (name, pod) = self.resolve(namespace, request.workload()).await?;
        // The core plans for a Deployment target; the outcome gets the pod back.
        let planned = match pod {
            Some(_) => request
                .for_deployment(&name)
                .map_err(|e| Error::from_core(e, &name))?,
            None => request.clone(),
        };

        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let patch_call = Call {
            verb: "patch",
            kind: "Deployment",
            namespace,
            name: &name,
        };
        let mut attempts = 0u32;
        // What the first plan of a rollback reverts: a re-plan (after 409/422
        // or a lost answer) must revert the same images, else someone changed
        // the Deployment in between and their change wins.
        let mut first_changes: Option<Vec<selfheal_core::Change>> = None;
        loop {
            attempts += 1;
            let mut snapshot = self
                .read(
                    namespace,
                    &name,
                    needs_replica_sets(&planned) || pod.is_some(),
                )
                .await?;
            if selfheal_core::needs_pods(&planned) {
                snapshot.pods = self.list_current_pods(namespace, &name, &snapshot).await?;
            }
            let decision = decide(PlanInput {
                request: &planned,
                workload: (&snapshot.deployment).into(),
                controller_revisions: &[],
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
                        deployment = %name,
                        status = ?outcome.status,
                        guard = outcome.guard.map(|g| g.as_str()),
                        message = %outcome.message,
                        "nothing to write"
                    );
                    return Ok(with_target(outcome, request, &name));
                }
                Decision::Apply(plan) => plan,
            };
            let moved = match (&first_changes, request.action) {
                (_, action) if action != Action::Rollback => Ok(()),
                (None, _) => {
                    first_changes = Some(plan.outcome.changes.clone());
                    Ok(())
                }
                (Some(planned), _) => selfheal_core::guards::same_changes(
                    &snapshot.deployment,
                    planned,
                    &plan.outcome.changes,
                ),
            };
            // Only a write needs the pod to speak for the Deployment: a
            // refusal or skip the planner already decided stands as it is.
            let stale = pod.as_ref().map_or(Ok(()), |pod| {
                check_pod_target(pod, request, &snapshot.deployment, &snapshot.replica_sets)
            });
            let refusal = match stale.and(moved) {
                Err(refusal) => Err(refusal),
                Ok(()) => self.rate_limit(&snapshot.deployment).await?,
            };
            if let Err(refusal) = refusal {
                let outcome = plan.refuse(refusal);
                tracing::info!(
                    action = %request.action,
                    namespace,
                    deployment = %name,
                    guard = outcome.guard.map(|g| g.as_str()),
                    message = %outcome.message,
                    "nothing to write"
                );
                return Ok(with_target(outcome, request, &name));
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
                        deployment = %name,
                        code = status.code,
                        attempt = attempts,
                        "deployment moved between read and patch; re-reading and re-planning"
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
                        deployment = %name,
                        error = %error,
                        "no answer to the patch; re-reading to see whether it landed"
                    );
                    match self.landed(&api, &name, &plan).await {
                        Some(current) => {
                            let mut outcome = self.applied(request, &name, *plan, &current).await;
                            outcome.message.push_str(
                                " (confirmed by re-reading the deployment after the connection broke)",
                            );
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

    /// After a PATCH without an answer: the Deployment as it is now when our
    /// patch's audit annotation is on it, `None` when it is not or the
    /// re-read fails too (then the caller's transport error stands).
    async fn landed(&self, api: &Api<Deployment>, name: &str, plan: &Plan) -> Option<Deployment> {
        let ours = plan.annotations.get(keys::LAST_REMEDIATION)?;
        let current = api.get(name).await.ok()?;
        let theirs = current
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(keys::LAST_REMEDIATION));
        (theirs == Some(ours)).then_some(current)
    }

    /// The policy's `max_actions_per_window` (guard `rateLimit`): one LIST of
    /// Deployments (in the allowed namespaces, else cluster-wide), counted by
    /// their audit annotations (see [`selfheal_core::guards::rate_limit`] for
    /// why annotations and not Events). No LIST when no limit is configured.
    async fn rate_limit(
        &self,
        target: &Deployment,
    ) -> Result<Result<(), selfheal_core::guards::Refusal>> {
        if self.policy.max_actions_per_window.is_none() {
            return Ok(Ok(()));
        }
        let list = |api: Api<Deployment>, namespace: String| async move {
            api.list(&ListParams::default()).await.map_err(|e| {
                Call {
                    verb: "list",
                    kind: "Deployment",
                    namespace: &namespace,
                    name: "",
                }
                .error(e)
            })
        };
        let mut fleet = Vec::new();
        match &self.policy.allowed_namespaces {
            Some(namespaces) => {
                for ns in namespaces {
                    let api = Api::namespaced(self.client.clone(), ns);
                    fleet.extend(list(api, ns.clone()).await?.items);
                }
            }
            None => {
                fleet = list(Api::all(self.client.clone()), String::new())
                    .await?
                    .items
            }
        }
        Ok(selfheal_core::guards::rate_limit(
            &self.policy,
            target,
            &fleet,
            (self.clock)(),
        ))
    }

    /// Report on a patch the server accepted: dry-run status, revision, Event, log line.
    async fn applied(
        &self,
        request: &RemediationRequest,
        name: &str,
        plan: Plan,
        patched: &Deployment,
    ) -> RemediationOutcome {
        let mut outcome = with_target(plan.outcome, request, name);
        if plan.dry_run {
            // The core words messages for a write ("rolled back …"); a dry run wrote nothing.
            outcome.status = OutcomeStatus::DryRun;
            outcome.message = format!("dry run, nothing written: would have {}", outcome.message);
        } else {
            if let Some(after) = revision_after(request.action, patched) {
                outcome
                    .revision
                    .get_or_insert_with(RevisionInfo::default)
                    .after = Some(after);
            }
            let event = build_event(
                patched,
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
                    deployment = name,
                    error = %error,
                    error_type = error.error_type(),
                    "could not record the audit Event"
                );
            }
        }
        tracing::info!(
            action = %request.action,
            namespace = %request.target.namespace,
            deployment = name,
            status = ?outcome.status,
            changes = ?outcome.changes,
            annotations = ?plan.annotations,
            message = %outcome.message,
            "remediation written"
        );
        outcome
    }

    /// GET the Deployment and, when asked, LIST its ReplicaSets by its selector.
    pub(crate) async fn read(
        &self,
        namespace: &str,
        name: &str,
        with_replica_sets: bool,
    ) -> Result<Snapshot> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let deployment = api.get(name).await.map_err(|e| {
            Call {
                verb: "get",
                kind: "Deployment",
                namespace,
                name,
            }
            .error(e)
        })?;
        let replica_sets = if with_replica_sets {
            self.list_replica_sets(namespace, name, &deployment).await?
        } else {
            Vec::new()
        };
        Ok(Snapshot {
            deployment,
            replica_sets,
            pods: Vec::new(),
        })
    }

    async fn list_replica_sets(
        &self,
        namespace: &str,
        name: &str,
        deployment: &Deployment,
    ) -> Result<Vec<ReplicaSet>> {
        let selector = deployment_selector(deployment, name)?;
        self.list_selected("ReplicaSet", namespace, &selector).await
    }

    /// One LIST of `kind` in `namespace` by `selector`; an error names the
    /// selector where a GET would name the object.
    async fn list_selected<K>(
        &self,
        kind: &'static str,
        namespace: &str,
        selector: &kube::core::Selector,
    ) -> Result<Vec<K>>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + k8s_openapi::serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
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

    /// The pods of the Deployment's current revision: one LIST by its
    /// selector plus the newest ReplicaSet's `pod-template-hash`, so pods of
    /// older revisions are not even transferred. None while no ReplicaSet
    /// runs the template yet (no pod runs it either).
    async fn list_current_pods(
        &self,
        namespace: &str,
        name: &str,
        snapshot: &Snapshot,
    ) -> Result<Vec<Pod>> {
        let Some(hash) = selfheal_core::evidence::current_revision_hash(
            &snapshot.deployment,
            &snapshot.replica_sets,
        ) else {
            return Ok(Vec::new());
        };
        let mut selector = deployment_selector(&snapshot.deployment, name)?;
        selector.extend(kube::core::Expression::Equal(
            keys::POD_TEMPLATE_HASH.to_owned(),
            hash.to_owned(),
        ));
        self.list_selected("Pod", namespace, &selector).await
    }

    /// The Deployment and its ReplicaSets (GET + LIST), e.g. for a CLI snapshot.
    pub async fn deployment_snapshot(&self, namespace: &str, name: &str) -> Result<Snapshot> {
        self.read(namespace, name, true).await
    }

    /// `kubectl rollout status` verdict from one GET.
    pub async fn status(&self, namespace: &str, name: &str) -> Result<RolloutStatus> {
        let snapshot = self.read(namespace, name, false).await?;
        Ok(rollout_status(&snapshot.deployment))
    }

    /// The Deployment `workload` names: itself, or the one that owns the pod
    /// (two GETs), with the pod as read for the stale-pod guard.
    pub async fn resolve(
        &self,
        namespace: &str,
        workload: Workload<'_>,
    ) -> Result<(String, Option<Pod>)> {
        match workload {
            Workload::Deployment(name) => Ok((name.to_owned(), None)),
            Workload::Pod(pod) => {
                let owner = pod_owner(&self.client, namespace, pod).await?;
                Ok((owner.deployment, Some(owner.pod)))
            }
            Workload::StatefulSet(_) | Workload::DaemonSet(_) => Err(unsupported(workload)),
        }
    }
}

/// A StatefulSet or DaemonSet target, which this adapter does not act on yet.
fn unsupported(workload: Workload<'_>) -> Error {
    let kind = workload.kind().map_or("pod", |k| k.as_str());
    Error::InvalidRequest {
        source: selfheal_core::Error::InvalidRequest(format!(
            "{kind} {:?}: this adapter acts on Deployments only",
            workload.name()
        )),
    }
}

async fn send(api: &Api<Deployment>, name: &str, plan: &Plan) -> kube::Result<Deployment> {
    let params = PatchParams {
        dry_run: plan.dry_run,
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    api.patch(name, &params, &Patch::Json::<()>(plan.patch.clone()))
        .await
}

/// The outcome names the Deployment acted on, and the pod when the request named one.
/// The Deployment's `spec.selector` for a LIST of what it owns.
fn deployment_selector(deployment: &Deployment, name: &str) -> Result<kube::core::Selector> {
    let selector = deployment
        .spec
        .as_ref()
        .map(|s| &s.selector)
        .ok_or_else(|| Error::InvalidObject {
            kind: "Deployment",
            name: name.to_owned(),
            reason: "has no spec".into(),
            source: None,
        })?;
    label_selector(selector, name)
}

fn with_target(
    mut outcome: RemediationOutcome,
    request: &RemediationRequest,
    name: &str,
) -> RemediationOutcome {
    outcome.target.deployment = Some(name.to_owned());
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
