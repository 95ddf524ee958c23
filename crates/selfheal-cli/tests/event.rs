//! `selfheal event FILE` over the recorded event payloads (copies in
//! crates/selfheal-events/tests/fixtures/) and variants derived from them:
//! the printed array is exactly what `ingest` would start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use selfheal_events::{Defaults, parse_event};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_selfheal");

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../selfheal-events/tests/fixtures")
}

/// Run `selfheal event <file>` with only the given SELFHEAL_DEFAULT_* set.
fn event(file: &Path, env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("event")
        .arg(file)
        .env_remove(Defaults::CLUSTER_VAR)
        .env_remove(Defaults::ACTION_VAR)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Exit 0 and the printed array.
fn ok(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&output.stdout).unwrap()
}

/// Exit 1 because a firing alert was rejected, the array still printed.
fn rejected(output: &Output) -> Vec<Value> {
    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&output.stdout).unwrap()
}

/// Exit non-zero, nothing on stdout, one `error:` line on stderr; returns it.
fn refused(output: &Output) -> String {
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "{:?}", output.stdout);
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr.trim_end().to_owned()
}

/// What the library says ingest would start, as JSON.
fn expected(bytes: &[u8], defaults: &Defaults) -> Vec<Value> {
    let ingested = parse_event(bytes, defaults).unwrap();
    ingested
        .requests
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect()
}

fn write_temp(dir: &tempfile::TempDir, name: &str, value: &Value) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path
}

#[test]
fn every_fixture_prints_what_ingest_would_start() {
    let defaults = Defaults {
        cluster: Some("prod-eks".into()),
        action: Some(selfheal_events::Action::Rollback),
        ..Defaults::default()
    };
    let env = [
        (Defaults::CLUSTER_VAR, "prod-eks"),
        (Defaults::ACTION_VAR, "rollback"),
    ];
    let files = [
        "alertmanager/firing-single.json",
        "alertmanager/resolved-single.json",
        "cloudwatch/eventbridge-ok-from-alarm.json",
        "cloudwatch/eventbridge-single-metric-alarm.json",
        "cloudwatch/lambda-alarm-action-metric-math.json",
        "cloudwatch/sns-alarm-single-metric.json",
    ];
    for file in files {
        let path = fixtures().join(file);
        let bytes = std::fs::read(&path).unwrap();
        for (env, defaults) in [(&env[..], &defaults), (&[][..], &Defaults::default())] {
            let output = event(&path, env, None);
            // Exit 1 exactly when the library rejects a firing alert.
            let any_rejected = parse_event(&bytes, defaults)
                .unwrap()
                .ignored
                .iter()
                .any(|i| i.rejection().is_some());
            let printed = if any_rejected {
                rejected(&output)
            } else {
                ok(&output)
            };
            assert_eq!(printed, expected(&bytes, defaults), "{file} {env:?}");
        }
    }
}

#[test]
fn alertmanager_firing_with_default_action_names_the_execution() {
    let path = fixtures().join("alertmanager/firing-single.json");
    let env = [
        (Defaults::ACTION_VAR, "rollback"),
        (Defaults::CLUSTER_VAR, "prod-eks"),
    ];
    let printed = ok(&event(&path, &env, None));
    assert_eq!(printed.len(), 1);
    let name = printed[0]["executionName"].as_str().unwrap();
    assert!(name.starts_with("rollback-x-"), "{name}");
    assert!(name.len() <= 80);
    assert!(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    assert_eq!(
        printed[0]["request"],
        json!({
            "action": "rollback",
            "target": {"cluster": "prod-eks", "namespace": "default", "deployment": "x", "container": "app"},
            "reason": "Alertmanager DeploymentHalfBricked firing: Deployment default/x container app is crashlooping",
            "dryRun": false,
            "force": false,
            "scope": "container",
            "approval": false,
            "alarm": {"source": "alertmanager", "name": "DeploymentHalfBricked", "id": "928e0cea74916f65"}
        })
    );
    // Deterministic: the same file gives the same name (that is what dedupes re-deliveries).
    let again = ok(&event(&path, &env, None));
    assert_eq!(again, printed);
}

#[test]
fn ok_resolved_and_untargeted_alarms_print_an_empty_array() {
    // Each file with the check of its exit status ([`ok`] or [`rejected`]).
    type ExitCheck = fn(&Output) -> Vec<Value>;
    let cases: [(&str, ExitCheck); 4] = [
        // Not firing: nothing to do, exit 0.
        ("alertmanager/resolved-single.json", ok),
        ("cloudwatch/eventbridge-ok-from-alarm.json", ok),
        // Firing but unusable: the alarm needs fixing, so exit 1 (CI can check
        // alarm definitions with `selfheal event`).
        // No action anywhere: rejected, never guessed.
        ("alertmanager/firing-single.json", rejected),
        // EC2 dimensions only: no namespace to act on.
        ("cloudwatch/eventbridge-single-metric-alarm.json", rejected),
    ];
    for (file, exit_checked) in cases {
        let output = event(&fixtures().join(file), &[], None);
        assert_eq!(exit_checked(&output), Vec::<Value>::new(), "{file}");
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "[]");
    }
}

/// stderr as lines (it is not a terminal here, so no summary line).
fn stderr_lines(output: &Output) -> Vec<String> {
    String::from_utf8(output.stderr.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn alerts_that_start_nothing_say_why_on_stderr_even_when_piped() {
    // A firing alert without an action anywhere: stdout is exactly `[]`, and
    // stderr has one line naming the alert and the missing field.
    let output = event(
        &fixtures().join("alertmanager/firing-single.json"),
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8(output.stdout.clone()).unwrap(), "[]\n");
    assert_eq!(
        stderr_lines(&output),
        [
            "rejected DeploymentHalfBricked (928e0cea74916f65): missing action: no `action=` in a selfheal directive and SELFHEAL_DEFAULT_ACTION is unset; an action is never guessed"
        ]
    );

    // Firing CloudWatch alarm with a default action but EC2 dimensions only:
    // the missing field is the namespace.
    let output = event(
        &fixtures().join("cloudwatch/eventbridge-single-metric-alarm.json"),
        &[(Defaults::ACTION_VAR, "rollback")],
        None,
    );
    assert_eq!(rejected(&output), Vec::<Value>::new());
    let lines = stderr_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "rejected ServerCpuTooHigh (arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh): missing target.namespace: "
        ),
        "{lines:?}"
    );

    // Not firing: `ignored`, with the state.
    let output = event(
        &fixtures().join("alertmanager/resolved-single.json"),
        &[],
        None,
    );
    assert_eq!(ok(&output), Vec::<Value>::new());
    assert_eq!(
        stderr_lines(&output),
        ["ignored ManualTest (26408e0ac635ef00): state is resolved, not firing"]
    );

    // A directive keyword in the wrong case is a rejection that says so.
    let dir = tempfile::tempdir().unwrap();
    let mut webhook: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("alertmanager/firing-single.json")).unwrap(),
    )
    .unwrap();
    webhook["alerts"][0]["annotations"]["selfheal"] = json!("Selfheal: action=restart");
    let path = write_temp(&dir, "uppercase.json", &webhook);
    let output = event(&path, &[], None);
    assert_eq!(rejected(&output), Vec::<Value>::new());
    let lines = stderr_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("must be lowercase `selfheal:`"),
        "{lines:?}"
    );

    // Everything started: stdout carries the array, stderr stays empty.
    let output = event(
        &fixtures().join("alertmanager/firing-single.json"),
        &[(Defaults::ACTION_VAR, "rollback")],
        None,
    );
    assert_eq!(ok(&output).len(), 1);
    assert!(output.stderr.is_empty(), "{:?}", stderr_lines(&output));
}

#[test]
fn derived_events_with_directives_and_grouped_alerts() {
    let dir = tempfile::tempdir().unwrap();

    // SNS-wrapped alarm whose description carries the directive.
    let mut sns: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("cloudwatch/sns-alarm-single-metric.json")).unwrap(),
    )
    .unwrap();
    let mut message: Value =
        serde_json::from_str(sns["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    message["AlarmDescription"] = json!(
        "Checkout 5xx\nselfheal: action=restart cluster=c1 namespace=shop deployment=checkout"
    );
    sns["Records"][0]["Sns"]["Message"] = json!(message.to_string());
    let path = write_temp(&dir, "sns.json", &sns);
    let printed = ok(&event(&path, &[], None));
    assert_eq!(printed.len(), 1);
    assert_eq!(printed[0]["request"]["action"], "restart");
    assert_eq!(
        printed[0]["request"]["target"],
        json!({"cluster": "c1", "namespace": "shop", "deployment": "checkout"})
    );
    assert_eq!(printed[0]["request"]["alarm"]["source"], "cloudwatch");

    // A grouped webhook: two firing (one pod-only), one resolved.
    let mut webhook: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("alertmanager/firing-single.json")).unwrap(),
    )
    .unwrap();
    let alert = |status: &str, labels: Value, fingerprint: &str| {
        json!({
            "status": status, "labels": labels,
            "annotations": {"selfheal": "action=restart", "value": "9", "threshold": "3"},
            "startsAt": "2026-11-26T19:11:48.278Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "", "fingerprint": fingerprint
        })
    };
    webhook["alerts"] = json!([
        alert(
            "firing",
            json!({"alertname": "A", "namespace": "shop", "deployment": "cart"}),
            "0000000000000001"
        ),
        alert(
            "resolved",
            json!({"alertname": "B", "namespace": "shop", "deployment": "web"}),
            "0000000000000002"
        ),
        alert(
            "firing",
            json!({"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "web-7d9f-abcde", "container": "app"}),
            "0000000000000003"
        ),
    ]);
    let path = write_temp(&dir, "grouped.json", &webhook);
    let output = event(&path, &[(Defaults::CLUSTER_VAR, "prod-eks")], None);
    let printed = ok(&output);
    assert_eq!(printed.len(), 2);
    // The resolved one is the only line on stderr.
    assert_eq!(
        stderr_lines(&output),
        ["ignored B (0000000000000002): state is resolved, not firing"]
    );
    assert_eq!(printed[0]["request"]["target"]["deployment"], "cart");
    assert_eq!(printed[0]["request"]["target"]["cluster"], "prod-eks");
    assert_eq!(printed[0]["request"]["alarm"]["impactScore"], 3.0);
    assert_eq!(printed[1]["request"]["target"]["pod"], "web-7d9f-abcde");
    assert_ne!(printed[0]["executionName"], printed[1]["executionName"]);

    // The same webhook on stdin gives the same answer.
    let bytes = std::fs::read(&path).unwrap();
    let from_stdin = ok(&event(
        Path::new("-"),
        &[(Defaults::CLUSTER_VAR, "prod-eks")],
        Some(&bytes),
    ));
    assert_eq!(from_stdin, printed);

    // A manual request passes through.
    let manual = json!({"action": "pause", "target": {"namespace": "shop", "deployment": "web"}, "reason": "by hand"});
    let path = write_temp(&dir, "manual.json", &manual);
    let printed = ok(&event(&path, &[(Defaults::ACTION_VAR, "rollback")], None));
    assert_eq!(printed.len(), 1);
    assert_eq!(printed[0]["request"]["action"], "pause");
    assert_eq!(printed[0]["request"]["reason"], "by hand");
    assert!(printed[0]["request"].get("alarm").is_none());
}

#[test]
fn unsupported_input_exits_non_zero_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let oversized = format!(r#"{{"pad":"{}"}}"#, "x".repeat(300 * 1024));
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            write("text.txt", b"hello\nworld\n"),
            "error: event is not valid JSON",
        ),
        (write("empty.json", b""), "error: event is not valid JSON"),
        (
            write("other.json", br#"{"hello": "world"}"#),
            "error: unsupported event: not a CloudWatch alarm, Alertmanager webhook or remediation request",
        ),
        (
            write("array.json", b"[1, 2]"),
            "error: unsupported event: expected a JSON object, got an array",
        ),
        (
            write(
                "sqs.json",
                br#"{"Records": [{"eventSource": "aws:sqs", "EventSource": "aws:sqs"}]}"#,
            ),
            "error: unsupported event: `Records` event from aws:sqs",
        ),
        (
            write(
                "ec2.json",
                br#"{"detail-type": "EC2 Instance State-change Notification", "detail": {}}"#,
            ),
            "error: unsupported event: EventBridge detail-type",
        ),
        (
            write(
                "bad-manual.json",
                br#"{"action": "nuke", "target": {"namespace": "shop"}}"#,
            ),
            "error: invalid manual request event",
        ),
        (
            write("big.json", oversized.as_bytes()),
            "error: event is 307210 bytes; the limit is 262144 bytes",
        ),
        (dir.path().join("missing.json"), "error: cannot read event"),
    ];
    for (path, prefix) in cases {
        let line = refused(&event(&path, &[], None));
        assert!(line.starts_with(prefix), "{}: {line}", path.display());
    }
    // An unusable default is refused too, naming the variable.
    let line = refused(&event(
        &fixtures().join("alertmanager/firing-single.json"),
        &[(Defaults::ACTION_VAR, "nuke")],
        None,
    ));
    assert_eq!(
        line,
        "error: invalid value \"nuke\" for SELFHEAL_DEFAULT_ACTION: want rollback, pause, resume or restart"
    );
}
