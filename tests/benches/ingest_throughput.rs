//! Ingest benchmark (docs/alarms.md §9), one run against one moto server:
//!
//! 1. one Alertmanager webhook with 1,000 firing alerts through the ingest
//!    handler (Function URL path, bearer auth, bounded-parallel starts)
//!    → 1,000 executions, compared with
//! 2. 1,000 sequential StartExecution calls with the same SDK client;
//! 3. `parse_event` throughput for each event kind.
//!
//! `cargo bench -p selfheal-tests --bench ingest_throughput`. Needs
//! `.venv/bin/moto_server` (scripts/deps/20-python.sh), started by the
//! tests' one launcher (`selfheal_tests::tools::Moto`); without it parts 1–2
//! are skipped (SELFHEAL_REQUIRE_TOOLS turns that into a failure).
//! SELFHEAL_BENCH_CONCURRENCY overrides the handler's parallelism (default 8,
//! the function's default). Sequential starts run first, on a fresh state
//! machine, so moto's growing store can only flatter the sequential side.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use selfheal_events::{Action, Defaults, MAX_EVENT_BYTES, parse_event};
use selfheal_ingest::{Ingest, SfnStarter, WebhookSecret};
use selfheal_tests::tools::{Moto, tool_or_skip, workspace_root};
use serde_json::{Value, json};

/// A Step Functions client for `moto`, with dummy credentials (never the machine's).
fn sfn(moto: &Moto) -> aws_sdk_sfn::Client {
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "bench",
        ))
        .endpoint_url(&moto.url)
        .build();
    aws_sdk_sfn::Client::from_conf(config)
}

/// CreateStateMachine with a Pass definition; returns its ARN.
async fn create_state_machine(sfn: &aws_sdk_sfn::Client, name: &str) -> String {
    sfn.create_state_machine()
        .name(name)
        .definition(r#"{"StartAt":"Remediate","States":{"Remediate":{"Type":"Pass","End":true}}}"#)
        .role_arn("arn:aws:iam::123456789012:role/selfheal-states")
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_owned()
}

const ALERTS: usize = 1_000;
const SECRET: &str = "bench-webhook-secret";

/// A firing alert as small as a real one can be, so that 1,000 of them fit
/// in one payload under [`MAX_EVENT_BYTES`]: the action comes from
/// `SELFHEAL_DEFAULT_ACTION` (the defaults below), the target from labels.
fn small_alert(i: usize) -> Value {
    json!({
        "status": "firing",
        "labels": {"alertname": "Stuck", "namespace": "shop", "deployment": format!("app-{i}")},
        "startsAt": "2026-11-26T19:11:48.278Z",
        "fingerprint": format!("{i:016x}")
    })
}

fn webhook(alerts: Vec<Value>) -> Value {
    json!({
        "receiver": "selfheal", "status": "firing", "alerts": alerts,
        "groupLabels": {"alertname": "Stuck"}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093", "version": "4",
        "groupKey": "{}:{alertname=\"Stuck\"}", "truncatedAlerts": 0
    })
}

/// A Function URL invocation payload (format 2.0), as cargo-lambda / Lambda send it.
fn url_request(body: &str) -> Value {
    json!({
        "version": "2.0", "rawPath": "/", "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {SECRET}"), "content-type": "application/json"},
        "requestContext": {
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "Alertmanager/0.25.0"},
            "timeEpoch": 0
        },
        "body": body,
        "isBase64Encoded": false
    })
}

fn defaults() -> Defaults {
    Defaults {
        cluster: Some("prod-eks".into()),
        action: Some(Action::Restart),
        ..Defaults::default()
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

async fn count_executions(sfn: &aws_sdk_sfn::Client, arn: &str) -> usize {
    let mut count = 0;
    let mut pages = sfn
        .list_executions()
        .state_machine_arn(arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        count += page.unwrap().executions().len();
    }
    count
}

async fn starts_against_moto() {
    let Some(bin) = tool_or_skip("ingest_throughput starts", Moto::binary()) else {
        return;
    };
    let concurrency: usize = std::env::var("SELFHEAL_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let log = std::env::temp_dir().join(format!("ingest-bench-moto-{}.log", std::process::id()));
    let moto = Moto::start(&bin, &log).await;
    let sfn = sfn(&moto);

    let body = webhook((0..ALERTS).map(small_alert).collect()).to_string();
    assert!(
        body.len() <= MAX_EVENT_BYTES,
        "webhook body {} bytes",
        body.len()
    );
    let parsed = parse_event(body.as_bytes(), &defaults()).unwrap();
    assert_eq!(parsed.requests.len(), ALERTS);
    let inputs: Vec<(String, String)> = parsed
        .requests
        .iter()
        .map(|r| {
            (
                r.execution_name.clone(),
                serde_json::to_string(&r.request).unwrap(),
            )
        })
        .collect();

    // Warm-up: connection pool, credentials, moto's first-request imports.
    let warm = create_state_machine(&sfn, "warm-up").await;
    for i in 0..10 {
        sfn.start_execution()
            .state_machine_arn(&warm)
            .name(format!("warm-{i}"))
            .input("{}")
            .send()
            .await
            .unwrap();
    }

    println!(
        "starts against moto ({ALERTS} alerts, webhook body {} bytes, load average before: {})",
        body.len(),
        load_average()
    );

    // (b) sequential, same client, same names and inputs, its own state machine.
    let sequential_arn = create_state_machine(&sfn, "sequential").await;
    let moto_pid = moto.pid().to_string();
    let cpu_before = (cpu_seconds("self"), cpu_seconds(&moto_pid));
    let t = Instant::now();
    for (name, input) in &inputs {
        sfn.start_execution()
            .state_machine_arn(&sequential_arn)
            .name(name)
            .input(input)
            .send()
            .await
            .unwrap();
    }
    let sequential = t.elapsed();
    let cpu_sequential = (
        cpu_seconds("self") - cpu_before.0,
        cpu_seconds(&moto_pid) - cpu_before.1,
    );
    assert_eq!(count_executions(&sfn, &sequential_arn).await, ALERTS);

    // (a) one webhook through the handler's Function URL path.
    let webhook_arn = create_state_machine(&sfn, "webhook").await;
    let ingest = Ingest::new(
        SfnStarter::new(sfn.clone(), &webhook_arn),
        WebhookSecret::from_value(SECRET),
        defaults(),
        concurrency,
    )
    // Above the default cap of 100 on purpose: this measures the throughput
    // at SELFHEAL_MAX_ALERTS_PER_WEBHOOK's upper bound.
    .with_max_alerts(ALERTS);
    let request = url_request(&body);
    let received = request.to_string().len();
    let cpu_before = (cpu_seconds("self"), cpu_seconds(&moto_pid));
    let t = Instant::now();
    let response = ingest.handle(request, received).await.unwrap();
    let concurrent = t.elapsed();
    let cpu_webhook = (
        cpu_seconds("self") - cpu_before.0,
        cpu_seconds(&moto_pid) - cpu_before.1,
    );
    assert_eq!(response["statusCode"], 200, "{response}");
    let summary: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(summary["started"].as_array().unwrap().len(), ALERTS);
    assert_eq!(count_executions(&sfn, &webhook_arn).await, ALERTS);

    let per_s = |d: Duration| ALERTS as f64 / d.as_secs_f64();
    println!(
        "  sequential StartExecution x{ALERTS}: {:>8.2} s  ({:.0} starts/s)",
        sequential.as_secs_f64(),
        per_s(sequential)
    );
    println!(
        "  one webhook, concurrency {concurrency}:    {:>8.2} s  ({:.0} starts/s)",
        concurrent.as_secs_f64(),
        per_s(concurrent)
    );
    println!(
        "  ratio sequential / webhook:      {:>8.2}x  (load average after: {})",
        sequential.as_secs_f64() / concurrent.as_secs_f64(),
        load_average()
    );
    // Where the time goes: moto is one Python process (one core at most,
    // GIL), so once it is saturated no client-side parallelism helps.
    for (what, (own, moto_cpu), wall) in [
        ("sequential", cpu_sequential, sequential),
        ("webhook", cpu_webhook, concurrent),
    ] {
        println!(
            "  CPU during {what:<10}: this process {own:.2} s, moto {moto_cpu:.2} s ({:.0} % of one core over {:.2} s)",
            100.0 * moto_cpu / wall.as_secs_f64(),
            wall.as_secs_f64()
        );
    }
    drop(moto);
}

/// User + system CPU seconds of a process (`self` or a pid), from
/// /proc/PID/stat fields 14–15 in clock ticks (100 per second on Linux).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces: fields count from after its `)`.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After `)`: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Fixture with a `selfheal:` directive written into the alarm description,
/// so every kind parses all the way to a request.
fn fixture(path: &str) -> Value {
    let path = workspace_root()
        .join("crates/selfheal-events/tests/fixtures")
        .join(path);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

const DIRECTIVE: &str =
    "Checkout errors\nselfheal: action=rollback namespace=shop deployment=checkout container=app";

fn parse_inputs() -> Vec<(&'static str, Vec<u8>, usize)> {
    let mut eventbridge = fixture("cloudwatch/eventbridge-single-metric-alarm.json");
    eventbridge["detail"]["configuration"]["description"] = json!(DIRECTIVE);

    let mut sns = fixture("cloudwatch/sns-alarm-single-metric.json");
    let mut message: Value =
        serde_json::from_str(sns["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    message["AlarmDescription"] = json!(DIRECTIVE);
    sns["Records"][0]["Sns"]["Message"] = json!(message.to_string());

    let mut action = fixture("cloudwatch/lambda-alarm-action-metric-math.json");
    action["alarmData"]["configuration"]["description"] = json!(DIRECTIVE);

    let single = fixture("alertmanager/firing-single.json");
    let mut group = single.clone();
    let template = single["alerts"][0].clone();
    group["alerts"] = Value::Array(
        (0..100)
            .map(|i| {
                let mut alert = template.clone();
                alert["labels"]["deployment"] = json!(format!("app-{i}"));
                alert["fingerprint"] = json!(format!("{i:016x}"));
                alert
            })
            .collect(),
    );

    let manual = json!({
        "action": "pause",
        "target": {"cluster": "prod-eks", "namespace": "shop", "deployment": "checkout"},
        "reason": "manual pause during incident"
    });
    [
        ("EventBridge alarm", eventbridge, 1),
        ("SNS alarm", sns, 1),
        ("alarm action (metric math)", action, 1),
        ("Alertmanager, 1 alert", single, 1),
        ("Alertmanager, 100-alert group", group, 100),
        ("manual request", manual, 1),
    ]
    .into_iter()
    .map(|(name, value, requests)| (name, value.to_string().into_bytes(), requests))
    .collect()
}

fn parse_throughput() {
    let defaults = defaults();
    println!(
        "parse_event throughput (≥1 s per kind, load average before: {})",
        load_average()
    );
    for (name, bytes, requests) in parse_inputs() {
        let ingested = parse_event(&bytes, &defaults).unwrap();
        assert_eq!(
            ingested.requests.len(),
            requests,
            "{name}: {:?}",
            ingested.ignored
        );
        let mut iterations = 0u64;
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(1) {
            for _ in 0..16 {
                let _ = black_box(parse_event(black_box(&bytes), &defaults).unwrap());
            }
            iterations += 16;
        }
        let per_s = iterations as f64 / t.elapsed().as_secs_f64();
        println!(
            "  {name:<30} {:>6} B  {:>10.0} events/s  {:>10.0} requests/s",
            bytes.len(),
            per_s,
            per_s * requests as f64
        );
    }
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench`-less args too;
    // only measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("ingest_throughput: run with `cargo bench` to measure");
        return;
    }
    parse_throughput();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(starts_against_moto());
}
