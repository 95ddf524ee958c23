//! The invocation handler: tell a Function URL request from an event, check
//! the webhook's bearer token, parse, start one execution per request with
//! bounded parallelism, and report.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine;
use futures::StreamExt;
use http::{HeaderValue, StatusCode, header};
use selfheal_aws::{OffSwitch, SwitchState};
use selfheal_events::{
    Defaults, IgnoreReason, Ignored, Ingested, MAX_EVENT_BYTES, NamedRequest, parse_alertmanager,
    parse_event, parse_event_value,
};
use serde::Serialize;
use serde_json::Value;

use crate::secret::{Verdict, WebhookSecret};
use crate::starter::{StartExecution, Started};
use crate::summary::{FailedStart, Summary};
use crate::{Error, IngestConfig};

/// Everything an invocation needs, built once per process.
#[derive(Debug)]
pub struct Ingest<S> {
    starter: S,
    secret: WebhookSecret,
    defaults: Defaults,
    concurrency: usize,
    max_alerts: usize,
    switch: Option<OffSwitch>,
}

/// An HTTP error body: `{"error": "Unauthorized", "reason": "…"}`.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    reason: String,
}

impl<S: StartExecution> Ingest<S> {
    /// With the default cap of [`IngestConfig::DEFAULT_MAX_ALERTS`] alerts per
    /// event ([`Self::with_max_alerts`] changes it).
    pub fn new(starter: S, secret: WebhookSecret, defaults: Defaults, concurrency: usize) -> Self {
        Ingest {
            starter,
            secret,
            defaults,
            concurrency: concurrency.max(1),
            max_alerts: IngestConfig::DEFAULT_MAX_ALERTS,
            switch: None,
        }
    }

    /// Read `switch` before starting anything; switched off, every alert is
    /// reported as ignored (`disabled`) and nothing starts.
    pub fn with_switch(mut self, switch: OffSwitch) -> Self {
        self.switch = Some(switch);
        self
    }

    /// At most `max_alerts` alerts per event (at least 1); a larger event
    /// starts nothing.
    pub fn with_max_alerts(mut self, max_alerts: usize) -> Self {
        self.max_alerts = max_alerts.max(1);
        self
    }

    /// From a parsed configuration (its defaults, concurrency and alert cap).
    pub fn from_config(starter: S, secret: WebhookSecret, config: &IngestConfig) -> Self {
        Self::new(starter, secret, config.defaults.clone(), config.concurrency)
            .with_max_alerts(config.max_alerts)
    }

    /// The cap on alerts per event.
    pub fn max_alerts(&self) -> usize {
        self.max_alerts
    }

    /// The StartExecution implementation (tests inspect their fakes through it).
    pub fn starter(&self) -> &S {
        &self.starter
    }

    /// The Lambda entry point, for `payload` parsed from a body of
    /// `received_bytes` bytes (`selfheal_runtime::serve_measured`). A
    /// Function URL request (it has `requestContext.http`) always gets an
    /// HTTP response, errors included, and its size limit counts its body;
    /// any other payload is an event, limited by the bytes received, whose
    /// summary is returned, or an [`Error`] (stable `errorType`) when it is
    /// unreadable or a start failed, so EventBridge/SNS/Lambda retry it.
    pub async fn handle(&self, payload: Value, received_bytes: usize) -> Result<Value, Error> {
        if is_function_url_request(&payload) {
            let response = match serde_json::from_value::<LambdaFunctionUrlRequest>(payload) {
                Ok(request) => self.handle_http(&request).await,
                Err(source) => {
                    let error = Error::FunctionUrl { source };
                    tracing::warn!(error = %error, "unreadable Function URL request");
                    error_response(StatusCode::BAD_REQUEST, "Bad Request", error.to_string())
                }
            };
            return serde_json::to_value(&response).map_err(|source| Error::Encode { source });
        }
        // Already parsed by the runtime: no round trip through text.
        let parsed = parse_event_value(payload, received_bytes, &self.defaults);
        let summary = self.handle_parsed(parsed).await?;
        serde_json::to_value(&summary).map_err(|source| Error::Encode { source })
    }

    /// An event delivered by EventBridge, SNS, an alarm action or a direct
    /// invoke: the summary, or an error when any start failed.
    pub async fn handle_event(&self, json: &[u8]) -> Result<Summary, Error> {
        self.handle_parsed(parse_event(json, &self.defaults)).await
    }

    /// [`Self::handle_event`] once the event is parsed.
    async fn handle_parsed(
        &self,
        parsed: Result<Ingested, selfheal_events::Error>,
    ) -> Result<Summary, Error> {
        let ingested = parsed.map_err(|source| {
            let error = Error::Event { source };
            tracing::warn!(error_type = error.error_type(), error = %error, "event rejected");
            error
        })?;
        self.check_alert_count(&ingested)?;
        let ingested = self.apply_switch(ingested).await?;
        let summary = self.start_all(ingested).await;
        if summary.all_started() {
            Ok(summary)
        } else {
            Err(Error::StartFailed {
                summary: Box::new(summary),
            })
        }
    }

    /// A Function URL request (the Alertmanager webhook). Only an
    /// Alertmanager notification is accepted; any other payload kind is 400
    /// and starts nothing. Never fails: every problem is an HTTP status with
    /// a JSON reason. 200 only when every
    /// requested execution exists; 5xx otherwise so that the sender retries.
    pub async fn handle_http(
        &self,
        request: &LambdaFunctionUrlRequest,
    ) -> LambdaFunctionUrlResponse {
        let authorization = request
            .headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        match self.secret.verify(authorization).await {
            Ok(Verdict::Accepted) => {}
            Ok(verdict) => {
                let reason = match verdict {
                    Verdict::Missing => "missing `Authorization: Bearer <secret>` header",
                    Verdict::Disabled => "webhook disabled: no secret configured",
                    _ => "wrong bearer token",
                };
                tracing::warn!(
                    source_ip = request
                        .request_context
                        .http
                        .source_ip
                        .as_deref()
                        .unwrap_or("-"),
                    reason,
                    "webhook request refused"
                );
                let mut response =
                    error_response(StatusCode::UNAUTHORIZED, "Unauthorized", reason.to_owned());
                response
                    .headers
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return response;
            }
            Err(error) => {
                tracing::error!(error_type = error.error_type(), error = %error, "webhook secret unavailable");
                return error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable",
                    "webhook secret unavailable; retry later".to_owned(),
                );
            }
        }

        let method = request
            .request_context
            .http
            .method
            .as_deref()
            .unwrap_or("POST");
        if !method.eq_ignore_ascii_case("POST") {
            let mut response = error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
                format!("{method} is not supported; POST the event"),
            );
            response
                .headers
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }

        let body = match request_body(request) {
            Ok(body) => body,
            Err((status, reason)) => return error_response(status, reason_phrase(status), reason),
        };
        // Alertmanager webhooks only: the bearer token is Alertmanager's, and
        // must not stand in for an operator. A hand-made RemediationRequest
        // (force, toRevision, no alarm) or a forged CloudWatch/SNS event is
        // refused here, before anything of it is used.
        let ingested = match parse_alertmanager(&body, &self.defaults) {
            Ok(ingested) => ingested,
            Err(source) => {
                // Too large, malformed, not Alertmanager, invalid: 400 with the reason.
                let status = match source {
                    selfheal_events::Error::InvalidDefault { .. } => {
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                    _ => StatusCode::BAD_REQUEST,
                };
                let error = Error::Event { source };
                tracing::warn!(error_type = error.error_type(), error = %error, "webhook event rejected");
                return error_response(status, reason_phrase(status), error.to_string());
            }
        };
        // 400 with the reason, not 5xx: Alertmanager would retry the same
        // oversized group forever.
        if let Err(error) = self.check_alert_count(&ingested) {
            let status = StatusCode::BAD_REQUEST;
            return error_response(status, reason_phrase(status), error.to_string());
        }
        // Switched off: 200 with every alert ignored, so Alertmanager does not
        // retry. Switch unreadable (never read): 503, so it does.
        let ingested = match self.apply_switch(ingested).await {
            Ok(ingested) => ingested,
            // The cause is in the log (apply_switch), not in the answer to
            // an outside caller.
            Err(_) => {
                return error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable",
                    "off switch unavailable; nothing was started; retry later".to_owned(),
                );
            }
        };

        let summary = self.start_all(ingested).await;
        let status = if summary.all_started() {
            StatusCode::OK
        } else if summary.failed.iter().any(|f| f.retryable) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_GATEWAY
        };
        json_response(status, &summary)
    }

    /// Refuse, before anything starts, an event with more alerts than the cap
    /// (logged here as one error line). Counted: every alert of the event,
    /// firing or not, as Alertmanager's `max_alerts` counts them.
    fn check_alert_count(&self, ingested: &Ingested) -> Result<(), Error> {
        let count = alert_count(ingested);
        if count <= self.max_alerts {
            return Ok(());
        }
        let error = Error::TooManyAlerts {
            count,
            limit: self.max_alerts,
            variable: IngestConfig::MAX_ALERTS_VAR,
        };
        tracing::error!(
            kind = %ingested.kind,
            error_type = error.error_type(),
            alerts = count,
            limit = self.max_alerts,
            error = %error,
            "event rejected: too many alerts"
        );
        Err(error)
    }

    /// The off switch, read only when there is something to start. Off:
    /// every request becomes an ignored alert (`disabled`), after the
    /// alerts ignored for their own reasons.
    async fn apply_switch(&self, mut ingested: Ingested) -> Result<Ingested, Error> {
        let Some(switch) = &self.switch else {
            return Ok(ingested);
        };
        if ingested.requests.is_empty() {
            return Ok(ingested);
        }
        let off = match switch.state().await {
            Ok(SwitchState::On) => return Ok(ingested),
            Ok(SwitchState::Off(off)) => off,
            Err(source) => {
                let error = Error::Switch { source };
                tracing::error!(
                    kind = %ingested.kind,
                    error_type = error.error_type(),
                    alerts = ingested.requests.len(),
                    error = %error,
                    "event not started: off switch unreadable"
                );
                return Err(error);
            }
        };
        for named in std::mem::take(&mut ingested.requests) {
            let alarm = named.request.alarm.as_ref();
            let reason = IgnoreReason::Disabled {
                parameter: off.parameter.clone(),
                value: off.value.clone(),
            };
            ingested.ignored.push(Ignored {
                name: alarm.and_then(|a| a.name.clone()),
                id: alarm.and_then(|a| a.id.clone()),
                message: reason.to_string(),
                reason,
            });
        }
        Ok(ingested)
    }

    /// Start every request, `concurrency` at a time, and log each result
    /// (and each ignored alert) as one line.
    pub async fn start_all(&self, ingested: Ingested) -> Summary {
        let received = alert_count(&ingested);
        let Ingested {
            kind,
            requests,
            ignored,
        } = ingested;
        for alert in &ignored {
            let rejected = alert.rejection().is_some();
            if rejected {
                tracing::warn!(kind = %kind, name = alert.name.as_deref().unwrap_or("-"), id = alert.id.as_deref().unwrap_or("-"), reason = %alert.message, "alert rejected");
            } else {
                tracing::info!(kind = %kind, name = alert.name.as_deref().unwrap_or("-"), id = alert.id.as_deref().unwrap_or("-"), reason = %alert.message, "alert ignored");
            }
        }
        let mut results: Vec<(usize, String, Result<Started, FailedStart>)> =
            futures::stream::iter(requests.into_iter().enumerate())
                .map(|(index, request)| async move {
                    let name = request.execution_name.clone();
                    (index, name, self.start_one(request).await)
                })
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
        // Report in the event's order, whatever order the starts finished in.
        results.sort_by_key(|(index, _, _)| *index);

        let mut summary = Summary::new(kind, ignored);
        for (_, name, result) in results {
            match result {
                Ok(Started::New { .. }) => summary.started.push(name),
                Ok(Started::Existing { .. }) => summary.already_existed.push(name),
                Err(failure) => summary.failed.push(failure),
            }
        }
        let records = summary.metric_records(received, jiff::Timestamp::now());
        selfheal_runtime::write_metrics(&mut std::io::stdout(), records.to_lines());
        summary
    }

    async fn start_one(&self, named: NamedRequest) -> Result<Started, FailedStart> {
        let NamedRequest {
            execution_name,
            request,
        } = named;
        let target = &request.target;
        let workload = target
            .deployment
            .as_deref()
            .or(target.pod.as_deref())
            .unwrap_or("-");
        let input = serde_json::to_string(&request).map_err(|e| FailedStart {
            execution_name: execution_name.clone(),
            error_code: "Encode".to_owned(),
            message: e.to_string(),
            retryable: false,
        })?;
        let alarm = request
            .alarm
            .as_ref()
            .and_then(|a| a.name.as_deref())
            .unwrap_or("-");
        match self.starter.start(&execution_name, &input).await {
            Ok(started) => {
                let (outcome, arn) = match &started {
                    Started::New { execution_arn } => ("started", Some(execution_arn.as_str())),
                    Started::Existing { execution_arn } => {
                        ("alreadyExisted", execution_arn.as_deref())
                    }
                };
                tracing::info!(
                    execution_name = %execution_name,
                    outcome,
                    execution_arn = arn.unwrap_or("-"),
                    action = %request.action,
                    cluster = target.cluster.as_deref().unwrap_or("-"),
                    namespace = %target.namespace,
                    workload,
                    alarm,
                    "start execution"
                );
                Ok(started)
            }
            Err(failure) => {
                tracing::error!(
                    execution_name = %execution_name,
                    outcome = "failed",
                    error_code = %failure.code,
                    retryable = failure.retryable,
                    error = %failure.message,
                    action = %request.action,
                    cluster = target.cluster.as_deref().unwrap_or("-"),
                    namespace = %target.namespace,
                    workload,
                    alarm,
                    "start execution"
                );
                Err(FailedStart {
                    execution_name,
                    error_code: failure.code,
                    message: failure.message,
                    retryable: failure.retryable,
                })
            }
        }
    }
}

/// Alerts the event carried: one per request or ignored alert; the entry for
/// alerts Alertmanager left out (`truncatedAlerts`) is not one of them.
fn alert_count(ingested: &Ingested) -> usize {
    let truncated = ingested
        .ignored
        .iter()
        .filter(|i| matches!(i.reason, IgnoreReason::Truncated { .. }))
        .count();
    ingested.requests.len() + ingested.ignored.len() - truncated
}

/// A Function URL (payload format 2.0) request carries `requestContext.http`;
/// no event we accept does.
pub fn is_function_url_request(payload: &Value) -> bool {
    payload
        .get("requestContext")
        .and_then(|context| context.get("http"))
        .is_some_and(Value::is_object)
}

/// The body as bytes, base64-decoded when the request says so, refused when
/// larger than [`MAX_EVENT_BYTES`] before any decoding or parsing.
fn request_body(request: &LambdaFunctionUrlRequest) -> Result<Vec<u8>, (StatusCode, String)> {
    let body = request.body.as_deref().unwrap_or_default();
    if body.is_empty() {
        return Err((
            StatusCode::BAD_REQUEST,
            "empty body: POST a JSON event".to_owned(),
        ));
    }
    let too_large = |size: usize| {
        (
            StatusCode::BAD_REQUEST,
            format!("event is {size} bytes; the limit is {MAX_EVENT_BYTES} bytes"),
        )
    };
    if !request.is_base64_encoded {
        if body.len() > MAX_EVENT_BYTES {
            return Err(too_large(body.len()));
        }
        return Ok(body.as_bytes().to_vec());
    }
    // Base64 is 4 bytes per 3: anything longer cannot decode to within the limit.
    if body.len() > MAX_EVENT_BYTES.div_ceil(3) * 4 {
        return Err(too_large(body.len() / 4 * 3));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("body is marked isBase64Encoded but is not base64: {e}"),
            )
        })?;
    if decoded.len() > MAX_EVENT_BYTES {
        return Err(too_large(decoded.len()));
    }
    Ok(decoded)
}

fn reason_phrase(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

fn error_response(status: StatusCode, error: &str, reason: String) -> LambdaFunctionUrlResponse {
    json_response(status, &ErrorBody { error, reason })
}

fn json_response(status: StatusCode, body: &impl Serialize) -> LambdaFunctionUrlResponse {
    let mut response = LambdaFunctionUrlResponse::default();
    let (status, body) = match serde_json::to_string(body) {
        Ok(body) => (status, body),
        // Our own types always encode; if one ever did not, say so as a 500.
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                r#"{{"error":"Internal Server Error","reason":"cannot encode response: {e}"}}"#
            ),
        ),
    };
    response.status_code = i64::from(status.as_u16());
    response.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.body = Some(body);
    response.is_base64_encoded = false;
    response
}
