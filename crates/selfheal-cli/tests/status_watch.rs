//! `selfheal status --watch [--timeout D]` (the binary) against the test API
//! server: it exits the moment the rollout finishes, like `kubectl rollout
//! status`, and at the timeout with the `waiting` verdict and status 1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use selfheal_testserver::{KubeconfigFile, TestServer, fixtures};
use serde_json::{Value, json};

/// `shop/checkout` with a new api image the stopped controller has not
/// rolled out yet, and a kubeconfig for the server.
async fn rollout_waiting() -> (TestServer, KubeconfigFile) {
    let server = TestServer::start().await.unwrap();
    fixtures::rollout_waiting(&server).await;
    let kubeconfig = server.kubeconfig_file().unwrap();
    (server, kubeconfig)
}

/// `selfheal status -n shop checkout --kubeconfig K --watch EXTRA…`, timed.
async fn watch(kubeconfig: &str, extra: &[&str]) -> (Output, Duration) {
    let mut args = vec![
        "status",
        "-n",
        "shop",
        "checkout",
        "--kubeconfig",
        kubeconfig,
        "--watch",
    ];
    args.extend(extra);
    let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_selfheal"))
            .args(&args)
            .output()
            .unwrap();
        (out, started.elapsed())
    })
    .await
    .unwrap()
}

fn verdict(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exits_the_moment_the_rollout_is_done() {
    let (server, kubeconfig) = rollout_waiting().await;
    server
        .controller()
        .resume_automatic_after(Duration::from_millis(700));
    let (out, took) = watch(kubeconfig.as_str(), &[]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        verdict(&out),
        json!({"state": "done", "message": "deployment \"checkout\" successfully rolled out"})
    );
    assert!(
        (Duration::from_millis(700)..Duration::from_secs(5)).contains(&took),
        "{took:?}"
    );
    let live = server.deployment("shop", "checkout").unwrap();
    assert!(selfheal_core::rollout_status(&live).is_done());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_at_the_timeout_with_the_waiting_verdict() {
    let (_server, kubeconfig) = rollout_waiting().await;
    let (out, took) = watch(kubeconfig.as_str(), &["--timeout", "2s"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = verdict(&out);
    assert_eq!(status["state"], "waiting");
    assert_eq!(
        status["message"],
        "Waiting for deployment spec update to be observed..."
    );
    assert!(
        (Duration::from_millis(1800)..Duration::from_secs(4)).contains(&took),
        "{took:?}"
    );
}

#[test]
fn watching_needs_a_cluster() {
    let snapshot = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/checkout-snapshot.yaml"
    );
    let status = ["status", "-n", "shop", "checkout", "--snapshot", snapshot];
    for extra in [["--watch"].as_slice(), &["--timeout", "5s"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_selfheal"))
            .args(status)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(out.stdout.is_empty());
    }
}

/// `selfheal status ARGS… --kubeconfig K`, parsed.
async fn status_json(kubeconfig: &str, args: &[&str]) -> (Output, Value) {
    let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    all.extend(["--kubeconfig".to_owned(), kubeconfig.to_owned()]);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_selfheal"))
            .args(&all)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulsets_and_daemonsets_by_their_own_flags() {
    let server = TestServer::start().await.unwrap();
    let ledger = fixtures::ledger_as_recorded();
    let agent = fixtures::node_agent_as_recorded();
    assert!(ledger.seed_with_history(&server, &[]).await);
    assert!(agent.seed_with_history(&server, &[]).await);
    let kubeconfig = server.kubeconfig_file().unwrap();
    let kc = kubeconfig.as_str();

    let (_, done) = status_json(kc, &["status", "--daemonset", "data/node-agent"]).await;
    assert_eq!(
        done,
        json!({"state": "done", "message": "daemon set \"node-agent\" successfully rolled out"})
    );
    // The API defaults partition 0: kubectl calls every finished update partitioned.
    let (_, done) = status_json(kc, &["status", "--statefulset", "data/ledger"]).await;
    assert_eq!(
        done,
        json!({"state": "done", "message": "partitioned roll out complete: 2 new pods have been updated..."})
    );

    // A new db image the stopped controller has not rolled out: --watch
    // waits on the StatefulSet until the controller runs again.
    server.controller().pause_automatic(true);
    let mut changed = server.object("StatefulSet", "data", "ledger").unwrap();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("registry.example/data/db:15.2");
    server.update("StatefulSet", "data", &changed).unwrap();
    let (out, waiting) = status_json(kc, &["status", "--statefulset", "data/ledger"]).await;
    assert!(out.status.success());
    assert_eq!(waiting["state"], "waiting", "{waiting}");
    server
        .controller()
        .resume_automatic_after(Duration::from_millis(500));
    let (out, watched) = status_json(
        kc,
        &[
            "status",
            "--statefulset",
            "data/ledger",
            "--watch",
            "--timeout",
            "20s",
        ],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(watched["state"], "done", "{watched}");

    // The flags take NAMESPACE/NAME, like --deployment, and only one of them.
    let (out, _) = status_json(kc, &["status", "--statefulset", "ledger"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: `--statefulset` must be NAMESPACE/NAME, got \"ledger\""
    );
    let (out, _) = status_json(
        kc,
        &[
            "status",
            "--statefulset",
            "data/ledger",
            "--daemonset",
            "data/node-agent",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "clap refuses two workloads");
}
