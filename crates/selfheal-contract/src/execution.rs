//! The state machines' own data as they hand it to notify (the `notify`
//! task's `Parameters`): the event, the execution, the steps' results and
//! their recorded spans, a fleet's per-target results; and notify's answer
//! ([`NotifyOutput`]), whose `deploymentHealth` or fleet `summary` the state
//! machine puts in its own output.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::approval::ApprovalDecision;
use crate::verify::WatchSpan;
use crate::{Action, Change, OutcomeStatus, RemediationOutcome, RemediationRequest, RolloutState};

/// Which moment of a remediation this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventKind {
    ApprovalRequested,
    RolloutFrozen,
    Completed,
    Failed,
    FleetCompleted,
}

/// The execution, from the context object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionInfo {
    /// `$$.Execution.Id`, the ARN the console link points at.
    pub id: String,
    /// `$$.Execution.Name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `$$.Execution.StartTime`: the report's total duration counts from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// `$$.StateMachine.Id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_machine: Option<String>,
}

/// `verify`'s answer (its `target` is not needed here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutCheck {
    pub state: RolloutState,
    pub message: String,
    /// The watch so far (`startedAt`, `attempts`, `finishedAt` of the last
    /// window): read for the verify step, not repeated in the report.
    #[serde(default, skip_serializing)]
    pub watch: Option<WatchSpan>,
}

/// A Step Functions error object (`Catch` output). A `null` field reads as
/// empty: an error without a cause must not make the whole event unreadable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    #[serde(rename = "Error", default, deserialize_with = "null_as_empty")]
    pub error: String,
    #[serde(rename = "Cause", default, deserialize_with = "null_as_empty")]
    pub cause: String,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

/// The approval step's result (`$.approval`): the approver's answer, or the
/// approval task's error when its `Catch` took over (denied, timed out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Approval {
    Decided(ApprovalDecision),
    Failed(StepError),
}

impl Approval {
    /// The approval task's error name, when it failed.
    pub fn error(&self) -> Option<&str> {
        match self {
            Approval::Failed(error) => Some(&error.error),
            Approval::Decided(_) => None,
        }
    }
}

/// Start/end of one step, as the Pass states record them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

/// `$.timings`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<Span>,
}

/// What the first remediation did before an escalation (`$.escalation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Escalation {
    pub reason: String,
    pub from: RemediationOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<RolloutCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    #[serde(default)]
    pub timings: Timings,
}

/// How one fleet target ended (the fleet Map's `TargetSucceeded` /
/// `TargetFailed` states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FleetStatus {
    Succeeded,
    Failed,
}

/// The part of a child execution's output the fleet summary counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildOutcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OutcomeStatus>,
}

/// One fleet target's result (the fleet Map's item output). Its `target`
/// echoes the fleet input as given and is not read here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetResult {
    pub status: FleetStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<ChildOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// The dry run of the rollback an approval decides (`$.preview`): the
/// outcome the API server validated with `dryRun=All`, or the preview task's
/// error when it failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Preview {
    /// Boxed: an outcome is far larger than an error.
    Outcome(Box<RemediationOutcome>),
    Failed(StepError),
}

/// The notify payload (the state machines' `Parameters`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyEvent {
    pub event: EventKind,
    pub execution: ExecutionInfo,
    /// The execution's input (`$.request`), once validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RemediationRequest>,
    /// The action's outcome (`$.outcome`), once it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RemediationOutcome>,
    /// The last `verify` answer (`$.verify`), once the rollout was watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<RolloutCheck>,
    /// The approver's answer or the approval step's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
    /// Approval events: the dry run of what the approval decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<Preview>,
    /// The error a `Catch` caught (`failed` events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    #[serde(default)]
    pub timings: Timings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// `fleetCompleted`: every target's result (the fleet input itself,
    /// also sent as `fleet`, is not read here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<FleetResult>>,
}

impl NotifyEvent {
    /// The outcome of the dry run an approval shows, if it ran.
    pub fn preview_outcome(&self) -> Option<&RemediationOutcome> {
        match &self.preview {
            Some(Preview::Outcome(outcome)) => Some(outcome),
            _ => None,
        }
    }
}

impl From<WatchSpan> for Span {
    fn from(watch: WatchSpan) -> Self {
        Span {
            started_at: Some(watch.started_at),
            finished_at: Some(watch.finished_at),
            attempts: Some(watch.attempts),
        }
    }
}

/// One step's timing in the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepTiming {
    pub name: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub duration_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

/// What the first remediation was, when it was escalated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EscalatedFrom {
    pub reason: String,
    pub action: Action,
    pub status: OutcomeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_status: Option<RolloutCheck>,
}

/// The execution output's `deploymentHealth`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentHealth {
    /// The last `verify` answer (`None` when nothing needed watching).
    pub last_rollout_status: Option<RolloutCheck>,
    /// Every image change made by this execution, escalations included.
    pub changes: Vec<Change>,
    pub steps: Vec<StepTiming>,
    /// Execution start to this report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_duration_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_from: Option<EscalatedFrom>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    pub notified: bool,
}

/// Per-fleet counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetSummary {
    pub total: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Succeeded targets by outcome status (applied, skipped, dryRun).
    pub by_status: BTreeMap<String, usize>,
    /// Failed targets by the child's error name.
    pub failures: BTreeMap<String, usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_time_ms: Option<i64>,
}

/// notify's answer to the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyOutput {
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub slack: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_health: Option<DeploymentHealth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<FleetSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_expires_at: Option<Timestamp>,
}
