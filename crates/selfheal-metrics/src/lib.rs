//! selfheal's own metrics, as CloudWatch embedded metric format (EMF)
//! records: one JSON object per line on the function's stdout, which
//! CloudWatch Logs turns into metrics of the namespace [`NAMESPACE`]. No
//! `PutMetricData` call, so no extra permission and no added latency.
//!
//! Pure: the records are typed structs serialised with serde; the functions'
//! adapters measure (clock, counts) and print the line. [`PUBLISHED`] lists
//! every metric name, unit and dimension set a record can carry: README's
//! metrics table and the dashboards in `template.yaml` and `cdk/` are checked
//! against it, and [`emf::validate`] checks a line against the EMF
//! specification's structure.

pub mod emf;

use jiff::Timestamp;
use serde::Serialize;

/// The CloudWatch namespace of every selfheal metric.
pub const NAMESPACE: &str = "Selfheal";

/// Dimension names. A `Kind` dimension (the workload kind) joins `Action`
/// and `Status` once selfheal acts on more than Deployments.
pub mod dimensions {
    pub const ACTION: &str = "Action";
    pub const STATUS: &str = "Status";
    pub const GUARD: &str = "Guard";
    pub const REASON: &str = "Reason";
}

/// The CloudWatch units selfheal's metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Which function writes a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `rollback`, `pause`, `resume`, `restart`.
    Actions,
    Verify,
    /// The actions and `verify`.
    ActionsAndVerify,
    /// The final report (`completed` / `failed` events).
    Notify,
    Ingest,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Actions => "rollback, pause, resume, restart",
            Source::Verify => "verify",
            Source::ActionsAndVerify => "rollback, pause, resume, restart, verify",
            Source::Notify => "notify",
            Source::Ingest => "ingest",
        }
    }
}

/// One metric selfheal publishes: under each of `dimension_sets`
/// (an empty set is the metric without dimensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub name: &'static str,
    pub unit: Unit,
    pub dimension_sets: &'static [&'static [&'static str]],
    pub source: Source,
}

use dimensions::{ACTION, GUARD, REASON, STATUS};

const BY_ACTION_STATUS: &[&str] = &[ACTION, STATUS];
const BY_GUARD: &[&str] = &[GUARD];
const NONE: &[&str] = &[];
const BY_ACTION: &[&str] = &[ACTION];
const BY_REASON: &[&str] = &[REASON];

/// One per outcome (or error) of `rollback`, `pause`, `resume`, `restart`.
pub const REMEDIATIONS: Published = Published {
    name: "Remediations",
    unit: Unit::Count,
    dimension_sets: &[BY_ACTION_STATUS, BY_GUARD],
    source: Source::Actions,
};

/// One per `verify` answer (or error).
pub const ROLLOUT_CHECKS: Published = Published {
    name: "RolloutChecks",
    unit: Unit::Count,
    dimension_sets: &[BY_ACTION_STATUS],
    source: Source::Verify,
};

/// The handler's own time for one invocation.
pub const HANDLER_DURATION: Published = Published {
    name: "HandlerDuration",
    unit: Unit::Milliseconds,
    dimension_sets: &[BY_ACTION_STATUS],
    source: Source::ActionsAndVerify,
};

/// Execution start to the `verify` that saw the rollout done.
pub const TIME_TO_RECOVERED: Published = Published {
    name: "TimeToRecoveredMs",
    unit: Unit::Milliseconds,
    dimension_sets: &[NONE, BY_ACTION],
    source: Source::Notify,
};

/// `verify` calls of one execution.
pub const VERIFY_CHECKS: Published = Published {
    name: "VerifyChecks",
    unit: Unit::Count,
    dimension_sets: &[NONE, BY_ACTION],
    source: Source::Notify,
};

/// 1 when the execution escalated (pause → rollback), else 0.
pub const ESCALATIONS: Published = Published {
    name: "Escalations",
    unit: Unit::Count,
    dimension_sets: &[NONE, BY_ACTION],
    source: Source::Notify,
};

/// Alerts in an event ingest processed.
pub const ALARMS_RECEIVED: Published = Published {
    name: "AlarmsReceived",
    unit: Unit::Count,
    dimension_sets: &[NONE],
    source: Source::Ingest,
};

/// Executions ingest started (a re-delivered alert's existing one not counted).
pub const EXECUTIONS_STARTED: Published = Published {
    name: "ExecutionsStarted",
    unit: Unit::Count,
    dimension_sets: &[NONE],
    source: Source::Ingest,
};

/// Alerts that started nothing, by `Reason`.
pub const ALARMS_IGNORED: Published = Published {
    name: "AlarmsIgnored",
    unit: Unit::Count,
    dimension_sets: &[BY_REASON],
    source: Source::Ingest,
};

/// Every metric any record carries, with its unit and dimension sets.
pub const PUBLISHED: &[Published] = &[
    REMEDIATIONS,
    ROLLOUT_CHECKS,
    HANDLER_DURATION,
    TIME_TO_RECOVERED,
    VERIFY_CHECKS,
    ESCALATIONS,
    ALARMS_RECEIVED,
    EXECUTIONS_STARTED,
    ALARMS_IGNORED,
];

/// The published metric called `name`.
pub fn published(name: &str) -> Option<&'static Published> {
    PUBLISHED.iter().find(|p| p.name == name)
}

/// The `Status` of an invocation that ended in an error (its `errorType`
/// is the record's `errorType` member, not a dimension).
pub const STATUS_ERROR: &str = "error";

/// The `Action` of `verify`'s records.
pub const ACTION_VERIFY: &str = "verify";

/// One EMF document: the `_aws` metadata and the record's own members at the
/// top level, as the specification asks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record<B> {
    #[serde(rename = "_aws")]
    aws: Metadata,
    #[serde(flatten)]
    body: B,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata {
    timestamp: i64,
    cloud_watch_metrics: Vec<Directive>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Directive {
    namespace: &'static str,
    dimensions: Vec<&'static [&'static str]>,
    metrics: Vec<MetricDefinition>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDefinition {
    name: &'static str,
    unit: Unit,
}

impl Directive {
    /// `metrics` under `dimensions`, units from [`PUBLISHED`].
    fn new(dimensions: &[&'static [&'static str]], metrics: &[&'static str]) -> Self {
        Directive {
            namespace: NAMESPACE,
            dimensions: dimensions.to_vec(),
            metrics: metrics
                .iter()
                .map(|name| MetricDefinition {
                    name,
                    unit: published(name).map_or(Unit::Count, |p| p.unit),
                })
                .collect(),
        }
    }
}

impl<B: Serialize> Record<B> {
    fn new(at: Timestamp, directives: Vec<Directive>, body: B) -> Self {
        Record {
            aws: Metadata {
                timestamp: at.as_millisecond(),
                cloud_watch_metrics: directives,
            },
            body,
        }
    }

    /// The record as one line of JSON (no newline).
    pub fn to_line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// The record's own members (dimensions, metrics, properties).
    pub fn body(&self) -> &B {
        &self.body
    }
}

/// What an action or `verify` invocation reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvocationBody {
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "Guard", skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
    #[serde(rename = "Remediations", skip_serializing_if = "Option::is_none")]
    pub remediations: Option<u32>,
    #[serde(rename = "RolloutChecks", skip_serializing_if = "Option::is_none")]
    pub rollout_checks: Option<u32>,
    #[serde(rename = "HandlerDuration")]
    pub handler_duration: f64,
    /// The error's `errorType` when `Status` is `error` (a property, not a dimension).
    #[serde(rename = "errorType", skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
}

/// How an invocation ended, as the record names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended<'a> {
    /// An outcome status (`applied`, `refused`, …) or a `verify` state
    /// (`done`, `waiting`, `failed`); `guard` for a refusal.
    Status {
        status: &'a str,
        guard: Option<&'a str>,
    },
    /// An error, by its `errorType`.
    Error { error_type: &'a str },
}

impl Ended<'_> {
    fn parts(self) -> (String, Option<String>, Option<String>) {
        match self {
            Ended::Status { status, guard } => (status.to_owned(), guard.map(str::to_owned), None),
            Ended::Error { error_type } => {
                (STATUS_ERROR.to_owned(), None, Some(error_type.to_owned()))
            }
        }
    }
}

/// Milliseconds of `duration`, to the microsecond.
fn millis(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1_000.0
}

/// The record of one `rollback` / `pause` / `resume` / `restart` invocation:
/// `Remediations` = 1 and `HandlerDuration` by `Action` and `Status`, and
/// for a refusal `Remediations` by `Guard` too.
pub fn remediation(
    action: &str,
    ended: Ended<'_>,
    duration: std::time::Duration,
    at: Timestamp,
) -> Record<InvocationBody> {
    let (status, guard, error_type) = ended.parts();
    let mut directives = vec![Directive::new(
        &[BY_ACTION_STATUS],
        &[REMEDIATIONS.name, HANDLER_DURATION.name],
    )];
    if guard.is_some() {
        directives.push(Directive::new(&[BY_GUARD], &[REMEDIATIONS.name]));
    }
    let body = InvocationBody {
        action: action.to_owned(),
        status,
        guard,
        remediations: Some(1),
        rollout_checks: None,
        handler_duration: millis(duration),
        error_type,
    };
    Record::new(at, directives, body)
}

/// The record of one `verify` invocation: `RolloutChecks` = 1 and
/// `HandlerDuration` by `Action` (`verify`) and `Status` (the rollout state).
pub fn rollout_check(
    ended: Ended<'_>,
    duration: std::time::Duration,
    at: Timestamp,
) -> Record<InvocationBody> {
    let (status, _, error_type) = ended.parts();
    let directives = vec![Directive::new(
        &[BY_ACTION_STATUS],
        &[ROLLOUT_CHECKS.name, HANDLER_DURATION.name],
    )];
    let body = InvocationBody {
        action: ACTION_VERIFY.to_owned(),
        status,
        guard: None,
        remediations: None,
        rollout_checks: Some(1),
        handler_duration: millis(duration),
        error_type,
    };
    Record::new(at, directives, body)
}

/// What the state machine's final report (`notify`, `completed` / `failed`)
/// reports about one execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportBody {
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "TimeToRecoveredMs", skip_serializing_if = "Option::is_none")]
    pub time_to_recovered_ms: Option<i64>,
    #[serde(rename = "VerifyChecks")]
    pub verify_checks: u32,
    #[serde(rename = "Escalations")]
    pub escalations: u32,
    /// The execution's ARN (a property, for Logs Insights).
    #[serde(rename = "execution")]
    pub execution: String,
}

/// The final report's record, with and without the `Action` dimension.
/// `TimeToRecoveredMs` only when the rollout was verified done.
pub fn report(body: ReportBody, at: Timestamp) -> Record<ReportBody> {
    let mut metrics = Vec::with_capacity(3);
    if body.time_to_recovered_ms.is_some() {
        metrics.push(TIME_TO_RECOVERED.name);
    }
    metrics.extend([VERIFY_CHECKS.name, ESCALATIONS.name]);
    let directives = vec![Directive::new(&[NONE, BY_ACTION], &metrics)];
    Record::new(at, directives, body)
}

/// Why ingest started nothing for an alert (the `Reason` dimension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IgnoredReason {
    /// OK, INSUFFICIENT_DATA or resolved.
    NotFiring,
    /// Alerts Alertmanager left out of the notification (`truncatedAlerts`).
    Truncated,
    /// A composite alarm whose actions CloudWatch suppresses.
    Suppressed,
    /// Firing but unusable (malformed directive, no namespace, …).
    Rejected,
    /// The off switch is not `on`.
    Disabled,
}

impl IgnoredReason {
    pub const ALL: [IgnoredReason; 5] = [
        IgnoredReason::NotFiring,
        IgnoredReason::Truncated,
        IgnoredReason::Suppressed,
        IgnoredReason::Rejected,
        IgnoredReason::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IgnoredReason::NotFiring => "notFiring",
            IgnoredReason::Truncated => "truncated",
            IgnoredReason::Suppressed => "suppressed",
            IgnoredReason::Rejected => "rejected",
            IgnoredReason::Disabled => "disabled",
        }
    }
}

/// One ingest invocation's counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngestBody {
    #[serde(rename = "AlarmsReceived")]
    pub alarms_received: u64,
    #[serde(rename = "ExecutionsStarted")]
    pub executions_started: u64,
}

/// Alerts ignored for one reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IgnoredBody {
    #[serde(rename = "Reason")]
    pub reason: &'static str,
    #[serde(rename = "AlarmsIgnored")]
    pub alarms_ignored: u64,
}

/// An ingest invocation's records: its counts, then one record per reason
/// that ignored alerts (a document has one value per dimension).
#[derive(Debug, Clone, PartialEq)]
pub struct IngestRecords {
    pub counts: Record<IngestBody>,
    pub ignored: Vec<Record<IgnoredBody>>,
}

impl IngestRecords {
    /// Every record as one line each.
    pub fn to_lines(&self) -> Result<Vec<String>, serde_json::Error> {
        let mut lines = vec![self.counts.to_line()?];
        for record in &self.ignored {
            lines.push(record.to_line()?);
        }
        Ok(lines)
    }
}

/// `received` alerts, `started` executions, and the ignored ones by reason
/// (reasons with a count of zero write nothing).
pub fn ingest(
    received: u64,
    started: u64,
    ignored: &[(IgnoredReason, u64)],
    at: Timestamp,
) -> IngestRecords {
    let counts = Record::new(
        at,
        vec![Directive::new(
            &[NONE],
            &[ALARMS_RECEIVED.name, EXECUTIONS_STARTED.name],
        )],
        IngestBody {
            alarms_received: received,
            executions_started: started,
        },
    );
    let mut totals: std::collections::BTreeMap<IgnoredReason, u64> = Default::default();
    for (reason, count) in ignored {
        *totals.entry(*reason).or_default() += count;
    }
    let ignored = totals
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(reason, count)| {
            Record::new(
                at,
                vec![Directive::new(&[BY_REASON], &[ALARMS_IGNORED.name])],
                IgnoredBody {
                    reason: reason.as_str(),
                    alarms_ignored: count,
                },
            )
        })
        .collect();
    IngestRecords { counts, ignored }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
