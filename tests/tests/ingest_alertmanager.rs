//! A real Alertmanager 0.25 (Debian `prometheus-alertmanager`, from
//! scripts/deps/40-alertmanager.sh) delivers its webhook, with bearer
//! credentials from `http_config.authorization.credentials_file`, to the
//! `ingest` function served by `cargo lambda watch` (the tests' shared
//! [`Emulator`]; Function URL emulation at `/lambda-url/ingest/`), which
//! starts executions on a state machine in moto. With wrong credentials
//! nothing starts.
//!
//! The Alertmanager configuration is the receiver block of docs/alarms.md §1,
//! read from the file, with only the URL and the credentials file path
//! replaced (and checked with `amtool check-config` first), so the documented
//! block is the one that is proven to work.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingest_support;

use std::path::Path;
use std::time::Duration;

use ingest_support::{
    Moto, Process, REGION, alertmanager_binary, alertmanager_command, amtool_binary, amtool_check,
    assert_same_starts, create_state_machine, documented_yaml_block, eventually, executions,
    expected_starts, free_port, moto_binary, post_alerts, webhook_as_sent,
};
use selfheal_events::{Defaults, RemediationRequest};
use selfheal_tests::emulator::Emulator;
use selfheal_tests::tools::{cargo_lambda_binary, tool_or_skip};
use serde_json::{Value, json};

const SECRET: &str = "alertmanager-bearer-secret";
const TEST: &str = "alertmanager_webhook_starts_executions_only_with_the_right_bearer";

/// The first line of the ```yaml block in docs/alarms.md §1 that this test runs.
const DOCS_MARKER: &str =
    "# selfheal receiver (tests/tests/ingest_alertmanager.rs runs this block as pasted)";
/// The two placeholders of that block the test replaces, and nothing else.
const DOCS_URL: &str = "https://<function-url>/";
const DOCS_CREDENTIALS_FILE: &str = "/etc/alertmanager/secrets/selfheal-webhook";

/// The receiver block of docs/alarms.md §1.
fn documented_receiver() -> String {
    documented_yaml_block(DOCS_MARKER)
}

/// The documented block with only the URL and the credentials file replaced.
fn receiver_config(webhook: &str, credentials_file: &Path) -> String {
    let block = documented_receiver();
    for placeholder in [DOCS_URL, DOCS_CREDENTIALS_FILE] {
        assert_eq!(
            block.matches(placeholder).count(),
            1,
            "the docs/alarms.md receiver block must contain {placeholder:?} exactly once:\n{block}"
        );
    }
    block.replace(DOCS_URL, webhook).replace(
        DOCS_CREDENTIALS_FILE,
        &credentials_file.display().to_string(),
    )
}

/// What the documented block must say for the deployment it describes:
/// checked without Alertmanager, so a broken block fails wherever tests run.
#[test]
fn documented_receiver_block_has_the_shape_ingest_needs() {
    let config = receiver_config("http://127.0.0.1:1/lambda-url/ingest/", Path::new("/s"));
    let yaml: selfheal_tests::yaml::Value = selfheal_tests::yaml::from_str(&config)
        .unwrap_or_else(|e| panic!("docs/alarms.md receiver block is not YAML: {e}\n{config}"));
    assert_eq!(
        yaml["route"]["receiver"].as_str(),
        Some("selfheal"),
        "{config}"
    );
    let receivers = yaml["receivers"].as_sequence().unwrap();
    assert_eq!(receivers.len(), 1, "{config}");
    assert_eq!(receivers[0]["name"].as_str(), Some("selfheal"));
    let webhooks = receivers[0]["webhook_configs"].as_sequence().unwrap();
    assert_eq!(webhooks.len(), 1, "{config}");
    let webhook = &webhooks[0];
    assert_eq!(
        webhook["url"].as_str(),
        Some("http://127.0.0.1:1/lambda-url/ingest/")
    );
    assert_eq!(webhook["send_resolved"].as_bool(), Some(false));
    // Required (a bigger notification gets 413, which Alertmanager never
    // retries), and within ingest's default cap.
    let max_alerts = webhook["max_alerts"]
        .as_u64()
        .unwrap_or_else(|| panic!("max_alerts missing:\n{config}"));
    assert!(
        (1..=selfheal_ingest::IngestConfig::DEFAULT_MAX_ALERTS as u64).contains(&max_alerts),
        "max_alerts {max_alerts}"
    );
    let authorization = &webhook["http_config"]["authorization"];
    assert_eq!(authorization["credentials_file"].as_str(), Some("/s"));
    assert!(authorization.get("credentials").is_none(), "{config}");
    assert!(
        authorization.get("type").is_none() || authorization["type"].as_str() == Some("Bearer"),
        "{config}"
    );
}

/// Build the function first: `cargo lambda watch` `cargo run`s it on the
/// first invoke, which would otherwise compile inside the test's timeouts.
fn build_ingest() {
    let bins = selfheal_tests::tools::build_workspace_bins();
    assert!(bins.contains_key("ingest"), "no ingest binary: {bins:?}");
}

/// The shared emulator serving `ingest` with the webhook secret, starting
/// executions of `state_machine_arn` in moto at `moto_url`; none of the
/// machine's AWS profile or selfheal settings reach the function.
async fn start_ingest(bin: &Path, dir: &Path, moto_url: &str, state_machine_arn: &str) -> Emulator {
    let env = [
        ("SELFHEAL_WEBHOOK_SECRET", SECRET.to_owned()),
        ("SELFHEAL_STATE_MACHINE_ARN", state_machine_arn.to_owned()),
        ("AWS_ENDPOINT_URL", moto_url.to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", ingest_support::ACCESS_KEY.to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            ingest_support::SECRET_KEY.to_owned(),
        ),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    let unset = [
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "SELFHEAL_WEBHOOK_SECRET_PARAM",
        "SELFHEAL_WEBHOOK_SECRET_ARN",
        "SELFHEAL_INGEST_CONCURRENCY",
        Defaults::CLUSTER_VAR,
        Defaults::ACTION_VAR,
    ];
    let log = dir.join("cargo-lambda.log");
    Emulator::start_unsetting(bin, free_port(), &env, &unset, log).await
}

/// Alertmanager running the documented receiver block (docs/alarms.md §1)
/// with `url` = `webhook` and the bearer secret in a file, written as
/// `aws secretsmanager get-secret-value … --output text > FILE` would write it
/// (trailing newline).
fn start_alertmanager(
    bin: &Path,
    amtool: Option<&Path>,
    dir: &Path,
    name: &str,
    webhook: &str,
    secret: &str,
) -> (Process, u16) {
    let port = free_port();
    let secret_file = dir.join(format!("{name}-selfheal-webhook"));
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let config = dir.join(format!("{name}.yml"));
    std::fs::write(&config, receiver_config(webhook, &secret_file)).unwrap();
    if let Some(amtool) = amtool {
        amtool_check(amtool, &config, "the docs/alarms.md receiver block");
    }
    let storage = dir.join(format!("{name}-data"));
    let command = alertmanager_command(bin, &config, &storage, port);
    let process = Process::spawn("alertmanager", command, dir.join(format!("{name}.log")));
    (process, port)
}

/// A firing alert as posted to `/api/v2/alerts`.
fn posted_alert(alertname: &str, labels: Value, selfheal: &str, starts_at: &str) -> Value {
    let mut all = json!({"alertname": alertname, "namespace": "shop", "cluster": "prod-eks"});
    for (k, v) in labels.as_object().unwrap() {
        all[k] = v.clone();
    }
    json!({
        "labels": all,
        "annotations": {"selfheal": selfheal, "summary": format!("{alertname} test"), "value": "6", "threshold": "2"},
        "startsAt": starts_at,
        "generatorURL": "http://127.0.0.1:9090/graph"
    })
}

#[tokio::test]
async fn alertmanager_webhook_starts_executions_only_with_the_right_bearer() {
    let Some(moto_bin) = moto_binary(TEST) else {
        return;
    };
    let Some(cargo_lambda) = tool_or_skip(TEST, cargo_lambda_binary()) else {
        return;
    };
    let Some(alertmanager) = alertmanager_binary(TEST) else {
        return;
    };
    let amtool = amtool_binary(TEST, &alertmanager);
    build_ingest();

    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start(&moto_bin, dir.path()).await;
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk_config().await);
    let arn = create_state_machine(&sfn, "remediate-deployment").await;

    let watch = start_ingest(&cargo_lambda, dir.path(), &moto.url, &arn).await;
    let function_url = format!("{}/", watch.function_url("ingest"));
    // Warm up (starts the function) and check the emulated Function URL path:
    // no credentials, 401.
    let headers = [("content-type", "application/json")];
    let first = watch.url_request("ingest", "POST", "/", &headers, b"{}".to_vec());
    let (status, body) = first.await;
    assert_eq!(status, 401, "{body}\n{}", watch.log_text());

    // --- Right credentials: three alerts in one notification, three executions.
    // The documented route sets no group_wait: Alertmanager's default 30 s
    // passes before the one notification (the route groups every alert).
    let (mut am, am_port) = start_alertmanager(
        &alertmanager,
        amtool.as_deref(),
        dir.path(),
        "good",
        &function_url,
        SECRET,
    );
    am.wait_listening(am_port, Duration::from_secs(60)).await;
    let starts_at = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
        .unwrap()
        .to_string();
    let alerts = json!([
        posted_alert(
            "SelfhealE2E",
            json!({"deployment": "checkout", "container": "api"}),
            "action=rollback",
            &starts_at
        ),
        posted_alert(
            "SelfhealE2E",
            json!({"deployment": "cart"}),
            "action=pause",
            &starts_at
        ),
        posted_alert(
            "SelfhealE2E",
            json!({"pod": "web-7d9f-abcde", "container": "app"}),
            "action=restart",
            &starts_at
        ),
    ]);
    post_alerts(am_port, &alerts).await;

    let started = eventually(Duration::from_secs(150), "three executions in moto", || {
        let (sfn, arn) = (&sfn, &arn);
        async move {
            let found = executions(sfn, arn).await;
            (found.len() >= 3).then_some(found)
        }
    })
    .await;
    assert_eq!(started.len(), 3, "{started:?}");

    // Names and input are exactly what the parser derives from the alerts
    // Alertmanager holds (its fingerprints, our startsAt).
    let want = expected_starts(&webhook_as_sent(am_port).await, &Defaults::default());
    assert_same_starts(&started, &want);
    let by_workload = |w: &str| -> RemediationRequest {
        started
            .iter()
            .map(|(_, input)| serde_json::from_str::<RemediationRequest>(input).unwrap())
            .find(|r| {
                r.target.deployment.as_deref() == Some(w) || r.target.pod.as_deref() == Some(w)
            })
            .unwrap()
    };
    let checkout = by_workload("checkout");
    assert_eq!(checkout.action.as_str(), "rollback");
    assert_eq!(checkout.target.container.as_deref(), Some("api"));
    assert_eq!(checkout.target.cluster.as_deref(), Some("prod-eks"));
    assert_eq!(checkout.alarm.as_ref().unwrap().source, "alertmanager");
    assert_eq!(checkout.alarm.as_ref().unwrap().impact_score, Some(3.0));
    assert_eq!(by_workload("cart").action.as_str(), "pause");
    assert_eq!(by_workload("web-7d9f-abcde").action.as_str(), "restart");

    // One log line per start, from the function itself.
    let start_logs = eventually(Duration::from_secs(10), "start log lines", || {
        let watch = &watch;
        async move {
            let logs = watch.logs_with_message("start execution");
            (logs.len() >= 3).then_some(logs)
        }
    })
    .await;
    assert_eq!(start_logs.len(), 3);
    for line in &start_logs {
        assert_eq!(line["fields"]["outcome"], "started", "{line}");
        assert!(
            started
                .iter()
                .any(|(n, _)| *n == line["fields"]["execution_name"]),
            "{line}"
        );
    }
    drop(am);

    // --- Wrong credentials: Alertmanager delivers, gets 401, nothing starts.
    let (mut bad_am, bad_port) = start_alertmanager(
        &alertmanager,
        amtool.as_deref(),
        dir.path(),
        "wrong",
        &function_url,
        "not-the-secret",
    );
    bad_am
        .wait_listening(bad_port, Duration::from_secs(60))
        .await;
    post_alerts(
        bad_port,
        &json!([
            posted_alert(
                "SelfhealWrongAuth",
                json!({"deployment": "payments"}),
                "action=restart",
                &starts_at
            ),
            posted_alert(
                "SelfhealWrongAuth",
                json!({"deployment": "search"}),
                "action=restart",
                &starts_at
            ),
        ]),
    )
    .await;
    let refusals = eventually(
        Duration::from_secs(150),
        "the 401 for the wrong bearer",
        || {
            let watch = &watch;
            async move {
                let refused: Vec<Value> = watch
                    .logs_with_message("webhook request refused")
                    .into_iter()
                    .filter(|l| l["fields"]["reason"] == "wrong bearer token")
                    .collect();
                (!refused.is_empty()).then_some(refused)
            }
        },
    )
    .await;
    assert!(!refusals.is_empty());
    eventually(
        Duration::from_secs(30),
        "Alertmanager to report the 401",
        || {
            let bad_am = &bad_am;
            async move { bad_am.log_text().contains("401").then_some(()) }
        },
    )
    .await;
    // Alertmanager does not retry a 4xx, and the next notification of the
    // group is a group_interval (default 5 min) away; give any request still
    // in flight time to land before checking that nothing started.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = executions(&sfn, &arn).await;
    assert_eq!(after, started, "wrong credentials must start nothing");
    assert_eq!(watch.logs_with_message("start execution").len(), 3);

    // Neither the webhook secret, nor the wrong one Alertmanager sent, nor the
    // AWS secret key appears in any line the function or emulator logged.
    selfheal_tests::secrets::assert_no_leaks(
        "ingest behind the Function URL",
        &watch.log_text(),
        &[SECRET, "not-the-secret", ingest_support::SECRET_KEY],
    );
}
