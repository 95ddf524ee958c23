//! How soon selfheal learns that a rollout finished (issue 14, item 2;
//! docs/benchmarks.md): on the test API server the rollout's pods become
//! ready at a scripted moment, and the bench measures the delay from the
//! controller's final status write (the first moment the stored Deployment
//! satisfies `kubectl rollout status`) to
//!
//! (a) `selfheal status --watch` exiting (the release binary, as a process);
//! (b) remediate-deployment's verify loop leaving `CheckRollout`: the real
//!     definition in the local ASL interpreter (tests/asl/runner.mjs) whose
//!     Verify task runs the real `handle_verify` in this process against the
//!     test server (the notify invocation that follows is the moment).
//!
//! Both are set beside the polling design they replace (one look per verify
//! call, `Wait` 10 s before each: a finish is seen 5 s late on average, up
//! to 10 s), and (b) counts the state transitions of each execution,
//! against what the polling loop takes for the same rollout.
//!
//! Environment: `SELFHEAL_BENCH_RUNS` (default 8, cycling the scripted
//! moments 1, 4, 9 and 17 s after the watch starts; 17 s crosses a window),
//! `SELFHEAL_BENCH_CLI` (default `$CARGO_TARGET_DIR`, else target, then
//! `release/selfheal`: `cargo build --release -p selfheal-cli` first).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lambda_runtime::{Context, LambdaEvent};
use selfheal_lambda::{AppState, FunctionConfig, handle_verify};
use selfheal_tests::asl::{Runner, find_node, serve_functions};
use selfheal_tests::tools::workspace_root;
use selfheal_testserver::{KubeconfigFile, TestServer, fixtures};
use serde_json::{Value, json};

/// When the pods become ready, after the watch has started.
const MOMENTS: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(4),
    Duration::from_secs(9),
    Duration::from_secs(17),
];

/// The polling design: `Wait` this long before each single look.
const POLL_INTERVAL: Duration = Duration::from_secs(10);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cli_binary() -> PathBuf {
    std::env::var_os("SELFHEAL_BENCH_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| workspace_root().join("target"), PathBuf::from)
                .join("release/selfheal")
        })
}

/// A server with `shop/checkout` mid-rollout (controller stopped) and a
/// kubeconfig for it.
async fn waiting_server() -> (TestServer, KubeconfigFile) {
    let server = TestServer::start().await.unwrap();
    fixtures::rollout_waiting(&server).await;
    let kubeconfig = server.kubeconfig_file().unwrap();
    (server, kubeconfig)
}

/// Waits until a watch on deployments reached the server, then `moment`
/// more, lets the controller finish the rollout, and returns the instant
/// its final status write landed (polled every millisecond).
async fn finish_rollout(server: &TestServer, moment: Duration) -> Instant {
    let watching = || {
        server
            .requests()
            .iter()
            .any(|r| r.query.get("watch").is_some_and(|w| w == "true"))
    };
    while !watching() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(moment).await;
    server.controller().pause_automatic(false);
    loop {
        let live = server.deployment("shop", "checkout").unwrap();
        if selfheal_core::rollout_status(&live).is_done() {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// (a): `selfheal status --watch` from the write to its exit.
async fn cli_delay(cli: &PathBuf, moment: Duration) -> Duration {
    let (server, kubeconfig) = waiting_server().await;
    let mut child = Command::new(cli)
        .args([
            "status",
            "-n",
            "shop",
            "checkout",
            "--kubeconfig",
            kubeconfig.as_str(),
            "--watch",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let written = finish_rollout(&server, moment).await;
    let (status, exited) = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        (status, Instant::now())
    })
    .await
    .unwrap();
    assert!(status.success(), "selfheal status --watch: {status}");
    exited.saturating_duration_since(written)
}

/// What the stand-in functions share with the bench: the verify state of
/// the current run, and when the execution reached ReportResult.
#[derive(Default)]
struct Stage {
    state: Option<Arc<AppState>>,
    reported: Option<Instant>,
}

/// The rollback's outcome as the real handler shapes it; the bench seeded
/// the rollout it started.
fn applied(target: &Value) -> Value {
    json!({"status": "applied", "action": "rollback", "target": target,
           "message": "rolled back deployment shop/checkout: container api from registry.example/shop/api:1.2.0 to registry.example/shop/api:1.1.0",
           "changes": [{"container": "api", "from": "registry.example/shop/api:1.2.0", "to": "registry.example/shop/api:1.1.0"}]})
}

/// (b): one execution; the delay from the write to ReportResult, and the
/// states it went through.
async fn state_machine_delay(
    runner: &Runner,
    stage: &Arc<Mutex<Stage>>,
    run: usize,
    moment: Duration,
) -> (Duration, Vec<String>) {
    let (server, kubeconfig) = waiting_server().await;
    let path = kubeconfig.as_str().to_owned();
    let config =
        FunctionConfig::from_lookup(|k| (k == "SELFHEAL_KUBECONFIG").then(|| path.clone()))
            .unwrap();
    *stage.lock().unwrap() = Stage {
        state: Some(Arc::new(AppState::new(config).await.unwrap())),
        reported: None,
    };
    let request = json!({"action": "rollback", "reason": "verify_watch bench",
        "target": {"namespace": "shop", "deployment": "checkout", "container": "api"}});
    let knobs = json!({"VerifyIntervalSeconds": "1", "VerifyTimeoutSeconds": "660"});
    let name = format!("bench-{run}");
    let (result, written) = tokio::join!(
        runner.run_with("remediate-deployment", &name, &request, &knobs),
        finish_rollout(&server, moment)
    );
    assert_eq!(result["status"], "SUCCEEDED", "{result:#}");
    let reported = stage.lock().unwrap().reported.unwrap();
    let states = result["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    (reported.saturating_duration_since(written), states)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn summary(delays: &mut [Duration]) -> String {
    delays.sort();
    let mean = delays.iter().sum::<Duration>() / delays.len() as u32;
    format!(
        "median {}, mean {}, max {} ({} runs)",
        ms(delays[delays.len() / 2]),
        ms(mean),
        ms(delays[delays.len() - 1]),
        delays.len()
    )
}

/// The polling loop's transitions for a rollout that finishes `d` after
/// StartVerify: StartVerify, then Wait, Verify, CountVerify, CheckRollout
/// per look, one look every 10 s until the first after `d`.
fn polling_loop_transitions(d: Duration) -> usize {
    let looks = (d.as_secs_f64() / POLL_INTERVAL.as_secs_f64()).floor() as usize + 1;
    1 + 4 * looks
}

/// The watching loop's: StartVerify, then Verify, CountVerify, CheckRollout
/// per 15 s window and a WaitForRollout (1 s) between windows.
fn watching_loop_transitions(d: Duration) -> usize {
    let windows = (d.as_secs_f64() / 16.0).floor() as usize + 1;
    1 + 3 * windows + (windows - 1)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let runs = env_usize("SELFHEAL_BENCH_RUNS", 8);
    let moments: Vec<Duration> = (0..runs).map(|i| MOMENTS[i % MOMENTS.len()]).collect();
    let cli = cli_binary();
    assert!(
        cli.is_file(),
        "{} missing: cargo build --release -p selfheal-cli (or set SELFHEAL_BENCH_CLI)",
        cli.display()
    );
    let node = find_node().unwrap_or_else(|e| panic!("{e}"));

    let mut cli_delays = Vec::new();
    for (i, moment) in moments.iter().enumerate() {
        let d = cli_delay(&cli, *moment).await;
        eprintln!(
            "(a) run {i}: ready {moment:?} after the watch started, exit {}",
            ms(d)
        );
        cli_delays.push(d);
    }

    let stage: Arc<Mutex<Stage>> = Arc::default();
    let functions = stage.clone();
    let url = serve_functions(Arc::new(move |name: String, payload: Value| {
        let stage = functions.clone();
        Box::pin(async move {
            match name.as_str() {
                "rollback" => Ok(applied(&payload["target"])),
                "verify" => {
                    let state = stage.lock().unwrap().state.clone().unwrap();
                    let event = LambdaEvent::new(payload, Context::default());
                    handle_verify(&state, event)
                        .await
                        .map(|out| serde_json::to_value(out).unwrap())
                        .map_err(|e| (e.error_type(), e.to_string()))
                }
                "notify" if payload["event"] == "completed" => {
                    stage
                        .lock()
                        .unwrap()
                        .reported
                        .get_or_insert_with(Instant::now);
                    Ok(json!({"deploymentHealth": {}}))
                }
                _ => Ok(json!({})),
            }
        })
    }))
    .await;
    let runner = Runner::start(&node, &url, "verify_watch");
    let mut machine_delays = Vec::new();
    let mut transitions = Vec::new();
    for (i, moment) in moments.iter().enumerate() {
        let (d, states) = state_machine_delay(&runner, &stage, i, *moment).await;
        let start = states.iter().position(|s| s == "StartVerify").unwrap();
        let end = states.iter().rposition(|s| s == "CheckRollout").unwrap();
        let in_loop = end - start + 1;
        eprintln!(
            "(b) run {i}: ready {moment:?} after the watch started, left CheckRollout {}, {} transitions ({in_loop} in the verify loop)",
            ms(d),
            states.len()
        );
        machine_delays.push(d);
        transitions.push((*moment, states.len(), in_loop));
    }

    println!(
        "\nDelay from the controller's final status write to knowing it (scripted moments {MOMENTS:?}):"
    );
    println!(
        "  (a) selfheal status --watch exits:  {}",
        summary(&mut cli_delays)
    );
    println!(
        "  (b) verify loop leaves CheckRollout: {}",
        summary(&mut machine_delays)
    );
    println!("  polling design (Wait 10 s, one look): expected mean 5000 ms, max 10000 ms");
    println!(
        "\nState transitions per remediation (rollback, rollout done `ready` after the watch started):"
    );
    println!(
        "  ready   watching (measured: total / loop)   polling (same fixed states: total / loop)   ratio"
    );
    for (moment, total, in_loop) in &transitions {
        let fixed = total - in_loop;
        let polling = polling_loop_transitions(*moment);
        println!(
            "  {:>4} s  {total:>3} / {in_loop:>2}                              {:>3} / {polling:>2}                                   {:.2}x (loop {:.2}x)",
            moment.as_secs(),
            fixed + polling,
            (fixed + polling) as f64 / *total as f64,
            polling as f64 / *in_loop as f64
        );
        if *in_loop != watching_loop_transitions(*moment) {
            println!(
                "        (the watching model says {} in the loop)",
                watching_loop_transitions(*moment)
            );
        }
    }
    let fixed = transitions[0].1 - transitions[0].2;
    println!("  longer rollouts (the same models, {fixed} fixed states):");
    for secs in [30u64, 60, 120, 600] {
        let d = Duration::from_secs(secs);
        let (w, p) = (watching_loop_transitions(d), polling_loop_transitions(d));
        println!(
            "  {secs:>4} s  {:>3} / {w:>2}   vs   {:>3} / {p:>2}: {:.2}x (loop {:.2}x)",
            fixed + w,
            fixed + p,
            (fixed + p) as f64 / (fixed + w) as f64,
            p as f64 / w as f64
        );
    }
}
