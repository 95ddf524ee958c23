//! A real Alertmanager 0.25 (Debian `prometheus-alertmanager`, from
//! scripts/deps/40-alertmanager.sh) delivers its webhook, with bearer
//! credentials from `http_config.authorization`, to the `ingest` function
//! served by `cargo lambda watch` (Function URL emulation at
//! `/lambda-url/ingest/`), which starts executions on a state machine in
//! moto. With wrong credentials nothing starts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingest_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ingest_support::{
    Moto, Process, REGION, create_state_machine, eventually, executions, free_port, http,
    http_with_timeout, moto_binary, tool, workspace_root,
};
use selfheal_events::{Defaults, RemediationRequest, parse_event};
use serde_json::{Value, json};

const SECRET: &str = "alertmanager-bearer-secret";
const TEST: &str = "alertmanager_webhook_starts_executions_only_with_the_right_bearer";

fn alertmanager_binary() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("SELFHEAL_ALERTMANAGER") {
        candidates.push(PathBuf::from(path));
    }
    candidates.extend([
        workspace_root().join(".tools/bin/alertmanager"),
        PathBuf::from("/usr/bin/prometheus-alertmanager"),
    ]);
    tool(TEST, &candidates, "scripts/deps/40-alertmanager.sh")
}

/// Build the function first: `cargo lambda watch` `cargo run`s it on the
/// first invoke, which would otherwise compile inside the test's timeouts.
fn build_ingest() {
    let bins = selfheal_tests::tools::build_workspace_bins();
    assert!(bins.contains_key("ingest"), "no ingest binary: {bins:?}");
}

fn start_cargo_lambda(
    bin: &Path,
    dir: &Path,
    moto_url: &str,
    state_machine_arn: &str,
) -> (Process, u16) {
    let port = free_port();
    let venv_bin = bin.parent().unwrap();
    let path = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new(bin);
    command
        .current_dir(workspace_root())
        .args([
            "lambda",
            "watch",
            "--ignore-changes",
            "-A",
            "127.0.0.1",
            "-P",
        ])
        .arg(port.to_string())
        .env("PATH", path)
        .env("SELFHEAL_WEBHOOK_SECRET", SECRET)
        .env("SELFHEAL_STATE_MACHINE_ARN", state_machine_arn)
        .env("AWS_ENDPOINT_URL", moto_url)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", ingest_support::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", ingest_support::SECRET_KEY)
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for var in [
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "SELFHEAL_WEBHOOK_SECRET_PARAM",
        "SELFHEAL_WEBHOOK_SECRET_ARN",
        "SELFHEAL_INGEST_CONCURRENCY",
        Defaults::CLUSTER_VAR,
        Defaults::ACTION_VAR,
    ] {
        command.env_remove(var);
    }
    let process = Process::spawn("cargo lambda watch", command, dir.join("cargo-lambda.log"));
    (process, port)
}

fn start_alertmanager(
    bin: &Path,
    dir: &Path,
    name: &str,
    webhook: &str,
    credentials: &str,
) -> (Process, u16) {
    let port = free_port();
    let config = dir.join(format!("{name}.yml"));
    // Everything in one group so one notification carries several alerts.
    std::fs::write(
        &config,
        format!(
            r#"route:
  receiver: selfheal
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: selfheal
    webhook_configs:
      - url: '{webhook}'
        send_resolved: false
        http_config:
          authorization:
            credentials: '{credentials}'
"#
        ),
    )
    .unwrap();
    let storage = dir.join(format!("{name}-data"));
    std::fs::create_dir_all(&storage).unwrap();
    let mut command = Command::new(bin);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", storage.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=debug");
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

async fn post_alerts(port: u16, alerts: &Value) {
    let (status, body) = http(
        "POST",
        &format!("http://127.0.0.1:{port}/api/v2/alerts"),
        &[("content-type", "application/json")],
        alerts.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// The alerts Alertmanager holds, as the webhook would carry them (it
/// computes the fingerprints), to derive the expected execution names.
async fn webhook_as_sent(port: u16) -> Value {
    let (status, body) = http(
        "GET",
        &format!("http://127.0.0.1:{port}/api/v2/alerts"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let held: Vec<Value> = serde_json::from_str(&body).unwrap();
    let alerts: Vec<Value> = held
        .iter()
        .map(|a| {
            json!({
                "status": "firing",
                "labels": a["labels"],
                "annotations": a["annotations"],
                "startsAt": a["startsAt"],
                "endsAt": a["endsAt"],
                "generatorURL": a["generatorURL"],
                "fingerprint": a["fingerprint"]
            })
        })
        .collect();
    json!({
        "receiver": "selfheal", "status": "firing", "alerts": alerts,
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "", "version": "4", "groupKey": "", "truncatedAlerts": 0
    })
}

/// The function's JSON log lines with this message.
fn function_logs(watch: &Process, message: &str) -> Vec<Value> {
    watch
        .log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v["fields"]["message"] == message)
        .collect()
}

#[tokio::test]
async fn alertmanager_webhook_starts_executions_only_with_the_right_bearer() {
    let Some(moto_bin) = moto_binary(TEST) else {
        return;
    };
    let Some(cargo_lambda) = tool(
        TEST,
        &[workspace_root().join(".venv/bin/cargo-lambda")],
        "scripts/deps/30-cargo-lambda.sh",
    ) else {
        return;
    };
    let Some(alertmanager) = alertmanager_binary() else {
        return;
    };
    build_ingest();

    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start(&moto_bin, dir.path()).await;
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk_config().await);
    let arn = create_state_machine(&sfn, "remediate-deployment").await;

    let (mut watch, watch_port) = start_cargo_lambda(&cargo_lambda, dir.path(), &moto.url, &arn);
    watch
        .wait_listening(watch_port, Duration::from_secs(120))
        .await;
    let function_url = format!("http://127.0.0.1:{watch_port}/lambda-url/ingest/");
    // Warm up (starts the function) and check the emulated Function URL path:
    // no credentials, 401.
    let (status, body) = http_with_timeout(
        "POST",
        &function_url,
        &[("content-type", "application/json")],
        "{}",
        Duration::from_secs(20 * 60),
    )
    .await;
    assert_eq!(status, 401, "{body}\n{}", watch.log_text());

    // --- Right credentials: three alerts in one notification, three executions.
    let (mut am, am_port) =
        start_alertmanager(&alertmanager, dir.path(), "good", &function_url, SECRET);
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

    let started = eventually(Duration::from_secs(90), "three executions in moto", || {
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
    let sent = webhook_as_sent(am_port).await;
    let mut want: Vec<(String, String)> =
        parse_event(sent.to_string().as_bytes(), &Defaults::default())
            .unwrap()
            .requests
            .into_iter()
            .map(|r| (r.execution_name, serde_json::to_string(&r.request).unwrap()))
            .collect();
    want.sort();
    assert_eq!(
        started.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        want.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
    );
    for ((name, input), (_, want_input)) in started.iter().zip(&want) {
        let got: RemediationRequest = serde_json::from_str(input).unwrap();
        let wanted: RemediationRequest = serde_json::from_str(want_input).unwrap();
        assert_eq!(got, wanted, "{name}");
    }
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
            let logs = function_logs(watch, "start execution");
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
        Duration::from_secs(60),
        "the 401 for the wrong bearer",
        || {
            let watch = &watch;
            async move {
                let refused: Vec<Value> = function_logs(watch, "webhook request refused")
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
    // Longer than group_wait + group_interval: any retry would have arrived.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = executions(&sfn, &arn).await;
    assert_eq!(after, started, "wrong credentials must start nothing");
    assert_eq!(function_logs(&watch, "start execution").len(), 3);

    // Neither the webhook secret, nor the wrong one Alertmanager sent, nor the
    // AWS secret key appears in any line the function or emulator logged.
    selfheal_tests::secrets::assert_no_leaks(
        "ingest behind the Function URL",
        &watch.log_text(),
        &[SECRET, "not-the-secret", ingest_support::SECRET_KEY],
    );
}
