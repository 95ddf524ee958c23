//! `notify`: the state machines' voice. One invocation = one event
//! (`approvalRequested`, `rolloutFrozen`, `completed`, `failed`,
//! `fleetCompleted`) built from the execution's state; it publishes one SNS
//! message (and a Slack post when a webhook is configured) saying what
//! happened, to which workload, from which alarm, with the console link to
//! the execution, and returns the `deploymentHealth` (or fleet `summary`)
//! the state machine puts in its output. Approval events also mint the
//! single-use links served by `approve`.
//!
//! Formatting and summaries are pure functions ([`render`], [`health`],
//! [`fleet_summary`]) so they are tested without AWS.

pub mod metrics;
pub mod publish;
pub mod slack;

use jiff::Timestamp;
pub use selfheal_contract::approval::{ApprovalDecision, Decision};
pub use selfheal_contract::execution::{
    Approval, ChildOutcome, DeploymentHealth, EscalatedFrom, Escalation, EventKind, ExecutionInfo,
    FleetResult, FleetStatus, FleetSummary, NotifyEvent, NotifyOutput, Preview, RolloutCheck, Span,
    StepError, StepTiming, Timings,
};
use selfheal_contract::{
    Action, Change, ErrorType, OutcomeStatus, RemediationOutcome, RemediationRequest, Target,
    Workload, WorkloadKind,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use publish::{Notifier, NotifyConfig, SlackClient};
pub use slack::SlackMessage;

/// The crate's one error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The payload is not a notify event.
    #[error("invalid notify event: {source}")]
    InvalidEvent {
        #[source]
        source: serde_json::Error,
    },

    /// The event lacks something its kind needs (e.g. a task token).
    #[error("invalid notify event: {0}")]
    Incomplete(String),

    /// The environment is wrong.
    #[error(transparent)]
    Config(#[from] selfheal_contract::env::Invalid),

    /// SNS, SSM or Secrets Manager failed.
    #[error(transparent)]
    Aws(selfheal_aws::retry::AwsCallError),

    /// Minting the approval links failed.
    #[error("approval links: {source}")]
    Approval {
        #[source]
        source: selfheal_approval::Error,
    },
}

impl Error {
    /// Stable name for Lambda's `errorType` (the state machine retries
    /// `RetryableAwsError`).
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::InvalidEvent { .. } | Error::Incomplete(_) => {
                ErrorType::NonRetryableInvalidRequest
            }
            Error::Config(_) => ErrorType::NonRetryableConfig,
            Error::Aws(call) if call.retryable => ErrorType::RetryableAwsError,
            Error::Aws(_) => ErrorType::NonRetryableAwsError,
            Error::Approval { source } => return source.error_type(),
        }
        .as_str()
    }
}

selfheal_runtime::diagnostic_from!(Error);

/// The error names the state machines give their own failures (their
/// `Fail` states, and `approve`'s `SendTaskFailure` for a denial).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// A guard refused the action (`SelfhealRefused`).
    Refused,
    /// An approver chose deny (`SelfhealApprovalDenied`).
    ApprovalDenied,
    /// Nobody decided in time (`SelfhealApprovalTimedOut`).
    ApprovalTimedOut,
    /// The rollout failed after the action (`SelfhealRolloutFailed`).
    RolloutFailed,
    /// The rollout did not finish in time (`SelfhealRolloutTimedOut`).
    RolloutTimedOut,
}

impl StateError {
    pub const ALL: [StateError; 5] = [
        StateError::Refused,
        StateError::ApprovalDenied,
        StateError::ApprovalTimedOut,
        StateError::RolloutFailed,
        StateError::RolloutTimedOut,
    ];

    /// The name as the state machine's `Error` carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            StateError::Refused => "SelfhealRefused",
            StateError::ApprovalDenied => selfheal_approval::DENIED_ERROR,
            StateError::ApprovalTimedOut => "SelfhealApprovalTimedOut",
            StateError::RolloutFailed => "SelfhealRolloutFailed",
            StateError::RolloutTimedOut => "SelfhealRolloutTimedOut",
        }
    }

    /// The state machine error `name` stands for, if it is one of these.
    pub fn from_name(name: &str) -> Option<Self> {
        StateError::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

pub use selfheal_contract::RolloutState;

/// The verify step's span: the answer's own record when it belongs to the
/// watch `timing` started (an escalation's first failed window leaves the
/// restart's answer in place), else what `StartVerify` recorded.
pub(crate) fn verify_span(check: Option<&RolloutCheck>, timing: Option<&Span>) -> Option<Span> {
    check
        .and_then(|c| c.watch)
        .filter(|w| timing.is_some_and(|t| t.started_at == Some(w.started_at)))
        .map(Span::from)
        .or_else(|| timing.cloned())
}

/// Decode a notify payload; bad input is a typed error naming the field.
pub fn parse_event(payload: Value) -> Result<NotifyEvent, Error> {
    serde_json::from_value(payload).map_err(|source| Error::InvalidEvent { source })
}

/// The Step Functions console page of an execution. The region is read from
/// the execution ARN (`arn:<partition>:states:<region>:<account>:execution:…`).
pub fn console_link(execution_arn: &str) -> Option<String> {
    let mut parts = execution_arn.split(':');
    let (arn, _partition, service, region) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if arn != "arn" || service != "states" || region.is_empty() {
        return None;
    }
    Some(format!(
        "https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
    ))
}

/// Whole milliseconds from `start` to `end`, rounded.
fn millis_between(start: Timestamp, end: Timestamp) -> Option<i64> {
    (end - start)
        .total(jiff::Unit::Millisecond)
        .ok()
        .map(|ms| ms.round() as i64)
}

/// Milliseconds from the execution's start to `end`, when both are known.
fn since_start(event: &NotifyEvent, end: Option<Timestamp>) -> Option<i64> {
    millis_between(event.execution.started_at?, end?)
}

fn step(name: &str, span: Option<&Span>, now: Option<Timestamp>) -> Option<StepTiming> {
    let span = span?;
    let started_at = span.started_at?;
    // A step that has not recorded its end (e.g. failed) ends at the report.
    let finished_at = span.finished_at.or(now)?;
    let duration_ms = millis_between(started_at, finished_at)?;
    Some(StepTiming {
        name: name.to_owned(),
        started_at,
        finished_at,
        duration_ms,
        attempts: span.attempts,
    })
}

/// Build `deploymentHealth` from the execution's state.
pub fn health(event: &NotifyEvent) -> DeploymentHealth {
    let now = event.reported_at;
    let action = event
        .request
        .as_ref()
        .map(|r| r.action.as_str())
        .unwrap_or("action");
    let mut steps = Vec::new();
    let t = &event.timings;
    steps.extend(step("approval", t.approval.as_ref(), now));
    let mut changes = Vec::new();
    let escalated_from = event.escalation.as_ref().map(|e| {
        steps.extend(step(e.from.action.as_str(), e.timings.action.as_ref(), now));
        let span = verify_span(e.verify.as_ref(), e.timings.verify.as_ref());
        steps.extend(step("verify", span.as_ref(), now));
        changes.extend(e.from.changes.iter().cloned());
        EscalatedFrom {
            reason: e.reason.clone(),
            action: e.from.action,
            status: e.from.status,
            rollout_status: e.verify.clone(),
        }
    });
    if event.escalation.is_none() {
        steps.extend(step(action, t.action.as_ref(), now));
        steps.extend(step("decision", t.decision.as_ref(), now));
        steps.extend(step("rollback", t.follow_up.as_ref(), now));
    } else {
        steps.extend(step("rollback", t.follow_up.as_ref(), now));
    }
    let span = verify_span(event.verify.as_ref(), t.verify.as_ref());
    steps.extend(step("verify", span.as_ref(), now));
    if let Some(outcome) = &event.outcome {
        changes.extend(outcome.changes.iter().cloned());
    }
    let total_duration_ms = since_start(event, now);
    DeploymentHealth {
        last_rollout_status: event.verify.clone(),
        changes,
        steps,
        total_duration_ms,
        escalated_from,
        approval: event.approval.clone(),
        notified: true,
    }
}

fn status_name(outcome: &RemediationOutcome) -> String {
    status_str(outcome.status)
}

/// An outcome status's JSON name (`applied`, `dryRun`, …).
fn status_str(status: OutcomeStatus) -> String {
    status.as_str().to_owned()
}

/// The child execution's own error when the Map caught a `.sync` failure
/// (its Cause is the child's DescribeExecution JSON).
fn child_error(result: &FleetResult) -> String {
    let from_cause = result
        .cause
        .as_deref()
        .and_then(|c| serde_json::from_str::<Value>(c).ok())
        .and_then(|v| {
            v.get("Error")
                .or_else(|| v.get("error"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    from_cause
        .or_else(|| result.error.clone())
        .unwrap_or_else(|| "unknown".to_owned())
}

pub fn fleet_summary(event: &NotifyEvent) -> FleetSummary {
    let results = event.results.as_deref().unwrap_or_default();
    let mut by_status = std::collections::BTreeMap::new();
    let mut failures = std::collections::BTreeMap::new();
    let mut succeeded = 0;
    for r in results {
        if r.status == FleetStatus::Succeeded {
            succeeded += 1;
            let status = r
                .outcome
                .as_ref()
                .and_then(|o| o.status)
                .map(status_str)
                .unwrap_or_else(|| "unknown".to_owned());
            *by_status.entry(status).or_insert(0) += 1;
        } else {
            *failures.entry(child_error(r)).or_insert(0) += 1;
        }
    }
    let wall_time_ms = since_start(event, event.reported_at);
    FleetSummary {
        total: results.len(),
        succeeded,
        failed: results.len() - succeeded,
        by_status,
        failures,
        wall_time_ms,
    }
}

/// A rendered notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// SNS subject: one line, at most 100 characters.
    pub subject: String,
    /// SNS message (plain text): the headline, the approval links when
    /// there are any, then the details, each on its own line.
    pub text: String,
    /// `applied`, `refused`, `failed`, … for SNS subscription filters.
    pub status: String,
    /// The Slack post; `None` for a routine message (a refusal that means
    /// nothing needed doing), which goes to SNS only.
    pub slack: Option<SlackMessage>,
}

/// The target a message is about: the outcome's (it names the workload a
/// pod target resolved to), else the request's.
fn message_target<'a>(
    request: Option<&'a RemediationRequest>,
    outcome: Option<&'a RemediationOutcome>,
) -> Option<&'a Target> {
    outcome
        .map(|o| &o.target)
        .or_else(|| request.map(|r| &r.target))
}

/// The kind a headline names (`this StatefulSet`): the target's, or
/// `workload` for a pod not resolved yet.
fn kind_word(target: Option<&Target>) -> &'static str {
    target
        .and_then(Target::workload_kind)
        .map_or("workload", WorkloadKind::as_str)
}

/// The `Target:` line: kind, namespace/name, container and cluster.
fn target_line(target: Option<&Target>) -> String {
    let Some(t) = target else {
        return "(no target)".to_owned();
    };
    let mut line = match t.workload() {
        Some(Workload::Pod(p)) => format!("pod {}/{p}", t.namespace),
        Some(w) => format!("{} {}/{}", kind_word(Some(t)), t.namespace, w.name()),
        None => format!("namespace {}", t.namespace),
    };
    if let Some(c) = &t.container {
        line.push_str(&format!(" (container {c})"));
    }
    if let Some(c) = &t.cluster {
        line.push_str(&format!(" on cluster {c}"));
    }
    line
}

/// `shop/checkout` or `statefulset data/ledger`, for subjects.
fn short_target(target: Option<&Target>) -> String {
    let Some(t) = target else {
        return "?".to_owned();
    };
    let name = t.workload().map_or("?", |w| w.name());
    // `shop/checkout` for a Deployment (or a pod), as before other kinds
    // existed; `statefulset data/ledger` for the others.
    match t.workload_kind() {
        Some(kind @ (WorkloadKind::StatefulSet | WorkloadKind::DaemonSet)) => {
            format!("{} {}/{name}", kind.noun(), t.namespace)
        }
        _ => format!("{}/{name}", t.namespace),
    }
}

fn clip_subject(subject: String) -> String {
    // SNS: ASCII-ish, no line breaks, at most 100 characters.
    let one_line: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= 100 {
        one_line
    } else {
        let mut s: String = one_line.chars().take(99).collect();
        s.push('…');
        s
    }
}

/// How a human undoes a hold, in parentheses: `kubectl rollout resume` for
/// a Deployment; a StatefulSet's or DaemonSet's hold (partition, OnDelete)
/// is undone by selfheal's `resume`, which restores the update strategy it
/// recorded, since `kubectl rollout resume` refuses both kinds.
fn resume_hint(t: &Target) -> String {
    let ns = &t.namespace;
    let Some(w) = t.workload() else {
        return String::new();
    };
    match w.kind() {
        Some(WorkloadKind::Deployment) => {
            format!(" (kubectl rollout resume deployment/{} -n {ns})", w.name())
        }
        Some(kind) => format!(
            " (kubectl rollout resume refuses {}s: send selfheal a resume request for {} {} in namespace {ns}, which restores the update strategy selfheal recorded)",
            kind.noun(),
            kind.field(),
            w.name()
        ),
        None => String::new(),
    }
}

/// How a rollout freeze ended without a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezeEnd {
    /// An approver chose deny (`SelfhealApprovalDenied`).
    Denied,
    /// Nobody answered before the task's timeout (`States.Timeout`), or the
    /// wait ended with another error.
    NoAnswer,
}

/// Whether a `completed` event closes a freeze nobody approved: the state
/// machine's `KeepPaused` path reports the pause as the outcome and the
/// `RolloutFrozen` task's error as `approval` (its `Catch` result), so a
/// paused Deployment is left for a human.
pub fn still_paused(event: &NotifyEvent) -> Option<FreezeEnd> {
    if event.event != EventKind::Completed
        || event.outcome.as_ref().map(|o| o.action) != Some(Action::Pause)
        || event.escalation.is_some()
    {
        return None;
    }
    let error = event.approval.as_ref()?.error()?;
    Some(
        if StateError::from_name(error) == Some(StateError::ApprovalDenied) {
            FreezeEnd::Denied
        } else {
            FreezeEnd::NoAnswer
        },
    )
}

/// Whether a `completed` event reports a refusal: the state machine ends
/// only routine refusals (`RoutineRefusal`: an alarm-driven pause with no
/// rollout to pause or an impact below the threshold) as a success, so such
/// a message is low priority: SNS `status` `refused`, no Slack post.
pub fn routine_refusal(event: &NotifyEvent) -> bool {
    event.event == EventKind::Completed
        && event.outcome.as_ref().map(|o| o.status) == Some(OutcomeStatus::Refused)
}

/// Render the message for an event. `links` are the approval links, for
/// approval events.
///
/// Alert text (names, reasons, labels, annotations) reaches every message,
/// so nothing of it may pass for selfheal's own words: each line is kept to
/// one line with mentions neutralised ([`slack::one_line`],
/// [`slack::neutralise_mentions`]), Slack text is escaped
/// ([`slack::escape_mrkdwn`]), and the real approval links come before any
/// alert text: in SNS right after the headline, in Slack in the first block,
/// which holds nothing but the headline (selfheal's own words) and the links.
pub fn render(event: &NotifyEvent, links: Option<&selfheal_approval::ApprovalLinks>) -> Message {
    let request = event.request.as_ref();
    let outcome = event.outcome.as_ref();
    let action = request.map(|r| r.action.as_str()).unwrap_or("remediation");
    let short = short_target(message_target(request, outcome));
    // An approval's dry run names the workload a pod target resolved to.
    let kind = kind_word(message_target(request, outcome.or(event.preview_outcome())));
    let (subject, headline, status) = match event.event {
        EventKind::ApprovalRequested => (
            format!("selfheal: approve {action} of {short}?"),
            format!("Approval needed: selfheal wants to {action} this {kind}."),
            "approvalRequested".to_owned(),
        ),
        EventKind::RolloutFrozen => (
            format!("selfheal: rollout of {short} frozen"),
            format!(
                "Rollout frozen: selfheal paused this {kind}'s rollout because the alarm's impact is at or above the policy threshold. Approve to roll the offending container back; deny (or no answer) keeps it paused for you."
            ),
            "frozen".to_owned(),
        ),
        EventKind::Completed if still_paused(event).is_some() => {
            let why = match still_paused(event) {
                Some(FreezeEnd::Denied) => "an approver denied the rollback",
                _ => "nobody answered the approval in time",
            };
            let resume = message_target(request, outcome)
                .map(resume_hint)
                .unwrap_or_default();
            (
                format!("selfheal: {short} still paused, no rollback"),
                format!(
                    "Still paused: selfheal froze this {kind}'s rollout and {why}, so nothing was rolled back and the {kind} is still paused. A human needs to decide: fix the release and resume it{resume}, or roll it back."
                ),
                "stillPaused".to_owned(),
            )
        }
        EventKind::Completed if routine_refusal(event) => {
            let guard = outcome
                .and_then(|o| o.guard)
                .map(|g| g.as_str())
                .unwrap_or("a guard");
            (
                format!("selfheal: nothing to do for {short} ({guard})"),
                format!(
                    "Nothing to do: selfheal did not {action} this {kind} ({guard}); this is routine and nothing was changed."
                ),
                "refused".to_owned(),
            )
        }
        EventKind::Completed => {
            let status = outcome
                .map(status_name)
                .unwrap_or_else(|| "completed".into());
            let final_action = outcome.map(|o| o.action.as_str()).unwrap_or(action);
            let headline = match (status.as_str(), &event.escalation) {
                (_, Some(e)) => format!(
                    "The {} did not bring the rollout back, so selfheal escalated to a {final_action}: {status}.",
                    e.from.action.as_str()
                ),
                ("dryRun", _) => format!("Dry run of {final_action}: nothing was changed."),
                ("skipped", _) => format!("{final_action} skipped: already in the wanted state."),
                _ => format!("{final_action} {status}."),
            };
            (
                format!("selfheal: {final_action} {status} for {short}"),
                headline,
                status,
            )
        }
        EventKind::Failed => {
            let err = event.error.as_ref();
            let name = err.map(|e| e.error.as_str()).unwrap_or("failed");
            let headline = match StateError::from_name(name) {
                Some(StateError::Refused) => format!(
                    "selfheal refused to {action}{}: nothing was changed. A human needs to decide.",
                    outcome
                        .and_then(|o| o.guard)
                        .map(|g| format!(" (guard {})", g.as_str()))
                        .unwrap_or_default()
                ),
                Some(StateError::ApprovalDenied) => {
                    format!("The {action} was denied by an approver: nothing was changed.")
                }
                Some(StateError::ApprovalTimedOut) => {
                    format!("Nobody approved the {action} in time: nothing was changed.")
                }
                Some(StateError::RolloutFailed | StateError::RolloutTimedOut) => format!(
                    "After the {}, the rollout is still not healthy. A human needs to look.",
                    outcome.map(|o| o.action.as_str()).unwrap_or(action)
                ),
                None => format!("The {action} failed with {name}. A human needs to look."),
            };
            (
                format!("selfheal: {action} FAILED for {short}"),
                headline,
                "failed".to_owned(),
            )
        }
        EventKind::FleetCompleted => {
            let s = fleet_summary(event);
            (
                format!(
                    "selfheal fleet: {} of {} succeeded, {} failed",
                    s.succeeded, s.total, s.failed
                ),
                format!(
                    "Fleet remediation finished: {} targets, {} succeeded ({}), {} failed ({}).",
                    s.total,
                    s.succeeded,
                    join_counts(&s.by_status),
                    s.failed,
                    join_counts(&s.failures)
                ),
                if s.failed == 0 { "applied" } else { "failed" }.to_owned(),
            )
        }
    };

    let mut details = Vec::new();
    if event.event != EventKind::FleetCompleted {
        details.push(format!(
            "Target: {}",
            target_line(message_target(request, outcome))
        ));
    }
    if let Some(alarm) = request.and_then(|r| r.alarm.as_ref()) {
        details.push(format!("Alarm: {}", alarm_line(alarm)));
    } else if event.event != EventKind::FleetCompleted {
        details.push("Alarm: none (manual request)".to_owned());
    }
    if let Some(reason) = request.and_then(|r| r.reason.as_deref()) {
        details.push(format!("Reason: {reason}"));
    }
    // Who approved, as approve saw the request: a device, not a person, but
    // what an auditor can follow up.
    if let Some(Approval::Decided(decided)) = &event.approval
        && decided.decision == Decision::Approve
        && let Some(by) = &decided.decided_by
    {
        details.push(format!(
            "Approval: approved by {} ({})",
            by.source_ip.as_deref().unwrap_or("an unknown address"),
            by.user_agent.as_deref().unwrap_or("no user agent")
        ));
    }
    if let Some(o) = outcome {
        details.push(format!("Outcome: {} — {}", status_name(o), o.message));
        change_lines(&mut details, "Changed", &o.changes, &o.evidence);
    }
    // What an approval decides, as the API server's dry run accepted it.
    if let Some(Preview::Outcome(p)) = &event.preview {
        change_lines(&mut details, "Will change", &p.changes, &p.evidence);
    }
    if let Some(v) = &event.verify {
        details.push(format!("Rollout: {} — {}", v.state, v.message));
    }
    if let Some(e) = &event.error
        && event.event == EventKind::Failed
    {
        details.push(format!("Error: {} — {}", e.error, e.cause));
    }
    let console = console_link(&event.execution.id);

    let plain = |line: &str| slack::neutralise_mentions(&slack::one_line(line));
    let mut lines = vec![plain(&headline), String::new()];
    if let Some(links) = links {
        lines.push(format!("Approve: {}", slack::one_line(&links.approve_url)));
        lines.push(format!("Deny:    {}", slack::one_line(&links.deny_url)));
        lines.push(format!(
            "The links work once and expire at {}.",
            links.expires_at
        ));
        lines.push(String::new());
    }
    lines.extend(details.iter().map(|line| plain(line)));
    lines.push(String::new());
    lines.push(match &console {
        Some(link) => format!("Execution: {link}"),
        None => plain(&format!("Execution: {}", event.execution.id)),
    });

    let subject = slack::neutralise_mentions(&clip_subject(subject));
    let slack = (!routine_refusal(event)).then(|| {
        let headline = format!("*{}*", slack::escape_mrkdwn(&headline));
        let first = match links {
            Some(links) => slack::Block::section(
                "decision",
                format!(
                    "{headline}\n*{}*   ·   *{}*\nThe links work once and expire at {}.",
                    slack::link(&links.approve_url, "Approve"),
                    slack::link(&links.deny_url, "Deny"),
                    links.expires_at
                ),
            ),
            None => slack::Block::section("headline", headline),
        };
        let details = details
            .iter()
            .map(|line| slack::escape_mrkdwn(line))
            .collect::<Vec<_>>()
            .join("\n");
        let execution = match &console {
            Some(link) => format!("Execution: {}", slack::link(link, "open in the console")),
            None => slack::escape_mrkdwn(&format!("Execution: {}", event.execution.id)),
        };
        let mut blocks = vec![first];
        if !details.is_empty() {
            blocks.push(slack::Block::section("details", details));
        }
        blocks.push(slack::Block::section("execution", execution));
        SlackMessage {
            text: slack::escape_mrkdwn(&subject),
            blocks,
        }
    });
    Message {
        subject,
        text: lines.join("\n"),
        status,
        slack,
    }
}

fn join_counts(map: &std::collections::BTreeMap<String, usize>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `<verb>: container api A -> B` per change, then what the pods said, so
/// the reader sees why this container (and not its neighbour) goes back, or
/// why nothing does.
fn change_lines(
    details: &mut Vec<String>,
    verb: &str,
    changes: &[Change],
    evidence: &[selfheal_contract::ContainerEvidence],
) {
    for c in changes {
        details.push(format!(
            "{verb}: container {} {} -> {}",
            c.container, c.from, c.to
        ));
    }
    if !evidence.is_empty() {
        details.push(format!(
            "Evidence: {}",
            selfheal_contract::evidence::summary(evidence)
        ));
    }
}

/// `checkout-5xx (cloudwatch), impact 2.40`.
fn alarm_line(alarm: &selfheal_contract::AlarmRef) -> String {
    let mut line = format!(
        "{} ({})",
        alarm.name.as_deref().unwrap_or("(unnamed)"),
        alarm.source
    );
    if let Some(score) = alarm.impact_score {
        line.push_str(&format!(", impact {score:.2}"));
    }
    line
}

/// What the approval page shows: the request's workload and alarm, and the
/// changes and pod evidence of the dry run the state machine ran before
/// asking (`preview`); without one (restart, resume) no image changes.
pub fn approval_plan(event: &NotifyEvent) -> Option<selfheal_approval::ApprovalPlan> {
    use selfheal_approval::{ApprovalPlan, PlanEvidence, PlannedChange};
    let request = event.request.as_ref()?;
    let action = match event.event {
        EventKind::RolloutFrozen => Action::Rollback,
        _ => request.action,
    };
    // A pod target is resolved to its workload by the dry run.
    let target = event
        .preview_outcome()
        .map_or(&request.target, |o| &o.target);
    let workload = match target.workload() {
        Some(Workload::Pod(p)) => format!("pod {p}"),
        Some(w) => format!("{} {}", kind_word(Some(target)), w.name()),
        None => "(no workload named)".to_owned(),
    };
    let mut plan = ApprovalPlan {
        action,
        cluster: target.cluster.clone(),
        namespace: target.namespace.clone(),
        workload,
        changes: Vec::new(),
        validated: false,
        preview: None,
        evidence: Vec::new(),
        alarm: request.alarm.as_ref().map(alarm_line),
        reason: request.reason.clone(),
    };
    match &event.preview {
        Some(Preview::Outcome(o)) => {
            plan.validated = o.status == OutcomeStatus::DryRun;
            plan.preview = Some(o.message.clone());
            plan.changes = o
                .changes
                .iter()
                .map(|c| PlannedChange {
                    container: c.container.clone(),
                    from: c.from.clone(),
                    to: c.to.clone(),
                })
                .collect();
            plan.evidence = o
                .evidence
                .iter()
                .map(|e| PlanEvidence {
                    container: e.container.clone(),
                    failing: e.is_failing(),
                    text: e.describe(),
                })
                .collect();
        }
        Some(Preview::Failed(e)) => {
            plan.preview = Some(format!("the dry run failed: {} ({})", e.error, e.cause));
        }
        None => {}
    }
    Some(plan)
}

/// One line naming what an approval decides (stored with the link).
pub fn approval_summary(event: &NotifyEvent) -> String {
    let request = event.request.as_ref();
    let action = match event.event {
        EventKind::RolloutFrozen => "rollback",
        _ => request.map(|r| r.action.as_str()).unwrap_or("remediation"),
    };
    format!(
        "{action} of {}",
        target_line(message_target(request, event.outcome.as_ref()))
    )
}

/// The pending-approval cap of the workload `request` names (at most `max`
/// pending): a Deployment's in its folder as before other kinds existed
/// (`cluster/namespace/name`), a StatefulSet's or DaemonSet's in its own
/// (`statefulset cluster/namespace/name`), or the pod's when the request
/// names one (resolved only by the handler).
pub fn pending_cap(
    request: &RemediationRequest,
    max: usize,
) -> Option<selfheal_approval::PendingCap> {
    use selfheal_approval::DeploymentScope;
    let t = &request.target;
    let workload = t.workload()?;
    let cluster = t.cluster.as_deref();
    let path = format!(
        "{}/{}/{}",
        cluster.unwrap_or("(default cluster)"),
        t.namespace,
        workload.name()
    );
    let (name, scope) = match workload.kind() {
        Some(kind @ (WorkloadKind::StatefulSet | WorkloadKind::DaemonSet)) => (
            format!("{} {path}", kind.noun()),
            DeploymentScope::of_workload(cluster, &t.namespace, kind, workload.name()),
        ),
        _ => (
            path,
            DeploymentScope::of(cluster, &t.namespace, workload.name()),
        ),
    };
    Some(selfheal_approval::PendingCap { name, scope, max })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod kinds_tests;
