//! The public JSON contract (docs/contract.md): what a console user types into a
//! Step Functions execution and what every handler returns. camelCase, stable.

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::evidence::ContainerEvidence;

/// What to do to the Deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Rollback,
    Pause,
    Resume,
    Restart,
}

impl Action {
    /// Name used in annotations, logs and Event reasons (`Selfheal<Action>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Rollback => "rollback",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Restart => "restart",
        }
    }

    /// Kubernetes Event reason for an applied action (docs/guards.md §4).
    pub fn event_reason(self) -> &'static str {
        match self {
            Action::Rollback => "SelfhealRollback",
            Action::Pause => "SelfhealPause",
            Action::Resume => "SelfhealResume",
            Action::Restart => "SelfhealRestart",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which part of the pod template a rollback reverts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Scope {
    /// Half-brick rollback: only the offending container's image (docs/kubectl-semantics.md §2).
    #[default]
    Container,
    /// Whole-template rollback, `kubectl rollout undo` parity (docs/kubectl-semantics.md §3).
    Template,
}

/// The workload to act on. Names exactly one of a `deployment`, a
/// `statefulSet`, a `daemonSet` or a `pod` (resolved to the workload that
/// owns it through ownerReferences before planning).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stateful_set: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_set: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// Where the request came from, when an alarm raised it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmRef {
    /// `cloudwatch`, `alertmanager` or `manual`.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// How far the signal is past its threshold (docs/guards.md §3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact_score: Option<f64>,
}

/// Step Functions input: one remediation of one Deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemediationRequest {
    pub action: Action,
    pub target: Target,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub scope: Scope,
    /// `scope: template` only: restore this revision (`kubectl rollout undo --to-revision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_revision: Option<i64>,
    /// Wait for a human before acting (handled by the state machine).
    #[serde(default)]
    pub approval: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<AlarmRef>,
    /// Step Functions execution id/name, recorded in the audit annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// Who approved the action, as the approve function saw the request;
    /// set by the state machine after an approval, named in the audit Event
    /// and the history record. Boxed: rarely there, and a request is moved
    /// around a lot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<Box<ApprovedBy>>,
}

/// The approver's device: the source IP and user agent of the request that
/// approved (approve's `decidedBy`). Both come from the client, so they are
/// cleaned again wherever they are written ([`ApprovedBy::clean`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovedBy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// Longest source IP or user agent kept, in characters (approve's cap too).
pub const APPROVED_BY_MAX_CHARS: usize = 256;

impl ApprovedBy {
    /// Without control characters, trimmed, at most
    /// [`APPROVED_BY_MAX_CHARS`] characters each; blank parts dropped.
    pub fn clean(&self) -> ApprovedBy {
        let clean = |text: &Option<String>| {
            let text: String = text
                .as_deref()?
                .chars()
                .filter(|c| !c.is_control())
                .take(APPROVED_BY_MAX_CHARS)
                .collect();
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_owned())
        };
        ApprovedBy {
            source_ip: clean(&self.source_ip),
            user_agent: clean(&self.user_agent),
        }
    }

    /// `203.0.113.7 (curl/8.5.0)`, cleaned, for sentences.
    pub fn describe(&self) -> String {
        let clean = self.clean();
        format!(
            "{} ({})",
            clean.source_ip.as_deref().unwrap_or("an unknown address"),
            clean.user_agent.as_deref().unwrap_or("no user agent")
        )
    }
}

impl RemediationRequest {
    /// Parse and validate a request; every failure names the field at fault.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        ValidRequest::from_json(text).map(ValidRequest::into_inner)
    }

    /// Checks serde cannot express: exactly one of deployment / statefulSet /
    /// daemonSet / pod, non-empty names, `toRevision` only with a
    /// template-scope rollback.
    pub fn validate(&self) -> Result<(), Error> {
        let t = &self.target;
        if t.namespace.trim().is_empty() {
            return Err(Error::InvalidRequest(
                "target.namespace must not be empty".into(),
            ));
        }
        let named: Vec<(&str, &str)> = t
            .workload_fields()
            .into_iter()
            .filter_map(|(field, name)| Some((field, name?)))
            .collect();
        let (field, name) = match named.as_slice() {
            [] => Err(Error::InvalidRequest(
                "target needs one of `deployment`, `statefulSet`, `daemonSet` or `pod`".into(),
            )),
            [(field, name)] if name.trim().is_empty() => Err(Error::InvalidRequest(format!(
                "target.{field} must not be empty"
            ))),
            [one] => Ok(*one),
            [(a, _), (b, _)] => Err(Error::InvalidRequest(format!(
                "target names both `{a}` and `{b}`; give one"
            ))),
            [first @ .., (last, _)] => {
                let first: Vec<String> = first.iter().map(|(f, _)| format!("`{f}`")).collect();
                Err(Error::InvalidRequest(format!(
                    "target names {} and `{last}`; give one",
                    first.join(", ")
                )))
            }
        }?;
        if let Some(cluster) = &t.cluster {
            crate::cluster::ClusterRef::parse(cluster)?;
        }
        names::check("target.namespace", &t.namespace, names::Rule::Label)?;
        names::check(&format!("target.{field}"), name, names::Rule::Subdomain)?;
        if let Some(c) = &t.container {
            if c.trim().is_empty() {
                return Err(Error::InvalidRequest(
                    "target.container must not be empty (leave it out to roll back every changed container)".into(),
                ));
            }
            names::check("target.container", c, names::Rule::Label)?;
        }
        if self.to_revision.is_some()
            && (self.action != Action::Rollback || self.scope != Scope::Template)
        {
            return Err(Error::InvalidRequest(
                "toRevision applies only to action rollback with scope \"template\"".into(),
            ));
        }
        Ok(())
    }
}

impl Target {
    /// What the target names: its workload (`deployment`, `statefulSet` or
    /// `daemonSet`) when one is not blank, else its `pod` when that is not
    /// blank. An outcome names both (the pod it was asked about and the
    /// workload acted on); the workload wins.
    pub fn workload(&self) -> Option<Workload<'_>> {
        fn named(name: &Option<String>) -> Option<&str> {
            name.as_deref().filter(|n| !n.trim().is_empty())
        }
        WorkloadKind::ALL
            .into_iter()
            .find_map(|kind| named(self.workload_name_field(kind)).map(|n| Workload::of(kind, n)))
            .or_else(|| named(&self.pod).map(Workload::Pod))
    }

    /// The workload the target names and its kind, not blank; `None` for a
    /// target that names only a pod.
    pub fn workload_kind(&self) -> Option<WorkloadKind> {
        self.workload().and_then(|w| w.kind())
    }

    /// The name the target gives for `kind` (`deployment`, `statefulSet` or
    /// `daemonSet`), as given.
    pub fn workload_name(&self, kind: WorkloadKind) -> Option<&str> {
        self.workload_name_field(kind).as_deref()
    }

    fn workload_name_field(&self, kind: WorkloadKind) -> &Option<String> {
        match kind {
            WorkloadKind::Deployment => &self.deployment,
            WorkloadKind::StatefulSet => &self.stateful_set,
            WorkloadKind::DaemonSet => &self.daemon_set,
        }
    }

    /// Name the workload acted on: `kind`'s field is set to `name` and the
    /// other kinds' fields are cleared; `pod` stays, so an outcome of a pod
    /// target names the pod and the workload it resolved to.
    pub fn set_workload(&mut self, kind: WorkloadKind, name: &str) {
        for other in WorkloadKind::ALL {
            let field = match other {
                WorkloadKind::Deployment => &mut self.deployment,
                WorkloadKind::StatefulSet => &mut self.stateful_set,
                WorkloadKind::DaemonSet => &mut self.daemon_set,
            };
            *field = (other == kind).then(|| name.to_owned());
        }
    }

    /// `(request field, name)` of the four fields of which exactly one is set.
    fn workload_fields(&self) -> [(&'static str, Option<&str>); 4] {
        let [d, s, ds] = WorkloadKind::ALL.map(|k| (k.field(), self.workload_name(k)));
        [d, s, ds, ("pod", self.pod.as_deref())]
    }
}

/// The object a target names, before a pod is resolved to its workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload<'a> {
    Deployment(&'a str),
    StatefulSet(&'a str),
    DaemonSet(&'a str),
    Pod(&'a str),
}

impl<'a> Workload<'a> {
    /// The workload of `kind` named `name`.
    pub fn of(kind: WorkloadKind, name: &'a str) -> Self {
        match kind {
            WorkloadKind::Deployment => Workload::Deployment(name),
            WorkloadKind::StatefulSet => Workload::StatefulSet(name),
            WorkloadKind::DaemonSet => Workload::DaemonSet(name),
        }
    }

    /// The kind, `None` for a pod (its owner decides).
    pub fn kind(self) -> Option<WorkloadKind> {
        match self {
            Workload::Deployment(_) => Some(WorkloadKind::Deployment),
            Workload::StatefulSet(_) => Some(WorkloadKind::StatefulSet),
            Workload::DaemonSet(_) => Some(WorkloadKind::DaemonSet),
            Workload::Pod(_) => None,
        }
    }

    /// The object's name.
    pub fn name(self) -> &'a str {
        match self {
            Workload::Deployment(n)
            | Workload::StatefulSet(n)
            | Workload::DaemonSet(n)
            | Workload::Pod(n) => n,
        }
    }
}

/// The `apps/v1` workload kinds selfheal acts on. Each keeps its pod
/// templates' history its own way (ReplicaSets for a Deployment,
/// ControllerRevisions for the others; docs/kubectl-semantics.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    /// Every kind, in the order a target's fields are read.
    pub const ALL: [WorkloadKind; 3] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
    ];

    /// The API kind: `Deployment`, `StatefulSet`, `DaemonSet`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }

    /// The resource's plural in URL paths and RBAC rules.
    pub fn plural(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
            WorkloadKind::DaemonSet => "daemonsets",
        }
    }

    /// The lowercase singular kubectl uses in `kind/name` and in messages
    /// (`deployment`, `statefulset`, `daemonset`).
    pub fn noun(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemonset",
        }
    }

    /// The request's `target` field that names this kind.
    pub fn field(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulSet",
            WorkloadKind::DaemonSet => "daemonSet",
        }
    }

    /// The kind an ownerReference's `kind` names, if selfheal acts on it.
    pub fn from_kind(kind: &str) -> Option<Self> {
        WorkloadKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A [`RemediationRequest`] that passed [`RemediationRequest::validate`].
///
/// The entry point (handler, CLI, adapter) validates once; the adapter and
/// the planner take this type, so the type shows the check was made and no
/// later stage repeats it. Only fields the check does not look at can be
/// changed afterwards.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ValidRequest(RemediationRequest);

impl ValidRequest {
    /// Validate `request`.
    pub fn new(request: RemediationRequest) -> Result<Self, Error> {
        request.validate()?;
        Ok(ValidRequest(request))
    }

    /// Parse and validate a request; every failure names the field at fault.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let request: RemediationRequest =
            crate::decode_str(text).map_err(|source| Error::MalformedRequest { source })?;
        Self::new(request)
    }

    pub fn request(&self) -> &RemediationRequest {
        &self.0
    }

    pub fn into_inner(self) -> RemediationRequest {
        self.0
    }

    /// The workload or pod the request names: exactly one, not blank.
    pub fn workload(&self) -> Workload<'_> {
        // `new` refuses a target naming neither, so the fallback is never taken.
        self.0.target.workload().unwrap_or(Workload::Deployment(""))
    }

    /// Make it a dry run (the CLI's `--dry-run`).
    pub fn set_dry_run(&mut self, dry_run: bool) {
        self.0.dry_run = dry_run;
    }

    /// Record the execution that carries the request out (audit trail).
    pub fn set_execution(&mut self, execution: Option<String>) {
        self.0.execution = execution;
    }

    /// Record the cluster the request is carried out on.
    pub fn set_cluster(&mut self, cluster: Option<String>) {
        self.0.target.cluster = cluster;
    }

    /// The same request aimed at `deployment`, the Deployment a pod target
    /// resolved to ([`ValidRequest::for_workload`]).
    pub fn for_deployment(&self, deployment: &str) -> Result<Self, Error> {
        self.for_workload(WorkloadKind::Deployment, deployment)
    }

    /// The same request aimed at the workload a pod target resolved to. The
    /// name comes from the API server's ownerReferences and reaches URL
    /// paths, so it passes the same name check as a requested one.
    pub fn for_workload(&self, kind: WorkloadKind, name: &str) -> Result<Self, Error> {
        names::check(
            &format!("target.{}", kind.field()),
            name,
            names::Rule::Subdomain,
        )?;
        let mut request = self.0.clone();
        request.target.set_workload(kind, name);
        request.target.pod = None;
        Ok(ValidRequest(request))
    }
}

impl std::ops::Deref for ValidRequest {
    type Target = RemediationRequest;

    fn deref(&self) -> &RemediationRequest {
        &self.0
    }
}

impl TryFrom<RemediationRequest> for ValidRequest {
    type Error = Error;

    fn try_from(request: RemediationRequest) -> Result<Self, Error> {
        Self::new(request)
    }
}

/// Kubernetes object-name rules, checked before any name reaches a URL path:
/// kube builds paths from names without encoding segments, so `../x` or
/// `a/b?c=` must never get that far.
mod names {
    use crate::Error;

    #[derive(Debug, Clone, Copy)]
    pub(super) enum Rule {
        /// RFC 1123 label (namespaces, container names): at most 63 of
        /// `[a-z0-9-]`, starting and ending alphanumeric.
        Label,
        /// RFC 1123 subdomain (Deployments, pods): at most 253 characters,
        /// dot-separated labels.
        Subdomain,
    }

    fn label_ok(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    pub(super) fn check(field: &str, value: &str, rule: Rule) -> Result<(), Error> {
        let (ok, what) = match rule {
            Rule::Label => (
                label_ok(value),
                "an RFC 1123 label (at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit)",
            ),
            Rule::Subdomain => (
                value.len() <= 253 && value.split('.').all(label_ok),
                "an RFC 1123 subdomain (at most 253 characters: lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit)",
            ),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidRequest(format!(
                "{field} {value:?} is not a valid Kubernetes name: it must be {what}"
            )))
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OutcomeStatus {
    Applied,
    /// Already in the wanted state; nothing written.
    Skipped,
    /// The patch the action would send, validated by the server (`dryRun=All`).
    DryRun,
    /// A guard said no; nothing written. `guard` names it.
    Refused,
    /// The operator's off switch is set (`SELFHEAL_SWITCH_PARAMETER`): nothing
    /// was read or written, and nothing needs a person's attention.
    Disabled,
}

impl OutcomeStatus {
    /// The contract's name (`applied`, `skipped`, `dryRun`, `refused`, `disabled`).
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Applied => "applied",
            OutcomeStatus::Skipped => "skipped",
            OutcomeStatus::DryRun => "dryRun",
            OutcomeStatus::Refused => "refused",
            OutcomeStatus::Disabled => "disabled",
        }
    }
}

/// Machine-readable name of the guard that refused (docs/guards.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Guard {
    /// Deployment lacks `selfheal.dev/enabled=true` and policy requires opt-in.
    OptIn,
    /// Namespace not allowed by policy.
    Namespace,
    /// Same action inside the cooldown window.
    Cooldown,
    /// Paused by someone other than selfheal.
    Paused,
    /// kubectl's "no rollout history found".
    NoHistory,
    /// No container image differs from the previous revision.
    NoImageChange,
    /// Every older image is the current one or known-bad.
    NoPreviousImage,
    /// `target.container` is not in the pod template.
    UnknownContainer,
    /// Requested revision (template scope) does not exist.
    RevisionNotFound,
    /// Managed by Argo CD / Flux and policy says not to fight it.
    Gitops,
    /// Alarm-driven pause while no rollout is in progress.
    NoRolloutInProgress,
    /// Alarm-driven pause with impact score below the policy threshold.
    ImpactBelowThreshold,
    /// The Deployment changed under us between read and write, so that the
    /// re-plan would revert an image the request was not planned against.
    Conflict,
    /// The policy's `max_actions_per_window` is used up: a storm of alarms
    /// must not let selfheal rewrite a whole cluster.
    RateLimit,
    /// The image to roll back away from is one selfheal already rolled back
    /// away from (`selfheal.dev/bad-images`) and someone re-deployed it:
    /// rolling back again would oscillate with them.
    Oscillation,
    /// A pod target that is not on the Deployment's current revision, or
    /// (rollback) does not run the Deployment's current image: a late or
    /// re-fired pod alert must not roll back a healthy release.
    StalePod,
    /// Half-brick rollback without `target.container`: the current
    /// revision's pods show a container failing whose image did not change,
    /// and none whose image did. Reverting an innocent image would not help:
    /// a restart or a person decides.
    UnchangedContainerFailing,
}

impl Guard {
    pub fn as_str(self) -> &'static str {
        match self {
            Guard::OptIn => "optIn",
            Guard::Namespace => "namespace",
            Guard::Cooldown => "cooldown",
            Guard::Paused => "paused",
            Guard::NoHistory => "noHistory",
            Guard::NoImageChange => "noImageChange",
            Guard::NoPreviousImage => "noPreviousImage",
            Guard::UnknownContainer => "unknownContainer",
            Guard::RevisionNotFound => "revisionNotFound",
            Guard::Gitops => "gitops",
            Guard::NoRolloutInProgress => "noRolloutInProgress",
            Guard::ImpactBelowThreshold => "impactBelowThreshold",
            Guard::Conflict => "conflict",
            Guard::RateLimit => "rateLimit",
            Guard::Oscillation => "oscillation",
            Guard::StalePod => "stalePod",
            Guard::UnchangedContainerFailing => "unchangedContainerFailing",
        }
    }
}

/// One container's image change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub container: String,
    pub from: String,
    pub to: String,
}

/// Revision numbers around the action: a Deployment's
/// `deployment.kubernetes.io/revision`, a StatefulSet's or DaemonSet's
/// ControllerRevision `revision`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// For a template rollback, the revision whose template was restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
}

/// A GitOps controller that owns the Deployment (its sync may undo our change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GitopsManager {
    ArgoCd,
    Flux,
}

/// Every handler's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemediationOutcome {
    pub status: OutcomeStatus,
    pub action: Action,
    /// One human sentence.
    pub message: String,
    /// The resolved target: names the kind acted on (a pod target keeps its
    /// pod and gains the workload it resolved to).
    pub target: Target,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// Half-brick rollback: what the current revision's pods say about each
    /// container, when the adapter listed them (`crate::evidence`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<ContainerEvidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<RevisionInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<Guard>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitops: Option<GitopsManager>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RemediationRequest, Error> {
        RemediationRequest::from_json(text)
    }

    fn message(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn design_doc_example_parses_with_defaults() {
        let r = parse(
            r#"{"action":"rollback","target":{"cluster":"prod-eks","namespace":"shop","deployment":"checkout","container":"api"},
                "reason":"5xx rate above 5% for 3 minutes","dryRun":false,"force":false,
                "alarm":{"source":"cloudwatch","name":"checkout-5xx","id":"x","impactScore":2.4}}"#,
        )
        .unwrap();
        assert_eq!(r.action, Action::Rollback);
        assert_eq!(r.scope, Scope::Container);
        assert_eq!(r.target.container.as_deref(), Some("api"));
        assert_eq!(r.alarm.unwrap().impact_score, Some(2.4));
        assert!(!r.approval && r.to_revision.is_none() && r.execution.is_none());
    }

    #[test]
    fn unknown_action_is_malformed_and_lists_the_variants() {
        let m =
            message(r#"{"action":"delete","target":{"namespace":"shop","deployment":"checkout"}}"#);
        assert!(
            m.starts_with("malformed remediation request: at `action`: unknown variant `delete`"),
            "{m}"
        );
        assert!(m.contains("rollback") && m.contains("restart"), "{m}");
    }

    #[test]
    fn wrong_types_name_the_field_nested_or_not() {
        let m = message(
            r#"{"action":"rollback","dryRun":"yes","target":{"namespace":"shop","deployment":"checkout"}}"#,
        );
        assert!(
            m.contains("at `dryRun`: invalid type: string \"yes\", expected a boolean"),
            "{m}"
        );
        let m = message(r#"{"action":"rollback","target":{"namespace":"shop","deployment":7}}"#);
        assert!(
            m.contains("at `target.deployment`: invalid type: integer `7`"),
            "{m}"
        );
        // A document-level problem has no path to name.
        let m = message(
            r#"{"action":"pause","target":{"namespace":"shop","deployment":"checkout"}} trailing"#,
        );
        assert!(
            m.starts_with("malformed remediation request: trailing characters"),
            "{m}"
        );
    }

    #[test]
    fn missing_target_is_malformed() {
        let m = message(r#"{"action":"pause"}"#);
        assert!(m.contains("missing field `target`"), "{m}");
    }

    #[test]
    fn target_needs_exactly_one_of_deployment_and_pod() {
        let m = message(
            r#"{"action":"pause","target":{"namespace":"shop","deployment":"checkout","pod":"checkout-1"}}"#,
        );
        assert_eq!(
            m,
            "invalid remediation request: target names both `deployment` and `pod`; give one"
        );
        let m = message(r#"{"action":"pause","target":{"namespace":"shop"}}"#);
        assert_eq!(
            m,
            "invalid remediation request: target needs one of `deployment`, `statefulSet`, `daemonSet` or `pod`"
        );
        let m = message(r#"{"action":"pause","target":{"namespace":" ","deployment":"checkout"}}"#);
        assert!(m.contains("target.namespace must not be empty"), "{m}");
        assert!(
            parse(r#"{"action":"pause","target":{"namespace":"shop","pod":"checkout-1"}}"#).is_ok()
        );
    }

    #[test]
    fn target_names_exactly_one_workload_of_any_kind() {
        let req = |target: &str| {
            format!(r#"{{"action":"pause","target":{{"namespace":"data",{target}}}}}"#)
        };
        let sts = parse(&req(r#""statefulSet":"postgres""#)).unwrap();
        assert_eq!(
            sts.target.workload(),
            Some(Workload::StatefulSet("postgres"))
        );
        assert_eq!(sts.target.workload_kind(), Some(WorkloadKind::StatefulSet));
        let ds = parse(&req(r#""daemonSet":"fluent-bit""#)).unwrap();
        assert_eq!(
            ds.target.workload(),
            Some(Workload::DaemonSet("fluent-bit"))
        );
        assert_eq!(
            serde_json::to_value(&ds.target).unwrap(),
            serde_json::json!({"namespace": "data", "daemonSet": "fluent-bit"})
        );
        for (target, expected) in [
            (
                r#""statefulSet":"postgres","daemonSet":"fluent-bit""#,
                "target names both `statefulSet` and `daemonSet`; give one",
            ),
            (
                r#""deployment":"api","statefulSet":"postgres","pod":"api-1""#,
                "target names `deployment`, `statefulSet` and `pod`; give one",
            ),
            (
                r#""statefulSet":" ""#,
                "target.statefulSet must not be empty",
            ),
            (r#""daemonSet":"""#, "target.daemonSet must not be empty"),
        ] {
            assert_eq!(
                message(&req(target)),
                format!("invalid remediation request: {expected}"),
                "{target}"
            );
        }
        let m = message(&req(r#""statefulSet":"Postgres""#));
        assert!(
            m.contains("target.statefulSet \"Postgres\" is not a valid Kubernetes name"),
            "{m}"
        );
        let m = message(&req(r#""daemonSet":"ds/x""#));
        assert!(m.contains("target.daemonSet \"ds/x\""), "{m}");
        let m = message(&req(r#""statefulset":"postgres""#));
        assert!(m.contains("unknown field `statefulset`"), "{m}");
    }

    #[test]
    fn a_resolved_pod_target_names_the_pod_and_the_workload_of_its_kind() {
        let request = ValidRequest::from_json(
            r#"{"action":"restart","target":{"namespace":"data","pod":"postgres-0"}}"#,
        )
        .unwrap();
        assert_eq!(request.workload(), Workload::Pod("postgres-0"));
        assert_eq!(request.workload().kind(), None);
        let planned = request
            .for_workload(WorkloadKind::StatefulSet, "postgres")
            .unwrap();
        assert_eq!(planned.workload(), Workload::StatefulSet("postgres"));
        assert_eq!(planned.target.pod, None);
        let mut outcome_target = request.target.clone();
        outcome_target.set_workload(WorkloadKind::StatefulSet, "postgres");
        assert_eq!(
            serde_json::to_value(&outcome_target).unwrap(),
            serde_json::json!({"namespace": "data", "statefulSet": "postgres", "pod": "postgres-0"})
        );
        outcome_target.set_workload(WorkloadKind::DaemonSet, "agent");
        assert_eq!(
            (
                outcome_target.stateful_set.as_deref(),
                outcome_target.daemon_set.as_deref()
            ),
            (None, Some("agent")),
            "one kind at a time"
        );
        let m = request
            .for_workload(WorkloadKind::DaemonSet, "../x")
            .unwrap_err()
            .to_string();
        assert!(m.contains("target.daemonSet \"../x\""), "{m}");
    }

    #[test]
    fn every_example_request_parses_and_names_one_workload() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/requests");
        let mut kinds = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let request = ValidRequest::from_json(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            kinds.insert(request.workload().kind());
        }
        let every_kind: std::collections::BTreeSet<_> = WorkloadKind::ALL
            .into_iter()
            .map(Some)
            .chain([None])
            .collect();
        assert_eq!(kinds, every_kind, "one example per kind, and a pod target");
    }

    #[test]
    fn workload_kinds_name_their_api_kind_resource_and_field() {
        let table: Vec<_> = WorkloadKind::ALL
            .into_iter()
            .map(|k| (k.as_str(), k.plural(), k.noun(), k.field()))
            .collect();
        assert_eq!(
            table,
            [
                ("Deployment", "deployments", "deployment", "deployment"),
                ("StatefulSet", "statefulsets", "statefulset", "statefulSet"),
                ("DaemonSet", "daemonsets", "daemonset", "daemonSet"),
            ]
        );
        for kind in WorkloadKind::ALL {
            assert_eq!(WorkloadKind::from_kind(kind.as_str()), Some(kind));
            assert_eq!(Workload::of(kind, "x").kind(), Some(kind));
            assert_eq!(Workload::of(kind, "x").name(), "x");
        }
        assert_eq!(WorkloadKind::from_kind("ReplicaSet"), None);
    }

    #[test]
    fn unknown_fields_are_rejected_at_both_levels() {
        let m = message(
            r#"{"action":"pause","target":{"namespace":"shop","deployment":"checkout"},"dryrun":true}"#,
        );
        assert!(m.contains("unknown field `dryrun`"), "{m}");
        let m = message(
            r#"{"action":"pause","target":{"namespace":"shop","deployment":"checkout","image":"x"}}"#,
        );
        assert!(m.contains("unknown field `image`"), "{m}");
    }

    #[test]
    fn names_follow_kubernetes_rules_before_any_request_is_built() {
        let req = |ns: &str, dep: &str| {
            format!(r#"{{"action":"pause","target":{{"namespace":"{ns}","deployment":"{dep}"}}}}"#)
        };
        for (ns, dep) in [
            ("shop/deployments/x?a=", "checkout"),
            ("../kube-system", "checkout"),
            ("Shop", "checkout"),
            ("shop", "checkout/status"),
            ("shop", "-checkout"),
            ("shop", "check..out"),
            (&"a".repeat(64), "checkout"),
        ] {
            let m = message(&req(ns, dep));
            assert!(
                m.contains("is not a valid Kubernetes name"),
                "{ns} {dep}: {m}"
            );
        }
        assert!(parse(&req("shop-2", "checkout.v2")).is_ok());
        let longest = [63, 63, 63, 61].map(|n| "b".repeat(n)).join(".");
        assert_eq!(longest.len(), 253);
        assert!(parse(&req(&"a".repeat(63), &longest)).is_ok());
        assert!(parse(&req("shop", &format!("{longest}b"))).is_err());
        let m = message(
            r#"{"action":"rollback","target":{"namespace":"shop","pod":"checkout-7d9f/x"}}"#,
        );
        assert!(m.contains("target.pod"), "{m}");
    }

    #[test]
    fn container_name_must_not_be_empty_or_invalid() {
        let m = message(
            r#"{"action":"rollback","target":{"namespace":"shop","deployment":"checkout","container":""}}"#,
        );
        assert!(m.contains("target.container must not be empty"), "{m}");
        let m = message(
            r#"{"action":"rollback","target":{"namespace":"shop","deployment":"checkout","container":"API"}}"#,
        );
        assert!(m.contains("target.container \"API\" is not a valid"), "{m}");
    }

    #[test]
    fn status_names_match_serde() {
        for status in [
            OutcomeStatus::Applied,
            OutcomeStatus::Skipped,
            OutcomeStatus::DryRun,
            OutcomeStatus::Refused,
            OutcomeStatus::Disabled,
        ] {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::from(status.as_str())
            );
        }
        assert_eq!(
            serde_json::to_value(Guard::StalePod).unwrap(),
            serde_json::Value::from(Guard::StalePod.as_str())
        );
    }

    #[test]
    fn to_revision_only_with_template_rollback() {
        let m = message(
            r#"{"action":"rollback","target":{"namespace":"shop","deployment":"checkout"},"toRevision":2}"#,
        );
        assert!(m.contains("toRevision applies only"), "{m}");
        let r = parse(r#"{"action":"rollback","scope":"template","target":{"namespace":"shop","deployment":"checkout"},"toRevision":2}"#).unwrap();
        assert_eq!(r.to_revision, Some(2));
    }

    #[test]
    fn outcome_serializes_camel_case_without_empty_fields() {
        let outcome = RemediationOutcome {
            status: OutcomeStatus::DryRun,
            action: Action::Pause,
            message: "m".into(),
            target: Target {
                namespace: "shop".into(),
                deployment: Some("checkout".into()),
                ..Target::default()
            },
            changes: vec![],
            evidence: vec![],
            revision: None,
            guard: Some(Guard::NoRolloutInProgress),
            gitops: Some(GitopsManager::ArgoCd),
            execution: None,
        };
        assert_eq!(
            serde_json::to_value(&outcome).unwrap(),
            serde_json::json!({"status":"dryRun","action":"pause","message":"m",
                "target":{"namespace":"shop","deployment":"checkout"},
                "guard":"noRolloutInProgress","gitops":"argoCd"})
        );
        assert_eq!(Guard::NoRolloutInProgress.as_str(), "noRolloutInProgress");
    }
}
