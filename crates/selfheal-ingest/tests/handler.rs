//! The handler over a recording fake StartExecution: webhook auth, statuses,
//! bodies, bounded parallelism, and the event (EventBridge/SNS) path.
//! The same handler against a real Step Functions API (moto) is in
//! tests/tests/ingest_moto.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use selfheal_events::{Action, Defaults, MAX_EVENT_BYTES, RemediationRequest, parse_event};
use selfheal_ingest::{Ingest, SecretSource, StartExecution, StartFailure, Started, WebhookSecret};
use serde_json::{Value, json};

const SECRET: &str = "correct horse battery staple";

/// Records every start; a name seen before is `Existing`; names in `fail` fail.
#[derive(Default)]
struct FakeStarter {
    executions: Mutex<BTreeMap<String, String>>,
    calls: AtomicUsize,
    fail: HashSet<String>,
    fail_retryable: bool,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl StartExecution for FakeStarter {
    async fn start(&self, name: &str, input: &str) -> Result<Started, StartFailure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.fail.contains(name) {
            return Err(StartFailure {
                code: if self.fail_retryable {
                    "ExecutionLimitExceeded"
                } else {
                    "StateMachineDoesNotExist"
                }
                .into(),
                message: "simulated".into(),
                retryable: self.fail_retryable,
            });
        }
        let mut executions = self.executions.lock().unwrap();
        if executions.contains_key(name) {
            return Ok(Started::Existing {
                execution_arn: None,
            });
        }
        executions.insert(name.to_owned(), input.to_owned());
        Ok(Started::New {
            execution_arn: format!("arn:aws:states:eu-west-1:123456789012:execution:sm:{name}"),
        })
    }
}

fn ingest(starter: FakeStarter) -> Ingest<FakeStarter> {
    Ingest::new(
        starter,
        WebhookSecret::from_value(SECRET),
        Defaults::default(),
        8,
    )
}

/// An ingest with a starter that records, the defaults, `secret` and at
/// most `concurrency` starts at a time.
fn ingest_with(secret: WebhookSecret, concurrency: usize) -> Ingest<FakeStarter> {
    Ingest::new(
        FakeStarter::default(),
        secret,
        Defaults::default(),
        concurrency,
    )
}

fn fixture(path: &str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../selfheal-events/tests/fixtures");
    std::fs::read(root.join(path)).unwrap()
}

fn alert(status: &str, deployment: &str, fingerprint: &str) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": "KubeDeploymentRolloutStuck", "namespace": "shop", "deployment": deployment, "cluster": "prod-eks"},
        "annotations": {"selfheal": "action=pause", "value": "3", "threshold": "1.5"},
        "startsAt": "2026-11-26T19:11:48.278Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": fingerprint
    })
}

fn webhook(alerts: Vec<Value>) -> Value {
    json!({
        "receiver": "selfheal",
        "status": "firing",
        "alerts": alerts,
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0
    })
}

/// What Lambda hands the function for a Function URL request (payload 2.0).
fn url_request(method: &str, authorization: Option<&str>, body: &str, base64: bool) -> Value {
    let mut headers =
        json!({"content-type": "application/json", "user-agent": "Alertmanager/0.25.0"});
    if let Some(a) = authorization {
        headers["authorization"] = json!(a);
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghij",
            "domainName": "abcdefghij.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abcdefghij",
            "http": {"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "Alertmanager/0.25.0"},
            "requestId": "r-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "26/Nov/2026:19:11:50 +0000",
            "timeEpoch": 1_795_720_310_000_i64
        },
        "body": body,
        "isBase64Encoded": base64
    })
}

fn bearer() -> String {
    format!("Bearer {SECRET}")
}

/// [`Ingest::handle`] as the runtime calls it for `payload` delivered as its
/// compact JSON text.
async fn handle<S: StartExecution>(
    ingest: &Ingest<S>,
    payload: Value,
) -> Result<Value, selfheal_ingest::Error> {
    let received = payload.to_string().len();
    ingest.handle(payload, received).await
}

/// (status, parsed JSON body) of a Function URL response.
async fn call(ingest: &Ingest<FakeStarter>, request: Value) -> (i64, Value) {
    let response = handle(ingest, request).await.unwrap();
    assert_eq!(response["headers"]["content-type"], "application/json");
    assert_eq!(response["isBase64Encoded"], false);
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    (response["statusCode"].as_i64().unwrap(), body)
}

/// `body` POSTed with the right bearer token.
async fn post(ingest: &Ingest<FakeStarter>, body: &str) -> (i64, Value) {
    call(ingest, url_request("POST", Some(&bearer()), body, false)).await
}

fn names(body: &Value, field: &str) -> Vec<String> {
    body[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn webhook_without_valid_bearer_is_401_and_starts_nothing() {
    let ingest = ingest(FakeStarter::default());
    let body = webhook(vec![alert("firing", "checkout", "aaaaaaaaaaaaaaaa")]).to_string();
    let cases = [
        (None, "missing `Authorization: Bearer <secret>` header"),
        (Some("Bearer wrong"), "wrong bearer token"),
        (
            Some("Basic Y29ycmVjdA=="),
            "missing `Authorization: Bearer <secret>` header",
        ),
        (Some(&format!("Bearer {SECRET}x")[..]), "wrong bearer token"),
    ];
    for (authorization, reason) in cases {
        let response = handle(&ingest, url_request("POST", authorization, &body, false))
            .await
            .unwrap();
        assert_eq!(response["statusCode"], 401, "{authorization:?}");
        assert_eq!(response["headers"]["www-authenticate"], "Bearer");
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, json!({"error": "Unauthorized", "reason": reason}));
    }
    assert_eq!(ingest_calls(&ingest), 0);

    let disabled = ingest_with(WebhookSecret::disabled(), 8);
    let (status, body) = post(&disabled, &body_of(1)).await;
    assert_eq!(status, 401);
    assert_eq!(body["reason"], "webhook disabled: no secret configured");
    assert_eq!(ingest_calls(&disabled), 0);
}

/// An SSM endpoint that is down: it accepts each TCP connection, counts it
/// and closes it unanswered, so every GetParameter fails (after the SDK's
/// retries). Returns the endpoint URL and the connection count.
async fn unreachable_store() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, connections)
}

/// The webhook secret as an SSM parameter behind `url`.
async fn ssm_secret_at(url: String) -> WebhookSecret {
    let sdk = selfheal_aws::loader()
        .region(aws_config::Region::new("eu-west-1"))
        .test_credentials()
        .endpoint_url(url)
        .load()
        .await;
    WebhookSecret::new(
        SecretSource::SsmParameter {
            name: "/selfheal/webhook".into(),
        },
        &sdk,
    )
}

#[tokio::test]
async fn missing_or_malformed_header_is_401_without_fetching_the_secret() {
    let (url, connections) = unreachable_store().await;
    let ingest = ingest_with(ssm_secret_at(url).await, 8);
    let body = body_of(1);
    for authorization in [
        None,
        Some("Basic Y29ycmVjdA=="),
        Some("Bearer"),
        Some("Bearer  "),
        Some(SECRET),
    ] {
        let response = handle(&ingest, url_request("POST", authorization, &body, false))
            .await
            .unwrap();
        assert_eq!(response["statusCode"], 401, "{authorization:?}: {response}");
        assert_eq!(response["headers"]["www-authenticate"], "Bearer");
        let reply: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            reply,
            json!({"error": "Unauthorized", "reason": "missing `Authorization: Bearer <secret>` header"})
        );
    }
    // Not one connection to the store for any of them.
    assert_eq!(connections.load(Ordering::SeqCst), 0);

    // A well-formed bearer token needs the secret: the store is down, so 503
    // (Alertmanager retries), not 401.
    let (status, reply) = post(&ingest, &body).await;
    assert_eq!(status, 503, "{reply}");
    assert_eq!(
        reply,
        json!({"error": "Service Unavailable", "reason": "webhook secret unavailable; retry later"})
    );
    assert!(
        connections.load(Ordering::SeqCst) > 0,
        "the secret was not fetched"
    );
    assert_eq!(ingest_calls(&ingest), 0);
    assert!(ingest.starter().executions.lock().unwrap().is_empty());
}

/// A flood of `Bearer x` requests while the store is down costs one fetch
/// per FAILURE_TTL, not one per request.
#[tokio::test]
async fn failed_secret_fetch_is_reused_for_a_few_seconds() {
    let (url, connections) = unreachable_store().await;
    let body = body_of(1);

    // The default: the first request fetches (and fails); the next ones,
    // within the TTL, answer the same 503 without a connection.
    let ingest = ingest_with(ssm_secret_at(url.clone()).await, 8);
    let mut seen = Vec::new();
    for _ in 0..5 {
        let (status, reply) =
            call(&ingest, url_request("POST", Some("Bearer x"), &body, false)).await;
        assert_eq!(status, 503, "{reply}");
        assert_eq!(reply["reason"], "webhook secret unavailable; retry later");
        seen.push(connections.load(Ordering::SeqCst));
    }
    assert!(seen[0] > 0, "the first request did not fetch: {seen:?}");
    assert!(
        seen.iter().all(|n| *n == seen[0]),
        "requests after a failed fetch reached the store again: connections {seen:?}"
    );
    assert_eq!(ingest_calls(&ingest), 0);

    // With no TTL every request asks the store (what happened before the cache).
    let ingest = ingest_with(ssm_secret_at(url).await.with_failure_ttl(Duration::ZERO), 8);
    for attempt in 1..=2 {
        let before = connections.load(Ordering::SeqCst);
        let (status, _) = call(&ingest, url_request("POST", Some("Bearer x"), &body, false)).await;
        assert_eq!(status, 503);
        assert!(
            connections.load(Ordering::SeqCst) > before,
            "attempt {attempt}: the secret was not fetched"
        );
    }
    assert_eq!(ingest_calls(&ingest), 0);
}

fn ingest_calls(ingest: &Ingest<FakeStarter>) -> usize {
    ingest.starter().calls.load(Ordering::SeqCst)
}

fn body_of(n: usize) -> String {
    webhook(
        (0..n)
            .map(|i| alert("firing", &format!("app-{i}"), &format!("{i:016x}")))
            .collect(),
    )
    .to_string()
}

/// The execution names and inputs `ingest` must start for `body`.
fn expected(body: &str) -> Vec<(String, RemediationRequest)> {
    parse_event(body.as_bytes(), &Defaults::default())
        .unwrap()
        .requests
        .into_iter()
        .map(|r| (r.execution_name, r.request))
        .collect()
}

fn started_inputs(ingest: &Ingest<FakeStarter>) -> Vec<(String, RemediationRequest)> {
    ingest
        .starter()
        .executions
        .lock()
        .unwrap()
        .iter()
        .map(|(name, input)| (name.clone(), serde_json::from_str(input).unwrap()))
        .collect()
}

#[tokio::test]
async fn webhook_starts_each_firing_alert_and_reports_the_rest() {
    let ingest = ingest(FakeStarter::default());
    let body = webhook(vec![
        alert("firing", "checkout", "aaaaaaaaaaaaaaaa"),
        alert("resolved", "cart", "bbbbbbbbbbbbbbbb"),
        alert("firing", "payments", "cccccccccccccccc"),
        // Firing but no action anywhere: rejected, with the reason.
        json!({
            "status": "firing",
            "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "web-0"},
            "annotations": {},
            "startsAt": "2026-11-26T19:11:48.278Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": "dddddddddddddddd"
        }),
    ])
    .to_string();
    let mut want = expected(&body);
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(want.len(), 2);

    let (status, summary) = post(&ingest, &body).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["kind"], "alertmanager");
    let mut started = names(&summary, "started");
    started.sort();
    assert_eq!(
        started,
        want.iter().map(|w| w.0.clone()).collect::<Vec<_>>()
    );
    assert_eq!(names(&summary, "alreadyExisted"), Vec::<String>::new());
    assert_eq!(summary["failed"], json!([]));
    let ignored = summary["ignored"].as_array().unwrap();
    assert_eq!(ignored.len(), 2);
    assert_eq!(ignored[0]["id"], "bbbbbbbbbbbbbbbb");
    assert_eq!(ignored[0]["message"], "state is resolved, not firing");
    assert_eq!(ignored[1]["id"], "dddddddddddddddd");
    assert!(
        ignored[1]["message"]
            .as_str()
            .unwrap()
            .starts_with("missing action"),
        "{}",
        ignored[1]
    );

    // The input of each execution is exactly the parsed request.
    let inputs = started_inputs(&ingest);
    assert_eq!(inputs, want);
    let (_, checkout) = inputs
        .iter()
        .find(|(_, r)| r.target.deployment.as_deref() == Some("checkout"))
        .unwrap();
    assert_eq!(checkout.action, Action::Pause);
    assert_eq!(checkout.target.cluster.as_deref(), Some("prod-eks"));
    assert_eq!(checkout.alarm.as_ref().unwrap().impact_score, Some(2.0));
}

#[tokio::test]
async fn redelivered_webhook_starts_nothing_new_and_is_200() {
    let ingest = ingest(FakeStarter::default());
    let body = body_of(3);
    let request = url_request("POST", Some(&bearer()), &body, false);
    let (status, first) = call(&ingest, request.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(names(&first, "started").len(), 3);

    let (status, second) = call(&ingest, request).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(names(&second, "started"), Vec::<String>::new());
    let mut again = names(&second, "alreadyExisted");
    again.sort();
    let mut before = names(&first, "started");
    before.sort();
    assert_eq!(again, before);
    assert_eq!(ingest.starter().executions.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn one_failed_start_makes_the_webhook_5xx_and_the_others_still_start() {
    let body = body_of(5);
    let want = expected(&body);
    let failing = want[2].0.clone();
    for (retryable, status_wanted) in [(true, 503), (false, 502)] {
        let ingest = ingest(FakeStarter {
            fail: HashSet::from([failing.clone()]),
            fail_retryable: retryable,
            ..FakeStarter::default()
        });
        let (status, summary) = post(&ingest, &body).await;
        assert_eq!(status, status_wanted, "{summary}");
        assert_eq!(names(&summary, "started").len(), 4);
        assert!(!names(&summary, "started").contains(&failing));
        let failed = summary["failed"].as_array().unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0]["executionName"], failing.as_str());
        assert_eq!(failed[0]["retryable"], retryable);
        let started: Vec<String> = started_inputs(&ingest)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(started.len(), 4);
        assert!(!started.contains(&failing));
    }
}

#[tokio::test]
async fn starts_run_concurrently_but_bounded() {
    let ingest = ingest_with(WebhookSecret::from_value(SECRET), 4);
    let (status, summary) = post(&ingest, &body_of(40)).await;
    assert_eq!(status, 200);
    assert_eq!(names(&summary, "started").len(), 40);
    let max = ingest.starter().max_in_flight.load(Ordering::SeqCst);
    assert!((2..=4).contains(&max), "max in flight {max}");
    // Reported in the webhook's order whatever order they finished in.
    let want: Vec<String> = expected(&body_of(40)).into_iter().map(|w| w.0).collect();
    assert_eq!(names(&summary, "started"), want);
}

#[tokio::test]
async fn base64_body_is_decoded() {
    let ingest = ingest(FakeStarter::default());
    let body = body_of(2);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
    let (status, summary) = call(
        &ingest,
        url_request("POST", Some(&bearer()), &encoded, true),
    )
    .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(names(&summary, "started").len(), 2);
}

#[tokio::test]
async fn bad_requests_get_a_status_and_a_reason() {
    let ingest = ingest(FakeStarter::default());
    let auth = bearer();
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_EVENT_BYTES));
    let huge_b64 = base64::engine::general_purpose::STANDARD.encode(&huge);
    let cases: Vec<(Value, i64, &str)> = vec![
        (
            url_request("POST", Some(&auth), "{not json", false),
            400,
            "event is not valid JSON",
        ),
        (
            url_request("POST", Some(&auth), "", false),
            400,
            "empty body",
        ),
        (
            url_request("POST", Some(&auth), "[1,2]", false),
            400,
            "unsupported event: expected a JSON object",
        ),
        (
            url_request("POST", Some(&auth), r#"{"hello":"world"}"#, false),
            400,
            "unsupported event: only Alertmanager webhooks (version 4, with `alerts`) are \
             accepted here, got: an unknown shape (top-level keys: hello)",
        ),
        (
            url_request("POST", Some(&auth), "%%%", true),
            400,
            "body is marked isBase64Encoded but is not base64",
        ),
        (
            url_request("POST", Some(&auth), &huge, false),
            400,
            "event is 262154 bytes; the limit is 262144 bytes",
        ),
        (
            url_request("POST", Some(&auth), &huge_b64, true),
            400,
            "the limit is 262144 bytes",
        ),
        (
            url_request("GET", Some(&auth), &body_of(1), false),
            405,
            "GET is not supported",
        ),
        (
            url_request(
                "POST",
                Some(&auth),
                r#"{"action":"pause","target":{"namespace":""}}"#,
                false,
            ),
            400,
            "got: manual request",
        ),
    ];
    for (request, status_wanted, reason) in cases {
        let (status, body) = call(&ingest, request).await;
        assert_eq!(status, status_wanted, "{body}");
        assert!(
            body["reason"].as_str().unwrap().contains(reason),
            "want {reason:?} in {body}"
        );
        assert!(body["error"].is_string());
    }
    assert_eq!(ingest_calls(&ingest), 0);
}

#[tokio::test]
async fn unreadable_function_url_request_is_400() {
    let ingest = ingest(FakeStarter::default());
    let mut request = url_request("POST", Some(&bearer()), &body_of(1), false);
    request["isBase64Encoded"] = json!("yes");
    let (status, body) = call(&ingest, request).await;
    assert_eq!(status, 400);
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .starts_with("invalid Function URL request")
    );
    assert_eq!(ingest_calls(&ingest), 0);
}

fn with_rollback_default(starter: FakeStarter) -> Ingest<FakeStarter> {
    Ingest::new(
        starter,
        WebhookSecret::disabled(),
        Defaults {
            cluster: Some("prod-eks".into()),
            action: Some(Action::Rollback),
            ..Defaults::default()
        },
        8,
    )
}

/// A recorded event with a `selfheal:` directive added to the alarm
/// description, so it names a target (the recordings name EC2 instances).
fn targeted(file: &str) -> Value {
    const DIRECTIVE: &str = "Checkout errors\nselfheal: namespace=shop deployment=checkout";
    let mut v: Value = serde_json::from_slice(&fixture(file)).unwrap();
    if v.get("detail").is_some() {
        v["detail"]["configuration"]["description"] = json!(DIRECTIVE);
    } else if v.get("alarmData").is_some() {
        v["alarmData"]["configuration"]["description"] = json!(DIRECTIVE);
    } else if v.get("Records").is_some() {
        let mut message: Value =
            serde_json::from_str(v["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
        message["AlarmDescription"] = json!(DIRECTIVE);
        v["Records"][0]["Sns"]["Message"] = json!(message.to_string());
    }
    v
}

#[tokio::test]
async fn eventbridge_sns_and_alarm_action_events_return_the_summary() {
    let ingest = with_rollback_default(FakeStarter::default());
    let cases = [
        (
            "cloudwatch/eventbridge-single-metric-alarm.json",
            "eventBridgeAlarm",
        ),
        ("cloudwatch/sns-alarm-single-metric.json", "snsAlarm"),
        (
            "cloudwatch/lambda-alarm-action-metric-math.json",
            "alarmAction",
        ),
        ("alertmanager/firing-single.json", "alertmanager"),
    ];
    for (file, kind) in cases {
        let payload = targeted(file);
        let want = parse_event(payload.to_string().as_bytes(), &ingest_defaults()).unwrap();
        assert_eq!(want.requests.len(), 1, "{file}: {want:?}");
        let summary = handle(&ingest, payload).await.unwrap();
        assert_eq!(summary["kind"], kind, "{file}");
        let name = &want.requests[0].execution_name;
        assert_eq!(
            names(&summary, "started"),
            vec![name.clone()],
            "{file}: {summary}"
        );
        assert_eq!(summary["ignored"], json!([]), "{file}");
        // The input is exactly the request's JSON (compared as text: serde_json
        // does not round-trip every f64 bit for bit, e.g. impactScore).
        let text = ingest.starter().executions.lock().unwrap()[name].clone();
        assert_eq!(
            text,
            serde_json::to_string(&want.requests[0].request).unwrap(),
            "{file}"
        );
        let input: RemediationRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(input.action, Action::Rollback, "{file}");
        assert_eq!(
            input.target.deployment.as_deref(),
            Some(if kind == "alertmanager" {
                "x"
            } else {
                "checkout"
            })
        );
    }
    assert_eq!(ingest.starter().executions.lock().unwrap().len(), 4);

    // A recording without a target, and the OK transition: nothing starts, the reason is given.
    for (file, message) in [
        (
            "cloudwatch/eventbridge-single-metric-alarm.json",
            "missing target.namespace",
        ),
        (
            "cloudwatch/eventbridge-ok-from-alarm.json",
            "state is OK, not firing",
        ),
    ] {
        let payload: Value = serde_json::from_slice(&fixture(file)).unwrap();
        let summary = handle(&ingest, payload).await.unwrap();
        assert_eq!(summary["started"], json!([]), "{file}");
        assert_eq!(summary["failed"], json!([]), "{file}");
        assert!(
            summary["ignored"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with(message),
            "{file}: {summary}"
        );
    }
    assert_eq!(ingest_calls(&ingest), 4);
}

fn ingest_defaults() -> Defaults {
    Defaults {
        cluster: Some("prod-eks".into()),
        action: Some(Action::Rollback),
        ..Defaults::default()
    }
}

#[tokio::test]
async fn manual_request_is_started_as_given() {
    let ingest = with_rollback_default(FakeStarter::default());
    let request = json!({"action": "restart", "target": {"cluster": "c", "namespace": "shop", "deployment": "web"}, "reason": "by hand"});
    let summary = handle(&ingest, request.clone()).await.unwrap();
    assert_eq!(summary["kind"], "manual");
    let name = names(&summary, "started").pop().unwrap();
    assert!(name.starts_with("restart-web-"), "{name}");
    let input: Value =
        serde_json::from_str(&ingest.starter().executions.lock().unwrap()[&name]).unwrap();
    assert_eq!(input["action"], "restart");
    assert_eq!(input["target"], request["target"]);
    assert_eq!(input["reason"], "by hand");
}

#[tokio::test]
async fn event_with_a_failed_start_is_a_typed_retryable_error() {
    let payload = targeted("cloudwatch/eventbridge-single-metric-alarm.json");
    let name = parse_event(payload.to_string().as_bytes(), &ingest_defaults())
        .unwrap()
        .requests[0]
        .execution_name
        .clone();
    for (retryable, error_type) in [
        (true, "RetryableStartExecution"),
        (false, "NonRetryableStartExecution"),
    ] {
        let ingest = with_rollback_default(FakeStarter {
            fail: HashSet::from([name.clone()]),
            fail_retryable: retryable,
            ..FakeStarter::default()
        });
        let err = handle(&ingest, payload.clone()).await.unwrap_err();
        assert_eq!(err.error_type(), error_type);
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, error_type);
        assert!(
            diagnostic
                .error_message
                .starts_with("1 of 1 executions could not be started"),
            "{}",
            diagnostic.error_message
        );
        assert!(diagnostic.error_message.contains(&name));
    }
}

#[tokio::test]
async fn unreadable_events_are_typed_errors_and_start_nothing() {
    let ingest = with_rollback_default(FakeStarter::default());
    let cases = [
        (json!({"hello": "world"}), "EventUnsupported"),
        (json!([1, 2, 3]), "EventUnsupported"),
        (
            json!({"Records": [{"EventSource": "aws:sqs"}]}),
            "EventUnsupported",
        ),
        (
            json!({"detail-type": "EC2 Instance State-change Notification"}),
            "EventUnsupported",
        ),
        (
            json!({"action": "pause", "target": {"namespace": ""}}),
            "RequestInvalid",
        ),
        (json!({"pad": "x".repeat(MAX_EVENT_BYTES)}), "EventTooLarge"),
    ];
    for (payload, error_type) in cases {
        let err = handle(&ingest, payload).await.unwrap_err();
        assert_eq!(err.error_type(), error_type, "{err}");
    }
    assert_eq!(ingest_calls(&ingest), 0);
}

/// `n` alerts in one webhook: the first `firing` firing, the rest resolved.
fn mixed_body(n: usize, firing: usize) -> String {
    webhook(
        (0..n)
            .map(|i| {
                let status = if i < firing { "firing" } else { "resolved" };
                alert(status, &format!("app-{i}"), &format!("{i:016x}"))
            })
            .collect(),
    )
    .to_string()
}

#[tokio::test]
async fn webhook_at_the_default_cap_starts_every_alert() {
    let ingest = ingest(FakeStarter::default());
    assert_eq!(ingest.max_alerts(), 100);
    let body = body_of(100);
    let (status, summary) = post(&ingest, &body).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(names(&summary, "started").len(), 100);
    let mut want = expected(&body);
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(started_inputs(&ingest), want);
}

#[tokio::test]
async fn webhook_above_the_cap_is_400_and_starts_nothing() {
    let ingest = ingest(FakeStarter::default());
    let (status, body) = post(&ingest, &body_of(101)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body,
        json!({
            "error": "Bad Request",
            "reason": "event carries 101 alerts; the limit is 100 (SELFHEAL_MAX_ALERTS_PER_WEBHOOK); \
                       nothing was started: set `max_alerts: 100` or less in Alertmanager's webhook_config"
        })
    );
    assert_eq!(ingest_calls(&ingest), 0);
    assert!(ingest.starter().executions.lock().unwrap().is_empty());
}

#[tokio::test]
async fn configured_cap_counts_every_alert_but_not_the_truncated_entry() {
    let ingest = ingest(FakeStarter::default()).with_max_alerts(3);

    // Three alerts, one firing: at the cap; that one starts.
    let (status, summary) = post(&ingest, &mixed_body(3, 1)).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(names(&summary, "started").len(), 1);
    assert_eq!(ingest_calls(&ingest), 1);

    // Four alerts, only one firing: resolved alerts count as Alertmanager's
    // max_alerts counts them, so this is over the cap and nothing starts.
    let (status, body) = post(&ingest, &mixed_body(4, 1)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .starts_with("event carries 4 alerts; the limit is 3 "),
        "{body}"
    );
    assert_eq!(ingest_calls(&ingest), 1);

    // What Alertmanager sends with max_alerts: 3 for a group of 10: three
    // alerts and truncatedAlerts 7. The truncated entry is no alert: accepted.
    let mut truncated: Value = serde_json::from_str(&body_of(3)).unwrap();
    truncated["truncatedAlerts"] = json!(7);
    let (status, summary) = post(&ingest, &truncated.to_string()).await;
    assert_eq!(status, 200, "{summary}");
    // app-0 (same fingerprint and startsAt) was started by the first webhook.
    assert_eq!(names(&summary, "started").len(), 2);
    assert_eq!(names(&summary, "alreadyExisted").len(), 1);
    assert_eq!(
        summary["ignored"][0]["reason"],
        json!({"truncated": {"count": 7}})
    );
    assert_eq!(started_inputs(&ingest).len(), 3);
}

#[tokio::test]
async fn event_above_the_cap_is_a_typed_error_and_starts_nothing() {
    let ingest = ingest(FakeStarter::default()).with_max_alerts(2);
    let payload: Value = serde_json::from_str(&body_of(3)).unwrap();
    let err = handle(&ingest, payload).await.unwrap_err();
    assert_eq!(err.error_type(), "EventTooManyAlerts");
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "EventTooManyAlerts");
    assert!(
        diagnostic
            .error_message
            .starts_with("event carries 3 alerts; the limit is 2 "),
        "{}",
        diagnostic.error_message
    );
    assert_eq!(ingest_calls(&ingest), 0);

    // At the cap the same path starts both.
    let payload: Value = serde_json::from_str(&body_of(2)).unwrap();
    let summary = handle(&ingest, payload).await.unwrap();
    assert_eq!(names(&summary, "started").len(), 2);
    assert_eq!(ingest.starter().executions.lock().unwrap().len(), 2);
}

// ---- the webhook token starts alerts, not an operator's requests ----------

fn with_secret_and_rollback_default() -> Ingest<FakeStarter> {
    Ingest::new(
        FakeStarter::default(),
        WebhookSecret::from_value(SECRET),
        ingest_defaults(),
        8,
    )
}

/// A hand-made RemediationRequest (force, template rollback to a revision,
/// a forged `execution`, no alarm) or a CloudWatch / EventBridge / SNS event
/// posted to the Function URL with the right bearer token is 400 naming what
/// it is, and starts nothing; an Alertmanager notification still starts.
#[tokio::test]
async fn webhook_accepts_alertmanager_notifications_only() {
    let ingest = with_secret_and_rollback_default();
    let forged = json!({
        "action": "rollback",
        "target": {"namespace": "payments", "deployment": "api"},
        "reason": "hand-made",
        "force": true,
        "scope": "template",
        "toRevision": 3,
        "execution": "forged"
    });
    let cases = [
        (forged, "manual request"),
        (
            json!({"action": "rollback", "target": {"namespace": "payments", "deployment": "api"}, "force": true}),
            "manual request",
        ),
        (
            targeted("cloudwatch/eventbridge-single-metric-alarm.json"),
            "EventBridge CloudWatch alarm",
        ),
        (
            targeted("cloudwatch/sns-alarm-single-metric.json"),
            "SNS CloudWatch alarm",
        ),
        (
            targeted("cloudwatch/lambda-alarm-action-metric-math.json"),
            "CloudWatch alarm action",
        ),
    ];
    for (payload, kind) in cases {
        let (status, body) = post(&ingest, &payload.to_string()).await;
        assert_eq!(status, 400, "{kind}: {body}");
        assert_eq!(
            body,
            json!({
                "error": "Bad Request",
                "reason": format!(
                    "unsupported event: only Alertmanager webhooks (version 4, with `alerts`) \
                     are accepted here, got: {kind}"
                )
            }),
            "{kind}"
        );
    }
    assert_eq!(ingest_calls(&ingest), 0);
    assert!(ingest.starter().executions.lock().unwrap().is_empty());

    // The same alarm events by direct invoke (IAM-authenticated) still start.
    let summary = handle(
        &ingest,
        targeted("cloudwatch/eventbridge-single-metric-alarm.json"),
    )
    .await
    .unwrap();
    assert_eq!(names(&summary, "started").len(), 1, "{summary}");
    // And the webhook still takes what it is for.
    let notification = String::from_utf8(fixture("alertmanager/firing-single.json")).unwrap();
    let (status, body) = post(&ingest, &notification).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body, "started").len(), 1, "{body}");
    assert_eq!(ingest.starter().executions.lock().unwrap().len(), 2);
}

/// Put `force`, `toRevision`, `scope` and `execution` wherever a sender
/// controls a JSON object.
fn smuggle(object: &mut Value) {
    object["force"] = json!(true);
    object["toRevision"] = json!(3);
    object["scope"] = json!("template");
    object["execution"] = json!("forged");
}

/// Whatever an alarm carries (extra fields in the event, in the alarm, in
/// the alert's labels and annotations), the request ingest starts from it
/// has `force: false`, `scope: container`, no `toRevision` and no
/// `execution`; a directive that tries is rejected.
#[tokio::test]
async fn alarms_never_forward_execution_force_or_to_revision() {
    let ingest = with_secret_and_rollback_default();

    let mut eventbridge = targeted("cloudwatch/eventbridge-single-metric-alarm.json");
    smuggle(&mut eventbridge);
    smuggle(&mut eventbridge["detail"]);
    smuggle(&mut eventbridge["detail"]["configuration"]);
    let mut alarm_action = targeted("cloudwatch/lambda-alarm-action-metric-math.json");
    smuggle(&mut alarm_action);
    smuggle(&mut alarm_action["alarmData"]);
    let mut sns = targeted("cloudwatch/sns-alarm-single-metric.json");
    let mut message: Value =
        serde_json::from_str(sns["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    smuggle(&mut message);
    smuggle(&mut message["Trigger"]);
    sns["Records"][0]["Sns"]["Message"] = json!(message.to_string());
    smuggle(&mut sns);
    for event in [eventbridge, alarm_action, sns] {
        let summary = handle(&ingest, event).await.unwrap();
        assert_eq!(names(&summary, "started").len(), 1, "{summary}");
    }

    let mut notification: Value =
        serde_json::from_slice(&fixture("alertmanager/firing-single.json")).unwrap();
    smuggle(&mut notification);
    for field in ["labels", "annotations"] {
        for (key, value) in [
            ("force", "true"),
            ("toRevision", "3"),
            ("scope", "template"),
            ("execution", "forged"),
        ] {
            notification["alerts"][0][field][key] = json!(value);
        }
    }
    let (status, body) = post(&ingest, &notification.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body, "started").len(), 1, "{body}");

    let started = ingest.starter().executions.lock().unwrap().clone();
    assert_eq!(started.len(), 4, "{started:?}");
    for (name, text) in &started {
        let input: Value = serde_json::from_str(text).unwrap();
        assert_eq!(input["force"], false, "{name}: {input}");
        assert_eq!(input["scope"], "container", "{name}: {input}");
        assert!(input.get("toRevision").is_none(), "{name}: {input}");
        assert!(input.get("execution").is_none(), "{name}: {input}");
        assert!(input["alarm"]["source"].is_string(), "{name}: {input}");
    }

    // A directive cannot ask for them either: an unknown key rejects the alarm.
    for directive in [
        "force=true",
        "toRevision=3",
        "scope=template",
        "execution=x",
    ] {
        let mut event = targeted("cloudwatch/eventbridge-single-metric-alarm.json");
        event["detail"]["configuration"]["description"] = json!(format!(
            "selfheal: namespace=shop deployment=checkout {directive}"
        ));
        let summary = handle(&ingest, event).await.unwrap();
        assert_eq!(summary["started"], json!([]), "{directive}: {summary}");
        assert!(
            summary["ignored"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("selfheal directive: unknown key"),
            "{directive}: {summary}"
        );
    }
    assert_eq!(ingest.starter().executions.lock().unwrap().len(), 4);
}

/// A manual request by direct invoke (IAM-authenticated) keeps `force`,
/// `scope` and `toRevision`, as a console execution does, but may not name
/// the `execution` the audit annotation records: refused, nothing started.
#[tokio::test]
async fn manual_request_keeps_force_but_may_not_name_the_execution() {
    let ingest = with_secret_and_rollback_default();
    let request = json!({
        "action": "rollback",
        "target": {"namespace": "shop", "deployment": "checkout"},
        "reason": "operator: back to revision 3",
        "force": true,
        "scope": "template",
        "toRevision": 3
    });
    let mut forged = request.clone();
    forged["execution"] = json!("forged");
    let err = handle(&ingest, forged).await.unwrap_err();
    assert_eq!(err.error_type(), "RequestInvalid", "{err}");
    assert_eq!(
        err.to_string(),
        "invalid manual request: invalid remediation request: `execution` is set by the state \
         machine to its own execution id; leave it out"
    );
    assert_eq!(ingest_calls(&ingest), 0);

    let summary = handle(&ingest, request).await.unwrap();
    let name = names(&summary, "started").pop().unwrap();
    let input: Value =
        serde_json::from_str(&ingest.starter().executions.lock().unwrap()[&name]).unwrap();
    assert_eq!(input["force"], true, "{input}");
    assert_eq!(input["scope"], "template", "{input}");
    assert_eq!(input["toRevision"], 3, "{input}");
    assert!(input.get("execution").is_none(), "{input}");
    assert!(input.get("alarm").is_none(), "{input}");
}
