//! The ingest handler, in process, against a real Step Functions API (moto,
//! `.venv/bin/moto_server` from scripts/deps/20-python.sh): executions appear
//! on a real state machine with the expected names and input; re-delivery
//! starts none; a failed StartExecution among several gives 5xx while the
//! others start; the webhook secret comes from SSM / Secrets Manager once, and
//! an SSM parameter that is not a SecureString is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingest_support;

use std::collections::HashSet;

use ingest_support::{
    Moto, create_state_machine, executions, expected_starts as expected, moto_binary, post_url,
    stuck_alert, url_request, webhook,
};
use selfheal_events::{Action, Defaults};
use selfheal_ingest::{
    Ingest, SecretSource, SfnStarter, StartExecution, StartFailure, Started, Verdict, WebhookSecret,
};
use serde_json::{Value, json};

const SECRET: &str = "moto-webhook-secret";

fn alert(deployment: &str, fingerprint: &str, value: &str) -> Value {
    let annotations = json!({"selfheal": "action=pause", "value": value, "threshold": "2"});
    stuck_alert(deployment, fingerprint, "firing", annotations)
}

/// (status, body) of the handler's Function URL response.
async fn post<S: StartExecution>(ingest: &Ingest<S>, body: &Value) -> (i64, Value) {
    post_url(ingest, body, SECRET).await
}

/// What `secret` says of the bearer `token`.
async fn verdict(secret: &WebhookSecret, token: &str) -> Verdict {
    let header = format!("Bearer {token}");
    secret.verify(Some(header.as_bytes())).await.unwrap()
}

fn names(summary: &Value, field: &str) -> Vec<String> {
    let mut names: Vec<String> = summary[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

struct Env {
    _dir: tempfile::TempDir,
    moto: Moto,
    sfn: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

async fn env(test: &str) -> Option<Env> {
    let bin = moto_binary(test)?;
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start(&bin, dir.path()).await;
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk_config().await);
    let state_machine_arn = create_state_machine(&sfn, "remediate-deployment").await;
    Some(Env {
        _dir: dir,
        moto,
        sfn,
        state_machine_arn,
    })
}

impl Env {
    fn ingest(&self, defaults: Defaults) -> Ingest<SfnStarter> {
        Ingest::new(
            SfnStarter::new(self.sfn.clone(), &self.state_machine_arn),
            WebhookSecret::from_value(SECRET),
            defaults,
            8,
        )
    }
}

#[tokio::test]
async fn webhook_starts_executions_and_redelivery_starts_none() {
    let Some(env) = env("webhook_starts_executions_and_redelivery_starts_none").await else {
        return;
    };
    let ingest = env.ingest(Defaults::default());
    let mut alerts: Vec<Value> = (0..5)
        .map(|i| alert(&format!("app-{i}"), &format!("{i:016x}"), "3"))
        .collect();
    let mut resolved = alert("cart", "00000000000000ff", "3");
    resolved["status"] = json!("resolved");
    alerts.push(resolved);
    let body = webhook(alerts);
    let want = expected(&body, &Defaults::default());
    assert_eq!(want.len(), 5);

    let (status, summary) = post(&ingest, &body).await;
    assert_eq!(status, 200, "{summary}");
    let want_names: Vec<String> = want.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names(&summary, "started"), want_names);
    assert_eq!(summary["ignored"][0]["id"], "00000000000000ff");
    // The state machine now has exactly these executions, with the request as input.
    assert_eq!(executions(&env.sfn, &env.state_machine_arn).await, want);
    let (_, input) = &want[0];
    let input: Value = serde_json::from_str(input).unwrap();
    assert_eq!(input["action"], "pause");
    assert_eq!(input["target"]["cluster"], "prod-eks");
    assert_eq!(input["alarm"]["impactScore"], 1.5);

    // Re-delivery of the same notification (Step Functions answers an
    // identical start with the existing execution): 200, nothing new. Wait a
    // little so the existing executions' start dates are visibly older.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, summary) = post(&ingest, &body).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(names(&summary, "started"), Vec::<String>::new());
    assert_eq!(names(&summary, "alreadyExisted"), want_names);
    assert_eq!(executions(&env.sfn, &env.state_machine_arn).await, want);

    // A repeat notification whose annotations changed (same alert, new
    // value): same names, different input: ExecutionAlreadyExists, still 200.
    let changed = webhook(
        (0..5)
            .map(|i| alert(&format!("app-{i}"), &format!("{i:016x}"), "7"))
            .collect(),
    );
    assert_eq!(
        expected(&changed, &Defaults::default())
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>(),
        want_names
    );
    let (status, summary) = post(&ingest, &changed).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(names(&summary, "alreadyExisted"), want_names);
    assert_eq!(executions(&env.sfn, &env.state_machine_arn).await, want);
}

/// Sends every start to the real state machine, except `broken` names, which
/// go to a state machine that does not exist: moto's own error, through the
/// real SDK error path.
struct PartlyBroken {
    good: SfnStarter,
    missing: SfnStarter,
    broken: HashSet<String>,
}

impl StartExecution for PartlyBroken {
    async fn start(&self, name: &str, input: &str) -> Result<Started, StartFailure> {
        if self.broken.contains(name) {
            self.missing.start(name, input).await
        } else {
            self.good.start(name, input).await
        }
    }
}

#[tokio::test]
async fn failed_start_among_several_is_5xx_and_the_others_start() {
    let Some(env) = env("failed_start_among_several_is_5xx_and_the_others_start").await else {
        return;
    };
    let body = webhook(
        (0..4)
            .map(|i| alert(&format!("svc-{i}"), &format!("{:016x}", 0x100 + i), "3"))
            .collect(),
    );
    let want = expected(&body, &Defaults::default());
    let broken = want[1].0.clone();
    let missing_arn = env
        .state_machine_arn
        .replace("remediate-deployment", "does-not-exist");
    let ingest = Ingest::new(
        PartlyBroken {
            good: SfnStarter::new(env.sfn.clone(), &env.state_machine_arn),
            missing: SfnStarter::new(env.sfn.clone(), missing_arn),
            broken: HashSet::from([broken.clone()]),
        },
        WebhookSecret::from_value(SECRET),
        Defaults::default(),
        8,
    );

    let (status, summary) = post(&ingest, &body).await;
    assert!(status >= 500, "{status}: {summary}");
    assert_eq!(
        status, 502,
        "a missing state machine is not retryable by itself"
    );
    let failed = summary["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{summary}");
    assert_eq!(failed[0]["executionName"], broken.as_str());
    assert_eq!(failed[0]["errorCode"], "StateMachineDoesNotExist");
    assert_eq!(failed[0]["retryable"], false);
    let others: Vec<(String, String)> =
        want.iter().filter(|(n, _)| *n != broken).cloned().collect();
    assert_eq!(
        names(&summary, "started"),
        others.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
    );
    assert_eq!(executions(&env.sfn, &env.state_machine_arn).await, others);

    // Alertmanager retries the whole notification; once StartExecution works,
    // the missing one starts and the rest are recognised: 200.
    // (Alertmanager's retry comes later; the existing starts are then visibly older.)
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let ingest = env.ingest(Defaults::default());
    let (status, summary) = post(&ingest, &body).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(names(&summary, "started"), vec![broken.clone()]);
    assert_eq!(names(&summary, "alreadyExisted").len() + 1, want.len());
    assert_eq!(executions(&env.sfn, &env.state_machine_arn).await, want);
}

#[tokio::test]
async fn eventbridge_event_starts_and_failures_are_typed_errors() {
    let Some(env) = env("eventbridge_event_starts_and_failures_are_typed_errors").await else {
        return;
    };
    let defaults = Defaults {
        cluster: Some("prod-eks".into()),
        action: Some(Action::Rollback),
        ..Defaults::default()
    };
    let path = ingest_support::workspace_root().join(
        "crates/selfheal-events/tests/fixtures/cloudwatch/eventbridge-single-metric-alarm.json",
    );
    let mut event: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    event["detail"]["configuration"]["description"] =
        json!("CPU high\nselfheal: namespace=shop deployment=checkout container=api");
    let want = expected(&event, &defaults);
    assert_eq!(want.len(), 1);

    let ingest = env.ingest(defaults.clone());
    let received = event.to_string().len();
    let summary = ingest.handle(event.clone(), received).await.unwrap();
    assert_eq!(summary["kind"], "eventBridgeAlarm");
    assert_eq!(names(&summary, "started"), vec![want[0].0.clone()]);
    assert_eq!(executions(&env.sfn, &env.state_machine_arn).await, want);
    let input: Value = serde_json::from_str(&want[0].1).unwrap();
    assert_eq!(input["action"], "rollback");
    assert_eq!(input["target"]["container"], "api");
    assert_eq!(input["alarm"]["name"], "ServerCpuTooHigh");

    // EventBridge re-delivers: success, nothing new.
    let summary = ingest.handle(event.clone(), received).await.unwrap();
    assert_eq!(summary["failed"], json!([]));
    assert_eq!(executions(&env.sfn, &env.state_machine_arn).await, want);

    // Pointed at a state machine that does not exist: a typed Lambda error.
    let missing = Ingest::new(
        SfnStarter::new(
            env.sfn.clone(),
            env.state_machine_arn
                .replace("remediate-deployment", "gone"),
        ),
        WebhookSecret::disabled(),
        defaults,
        8,
    );
    let received = event.to_string().len();
    let err = missing.handle(event, received).await.unwrap_err();
    assert_eq!(err.error_type(), "NonRetryableStartExecution");
    assert!(
        err.to_string().contains("StateMachineDoesNotExist"),
        "{err}"
    );

    // Nothing listening at all: a retryable transport failure.
    let nowhere = aws_sdk_sfn::Client::from_conf(
        aws_sdk_sfn::config::Builder::from(&env.moto.sdk_config().await)
            .endpoint_url(format!("http://127.0.0.1:{}", ingest_support::free_port()))
            .build(),
    );
    let failure = SfnStarter::new(nowhere, &env.state_machine_arn)
        .start("transport-check", "{}")
        .await
        .unwrap_err();
    assert_eq!(failure.code, "Transport");
    assert!(failure.retryable);
}

#[tokio::test]
async fn webhook_secret_from_ssm_and_secrets_manager_is_read_once() {
    let Some(env) = env("webhook_secret_from_ssm_and_secrets_manager_is_read_once").await else {
        return;
    };
    let sdk = env.moto.sdk_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    ssm.put_parameter()
        .name("/selfheal/webhook")
        .value("from-ssm\n")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let created = sm
        .create_secret()
        .name("selfheal/webhook")
        .secret_string("from-secrets-manager")
        .send()
        .await
        .unwrap();

    let from_ssm = WebhookSecret::new(
        SecretSource::SsmParameter {
            name: "/selfheal/webhook".into(),
        },
        &sdk,
    );
    let from_sm = WebhookSecret::new(
        SecretSource::SecretsManager {
            id: created.arn().unwrap().to_owned(),
        },
        &sdk,
    );
    assert_eq!(verdict(&from_ssm, "from-ssm").await, Verdict::Accepted);
    assert_eq!(verdict(&from_ssm, "from-ss").await, Verdict::Wrong);
    assert_eq!(
        verdict(&from_sm, "from-secrets-manager").await,
        Verdict::Accepted
    );
    assert_eq!(verdict(&from_sm, "from-ssm").await, Verdict::Wrong);

    // Read once per process: deleting them changes nothing for these instances.
    ssm.delete_parameter()
        .name("/selfheal/webhook")
        .send()
        .await
        .unwrap();
    sm.delete_secret()
        .secret_id("selfheal/webhook")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    assert_eq!(verdict(&from_ssm, "from-ssm").await, Verdict::Accepted);
    assert_eq!(
        verdict(&from_sm, "from-secrets-manager").await,
        Verdict::Accepted
    );

    // A fresh process would fail to read it: the webhook answers 503 (retry), not 401.
    let gone = Ingest::new(
        SfnStarter::new(env.sfn.clone(), &env.state_machine_arn),
        WebhookSecret::new(
            SecretSource::SsmParameter {
                name: "/selfheal/webhook".into(),
            },
            &sdk,
        ),
        Defaults::default(),
        8,
    );
    let request = url_request(
        &webhook(vec![alert("x", "0000000000000abc", "3")]),
        "Bearer from-ssm",
    );
    let received = request.to_string().len();
    let response = gone.handle(request, received).await.unwrap();
    assert_eq!(response["statusCode"], 503);
    // Without a bearer header the secret is not needed: 401 even though it
    // cannot be read.
    let mut request = url_request(
        &webhook(vec![alert("x", "0000000000000abc", "3")]),
        "Bearer from-ssm",
    );
    request["headers"]
        .as_object_mut()
        .unwrap()
        .remove("authorization");
    let received = request.to_string().len();
    let response = gone.handle(request, received).await.unwrap();
    assert_eq!(response["statusCode"], 401);
    assert_eq!(executions(&env.sfn, &env.state_machine_arn).await, vec![]);
}

#[tokio::test]
async fn ssm_parameter_that_is_not_a_secure_string_is_refused() {
    let Some(env) = env("ssm_parameter_that_is_not_a_secure_string_is_refused").await else {
        return;
    };
    let sdk = env.moto.sdk_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    for (name, kind) in [
        ("/selfheal/plain", aws_sdk_ssm::types::ParameterType::String),
        (
            "/selfheal/secure",
            aws_sdk_ssm::types::ParameterType::SecureString,
        ),
    ] {
        ssm.put_parameter()
            .name(name)
            .value(SECRET)
            .r#type(kind)
            .send()
            .await
            .unwrap();
    }
    let secret =
        |name: &str| WebhookSecret::new(SecretSource::SsmParameter { name: name.into() }, &sdk);
    let ingest = |name: &str| {
        Ingest::new(
            SfnStarter::new(env.sfn.clone(), &env.state_machine_arn),
            secret(name),
            Defaults::default(),
            8,
        )
    };
    let body = webhook(vec![alert("plain", "0000000000000def", "3")]);
    let want = expected(&body, &Defaults::default());
    assert_eq!(want.len(), 1);

    // A String parameter: a non-retryable configuration error naming the
    // parameter and its type, even with the right token; nothing starts.
    let err = secret("/selfheal/plain")
        .verify(Some(format!("Bearer {SECRET}").as_bytes()))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "NonRetryableConfig");
    assert_eq!(
        err.to_string(),
        "configuration SELFHEAL_WEBHOOK_SECRET_PARAM: SSM parameter /selfheal/plain is of type \
         String, not SecureString: store the webhook secret as a SecureString"
    );
    let (status, reply) = post(&ingest("/selfheal/plain"), &body).await;
    assert_eq!(status, 503, "{reply}");
    assert_eq!(reply["reason"], "webhook secret unavailable; retry later");
    assert_eq!(executions(&env.sfn, &env.state_machine_arn).await, vec![]);

    // The same value as a SecureString: accepted, and the alert starts.
    let (status, reply) = post(&ingest("/selfheal/secure"), &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(names(&reply, "started"), vec![want[0].0.clone()]);
    assert_eq!(executions(&env.sfn, &env.state_machine_arn).await, want);
}

/// A flood costs one fetch per failure TTL, against a real SSM API: a failed
/// fetch (the parameter does not exist yet) answers 503 for the failure TTL
/// without asking again, so the parameter created meanwhile is not seen until
/// the TTL has passed; then the next request fetches it and starts the alert.
#[tokio::test]
async fn failed_secret_fetch_is_reused_until_its_ttl() {
    let Some(env) = env("failed_secret_fetch_is_reused_until_its_ttl").await else {
        return;
    };
    const TTL: std::time::Duration = std::time::Duration::from_millis(1500);
    let sdk = env.moto.sdk_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let ingest = Ingest::new(
        SfnStarter::new(env.sfn.clone(), &env.state_machine_arn),
        WebhookSecret::new(
            SecretSource::SsmParameter {
                name: "/selfheal/later".into(),
            },
            &sdk,
        )
        .with_failure_ttl(TTL),
        Defaults::default(),
        8,
    );
    let body = webhook(vec![alert("later", "0000000000000abd", "3")]);
    let want = expected(&body, &Defaults::default());

    let (status, reply) = post(&ingest, &body).await;
    assert_eq!(status, 503, "{reply}");
    // The failure is kept from when the fetch ended, at the latest now.
    let failed_at = std::time::Instant::now();
    ssm.put_parameter()
        .name("/selfheal/later")
        .value(SECRET)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    // Within the TTL: the cached failure answers, the new parameter is unseen.
    let (status, reply) = post(&ingest, &body).await;
    assert!(
        failed_at.elapsed() < TTL,
        "the machine is too slow for this check"
    );
    assert_eq!(status, 503, "{reply}");
    assert_eq!(executions(&env.sfn, &env.state_machine_arn).await, vec![]);

    tokio::time::sleep(TTL.saturating_sub(failed_at.elapsed())).await;
    let (status, reply) = post(&ingest, &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(executions(&env.sfn, &env.state_machine_arn).await, want);
}
