//! functions/README.md "Running locally", as documented: the functions
//! under `cargo lambda watch` with a kubeconfig (here the test API server's,
//! seeded with examples/checkout-snapshot.yaml), and every
//! `cargo lambda invoke … --data-file examples/requests/<file>.json <fn>`
//! line of that section run as written (only the port is this run's), in
//! order, each printed outcome and the resulting Deployment checked.
//!
//! Why: the README's commands are what a user types first; a test that only
//! POSTs to the emulator would not notice a flag that does not work (invoke's
//! default address is `::1`, while the documented emulator listens on
//! 127.0.0.1), and the example requests (target cluster `prod-eks`) must act
//! on the kubeconfig's cluster, whatever `target.cluster` says.
//!
//! Skipped (loudly) when cargo-lambda is absent, unless `SELFHEAL_REQUIRE_TOOLS`
//! is set, in which case it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "lambda_common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use selfheal_tests::emulator::Emulator;
use selfheal_tests::tools::{free_port, workspace_root};
use selfheal_testserver::TestServer;
use serde_json::{Value, json};

use common::{images, paused, restarted_at, warm_up};

const TEST: &str = "readme_cargo_lambda_invoke_lines_act_on_the_example_snapshot";
const FUNCTIONS: [&str; 5] = ["rollback", "pause", "resume", "restart", "verify"];
/// The port the README's commands use; replaced by a free one.
const README_PORT: &str = "9000";
/// The emulator command [`Emulator::start`] runs, as the README writes it.
const WATCH: &str = "cargo lambda watch --ignore-changes -A 127.0.0.1 -P 9000";
const API_BAD: &str = "registry.example/shop/api:1.2.0";
const API_GOOD: &str = "registry.example/shop/api:1.1.0";
const ENVOY: &str = "registry.example/envoy:1.28";
/// The test server kubeconfig's context (`TestServer::kubeconfig_yaml`).
const CONTEXT: &str = "selfheal-test";
/// One `cargo lambda invoke` against a warm function.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(120);

/// The `sh` block of functions/README.md's "Running locally" section.
fn running_locally() -> String {
    let readme = std::fs::read_to_string(workspace_root().join("functions/README.md")).unwrap();
    let section = readme
        .split("\n## Running locally")
        .nth(1)
        .expect("functions/README.md has a Running locally section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .expect("Running locally has an sh block");
    block.split("\n```").next().unwrap().to_owned()
}

/// The documented emulator's environment: the `NAME=value` words before
/// `cargo lambda watch` (continued lines joined).
fn watch_env(block: &str) -> Vec<(String, String)> {
    let joined = block.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.contains("cargo lambda watch"))
        .expect("README starts cargo lambda watch");
    let (env, command) = line.split_once("cargo lambda watch").unwrap();
    assert_eq!(
        format!("cargo lambda watch{}", command.trim_end()),
        WATCH,
        "README's emulator command differs from the one this test starts"
    );
    env.split_whitespace()
        .map(|w| {
            let (k, v) = w.split_once('=').expect("NAME=value before the command");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The documented `cargo lambda invoke` lines: (words after `cargo`, data file, function).
fn invoke_lines(block: &str) -> Vec<(Vec<String>, String, String)> {
    block
        .lines()
        .filter(|l| l.starts_with("cargo lambda invoke "))
        .map(|l| {
            let words: Vec<String> = l.split_whitespace().skip(1).map(str::to_owned).collect();
            let file = words
                .iter()
                .position(|w| w == "--data-file")
                .and_then(|i| words.get(i + 1))
                .unwrap_or_else(|| panic!("no --data-file in {l:?}"))
                .clone();
            let function = words.last().unwrap().clone();
            (words, file, function)
        })
        .collect()
}

/// examples/checkout-snapshot.yaml, as is.
fn snapshot() -> Value {
    let text =
        std::fs::read_to_string(workspace_root().join("examples/checkout-snapshot.yaml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// Runs `cargo-lambda <args>` in the workspace (where `examples/` resolves)
/// with a deadline; returns exit success, stdout and stderr.
fn run_invoke(bin: &Path, args: &[String], dir: &Path, n: usize) -> (bool, String, String) {
    let out_path = dir.join(format!("invoke-{n}.out"));
    let err_path = dir.join(format!("invoke-{n}.err"));
    let mut child = Command::new(bin)
        .current_dir(workspace_root())
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn cargo lambda invoke");
    let deadline = Instant::now() + INVOKE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "cargo {} did not finish in {INVOKE_TIMEOUT:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.success(),
        std::fs::read_to_string(out_path).unwrap(),
        std::fs::read_to_string(err_path).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_cargo_lambda_invoke_lines_act_on_the_example_snapshot() {
    // The README's shape is checked even where cargo-lambda is missing.
    let block = running_locally();
    let documented_env = watch_env(&block);
    let invokes = invoke_lines(&block);
    let files: Vec<&str> = invokes.iter().map(|(_, f, _)| f.as_str()).collect();
    for file in [
        "examples/requests/rollback.json",
        "examples/requests/pause.json",
        "examples/requests/resume.json",
        "examples/requests/restart.json",
    ] {
        assert!(files.contains(&file), "README invokes no {file}: {files:?}");
    }
    let Some(bin) = common::cargo_lambda_ready(TEST).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await.expect("start test server");
    server.try_apply_objects(snapshot()).unwrap();
    assert!(server.controller().settle().await);
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    // The snapshot as dumped: revision 4 runs the bad api image, not paused.
    assert_images(&server, API_BAD, "");
    let before = server.deployment("shop", "checkout").unwrap();
    assert_eq!(
        before.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "4"
    );
    assert!(!paused(&server));

    // The README's variables, its kubeconfig and context replaced by the test
    // server's; JSON logs so the process accounting below can read them.
    let mut env: Vec<(&str, String)> = Vec::new();
    let names: Vec<&str> = documented_env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "SELFHEAL_KUBECONFIG",
            "SELFHEAL_KUBE_CONTEXT",
            "SELFHEAL_REQUIRE_OPT_IN"
        ],
        "README's emulator environment changed: {documented_env:?}"
    );
    for (k, v) in &documented_env {
        let v = match k.as_str() {
            "SELFHEAL_KUBECONFIG" => kubeconfig.display().to_string(),
            "SELFHEAL_KUBE_CONTEXT" => CONTEXT.to_owned(),
            _ => v.clone(),
        };
        env.push((k.as_str(), v));
    }
    env.push(("AWS_LAMBDA_LOG_FORMAT", "JSON".into()));
    let port = free_port();
    let lambda = Emulator::start(&bin, port, &env, dir.path().join("watch.log")).await;

    // Cold starts first, all at once over HTTP with the emulator's long
    // first-invoke timeout (each `cargo lambda invoke` below gets
    // INVOKE_TIMEOUT): every documented function gets another function's
    // request, refused before any API call.
    let functions: BTreeSet<&str> = invokes.iter().map(|(_, _, f)| f.as_str()).collect();
    for f in &functions {
        assert!(
            FUNCTIONS.contains(f),
            "README invokes an unknown function {f}"
        );
    }
    let functions: Vec<&str> = functions.into_iter().collect();
    warm_up(&lambda, &functions).await;
    server.clear_requests();

    // Every documented line, in README order, with this run's port.
    let mut last_restart: Option<String> = None;
    for (n, (words, file, function)) in invokes.iter().enumerate() {
        let args: Vec<String> = words
            .iter()
            .map(|w| {
                if w == README_PORT {
                    port.to_string()
                } else {
                    w.clone()
                }
            })
            .collect();
        let line = format!("cargo {}", args.join(" "));
        let (ok, stdout, stderr) = {
            let bin = bin.clone();
            let dir: PathBuf = dir.path().to_path_buf();
            let args = args.clone();
            tokio::task::spawn_blocking(move || run_invoke(&bin, &args, &dir, n))
                .await
                .unwrap()
        };
        assert!(
            ok,
            "{line} failed:\n{stderr}\n{stdout}\n{}",
            lambda.log_text()
        );
        let outcome: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{line} printed no JSON ({e}):\n{stdout}\n{stderr}"));
        let request: Value =
            serde_json::from_str(&std::fs::read_to_string(workspace_root().join(file)).unwrap())
                .unwrap();
        assert_eq!(outcome["action"], request["action"], "{line}: {outcome}");
        assert_eq!(
            outcome["action"].as_str(),
            Some(function.as_str()),
            "{line}"
        );
        // The example's cluster is reported back; the kubeconfig's was used.
        assert_eq!(
            outcome["target"]["cluster"], "prod-eks",
            "{line}: {outcome}"
        );
        assert_eq!(outcome["target"]["namespace"], "shop", "{line}: {outcome}");
        assert_eq!(
            outcome["target"]["deployment"], "checkout",
            "{line}: {outcome}"
        );

        match file.as_str() {
            "examples/requests/rollback-dry-run.json" => {
                assert_eq!(outcome["status"], "dryRun", "{line}: {outcome}");
                assert_eq!(
                    outcome["changes"],
                    json!([{ "container": "api", "from": API_BAD, "to": API_GOOD }]),
                    "{line}"
                );
                assert_eq!(images(&server)["api"], API_BAD, "a dry run stores nothing");
                let now = server.deployment("shop", "checkout").unwrap();
                assert_eq!(now.spec, before.spec, "a dry run stores nothing");
                assert_eq!(
                    (now.metadata.generation, now.metadata.annotations),
                    (
                        before.metadata.generation,
                        before.metadata.annotations.clone()
                    ),
                    "a dry run stores nothing"
                );
            }
            "examples/requests/rollback.json" => {
                // The README's Quick start outcome, now from the Lambda.
                assert_eq!(outcome["status"], "applied", "{line}: {outcome}");
                // The pods' evidence follows in parentheses: whatever the
                // test server's pods report (they run no real containers).
                let message = outcome["message"].as_str().unwrap_or_default();
                let done = format!(
                    "rolled back deployment shop/checkout: container api from {API_BAD} to {API_GOOD}"
                );
                assert!(
                    message == done || message.starts_with(&format!("{done} (pod evidence: ")),
                    "{message}"
                );
                assert_eq!(
                    outcome["changes"],
                    json!([{ "container": "api", "from": API_BAD, "to": API_GOOD }])
                );
                assert_eq!(outcome["revision"]["before"], 4, "{outcome}");
                // Half-brick: only api went back; envoy kept its newer image.
                assert_images(&server, API_GOOD, "");
                let d = server.deployment("shop", "checkout").unwrap();
                let audit = d.metadata.annotations.unwrap_or_default();
                assert!(
                    audit
                        .get("selfheal.dev/last-remediation")
                        .is_some_and(|a| a.contains("rollback")),
                    "{audit:?}"
                );
            }
            "examples/requests/pause.json" => {
                assert_eq!(outcome["status"], "applied", "{line}: {outcome}");
                assert!(paused(&server), "pause.json must pause checkout");
                assert_eq!(images(&server)["api"], API_GOOD, "pause keeps images");
            }
            "examples/requests/resume.json" => {
                assert_eq!(outcome["status"], "applied", "{line}: {outcome}");
                assert!(!paused(&server), "resume.json must resume checkout");
                assert_eq!(images(&server)["api"], API_GOOD, "resume keeps images");
            }
            "examples/requests/restart.json" => {
                assert_eq!(outcome["status"], "applied", "{line}: {outcome}");
                let at = restarted_at(&server).expect("restartedAt annotation");
                assert!(
                    at.parse::<jiff::Timestamp>().is_ok(),
                    "restartedAt {at:?} is not a timestamp"
                );
                assert_ne!(last_restart.as_ref(), Some(&at), "a new restartedAt");
                last_restart = Some(at);
                assert_images(&server, API_GOOD, "restart keeps images");
                assert!(!paused(&server));
            }
            other => panic!("{line}: no expectation for {other}; add one to {TEST}"),
        }
    }
    assert!(last_restart.is_some(), "restart was never invoked");

    // Kubeconfig mode: one client per function process, all in local mode,
    // and every API request the invokes caused was answered (none refused).
    let inits = lambda.logs_with_message("selfheal function initialised");
    assert_eq!(inits.len(), functions.len(), "{}", lambda.log_text());
    assert!(
        server.requests().iter().all(|r| r.status < 400),
        "an API request failed: {:?}",
        server
            .requests()
            .iter()
            .filter(|r| r.status >= 400)
            .map(|r| (&r.method, &r.path, r.status))
            .collect::<Vec<_>>()
    );
}

/// shop/checkout runs `api` and the unchanged envoy sidecar.
fn assert_images(server: &TestServer, api: &str, why: &str) {
    let want = BTreeMap::from([("api".into(), api.into()), ("envoy".into(), ENVOY.into())]);
    assert_eq!(images(server), want, "{why}");
}
