//! Start-up errors and the configured-endpoint cluster check through
//! cargo-lambda's Runtime API emulation (`cargo lambda watch` running the real
//! `functions/*` binaries).
//!
//! Why: a function whose `main` returned its start-up error would exit before
//! the runtime loop, and Lambda would report a runtime exit error
//! (`Runtime.ExitError`) that no `Retry`/`Catch` on `NonRetryableConfig`
//! matches. Only the real binaries show that a bad configuration still starts
//! the loop and answers every invocation, warm or cold, with the typed error
//! naming the variable, logged once per process. The second test shows every
//! function, started, answering a body that is not JSON with its typed
//! `NonRetryableInvalidRequest` (not lambda_runtime's Rust type name). The
//! third shows a function with `SELFHEAL_CLUSTER_ENDPOINT` refusing a request
//! for another cluster before any call, while its own cluster is still served.
//!
//! Skipped (loudly) when cargo-lambda is absent, unless `SELFHEAL_REQUIRE_TOOLS`
//! is set, in which case it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::Credentials;
use selfheal_events::MAX_EVENT_BYTES;
use selfheal_tests::emulator::Emulator;
use selfheal_tests::tools::{build_workspace_bins, free_port, workspace_root};
use selfheal_testserver::TestServer;
use selfheal_token_verifier::TokenVerifier;
use serde_json::{Value, json};

#[path = "lambda_common/mod.rs"]
mod common;

use common::{ACCESS_KEY, SECRET_KEY, dummy_aws_env};

const CLUSTER: &str = "demo";
const OTHER_CLUSTER: &str = "staging-eks";

/// A function that exits at start-up leaves its invocation unanswered (the
/// emulator waits for a runtime that never asks for work): fail after this
/// instead of the emulator's 30-minute first-invoke timeout. Generous, as a
/// cold start may wait for the shared build directory, yet below nextest's
/// terminate-after (5 × 60 s, scripts/test), so a lost instance fails here
/// with the emulator's log instead of being killed without it.
const ANSWER_WITHIN: Duration = Duration::from_secs(240);

/// Every function with a fallible start-up, the variable this test breaks
/// for it, and the log line its start-up failure is reported with
/// (`selfheal_runtime::Startup::new`, the same for all eight).
const BROKEN: [(&str, &str, &str); 8] = [
    (
        "rollback",
        "SELFHEAL_COOLDOWN_SECONDS",
        "rollback initialisation failed",
    ),
    (
        "pause",
        "SELFHEAL_COOLDOWN_SECONDS",
        "pause initialisation failed",
    ),
    (
        "resume",
        "SELFHEAL_COOLDOWN_SECONDS",
        "resume initialisation failed",
    ),
    (
        "restart",
        "SELFHEAL_COOLDOWN_SECONDS",
        "restart initialisation failed",
    ),
    (
        "verify",
        "SELFHEAL_COOLDOWN_SECONDS",
        "verify initialisation failed",
    ),
    (
        "ingest",
        "SELFHEAL_STATE_MACHINE_ARN",
        "ingest initialisation failed",
    ),
    (
        "notify",
        "SELFHEAL_TOPIC_ARN",
        "notify initialisation failed",
    ),
    (
        "approve",
        "SELFHEAL_APPROVAL_PARAM_PREFIX",
        "approve initialisation failed",
    ),
];

/// A test API server (TLS or not) holding examples/checkout-snapshot.yaml
/// (Deployment shop/checkout and its history), settled, request log empty.
async fn seeded_server(tls: bool) -> TestServer {
    let server = TestServer::builder().tls(tls).start().await.unwrap();
    let text =
        std::fs::read_to_string(workspace_root().join("examples/checkout-snapshot.yaml")).unwrap();
    server
        .try_apply_objects(serde_saphyr::from_str(&text).unwrap())
        .unwrap();
    assert!(server.controller().settle().await);
    server.clear_requests();
    server
}

/// [`seeded_server`] without TLS and its admin kubeconfig in a fresh
/// directory (local mode).
async fn local_cluster() -> (tempfile::TempDir, TestServer, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let server = seeded_server(false).await;
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    (dir, server, kubeconfig)
}

fn request(action: &str, cluster: &str) -> Value {
    json!({
        "action": action,
        "target": { "cluster": cluster, "namespace": "shop", "deployment": "checkout" },
        "reason": "lambda_init_error_e2e"
    })
}

/// Dummy AWS settings and JSON logs at info.
fn aws_env() -> Vec<(&'static str, String)> {
    let mut env = dummy_aws_env();
    env.extend([
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("AWS_LAMBDA_LOG_LEVEL", "info".into()),
    ]);
    env
}

/// `cargo lambda watch` with `env`, listening; `None` (a SKIP line) without
/// cargo-lambda, a failure instead when `SELFHEAL_REQUIRE_TOOLS` is set (CI).
async fn emulator(dir: &Path, env: Vec<(&'static str, String)>) -> Option<Emulator> {
    let bin = common::cargo_lambda_ready("lambda_init_error_e2e").await?;
    // Built by cargo_lambda_ready; this is the cached map.
    let bins = build_workspace_bins();
    for (function, _, _) in BROKEN {
        assert!(bins.contains_key(function), "no function binary {function}");
    }
    let lambda = Emulator::start(&bin, free_port(), &env, dir.join("watch.log")).await;
    Some(lambda)
}

/// `invoke` bounded by [`ANSWER_WITHIN`].
async fn answer(lambda: &Emulator, function: &str, body: Vec<u8>) -> (u16, Value) {
    tokio::time::timeout(ANSWER_WITHIN, lambda.invoke_raw(function, body))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{function}: no answer within {ANSWER_WITHIN:?}; did it exit at start-up?\n{}",
                lambda.log_text()
            )
        })
}

/// Awaits `calls` one at a time. cargo-lambda cold-starts every function
/// with its own `cargo run`; with eight starting at once, an instance can be
/// lost (no process, no log line) and its invocation then never returns.
async fn one_at_a_time<T>(calls: impl IntoIterator<Item = impl Future<Output = T>>) -> Vec<T> {
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await);
    }
    answers
}

/// One payload each function would accept if it had started.
fn payload_for(function: &str) -> Value {
    match function {
        "rollback" | "pause" | "resume" | "restart" => request(function, CLUSTER),
        "verify" => request("rollback", CLUSTER),
        "ingest" => {
            json!({ "action": "rollback", "target": { "namespace": "shop", "deployment": "checkout" } })
        }
        "notify" => json!({ "kind": "rolloutFrozen", "request": request("pause", CLUSTER) }),
        _ => {
            json!({ "version": "2.0", "rawPath": "/approve", "isBase64Encoded": false,
                    "requestContext": { "http": { "method": "GET" }, "timeEpoch": 0 } })
        }
    }
}

/// A bad variable per function: every function still starts its runtime loop
/// and answers each invocation (cold, warm, even a non-JSON body) with
/// `NonRetryableConfig` naming the variable; the failure is logged once per
/// process (no restart between invocations) and nothing reaches the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_startup_answers_every_invocation_with_its_typed_error() {
    let (dir, server, kubeconfig) = local_cluster().await;
    let before = server.object("Deployment", "shop", "checkout").unwrap();

    let mut env = aws_env();
    env.extend([
        // Valid: only the policy variable below is wrong for the kube functions.
        ("SELFHEAL_KUBECONFIG", kubeconfig.display().to_string()),
        ("SELFHEAL_COOLDOWN_SECONDS", "abc".into()),
        // ingest and notify miss SELFHEAL_STATE_MACHINE_ARN / SELFHEAL_TOPIC_ARN.
        ("SELFHEAL_APPROVAL_PARAM_PREFIX", "approvals".into()),
    ]);
    let Some(lambda) = emulator(dir.path(), env).await else {
        return;
    };

    let mut answers: BTreeMap<&str, Vec<(u16, Value)>> = BTreeMap::new();
    for round in 0..2 {
        // Concurrently: the cold starts overlap instead of queueing.
        let calls = BROKEN.iter().map(|&(function, _, _)| {
            let lambda = &lambda;
            let body = serde_json::to_vec(&payload_for(function)).unwrap();
            async move { (function, answer(lambda, function, body).await) }
        });
        for (function, got) in one_at_a_time(calls).await {
            answers.entry(function).or_default().push(got);
        }
        if round == 0 {
            // A body the runtime cannot parse: the start-up error still wins.
            let not_json = answer(&lambda, "rollback", b"nope".to_vec()).await;
            answers.entry("rollback").or_default().push(not_json);
        }
    }

    let log = lambda.log_text();
    for (function, variable, message) in BROKEN {
        let got = &answers[function];
        assert!(got.len() >= 2, "{function}: {got:?}");
        for (status, body) in got {
            assert_eq!(*status, 500, "{function}: {body}\n{log}");
            assert_eq!(
                body["errorType"], "NonRetryableConfig",
                "{function}: {body}\n{log}"
            );
            let text = body["errorMessage"].as_str().unwrap_or_default();
            assert!(
                text.contains(variable),
                "{function}: {text:?} lacks {variable}"
            );
        }
        // The same process answered every time: its start-up failure is logged once.
        let lines = lambda.logs_with_message(message);
        assert_eq!(lines.len(), 1, "{function}: {lines:?}\n{log}");
        assert_eq!(lines[0]["fields"]["function"], function);
        assert_eq!(lines[0]["fields"]["error_type"], "NonRetryableConfig");
        assert!(
            lines[0]["fields"]["error"]
                .as_str()
                .is_some_and(|e| e.contains(variable)),
            "{function}: {}",
            lines[0]
        );
    }
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert_eq!(
        server.object("Deployment", "shop", "checkout").unwrap(),
        before,
        "the Deployment must be untouched"
    );
}

/// Every function started (valid settings): a body that is not JSON is
/// answered with `NonRetryableInvalidRequest` naming the parse error, and
/// nothing reaches the cluster. The same layer measures each body as
/// delivered: ingest's event size limit counts those bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_json_payload_answers_a_typed_error_in_every_function() {
    let (dir, server, kubeconfig) = local_cluster().await;

    let mut env = aws_env();
    env.extend([
        ("SELFHEAL_KUBECONFIG", kubeconfig.display().to_string()),
        (
            "SELFHEAL_STATE_MACHINE_ARN",
            "arn:aws:states:us-east-1:123456789012:stateMachine:remediate-deployment".into(),
        ),
        (
            "SELFHEAL_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:selfheal".into(),
        ),
    ]);
    let Some(lambda) = emulator(dir.path(), env).await else {
        return;
    };

    let calls = BROKEN.iter().map(|&(function, _, _)| {
        let lambda = &lambda;
        async move { (function, answer(lambda, function, b"nope".to_vec()).await) }
    });
    for (function, (status, body)) in one_at_a_time(calls).await {
        let log = lambda.log_text();
        assert_eq!(status, 500, "{function}: {body}\n{log}");
        assert_eq!(
            body["errorType"], "NonRetryableInvalidRequest",
            "{function}: {body}\n{log}"
        );
        let text = body["errorMessage"].as_str().unwrap_or_default();
        assert!(
            text.starts_with("invalid request: payload is not JSON: "),
            "{function}: {text:?}"
        );
    }
    assert!(server.requests().is_empty(), "{:?}", server.requests());

    // Whitespace is part of what was received: parsed, this event is an
    // 11-byte object of an unsupported shape, delivered it is one byte over
    // the limit.
    let size = MAX_EVENT_BYTES + 1;
    let mut padded = br#"{"pad":"x"}"#.to_vec();
    padded.resize(size, b' ');
    let (status, body) = answer(&lambda, "ingest", padded).await;
    assert_eq!(status, 500, "{body}\n{}", lambda.log_text());
    assert_eq!(body["errorType"], "EventTooLarge", "{body}");
    let text = body["errorMessage"].as_str().unwrap_or_default();
    assert!(text.contains(&format!("event is {size} bytes")), "{text:?}");
}

/// `SELFHEAL_CLUSTER_ENDPOINT` is cluster `demo`'s API server (the TLS test
/// server, which verifies every EKS token for `demo`). A request for another
/// cluster is `NonRetryableClusterNotFound` naming both clusters and the
/// variables, and never reaches the server; `demo` itself is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_endpoint_refuses_other_clusters_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let server = seeded_server(true).await;
    let verifier = TokenVerifier::new(CLUSTER)
        .with_credentials(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"));
    let rejected: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = rejected.clone();
    server.set_token_verifier(Arc::new(move |token: &str| {
        let result = verifier.verify_now(token).map_err(|e| e.to_string());
        if let Err(why) = &result {
            record.lock().unwrap().push(why.clone());
        }
        result.map(|_| ())
    }));
    let before = server.object("Deployment", "shop", "checkout").unwrap();

    let mut env = aws_env();
    env.extend(common::eks_env(&server, CLUSTER));
    env.push(("SELFHEAL_REQUIRE_OPT_IN", "false".into()));
    let Some(lambda) = emulator(dir.path(), env).await else {
        return;
    };

    let calls = [("verify", "rollback"), ("rollback", "rollback")].map(|(function, action)| {
        let lambda = &lambda;
        async move {
            let answer = lambda
                .invoke(function, &request(action, OTHER_CLUSTER))
                .await;
            (function, answer)
        }
    });
    for (function, (status, body)) in one_at_a_time(calls).await {
        assert_eq!(status, 500, "{function}: {body}\n{}", lambda.log_text());
        assert_eq!(
            body["errorType"], "NonRetryableClusterNotFound",
            "{function}: {body}"
        );
        let text = body["errorMessage"].as_str().unwrap_or_default();
        for needle in [
            OTHER_CLUSTER,
            CLUSTER,
            "SELFHEAL_CLUSTER_ENDPOINT",
            "SELFHEAL_DEFAULT_CLUSTER",
        ] {
            assert!(text.contains(needle), "{function}: {text:?} lacks {needle}");
        }
    }
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert_eq!(
        server.object("Deployment", "shop", "checkout").unwrap(),
        before
    );

    // The configured cluster is served (same warm process), its tokens accepted.
    let verdict = lambda.ok("verify", &request("rollback", CLUSTER)).await;
    assert_eq!(verdict["state"], "done", "{verdict}");
    assert_eq!(verdict["target"]["cluster"], CLUSTER, "{verdict}");
    assert!(!server.requests().is_empty());
    assert!(
        rejected.lock().unwrap().is_empty(),
        "server rejected tokens: {:?}",
        rejected.lock().unwrap()
    );
}
