//! Turns alarm and alert payloads into [`RemediationRequest`]s (docs/alarms.md
//! §3–§6): CloudWatch alarms via EventBridge, SNS or a Lambda alarm action,
//! Alertmanager webhooks, Alertmanager alert groups in SNS messages (Amazon
//! Managed Service for Prometheus, [`amp`]), and manual requests. Pure: no
//! I/O, no clock, no environment access except through
//! [`Defaults::from_lookup`].
//!
//! The `ingest` Lambda and `selfheal event FILE` call [`parse_event`] and
//! start one execution per [`NamedRequest`], using its `execution_name`.
//!
//! ```
//! use selfheal_events::{parse_event, Defaults};
//! let body = br#"{"action":"pause","target":{"namespace":"shop","deployment":"checkout"}}"#;
//! let ingested = parse_event(body, &Defaults::default()).unwrap();
//! assert_eq!(ingested.requests.len(), 1);
//! ```

pub mod alertmanager;
pub mod amp;
pub mod cloudwatch;
pub mod directive;
mod error;
pub mod naming;
mod resolve;

use serde::Serialize;
use serde_json::Value;

pub use error::Error;
pub use selfheal_contract::{Action, AlarmRef, RemediationRequest, Scope, Target};

/// Largest event accepted: 256 KiB, the Lambda asynchronous invocation (and
/// EventBridge/SNS message) payload limit, so nothing legitimate is bigger.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Which payload shape an event had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EventKind {
    /// EventBridge `CloudWatch Alarm State Change`.
    EventBridgeAlarm,
    /// SNS notification whose `Message` is a CloudWatch alarm.
    SnsAlarm,
    /// SNS notification whose `Message` is an Alertmanager alert group as
    /// AWS's JSON template renders it (Amazon Managed Service for
    /// Prometheus, [`amp`]).
    SnsAlertmanager,
    /// Lambda invoked directly as an alarm action (`alarmData` at the top).
    AlarmAction,
    /// Alertmanager webhook, version 4.
    Alertmanager,
    /// A [`RemediationRequest`] as typed by a human.
    Manual,
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EventKind::EventBridgeAlarm => "EventBridge CloudWatch alarm",
            EventKind::SnsAlarm => "SNS CloudWatch alarm",
            EventKind::SnsAlertmanager => "SNS Alertmanager alert group",
            EventKind::AlarmAction => "CloudWatch alarm action",
            EventKind::Alertmanager => "Alertmanager webhook",
            EventKind::Manual => "manual request",
        })
    }
}

/// Configuration of alarm parsing: fallbacks used only when neither a
/// directive nor the alarm names the field (docs/alarms.md §4), both unset by
/// default, and whether a directive may leave the alarm's own namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Defaults {
    pub cluster: Option<String>,
    pub action: Option<Action>,
    /// Let a directive name another namespace or cluster than the alarm's own
    /// `namespace`/`cluster` labels (`Namespace`/`ClusterName` dimensions).
    /// Off by default: whoever may write an alert rule for one tenant must
    /// not steer selfheal into another tenant's namespace, and annotations
    /// (where directives live) escape prometheus-operator's
    /// `enforcedNamespaceLabel`, which only rewrites labels.
    pub allow_cross_namespace: bool,
}

impl Defaults {
    pub const CLUSTER_VAR: &'static str = "SELFHEAL_DEFAULT_CLUSTER";
    pub const ACTION_VAR: &'static str = "SELFHEAL_DEFAULT_ACTION";
    pub const ALLOW_CROSS_NAMESPACE_VAR: &'static str = "SELFHEAL_ALLOW_CROSS_NAMESPACE_DIRECTIVES";

    /// Read the defaults through `lookup` (`selfheal_contract::env::process`),
    /// so callers and tests decide where configuration comes from. Empty
    /// values count as unset; an unknown action is an error, not ignored.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let get = |k: &str| selfheal_contract::env::get(&lookup, k);
        let action = match get(Self::ACTION_VAR) {
            None => None,
            Some(value) => {
                Some(
                    directive::parse_action(&value).ok_or_else(|| Error::InvalidDefault {
                        var: Self::ACTION_VAR,
                        value,
                        reason: "want rollback, pause, resume or restart".into(),
                    })?,
                )
            }
        };
        let allow_cross_namespace = match get(Self::ALLOW_CROSS_NAMESPACE_VAR) {
            None => false,
            Some(value) => match value.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(Error::InvalidDefault {
                        var: Self::ALLOW_CROSS_NAMESPACE_VAR,
                        value,
                        reason: "want true or false".into(),
                    });
                }
            },
        };
        Ok(Defaults {
            cluster: get(Self::CLUSTER_VAR),
            action,
            allow_cross_namespace,
        })
    }
}

/// A request ready for `StartExecution`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedRequest {
    /// Deterministic: the same alert re-delivered gets the same name.
    pub execution_name: String,
    pub request: RemediationRequest,
}

/// Why an alert in a readable event started nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum IgnoreReason {
    /// Not a transition into ALARM / not `firing` (OK, INSUFFICIENT_DATA, resolved).
    NotFiring { state: String },
    /// Alertmanager dropped alerts from this notification (`max_alerts`).
    Truncated { count: u64 },
    /// A composite alarm in ALARM whose actions CloudWatch suppresses on
    /// purpose: `by` is the state's `actionsSuppressedBy` (`Alarm`: the
    /// suppressor alarm is in ALARM; `WaitPeriod` / `ExtensionPeriod`:
    /// waiting for it to enter / after it left ALARM), `reason` its
    /// `actionsSuppressedReason`. Not a rejection: the alarm is fine.
    Suppressed {
        by: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Firing, but cannot become a request; the operator should fix the alarm.
    Rejected(Rejection),
    /// A usable alert, but the operator's off switch (SSM parameter
    /// `parameter`, holding `value`) says selfheal must not act. Set by
    /// ingest, never by [`parse_event`].
    Disabled { parameter: String, value: String },
}

/// Why a firing alert could not become a request. Each names the problem.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Rejection {
    /// The `selfheal:` directive / `selfheal` annotation is malformed.
    Directive { problem: String },
    /// No source names this field.
    MissingField { field: &'static str, hint: String },
    /// Two sources of equal rank disagree (e.g. metric-math metrics).
    Conflict {
        field: &'static str,
        first: String,
        second: String,
    },
    /// Composite alarms carry no dimensions; only a directive can target them.
    CompositeWithoutDirective,
    /// The directive names another namespace or cluster than the alert's
    /// own label (dimension), and cross-namespace directives are not allowed
    /// ([`Defaults::allow_cross_namespace`]).
    CrossNamespace {
        field: &'static str,
        directive: String,
        alert: String,
    },
    /// The resulting target breaks the request contract (empty names…).
    InvalidTarget { message: String },
    /// One alert/record inside a readable batch is not a readable alert.
    Unreadable { message: String },
    /// The alarm event carries no current state.
    NoState,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Directive { problem } => write!(f, "selfheal directive: {problem}"),
            Rejection::MissingField { field, hint } => write!(f, "missing {field}: {hint}"),
            Rejection::Conflict {
                field,
                first,
                second,
            } => write!(f, "conflicting values for {field}: `{first}` vs `{second}`"),
            Rejection::CompositeWithoutDirective => f.write_str(
                "composite alarm has no metric dimensions to target; add a `selfheal:` line to its description",
            ),
            Rejection::CrossNamespace {
                field,
                directive,
                alert,
            } => write!(
                f,
                "the selfheal directive sets {field} `{directive}`, but the alert itself is from `{alert}`; a directive may only target the alert's own namespace and cluster unless {} is true",
                Defaults::ALLOW_CROSS_NAMESPACE_VAR
            ),
            Rejection::InvalidTarget { message } => write!(f, "invalid target: {message}"),
            Rejection::Unreadable { message } => write!(f, "unreadable alert: {message}"),
            Rejection::NoState => f.write_str("alarm event carries no state"),
        }
    }
}

impl std::fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IgnoreReason::NotFiring { state } => write!(f, "state is {state}, not firing"),
            IgnoreReason::Truncated { count } => {
                write!(
                    f,
                    "Alertmanager left {count} alert(s) out of this notification"
                )
            }
            IgnoreReason::Suppressed { by, reason } => {
                write!(f, "CloudWatch suppresses this alarm's actions ({by}")?;
                if let Some(reason) = reason.as_deref().filter(|r| !r.is_empty()) {
                    write!(f, ": {reason}")?;
                }
                f.write_str("); nothing was started")
            }
            IgnoreReason::Rejected(r) => r.fmt(f),
            IgnoreReason::Disabled { parameter, value } => write!(
                f,
                "selfheal is switched off (SSM parameter {parameter} = {value}); nothing was started"
            ),
        }
    }
}

/// An alert that started nothing, for the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ignored {
    /// Alarm name / `alertname`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Alarm ARN / fingerprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub reason: IgnoreReason,
    /// `reason` as one human sentence.
    pub message: String,
}

impl Ignored {
    pub(crate) fn new(name: Option<String>, id: Option<String>, reason: IgnoreReason) -> Self {
        let message = reason.to_string();
        Ignored {
            name,
            id,
            reason,
            message,
        }
    }

    /// The rejection, when this alert was firing but unusable.
    pub fn rejection(&self) -> Option<&Rejection> {
        match &self.reason {
            IgnoreReason::Rejected(r) => Some(r),
            _ => None,
        }
    }
}

/// Result of ingesting one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[must_use = "an ingested event starts nothing until its requests are started"]
#[serde(rename_all = "camelCase")]
pub struct Ingested {
    pub kind: EventKind,
    /// One per firing alert that resolved to a target; start each.
    pub requests: Vec<NamedRequest>,
    /// Everything else, with the reason (log these).
    pub ignored: Vec<Ignored>,
}

impl Ingested {
    /// The ignored alerts that were firing but unusable (operator should fix).
    pub fn rejected(&self) -> impl Iterator<Item = &Ignored> {
        self.ignored.iter().filter(|i| i.rejection().is_some())
    }
}

/// Per-alert result inside a batch. The request is boxed: it is several
/// times the size of an ignore record, and a batch holds many of either.
#[derive(Debug)]
pub(crate) enum Entry {
    Request(Box<NamedRequest>),
    Ignored(Ignored),
}

/// Detect the event's kind and turn it into named requests.
///
/// Errors only when the payload as a whole is unusable (too large, not JSON,
/// unknown shape); per-alert problems go to [`Ingested::ignored`].
pub fn parse_event(json: &[u8], defaults: &Defaults) -> Result<Ingested, Error> {
    parse_object(read_object(json)?, defaults)
}

/// [`parse_event`] for an event the Lambda runtime has already parsed from
/// a body of `received_bytes` bytes: the size check counts those, the bytes
/// delivered, as [`parse_event`] counts the bytes it is given.
pub fn parse_event_value(
    value: Value,
    received_bytes: usize,
    defaults: &Defaults,
) -> Result<Ingested, Error> {
    check_size(received_bytes)?;
    parse_object(into_object(value)?, defaults)
}

/// Any event kind, told by the object's top-level keys.
fn parse_object(
    object: serde_json::Map<String, Value>,
    defaults: &Defaults,
) -> Result<Ingested, Error> {
    let Some(kind) = sniff(&object) else {
        return Err(Error::Unsupported(format!(
            "not a CloudWatch alarm, Alertmanager webhook or remediation request (top-level keys: {})",
            top_level_keys(&object)
        )));
    };
    parse_as(kind, object, defaults)
}

/// Like [`parse_event`], but only an Alertmanager webhook is accepted: any
/// other shape (a remediation request, a CloudWatch, EventBridge or SNS
/// event) is [`Error::Unsupported`] before anything of it is read further.
/// The ingest Function URL uses this, so its bearer token (held by
/// Alertmanager) cannot stand in for an operator's IAM-authenticated request.
pub fn parse_alertmanager(json: &[u8], defaults: &Defaults) -> Result<Ingested, Error> {
    let object = read_object(json)?;
    match sniff(&object) {
        Some(EventKind::Alertmanager) => parse_as(EventKind::Alertmanager, object, defaults),
        other => Err(Error::Unsupported(format!(
            "only Alertmanager webhooks (version 4, with `alerts`) are accepted here, got: {}",
            match other {
                Some(kind) => kind.to_string(),
                None => format!(
                    "an unknown shape (top-level keys: {})",
                    top_level_keys(&object)
                ),
            }
        ))),
    }
}

/// The size check, then the body as a JSON object.
fn read_object(json: &[u8]) -> Result<serde_json::Map<String, Value>, Error> {
    check_size(json.len())?;
    let value: Value =
        serde_json::from_slice(json).map_err(|source| Error::Malformed { source })?;
    into_object(value)
}

/// [`Error::TooLarge`] for an event of more than [`MAX_EVENT_BYTES`].
fn check_size(size: usize) -> Result<(), Error> {
    if size > MAX_EVENT_BYTES {
        return Err(Error::TooLarge {
            size,
            limit: MAX_EVENT_BYTES,
        });
    }
    Ok(())
}

/// The event as a JSON object.
fn into_object(value: Value) -> Result<serde_json::Map<String, Value>, Error> {
    match value {
        Value::Object(object) => Ok(object),
        other => Err(Error::Unsupported(format!(
            "expected a JSON object, got {}",
            selfheal_contract::error::json_kind(&other)
        ))),
    }
}

/// Which kind an object claims to be, from its top-level keys alone.
fn sniff(object: &serde_json::Map<String, Value>) -> Option<EventKind> {
    if object.contains_key("Records") {
        Some(EventKind::SnsAlarm)
    } else if object.contains_key("detail-type") {
        Some(EventKind::EventBridgeAlarm)
    } else if object.contains_key("alarmData") {
        Some(EventKind::AlarmAction)
    } else if object.contains_key("alerts") && object.contains_key("version") {
        Some(EventKind::Alertmanager)
    } else if object.contains_key("action") && object.contains_key("target") {
        Some(EventKind::Manual)
    } else {
        None
    }
}

/// Up to eight top-level keys, sorted, for a message.
fn top_level_keys(object: &serde_json::Map<String, Value>) -> String {
    let mut keys: Vec<&str> = object.keys().map(String::as_str).take(8).collect();
    keys.sort_unstable();
    keys.join(", ")
}

/// Parse an object [`sniff`] recognised as `kind`.
fn parse_as(
    kind: EventKind,
    object: serde_json::Map<String, Value>,
    defaults: &Defaults,
) -> Result<Ingested, Error> {
    // An SNS event's kind is known once its messages are read.
    let mut kind = kind;
    let entries = match kind {
        EventKind::SnsAlarm | EventKind::SnsAlertmanager => {
            // S3, SQS, DynamoDB… also deliver `Records`; only SNS carries alarms.
            let source = object
                .get("Records")
                .and_then(|records| records.get(0))
                .and_then(|r| r.get("EventSource"))
                .and_then(Value::as_str);
            if source != Some("aws:sns") {
                return Err(Error::Unsupported(format!(
                    "`Records` event from {} (want aws:sns)",
                    source.unwrap_or("an unknown source")
                )));
            }
            let (sns_kind, entries) = cloudwatch::from_sns(Value::Object(object), defaults)?;
            kind = sns_kind;
            entries
        }
        EventKind::EventBridgeAlarm => {
            let detail_type = object.get("detail-type").unwrap_or(&Value::Null);
            if detail_type.as_str() != Some(cloudwatch::STATE_CHANGE_DETAIL_TYPE) {
                return Err(Error::Unsupported(format!(
                    "EventBridge detail-type {detail_type} (want {:?})",
                    cloudwatch::STATE_CHANGE_DETAIL_TYPE
                )));
            }
            vec![cloudwatch::from_eventbridge(
                Value::Object(object),
                defaults,
            )?]
        }
        EventKind::AlarmAction => {
            vec![cloudwatch::from_alarm_action(
                Value::Object(object),
                defaults,
            )?]
        }
        EventKind::Alertmanager => alertmanager::from_webhook(Value::Object(object), defaults)?,
        EventKind::Manual => vec![Entry::Request(Box::new(manual(Value::Object(object))?))],
    };

    let mut ingested = Ingested {
        kind,
        requests: Vec::new(),
        ignored: Vec::new(),
    };
    for entry in entries {
        match entry {
            Entry::Request(r) => ingested.requests.push(*r),
            Entry::Ignored(i) => ingested.ignored.push(i),
        }
    }
    Ok(ingested)
}

/// A manual request passes through unchanged (no defaults, no `alarm`: a
/// human's pause must stay a manual pause, docs/guards.md §3). Its name hashes
/// the canonical JSON, so submitting the identical request twice starts one
/// execution; change `reason` to repeat on purpose. `force`, `scope` and
/// `toRevision` are kept (a direct invoke is IAM-authenticated, like a
/// console execution); `execution` is refused, as the state machine records
/// its own execution id and no request may name another.
fn manual(value: Value) -> Result<NamedRequest, Error> {
    let request: RemediationRequest =
        serde_json::from_value(value).map_err(|source| Error::InvalidEvent {
            kind: EventKind::Manual,
            source,
        })?;
    request
        .validate()
        .map_err(|source| Error::InvalidRequest { source })?;
    if request.execution.is_some() {
        return Err(Error::InvalidRequest {
            source: selfheal_contract::Error::InvalidRequest(
                "`execution` is set by the state machine to its own execution id; leave it out"
                    .into(),
            ),
        });
    }
    let canonical = serde_json::to_string(&request).map_err(|source| Error::InvalidEvent {
        kind: EventKind::Manual,
        source,
    })?;
    let workload = workload_name(&request.target);
    let execution_name = naming::execution_name(
        &[request.action.as_str(), workload],
        &format!("manual\n{canonical}"),
    );
    Ok(NamedRequest {
        execution_name,
        request,
    })
}

/// The workload, else the pod: the readable part of an execution name.
pub(crate) fn workload_name(target: &Target) -> &str {
    target.workload().map(|w| w.name()).unwrap_or_default()
}

/// `value / threshold`, when both make sense (docs/alarms.md §5).
pub(crate) fn impact_score(value: Option<f64>, threshold: Option<f64>) -> Option<f64> {
    let (value, threshold) = (value?, threshold?);
    let score = value / threshold;
    (threshold != 0.0 && score.is_finite()).then_some(score)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_from_lookup() {
        let d = Defaults::from_lookup(|k| match k {
            "SELFHEAL_DEFAULT_CLUSTER" => Some("prod".into()),
            "SELFHEAL_DEFAULT_ACTION" => Some("Restart".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            d,
            Defaults {
                cluster: Some("prod".into()),
                action: Some(Action::Restart),
                allow_cross_namespace: false,
            }
        );
        assert_eq!(
            Defaults::from_lookup(|_| Some(" ".into())).unwrap(),
            Defaults::default()
        );
        let err = Defaults::from_lookup(|k| (k == Defaults::ACTION_VAR).then(|| "nuke".into()))
            .unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidDefault {
                var: "SELFHEAL_DEFAULT_ACTION",
                ..
            }
        ));
    }

    #[test]
    fn cross_namespace_directives_are_off_unless_set_to_true() {
        let with = |value: &'static str| {
            Defaults::from_lookup(move |k| {
                (k == Defaults::ALLOW_CROSS_NAMESPACE_VAR).then(|| value.into())
            })
        };
        assert!(!Defaults::default().allow_cross_namespace);
        assert!(with("true").unwrap().allow_cross_namespace);
        assert!(with(" TRUE ").unwrap().allow_cross_namespace);
        assert!(!with("false").unwrap().allow_cross_namespace);
        assert!(!with("").unwrap().allow_cross_namespace);
        let err = with("yes").unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidDefault {
                var: "SELFHEAL_ALLOW_CROSS_NAMESPACE_DIRECTIVES",
                ..
            }
        ));
    }

    /// A parsed event is measured by the bytes it was received as, so it
    /// meets the limit exactly as its text does; whitespace counts.
    #[test]
    fn a_parsed_event_is_measured_by_the_bytes_received() {
        let pad = "x".repeat(MAX_EVENT_BYTES - 11);
        for text in [
            format!(r#"{{"pad":"{pad}"}}"#),
            format!(r#"{{ "pad": "{pad}" }}"#),
            r#"{"a": [1, 2.5, null, true], "é\"": {"k": "\u0001"}}"#.to_owned(),
            "{}".to_owned(),
        ] {
            let value: Value = serde_json::from_str(&text).unwrap();
            let from_text = parse_event(text.as_bytes(), &Defaults::default()).unwrap_err();
            let from_value =
                parse_event_value(value, text.len(), &Defaults::default()).unwrap_err();
            assert_eq!(from_value.to_string(), from_text.to_string(), "{text:.40}");
            assert_eq!(from_value.error_type(), from_text.error_type());
            let too_large = matches!(from_value, Error::TooLarge { .. });
            assert_eq!(too_large, text.len() > MAX_EVENT_BYTES, "{from_value}");
        }
    }

    #[test]
    fn impact_score_guards_zero_threshold() {
        assert_eq!(impact_score(Some(3.0), Some(2.0)), Some(1.5));
        assert_eq!(impact_score(Some(3.0), Some(0.0)), None);
        assert_eq!(impact_score(None, Some(2.0)), None);
    }
}
