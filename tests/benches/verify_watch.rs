//! How soon selfheal learns that a rollout finished (docs/benchmarks.md): on
//! the test API server the rollout's pods become ready at a scripted moment,
//! and the bench measures the delay from the controller's final status write
//! (the first moment the stored Deployment satisfies `kubectl rollout
//! status`) to
//!
//! (a) `selfheal status --watch` exiting (the release binary, as a process);
//! (b) remediate-deployment's verify loop leaving `CheckRollout`: the real
//!     definition in the local ASL interpreter (tests/asl/runner.mjs) whose
//!     Verify task runs the real `handle_verify` in this process against the
//!     test server (the notify invocation that follows is the moment).
//!
//! Both are set beside the polling design they replace (one look per verify
//! call, `Wait` 10 s before each: a finish is seen 5 s late on average, up
//! to 10 s).
//!
//! (c) State transitions per remediation, old and new design side by side,
//! measured from the interpreter's execution history: the same rollback,
//! its rollout done 1 s to 10 min after the rollback's answer, run by the
//! current definition and by the polling one it replaced
//! (tests/fixtures/statemachines/remediate-deployment-polling.asl.json),
//! both against the test server through the real `handle_verify` (for the
//! polling design one read per call, as its verify did: the handler with a
//! spent budget). Time runs ten times faster for both, so ten minutes take
//! one: the polling `Wait` is 1 s instead of 10 s and the watch budget 66 s
//! instead of 660 s, which keeps the number of looks and windows of each
//! rollout the same (the polling design's looks drift a little later with
//! each call's latency at this pace, so it may need a look fewer than in
//! real time: the ratio errs in its favour). The (b) runs give the same
//! count at real time for the short rollouts.
//!
//! Environment: `SELFHEAL_BENCH_RUNS` (default 8, cycling the scripted
//! moments 1, 4, 9 and 17 s after the watch starts, for (a) and (b)),
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

/// (c): how long after the rollback's answer the rollout is done.
const DURATIONS: [Duration; 7] = [
    Duration::from_secs(1),
    Duration::from_secs(9),
    Duration::from_secs(17),
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(120),
    Duration::from_secs(600),
];

/// (c) runs this many times faster than real time.
const SPEED_UP: u32 = 10;

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
    let_controller_finish(server).await
}

/// Lets the controller run and returns the instant its final status write
/// landed (polled every millisecond).
async fn let_controller_finish(server: &TestServer) -> Instant {
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
/// the current run, when the rollback answered and when the execution
/// reached ReportResult.
#[derive(Default)]
struct Stage {
    state: Option<Arc<AppState>>,
    rolled_back: Option<Instant>,
    reported: Option<Instant>,
}

/// The rollback's outcome as the real handler shapes it; the bench seeded
/// the rollout it started.
fn applied(target: &Value) -> Value {
    json!({"status": "applied", "action": "rollback", "target": target,
           "message": "rolled back deployment shop/checkout: container api from registry.example/shop/api:1.2.0 to registry.example/shop/api:1.1.0",
           "changes": [{"container": "api", "from": "registry.example/shop/api:1.2.0", "to": "registry.example/shop/api:1.1.0"}]})
}

/// A fresh mid-rollout server whose verify state the stand-ins use.
async fn stage_server(stage: &Arc<Mutex<Stage>>) -> (TestServer, KubeconfigFile) {
    let (server, kubeconfig) = waiting_server().await;
    let path = kubeconfig.as_str().to_owned();
    let config =
        FunctionConfig::from_lookup(|k| (k == "SELFHEAL_KUBECONFIG").then(|| path.clone()))
            .unwrap();
    *stage.lock().unwrap() = Stage {
        state: Some(Arc::new(AppState::new(config).await.unwrap())),
        ..Stage::default()
    };
    (server, kubeconfig)
}

/// One rollback execution of `machine` with `knobs`, to its successful end:
/// its states, in order.
async fn remediate(runner: &Runner, machine: &str, name: &str, knobs: &Value) -> Vec<String> {
    let request = json!({"action": "rollback", "reason": "verify_watch bench",
        "target": {"namespace": "shop", "deployment": "checkout", "container": "api"}});
    let result = runner.run_with(machine, name, &request, knobs).await;
    assert_eq!(result["status"], "SUCCEEDED", "{result:#}");
    result["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// (b): one execution; the delay from the write to ReportResult, and the
/// states it went through.
async fn state_machine_delay(
    runner: &Runner,
    stage: &Arc<Mutex<Stage>>,
    run: usize,
    moment: Duration,
) -> (Duration, Vec<String>) {
    let (server, _kubeconfig) = stage_server(stage).await;
    let knobs = json!({"VerifyIntervalSeconds": "0", "VerifyTimeoutSeconds": "660"});
    let name = format!("bench-{run}");
    let (states, written) = tokio::join!(
        remediate(runner, "remediate-deployment", &name, &knobs),
        finish_rollout(&server, moment)
    );
    let reported = stage.lock().unwrap().reported.unwrap();
    (reported.saturating_duration_since(written), states)
}

/// The two designs of (c), both [`SPEED_UP`] times faster than real time:
/// (name, machine, knobs).
fn designs() -> [(&'static str, &'static str, Value); 2] {
    [
        // Wait 10 s before each look, at most 66 looks.
        (
            "polling",
            "remediate-deployment-polling",
            json!({"VerifyIntervalSeconds": (10 / SPEED_UP).to_string(), "VerifyMaxAttempts": "66"}),
        ),
        // The 660 s budget, watched.
        (
            "watching",
            "remediate-deployment",
            json!({"VerifyIntervalSeconds": "0", "VerifyTimeoutSeconds": (660 / SPEED_UP).to_string()}),
        ),
    ]
}

/// (c): the states of one remediation whose controller runs `after` (real
/// time; run [`SPEED_UP`] times faster) the rollback answered, and when
/// (real-time equivalent) the rollout was done: a little later, by the
/// controller's own steps.
async fn transitions(
    runner: &Runner,
    stage: &Arc<Mutex<Stage>>,
    (design, machine, knobs): &(&str, &str, Value),
    after: Duration,
) -> (Vec<String>, Duration) {
    let (server, _kubeconfig) = stage_server(stage).await;
    let name = format!("count-{design}-{}", after.as_secs());
    let finish = async {
        let answered = loop {
            if let Some(at) = stage.lock().unwrap().rolled_back {
                break at;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        tokio::time::sleep_until((answered + after / SPEED_UP).into()).await;
        let_controller_finish(&server)
            .await
            .saturating_duration_since(answered)
            * SPEED_UP
    };
    tokio::join!(remediate(runner, machine, &name, knobs), finish)
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

/// States from StartVerify to the last CheckRollout: the verify loop.
fn in_loop(states: &[String]) -> usize {
    let start = states.iter().position(|s| s == "StartVerify").unwrap();
    let end = states.iter().rposition(|s| s == "CheckRollout").unwrap();
    end - start + 1
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
                "rollback" => {
                    stage
                        .lock()
                        .unwrap()
                        .rolled_back
                        .get_or_insert_with(Instant::now);
                    Ok(applied(&payload["target"]))
                }
                "verify" => {
                    let state = stage.lock().unwrap().state.clone().unwrap();
                    let mut payload = payload;
                    if payload.get("watch").is_none() {
                        // The polling design's verify: one read, which is
                        // what the handler does with its budget spent.
                        payload["watch"] =
                            json!({"startedAt": "2026-01-01T00:00:00Z", "budgetSeconds": 0});
                    }
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
    let mut real_time = Vec::new();
    for (i, moment) in moments.iter().enumerate() {
        let (d, states) = state_machine_delay(&runner, &stage, i, *moment).await;
        eprintln!(
            "(b) run {i}: ready {moment:?} after the watch started, left CheckRollout {}, {} transitions ({} in the verify loop)",
            ms(d),
            states.len(),
            in_loop(&states)
        );
        machine_delays.push(d);
        real_time.push((moment.as_secs(), states.len()));
    }

    let mut counted = Vec::new();
    for after in DURATIONS {
        let mut row = Vec::new();
        for design in &designs() {
            let (states, done) = transitions(&runner, &stage, design, after).await;
            eprintln!(
                "(c) {after:?} {}: done after {:.1} s, {} transitions ({} in the verify loop)",
                design.0,
                done.as_secs_f64(),
                states.len(),
                in_loop(&states)
            );
            row.push((states.len(), in_loop(&states), done));
        }
        counted.push((after, row[0], row[1]));
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
    real_time.sort();
    real_time.dedup();
    println!("  (b) transitions per remediation at real time ((ready s, total)): {real_time:?}");
    println!(
        "\n(c) State transitions per remediation (one rollback, its rollout done `after` the rollback answered; interpreter history, run {SPEED_UP}x faster):"
    );
    println!(
        "  after    done (polling, watching)   polling total / loop   watching total / loop   fewer"
    );
    for (after, (old, old_loop, old_done), (new, new_loop, new_done)) in &counted {
        println!(
            "  {:>5} s  {:>7.1} s, {:>7.1} s       {old:>5} / {old_loop:>3}           {new:>5} / {new_loop:>3}           {:.2}x (loop {:.1}x)",
            after.as_secs(),
            old_done.as_secs_f64(),
            new_done.as_secs_f64(),
            *old as f64 / *new as f64,
            *old_loop as f64 / *new_loop as f64
        );
    }
}
