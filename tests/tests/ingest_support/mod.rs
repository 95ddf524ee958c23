//! Helpers shared by ingest_moto.rs and ingest_alertmanager.rs: tools from
//! the install scripts (skipped when absent unless SELFHEAL_REQUIRE_TOOLS is
//! set), moto with a real state machine, plain HTTP, processes killed on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use bytes::Bytes;
use selfheal_tests::tools::{self, tool_or_skip};
#[allow(unused_imports)] // each test uses some of them
pub use selfheal_tests::tools::{free_port, workspace_root};
use serde_json::{Value, json};

#[path = "../aws_common/mod.rs"]
mod aws_common;
#[allow(unused_imports)] // each test uses some of them
pub use aws_common::{ACCESS_KEY, REGION, SECRET_KEY};
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/selfheal-states";
/// A Pass state: executions exist and keep their input, nothing else runs.
pub const PASS_DEFINITION: &str =
    r#"{"StartAt":"Remediate","States":{"Remediate":{"Type":"Pass","End":true}}}"#;

/// The first existing path among `candidates`; otherwise `None` after a SKIP
/// line, or a panic when SELFHEAL_REQUIRE_TOOLS is set.
pub fn tool(test: &str, candidates: &[PathBuf], install: &str) -> Option<PathBuf> {
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Some(found.clone());
    }
    let listed: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    if std::env::var_os("SELFHEAL_REQUIRE_TOOLS").is_some() {
        panic!(
            "{test}: none of {} exists and SELFHEAL_REQUIRE_TOOLS is set: run {install}",
            listed.join(", ")
        );
    }
    eprintln!(
        "SKIP {test}: none of {} exists (run {install})",
        listed.join(", ")
    );
    None
}

pub fn moto_binary(test: &str) -> Option<PathBuf> {
    tool_or_skip(test, tools::Moto::binary())
}

/// A child process in its own process group, killed with its children on drop.
#[derive(Debug)]
pub struct Process {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Process {
    /// Spawn `command` with stdout and stderr appended to `log`.
    pub fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> Process {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Process { name, child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until something listens on `port`; panic with the log if the
    /// process exits first or `timeout` passes.
    pub async fn wait_listening(&mut self, port: u16, timeout: Duration) {
        tools::wait_child_listening(&mut self.child, &self.log, port, timeout, self.name).await;
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        tools::kill_group(&mut self.child);
    }
}

/// The shared moto launcher ([`tools::Moto`]) with its log in `dir/moto.log`,
/// plus an SDK config pointed at it.
#[derive(Debug)]
pub struct Moto(tools::Moto);

impl std::ops::Deref for Moto {
    type Target = tools::Moto;

    fn deref(&self) -> &tools::Moto {
        &self.0
    }
}

impl Moto {
    pub async fn start(bin: &Path, dir: &Path) -> Moto {
        Moto(tools::Moto::start(bin, &dir.join("moto.log")).await)
    }

    /// SDK config with fixed dummy credentials (never the machine's), pointed at moto.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_common::sdk_config(Some(&self.url)).await
    }
}

/// CreateStateMachine with a Pass definition; returns its ARN.
pub async fn create_state_machine(sfn: &aws_sdk_sfn::Client, name: &str) -> String {
    sfn.create_state_machine()
        .name(name)
        .definition(PASS_DEFINITION)
        .role_arn(ROLE_ARN)
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_owned()
}

/// Every execution of `state_machine_arn`: name → input (DescribeExecution), sorted by name.
pub async fn executions(
    sfn: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pages = sfn
        .list_executions()
        .state_machine_arn(state_machine_arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for item in page.unwrap().executions() {
            let described = sfn
                .describe_execution()
                .execution_arn(item.execution_arn())
                .send()
                .await
                .unwrap();
            assert_eq!(described.name(), Some(item.name()));
            out.push((
                item.name().to_owned(),
                described.input().unwrap_or_default().to_owned(),
            ));
        }
    }
    out.sort();
    out
}

/// An answer of [`tools::http_request`] as status and body text.
pub fn as_text((status, _, bytes): (u16, http::HeaderMap, Bytes)) -> (u16, String) {
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// How long a plain HTTP call to Alertmanager may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(120);

/// Poll `check` every 250 ms until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An Alertmanager webhook (version 4) carrying `alerts`.
pub fn webhook(alerts: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({
        "receiver": "selfheal", "status": "firing", "alerts": alerts,
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093", "version": "4",
        "groupKey": "{}:{alertname=\"KubeDeploymentRolloutStuck\"}", "truncatedAlerts": 0
    })
}

/// A `KubeDeploymentRolloutStuck` alert for `shop/<deployment>` on cluster
/// `prod-eks` as Alertmanager sends it (`status`: firing or resolved).
pub fn stuck_alert(deployment: &str, fingerprint: &str, status: &str, annotations: Value) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": "KubeDeploymentRolloutStuck", "namespace": "shop", "deployment": deployment, "cluster": "prod-eks"},
        "annotations": annotations,
        "startsAt": "2026-11-26T19:11:48.278Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": fingerprint
    })
}

/// (status, body) of the ingest handler's Function URL response to `body`
/// sent with the bearer `secret`.
pub async fn post_url<S: selfheal_ingest::StartExecution>(
    ingest: &selfheal_ingest::Ingest<S>,
    body: &Value,
    secret: &str,
) -> (i64, Value) {
    let request = url_request(body, &format!("Bearer {secret}"));
    let received = request.to_string().len();
    let response = ingest.handle(request, received).await.unwrap();
    (
        response["statusCode"].as_i64().unwrap(),
        serde_json::from_str(response["body"].as_str().unwrap()).unwrap(),
    )
}

/// A Function URL invocation payload (format 2.0) carrying `body`.
pub fn url_request(body: &serde_json::Value, authorization: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "2.0", "rawPath": "/", "rawQueryString": "",
        "headers": {"authorization": authorization, "content-type": "application/json"},
        "requestContext": {
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "Alertmanager/0.25.0"},
            "timeEpoch": 0
        },
        "body": body.to_string(),
        "isBase64Encoded": false
    })
}

/// Alertmanager (Debian `prometheus-alertmanager`, scripts/deps/40-alertmanager.sh),
/// or `SELFHEAL_ALERTMANAGER`.
pub fn alertmanager_binary(test: &str) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("SELFHEAL_ALERTMANAGER") {
        candidates.push(PathBuf::from(path));
    }
    candidates.extend([
        workspace_root().join(".tools/bin/alertmanager"),
        PathBuf::from("/usr/bin/prometheus-alertmanager"),
    ]);
    tool(test, &candidates, "scripts/deps/40-alertmanager.sh")
}

/// `amtool`, shipped next to Alertmanager by the Debian package. Required
/// with SELFHEAL_REQUIRE_TOOLS; otherwise the config check is skipped with a note.
pub fn amtool_binary(test: &str, alertmanager: &Path) -> Option<PathBuf> {
    let mut candidates = vec![workspace_root().join(".tools/bin/amtool")];
    if let Some(dir) = alertmanager.parent() {
        candidates.push(dir.join("amtool"));
    }
    if let Ok(real) = std::fs::canonicalize(alertmanager)
        && let Some(dir) = real.parent()
    {
        candidates.push(dir.join("amtool"));
    }
    candidates.push(PathBuf::from("/usr/bin/amtool"));
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Some(found.clone());
    }
    assert!(
        std::env::var_os("SELFHEAL_REQUIRE_TOOLS").is_none(),
        "{test}: no amtool among {candidates:?} and SELFHEAL_REQUIRE_TOOLS is set: run scripts/deps/40-alertmanager.sh"
    );
    eprintln!("NOTE {test}: no amtool among {candidates:?}; the config is not checked with amtool");
    None
}

/// Alertmanager serving on 127.0.0.1:`port` with `config`, its data in
/// `storage` (created here), without clustering, logging at debug level.
pub fn alertmanager_command(bin: &Path, config: &Path, storage: &Path, port: u16) -> Command {
    std::fs::create_dir_all(storage).unwrap();
    let mut command = Command::new(bin);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", storage.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=debug");
    command
}

/// `amtool check-config FILE` must accept `config`.
pub fn amtool_check(amtool: &Path, config: &Path, what: &str) {
    let checked = Command::new(amtool)
        .arg("check-config")
        .arg(config)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", amtool.display()));
    assert!(
        checked.status.success(),
        "amtool check-config rejects {what}:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// The one ```yaml block of docs/alarms.md whose first line is `marker`
/// (tests run documented configuration as pasted). Panics if it is missing
/// or not unique.
pub fn documented_yaml_block(marker: &str) -> String {
    let path = workspace_root().join("docs/alarms.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut blocks = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("```yaml\n") {
        let body = &rest[start + "```yaml\n".len()..];
        let end = body
            .find("\n```")
            .unwrap_or_else(|| panic!("unterminated ```yaml block in {}", path.display()));
        blocks.push(&body[..=end]);
        rest = &body[end + "\n```".len()..];
    }
    let found: Vec<&str> = blocks
        .into_iter()
        .filter(|b| b.lines().next() == Some(marker))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "docs/alarms.md must hold exactly one ```yaml block whose first line is {marker:?}"
    );
    found[0].to_owned()
}

/// POST `alerts` to Alertmanager's `/api/v2/alerts` on `port`.
pub async fn post_alerts(port: u16, alerts: &Value) {
    let url = format!("http://127.0.0.1:{port}/api/v2/alerts");
    let headers = [("content-type", "application/json")];
    let answer = tools::http_request("POST", &url, &headers, alerts.to_string(), HTTP_TIMEOUT);
    let (status, body) = as_text(answer.await);
    assert_eq!(status, 200, "{body}");
}

/// The alerts Alertmanager holds, as the webhook would carry them (it
/// computes the fingerprints), to derive the expected execution names.
pub async fn webhook_as_sent(port: u16) -> Value {
    let url = format!("http://127.0.0.1:{port}/api/v2/alerts");
    let (status, body) = as_text(tools::http_request("GET", &url, &[], "", HTTP_TIMEOUT).await);
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

/// Names and exact input JSON that ingest must start for `event`, sorted by name.
pub fn expected_starts(
    event: &Value,
    defaults: &selfheal_events::Defaults,
) -> Vec<(String, String)> {
    let mut want: Vec<(String, String)> =
        selfheal_events::parse_event(event.to_string().as_bytes(), defaults)
            .unwrap()
            .requests
            .into_iter()
            .map(|r| (r.execution_name, serde_json::to_string(&r.request).unwrap()))
            .collect();
    want.sort();
    want
}

/// `started` (from [`executions`]) holds exactly the names of `want` (from
/// [`expected_starts`]), each with an equal request.
pub fn assert_same_starts(started: &[(String, String)], want: &[(String, String)]) {
    let names = |list: &[(String, String)]| list.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(started), names(want));
    for ((name, input), (_, want_input)) in started.iter().zip(want) {
        let got: selfheal_events::RemediationRequest = serde_json::from_str(input).unwrap();
        let wanted: selfheal_events::RemediationRequest = serde_json::from_str(want_input).unwrap();
        assert_eq!(got, wanted, "{name}");
    }
}
