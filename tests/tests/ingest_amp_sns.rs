//! Amazon Managed Service for Prometheus, end to end as far as it runs
//! outside AWS: a real Alertmanager 0.25 (Debian `prometheus-alertmanager`)
//! runs the alert manager definition of docs/alarms.md §1 (AWS's JSON
//! `sns.default.message` template and the `sns_configs` block), read from
//! the file with only the topic ARN and region replaced, plus `api_url`
//! (moto's SNS; AMP sets it itself) and a short `group_wait`. It publishes the
//! alert group to an SNS topic in moto; the message, read back through an SQS
//! subscription of that topic, is handed to the ingest handler as the SNS
//! Lambda event SNS would invoke it with (no bearer token, the webhook is
//! disabled). The executions in moto's Step Functions carry exactly the names
//! and input the webhook path derives from the same alerts, and a re-delivery
//! starts none.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingest_support;

use std::path::Path;
use std::time::Duration;

use ingest_support::{
    Moto, Process, alertmanager_binary, alertmanager_command, amtool_binary, amtool_check,
    assert_same_starts, create_state_machine, documented_yaml_block, eventually, executions,
    expected_starts, free_port, moto_binary, post_alerts, webhook_as_sent,
};
use selfheal_events::{Defaults, EventKind, RemediationRequest, parse_event};
use selfheal_ingest::{Ingest, SfnStarter, WebhookSecret};
use selfheal_tests::tools::xml_text;
use serde_json::{Value, json};

const TEST: &str = "amp_alert_group_through_sns_starts_the_webhook_executions";
/// The first line of the ```yaml block in docs/alarms.md §1 that this test runs.
const DOCS_MARKER: &str = "# selfheal AMP alert manager definition (tests/tests/ingest_amp_sns.rs runs this block as pasted)";
/// The placeholders of that block the test replaces.
const DOCS_TOPIC_ARN: &str = "arn:aws:sns:REGION:ACCOUNT_ID:TOPIC";
const DOCS_REGION: &str = "region: REGION";
/// moto routes a call by the region of its credential scope; `Moto::query_call`
/// and `Moto::json_call` sign for this one, so the topic lives there.
const SNS_REGION: &str = "us-east-1";

/// The documented definition: `template_files.default_template` and the
/// `alertmanager_config` (as YAML text), placeholders replaced.
fn documented_definition(topic_arn: &str) -> (String, String) {
    let block = documented_yaml_block(DOCS_MARKER);
    for placeholder in [DOCS_TOPIC_ARN, DOCS_REGION] {
        assert_eq!(
            block.matches(placeholder).count(),
            1,
            "the docs/alarms.md AMP block must contain {placeholder:?} exactly once:\n{block}"
        );
    }
    let block = block
        .replace(DOCS_TOPIC_ARN, topic_arn)
        .replace(DOCS_REGION, &format!("region: {SNS_REGION}"));
    let definition: serde_json::Value = serde_saphyr::from_str(&block)
        .unwrap_or_else(|e| panic!("docs/alarms.md AMP block is not YAML: {e}\n{block}"));
    let template = definition["template_files"]["default_template"]
        .as_str()
        .unwrap_or_else(|| panic!("no template_files.default_template:\n{block}"))
        .to_owned();
    let config = definition["alertmanager_config"]
        .as_str()
        .unwrap_or_else(|| panic!("no alertmanager_config:\n{block}"))
        .to_owned();
    (template, config)
}

/// What the documented block must say for AMP and for ingest: checked
/// without Alertmanager, so a broken block fails wherever tests run.
#[test]
fn documented_amp_block_has_the_shape_ingest_needs() {
    let (template, config) = documented_definition("arn:aws:sns:us-east-1:123456789012:t");
    assert!(
        template.contains(r#"{{ define "sns.default.message" }}"#),
        "{template}"
    );
    let config: serde_json::Value = serde_saphyr::from_str(&config).unwrap();
    assert_eq!(config["templates"][0].as_str(), Some("default_template"));
    let receiver = &config["receivers"][0];
    assert_eq!(receiver["name"], config["route"]["receiver"]);
    let sns = &receiver["sns_configs"][0];
    assert_eq!(
        sns["topic_arn"].as_str(),
        Some("arn:aws:sns:us-east-1:123456789012:t")
    );
    assert_eq!(sns["sigv4"]["region"].as_str(), Some(SNS_REGION));
    // AMP refuses these in a definition; the message must stay the template's.
    for forbidden in ["api_url", "http_config", "message"] {
        assert!(sns.get(forbidden).is_none(), "{forbidden} in {sns:?}");
    }
}

/// Alertmanager with the documented definition: the template file next to
/// the configuration (where `templates: ['default_template']` finds it),
/// `api_url` pointed at moto and `group_wait` shortened.
fn start_alertmanager(
    bin: &Path,
    amtool: Option<&Path>,
    dir: &Path,
    topic_arn: &str,
    moto_url: &str,
) -> (Process, u16) {
    let (template, config) = documented_definition(topic_arn);
    let mut config: serde_json::Value = serde_saphyr::from_str(&config).unwrap();
    config["route"]["group_wait"] = "1s".into();
    config["receivers"][0]["sns_configs"][0]["api_url"] = moto_url.into();
    std::fs::write(dir.join("default_template"), template).unwrap();
    let path = dir.join("alertmanager.yml");
    std::fs::write(&path, serde_saphyr::to_string(&config).unwrap()).unwrap();
    if let Some(amtool) = amtool {
        amtool_check(amtool, &path, "the docs/alarms.md AMP definition");
    }
    let port = free_port();
    let mut command = alertmanager_command(bin, &path, &dir.join("alertmanager-data"), port);
    command
        // The SNS notifier signs with the SDK's default credential chain when
        // the definition names no keys (AMP uses its own role); moto takes any.
        .env("AWS_ACCESS_KEY_ID", ingest_support::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", ingest_support::SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    let process = Process::spawn("alertmanager", command, dir.join("alertmanager.log"));
    (process, port)
}

/// A firing alert as posted to `/api/v2/alerts`; its description spans two
/// lines, which AWS's template pastes into the JSON unescaped.
fn posted_alert(deployment: &str, selfheal: &str, starts_at: &str) -> Value {
    json!({
        "labels": {"alertname": "SelfhealAmp", "namespace": "shop", "cluster": "prod-eks", "deployment": deployment},
        "annotations": {
            "selfheal": selfheal,
            "summary": format!("{deployment} is failing"),
            "description": format!("{deployment}: 5xx above 5%\nsince the last rollout"),
            "value": "6",
            "threshold": "2"
        },
        "startsAt": starts_at,
        "generatorURL": "http://127.0.0.1:9090/graph"
    })
}

/// The SNS notification as SNS delivers it to SQS (moto keeps SNS's own
/// spelling), turned into the Lambda event SNS invokes a function with.
fn lambda_sns_event(delivered: &Value, subscription_arn: &str) -> Value {
    let mut sns = json!({
        "Type": delivered["Type"],
        "MessageId": delivered["MessageId"],
        "TopicArn": delivered["TopicArn"],
        "Subject": delivered["Subject"],
        "Message": delivered["Message"],
        "Timestamp": delivered["Timestamp"],
        "SignatureVersion": delivered["SignatureVersion"],
        "Signature": delivered["Signature"],
        "SigningCertUrl": delivered["SigningCertURL"],
        "UnsubscribeUrl": delivered["UnsubscribeURL"],
        "MessageAttributes": delivered.get("MessageAttributes").cloned().unwrap_or(json!({}))
    });
    if sns["Subject"].is_null() {
        sns.as_object_mut().unwrap().remove("Subject");
    }
    json!({
        "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": subscription_arn,
            "Sns": sns
        }]
    })
}

#[tokio::test]
async fn amp_alert_group_through_sns_starts_the_webhook_executions() {
    let Some(moto_bin) = moto_binary(TEST) else {
        return;
    };
    let Some(alertmanager) = alertmanager_binary(TEST) else {
        return;
    };
    let amtool = amtool_binary(TEST, &alertmanager);
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start(&moto_bin, dir.path()).await;
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk_config().await);
    let state_machine = create_state_machine(&sfn, "remediate-deployment").await;

    // The topic AMP publishes to, and an SQS queue subscribed to it through
    // which the test reads what SNS would deliver.
    let created = moto
        .query_call("sns", &[("Action", "CreateTopic"), ("Name", "amp-alerts")])
        .await;
    let topic_arn = xml_text(&created, "TopicArn").unwrap().to_owned();
    assert!(
        topic_arn.starts_with(&format!("arn:aws:sns:{SNS_REGION}:")),
        "{topic_arn}"
    );
    let queue_url = moto.create_queue("amp-tap").await;
    let queue_arn = moto
        .json_call(
            "AmazonSQS",
            "GetQueueAttributes",
            &json!({"QueueUrl": queue_url, "AttributeNames": ["QueueArn"]}),
        )
        .await["Attributes"]["QueueArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let subscribed = moto
        .query_call(
            "sns",
            &[
                ("Action", "Subscribe"),
                ("TopicArn", &topic_arn),
                ("Protocol", "sqs"),
                ("Endpoint", &queue_arn),
            ],
        )
        .await;
    let subscription_arn = xml_text(&subscribed, "SubscriptionArn").unwrap().to_owned();

    let (mut am, am_port) = start_alertmanager(
        &alertmanager,
        amtool.as_deref(),
        dir.path(),
        &topic_arn,
        &moto.url,
    );
    am.wait_listening(am_port, Duration::from_secs(60)).await;
    let starts_at = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
        .unwrap()
        .to_string();
    post_alerts(
        am_port,
        &json!([
            posted_alert("checkout", "action=rollback container=api", &starts_at),
            posted_alert("cart", "action=pause", &starts_at),
        ]),
    )
    .await;

    // One notification for the group (route group_by alertname, namespace).
    let delivered = eventually(Duration::from_secs(60), "the SNS message in SQS", || {
        let (moto, queue_url) = (&moto, &queue_url);
        async move {
            let received = moto
                .json_call(
                    "AmazonSQS",
                    "ReceiveMessage",
                    &json!({"QueueUrl": queue_url, "MaxNumberOfMessages": 10}),
                )
                .await;
            let body = received["Messages"].get(0)?["Body"].as_str()?.to_owned();
            Some(serde_json::from_str::<Value>(&body).unwrap())
        }
    })
    .await
    .to_owned();
    assert_eq!(
        delivered["Subject"],
        "[FIRING:2]",
        "{delivered}\n{}",
        am.log_text()
    );
    let event = lambda_sns_event(&delivered, &subscription_arn);
    eprintln!("SNS Lambda event as delivered: {event}");

    // What the webhook path starts for the alerts Alertmanager holds.
    let sent = webhook_as_sent(am_port).await;
    let want = expected_starts(&sent, &Defaults::default());
    assert_eq!(want.len(), 2, "{sent}");

    let parsed = parse_event(event.to_string().as_bytes(), &Defaults::default()).unwrap();
    assert_eq!(parsed.kind, EventKind::SnsAlertmanager);

    // SNS invokes the function with the event; no webhook secret exists.
    let ingest = Ingest::new(
        SfnStarter::new(sfn.clone(), &state_machine),
        WebhookSecret::disabled(),
        Defaults::default(),
        8,
    );
    let received = event.to_string().len();
    let summary = ingest.handle(event.clone(), received).await.unwrap();
    assert_eq!(summary["kind"], "snsAlertmanager", "{summary}");
    assert_eq!(summary["started"].as_array().unwrap().len(), 2, "{summary}");
    let started = executions(&sfn, &state_machine).await;
    assert_same_starts(&started, &want);
    let checkout = started
        .iter()
        .map(|(_, input)| serde_json::from_str::<RemediationRequest>(input).unwrap())
        .find(|r| r.target.deployment.as_deref() == Some("checkout"))
        .unwrap();
    assert_eq!(checkout.action.as_str(), "rollback");
    assert_eq!(checkout.target.container.as_deref(), Some("api"));
    assert_eq!(checkout.target.cluster.as_deref(), Some("prod-eks"));
    let alarm = checkout.alarm.unwrap();
    assert_eq!(alarm.source, "alertmanager");
    assert_eq!(alarm.impact_score, Some(3.0));

    // SNS retries a failed invocation: the same event starts nothing new
    // (Step Functions answers with the existing execution, which ingest
    // tells by its start date, so let a little time pass first).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = ingest.handle(event, received).await.unwrap();
    assert_eq!(again["started"], json!([]), "{again}");
    assert_eq!(again["alreadyExisted"].as_array().unwrap().len(), 2);
    assert_eq!(executions(&sfn, &state_machine).await.len(), 2);
}
