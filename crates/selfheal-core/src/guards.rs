//! Guards (docs/guards.md): each returns a refusal naming its [`Guard`](crate::Guard).
//!
//! All state a guard reads lives on the workload itself (labels and
//! annotations), so there is no database to drift from the cluster. Every
//! guard takes any workload kind (`impl Into<WorkloadRef>`: a `&Deployment`,
//! `&StatefulSet`, `&DaemonSet` or a [`WorkloadRef`]). Our own
//! annotations are parsed leniently: a hand-edited, malformed value must not
//! wedge remediation, so it reads as "nothing recorded".

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::workload::WorkloadRef;
use crate::{Action, Change, GitopsManager, Guard, Policy, keys};

/// A guard's "no": which guard, and one sentence saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub guard: Guard,
    pub message: String,
}

impl Refusal {
    pub fn new(guard: Guard, message: impl Into<String>) -> Self {
        Refusal {
            guard,
            message: message.into(),
        }
    }
}

/// Value of `selfheal.dev/last-remediation`: the audit record of the last
/// applied action, also the cooldown clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastRemediation {
    pub action: Action,
    /// RFC 3339, UTC, whole seconds.
    pub at: String,
    /// Step Functions execution, `null` for manual/CLI runs.
    pub execution: Option<String>,
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// One record of `selfheal.dev/history`: an applied action, for the
/// per-action cooldown and the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRecord {
    pub action: Action,
    /// RFC 3339, UTC, whole seconds.
    pub at: String,
    /// Step Functions execution, `null` for manual/CLI runs.
    pub execution: Option<String>,
    /// The request's `reason`, clipped to [`HISTORY_REASON_CHARS`].
    pub reason: Option<String>,
    #[serde(default)]
    pub changes: Vec<Change>,
    /// Who approved, when a human did ([`crate::ApprovedBy::clean`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<crate::ApprovedBy>,
}

/// `last-remediation` repeats the newest history record, without its reason.
impl From<&HistoryRecord> for LastRemediation {
    fn from(record: &HistoryRecord) -> Self {
        LastRemediation {
            action: record.action,
            at: record.at.clone(),
            execution: record.execution.clone(),
            changes: record.changes.clone(),
        }
    }
}

/// Longest `reason` a history record (and the change-cause) keeps: ten
/// records must stay far below the API server's 256 KiB annotation budget.
pub const HISTORY_REASON_CHARS: usize = 200;

/// Known-bad images per container (`selfheal.dev/bad-images`), most recent last.
pub type BadImages = BTreeMap<String, Vec<String>>;

/// Who is checked, for messages: `deployment namespace/name`.
fn who(workload: WorkloadRef<'_>) -> String {
    format!("{} {}", workload.kind().noun(), workload.who())
}

/// The parsed `selfheal.dev/last-remediation`, or `None` when absent or malformed.
pub fn last_remediation<'w>(workload: impl Into<WorkloadRef<'w>>) -> Option<LastRemediation> {
    serde_json::from_str(workload.into().annotation(keys::LAST_REMEDIATION)?).ok()
}

/// The parsed `selfheal.dev/history`, most recent last. Absent or malformed
/// reads as empty; a malformed record is dropped and the others are kept, so
/// one hand-edited entry does not erase the cooldown of every action.
pub fn history<'w>(workload: impl Into<WorkloadRef<'w>>) -> Vec<HistoryRecord> {
    workload
        .into()
        .annotation(keys::HISTORY)
        .and_then(|v| serde_json::from_str::<Vec<serde_json::Value>>(v).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|record| serde_json::from_value(record).ok())
        .collect()
}

/// `history` plus `record`, keeping the [`keys::HISTORY_KEEP`] most recent.
pub fn record_history(
    mut history: Vec<HistoryRecord>,
    record: HistoryRecord,
) -> Vec<HistoryRecord> {
    history.push(record);
    let excess = history.len().saturating_sub(keys::HISTORY_KEEP);
    history.drain(..excess);
    history
}

/// A free-text reason as one line of at most [`HISTORY_REASON_CHARS`]
/// characters (control characters become spaces), `None` when blank.
pub fn one_line_reason(reason: Option<&str>) -> Option<String> {
    let line: String = reason?
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.is_empty() {
        return None;
    }
    if line.chars().count() <= HISTORY_REASON_CHARS {
        return Some(line);
    }
    let mut clipped: String = line.chars().take(HISTORY_REASON_CHARS - 1).collect();
    clipped.push('…');
    Some(clipped)
}

/// When `action` was applied, as far as the object remembers: its records in
/// `selfheal.dev/history`, plus `selfheal.dev/last-remediation` (the only
/// record on an object written before the history existed; on a newer one it
/// repeats the history's last record). Unparsable times are skipped.
fn times_of(workload: WorkloadRef<'_>, action: Action) -> Vec<jiff::Timestamp> {
    let from_history = history(workload)
        .into_iter()
        .filter(|r| r.action == action)
        .map(|r| r.at);
    let from_last = last_remediation(workload)
        .filter(|r| r.action == action)
        .map(|r| r.at);
    from_history
        .chain(from_last)
        .filter_map(|at| at.parse::<jiff::Timestamp>().ok())
        .collect()
}

/// The parsed `selfheal.dev/bad-images`; absent or malformed reads as empty.
pub fn bad_images<'w>(workload: impl Into<WorkloadRef<'w>>) -> BadImages {
    workload
        .into()
        .annotation(keys::BAD_IMAGES)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

/// `bad` plus the images the changes roll back away from: most recent last,
/// no duplicates, at most [`keys::BAD_IMAGES_KEEP`] per container.
pub fn record_bad_images(mut bad: BadImages, changes: &[Change]) -> BadImages {
    for change in changes {
        let list = bad.entry(change.container.clone()).or_default();
        list.retain(|image| *image != change.from);
        list.push(change.from.clone());
        let excess = list.len().saturating_sub(keys::BAD_IMAGES_KEEP);
        list.drain(..excess);
    }
    bad
}

/// Whether `selfheal.dev/paused-by` says selfheal made the current pause
/// (or hold).
pub fn paused_by_selfheal<'w>(workload: impl Into<WorkloadRef<'w>>) -> bool {
    workload.into().annotation(keys::PAUSED_BY) == Some(keys::PAUSED_BY_SELFHEAL)
}

/// Argo CD or Flux markers on the Deployment. Argo CD: the
/// `argocd.argoproj.io/tracking-id` annotation (annotation tracking, the
/// default since 3.0) or `argocd.argoproj.io/instance` (the usual custom
/// tracking label, sometimes found as an annotation). Flux: the
/// `kustomize.toolkit.fluxcd.io/name` or `helm.toolkit.fluxcd.io/name` labels
/// its controllers stamp on applied objects. `app.kubernetes.io/instance` is
/// deliberately not used: Helm charts set it too, so it does not prove Argo CD.
pub fn gitops_manager<'w>(workload: impl Into<WorkloadRef<'w>>) -> Option<GitopsManager> {
    let workload = workload.into();
    let annotation = |key| workload.annotation(key);
    let label = |key| workload.label(key);
    const ARGO_TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
    const ARGO_INSTANCE: &str = "argocd.argoproj.io/instance";
    const FLUX_KUSTOMIZE: &str = "kustomize.toolkit.fluxcd.io/name";
    const FLUX_HELM: &str = "helm.toolkit.fluxcd.io/name";
    if annotation(ARGO_TRACKING_ID).is_some()
        || annotation(ARGO_INSTANCE).is_some()
        || label(ARGO_INSTANCE).is_some()
    {
        Some(GitopsManager::ArgoCd)
    } else if label(FLUX_KUSTOMIZE).is_some() || label(FLUX_HELM).is_some() {
        Some(GitopsManager::Flux)
    } else {
        None
    }
}

/// Denied namespaces always lose; with an allow-list, only listed ones pass.
pub fn namespace<'w>(policy: &Policy, workload: impl Into<WorkloadRef<'w>>) -> Result<(), Refusal> {
    let workload = workload.into();
    let ns = workload.namespace();
    if policy.denied_namespaces.iter().any(|d| d == ns) {
        return Err(Refusal::new(
            Guard::Namespace,
            format!(
                "{} is in namespace {ns:?}, which the policy denies",
                who(workload)
            ),
        ));
    }
    if let Some(allowed) = &policy.allowed_namespaces
        && !allowed.iter().any(|a| a == ns)
    {
        return Err(Refusal::new(
            Guard::Namespace,
            format!(
                "{} is in namespace {ns:?}, which is not among the policy's allowed namespaces",
                who(workload)
            ),
        ));
    }
    Ok(())
}

/// `selfheal.dev/enabled=true` when the policy requires opt-in.
pub fn opt_in<'w>(policy: &Policy, workload: impl Into<WorkloadRef<'w>>) -> Result<(), Refusal> {
    let workload = workload.into();
    if !policy.require_opt_in || workload.label(keys::ENABLED_LABEL) == Some("true") {
        return Ok(());
    }
    Err(Refusal::new(
        Guard::OptIn,
        format!(
            "{} is not labelled {}=true and the policy requires opt-in",
            who(workload),
            keys::ENABLED_LABEL
        ),
    ))
}

/// A GitOps-managed Deployment is refused unless the policy allows it.
pub fn gitops<'w>(
    policy: &Policy,
    workload: impl Into<WorkloadRef<'w>>,
    manager: Option<GitopsManager>,
) -> Result<(), Refusal> {
    let workload = workload.into();
    let Some(manager) = manager else {
        return Ok(());
    };
    if policy.allow_gitops {
        return Ok(());
    }
    let tool = match manager {
        GitopsManager::ArgoCd => "Argo CD",
        GitopsManager::Flux => "Flux",
    };
    Err(Refusal::new(
        Guard::Gitops,
        format!(
            "{} is managed by {tool}, whose sync would undo the change, and the policy does not allow acting on GitOps-managed {}",
            who(workload),
            workload.kind().plural()
        ),
    ))
}

/// The same action inside the cooldown window is refused unless `force`.
/// Each action has its own clock (the newest record of that action in the
/// history), so a pause and a resume in between do not reset a rollback's.
/// A record dated in the future (clock skew) counts as "just now", unless it
/// is further ahead than the window itself, which reads as malformed.
pub fn cooldown<'w>(
    policy: &Policy,
    workload: impl Into<WorkloadRef<'w>>,
    action: Action,
    now: jiff::Timestamp,
    force: bool,
) -> Result<(), Refusal> {
    if force || policy.cooldown.is_zero() {
        return Ok(());
    }
    let workload = workload.into();
    let window =
        jiff::SignedDuration::try_from(policy.cooldown).unwrap_or(jiff::SignedDuration::MAX);
    let Some(elapsed) = times_of(workload, action)
        .into_iter()
        .map(|at| now.duration_since(at))
        .filter(|elapsed| *elapsed < window && *elapsed > -window)
        .min()
    else {
        return Ok(());
    };
    let ago = Duration::try_from(elapsed).unwrap_or_default().as_secs();
    Err(Refusal::new(
        Guard::Cooldown,
        format!(
            "{} had a {action} {ago}s ago, inside the {}s cooldown; set force to act anyway",
            who(workload),
            policy.cooldown.as_secs()
        ),
    ))
}

/// After a rejected write (409/422) or a write without an answer, the
/// re-plan must still revert the images the first plan saw: if a container
/// now runs something else, someone changed it in between (a hotfix, their
/// own rollback) and the alarm is about an image that is gone. Rolling that
/// back would overwrite their change blindly, so it is refused (`conflict`)
/// and a human, or a fresh alarm, decides.
pub fn same_changes<'w>(
    workload: impl Into<WorkloadRef<'w>>,
    planned: &[Change],
    replanned: &[Change],
) -> Result<(), Refusal> {
    let moved: Vec<String> = replanned
        .iter()
        .filter(|now| {
            !planned
                .iter()
                .any(|was| was.container == now.container && was.from == now.from)
        })
        .map(|now| {
            let was = planned
                .iter()
                .find(|was| was.container == now.container)
                .map_or("nothing to change", |was| was.from.as_str());
            format!(
                "container {} now runs {} (we read {was})",
                now.container, now.from
            )
        })
        .collect();
    if moved.is_empty() && planned.len() == replanned.len() {
        return Ok(());
    }
    let detail = if moved.is_empty() {
        "the containers to revert changed".to_owned()
    } else {
        moved.join(", ")
    };
    Err(Refusal::new(
        Guard::Conflict,
        format!(
            "{} changed while selfheal was acting: {detail}; not rolling back a change the request was not planned against",
            who(workload.into())
        ),
    ))
}

/// Whether `workload`'s `selfheal.dev/last-remediation` is dated within
/// `window` of `now` (either side, for clock skew, as in [`cooldown`]).
fn acted_within(
    workload: WorkloadRef<'_>,
    window: jiff::SignedDuration,
    now: jiff::Timestamp,
) -> bool {
    let Some(at) = last_remediation(workload).and_then(|l| l.at.parse::<jiff::Timestamp>().ok())
    else {
        return false;
    };
    let elapsed = now.duration_since(at);
    elapsed < window && elapsed > -window
}

/// `policy.max_actions_per_window`: refused when that many *other*
/// Deployments in `fleet` were acted on within `policy.action_window`.
///
/// The count is read from the `selfheal.dev/last-remediation` annotations of
/// the Deployments themselves (one LIST by the adapter), not from Events or a
/// ConfigMap: the record is written by the same PATCH as the change, so it
/// cannot be lost the way a best-effort Event can, outlives the Events' TTL,
/// and needs no RBAC beyond `list deployments` and no extra object to keep in
/// step. Because each Deployment keeps only its latest record, the limit is on
/// distinct Deployments acted on per window; acting again on one already
/// counted (restart escalating to rollback) never raises the count, so it is
/// never refused by this guard. Concurrent executions that read the count at
/// the same moment can each take the last slot: the limit can be exceeded by
/// at most the number of remediations in flight at once.
pub fn rate_limit<'t, 'd, W: Into<WorkloadRef<'d>>>(
    policy: &Policy,
    target: impl Into<WorkloadRef<'t>>,
    fleet: impl IntoIterator<Item = W>,
    now: jiff::Timestamp,
) -> Result<(), Refusal> {
    let target = target.into();
    let Some(max) = policy.max_actions_per_window else {
        return Ok(());
    };
    let window =
        jiff::SignedDuration::try_from(policy.action_window).unwrap_or(jiff::SignedDuration::MAX);
    let same = |w: WorkloadRef<'_>| {
        w.kind() == target.kind()
            && w.namespace() == target.namespace()
            && w.name() == target.name()
    };
    let recent = fleet
        .into_iter()
        .map(Into::into)
        .filter(|w| !same(*w) && acted_within(*w, window, now))
        .count();
    if recent < usize::try_from(max).unwrap_or(usize::MAX) {
        return Ok(());
    }
    Err(Refusal::new(
        Guard::RateLimit,
        format!(
            "{recent} other workloads were acted on in the last {}s, and the policy allows at most {max} per window; not acting on {}",
            policy.action_window.as_secs(),
            who(target)
        ),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
