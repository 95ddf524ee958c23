//! Shared by the `lambda_*` end-to-end tests: the Deployment `shop/checkout`
//! they seed, and what they read back from the test API server's store.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use selfheal_tests::emulator::Emulator;
use selfheal_tests::tools::{build_workspace_bins, cargo_lambda_binary, tool_or_skip};
use selfheal_testserver::{TestServer, fixtures};
use serde_json::{Value, json};

pub const API_1: &str = "registry.example/shop/api:1.0.0";
pub const API_2: &str = "registry.example/shop/api:1.1.0";
pub const ENVOY: &str = "registry.example/envoy:1.27";

/// Dummy AWS account for the EKS-mode functions and the test server's token verifier.
#[path = "../aws_common/mod.rs"]
mod aws_common;
#[allow(unused_imports)] // each test uses some of them
pub use aws_common::{ACCESS_KEY, REGION, SECRET_KEY};

/// Dummy AWS settings: no real account, no profile files, no instance metadata lookups.
pub fn dummy_aws_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// cargo-lambda, with the function binaries built as `cargo lambda watch`
/// runs them; `None` (a SKIP line) when cargo-lambda is not installed.
pub async fn cargo_lambda_ready(test: &str) -> Option<PathBuf> {
    let bin = tool_or_skip(test, cargo_lambda_binary())?;
    tokio::task::spawn_blocking(build_workspace_bins)
        .await
        .unwrap();
    Some(bin)
}

/// Each of `functions` started exactly once, each in a process of its own
/// (one warm process per function); returns those processes' pids.
pub fn started_once(lambda: &Emulator, functions: &[&str]) -> BTreeSet<String> {
    let inits = lambda.logs_with_message("selfheal function initialised");
    for f in functions {
        let n = inits
            .iter()
            .filter(|l| l["fields"]["function"] == *f)
            .count();
        assert_eq!(n, 1, "{f} must start exactly once:\n{}", lambda.log_text());
    }
    let pids: BTreeSet<String> = inits
        .iter()
        .map(|l| l["fields"]["pid"].to_string())
        .collect();
    assert_eq!(
        pids.len(),
        functions.len(),
        "one process per function: {pids:?}"
    );
    pids
}

/// The settings that point the functions at `server` as EKS cluster
/// `cluster` (EKS mode: endpoint and CA configured, no DescribeCluster).
pub fn eks_env(server: &TestServer, cluster: &str) -> [(&'static str, String); 3] {
    [
        ("SELFHEAL_CLUSTER_ENDPOINT", server.url()),
        (
            "SELFHEAL_CLUSTER_CA",
            server.ca_pem().expect("a TLS test server"),
        ),
        ("SELFHEAL_DEFAULT_CLUSTER", cluster.into()),
    ]
}

/// `shop/checkout` at revision 1: api `API_1` and the sidecar envoy.
pub fn checkout() -> Value {
    fixtures::checkout(API_1, ENVOY).json()
}

/// shop/checkout's containers: name → image.
pub fn images(server: &TestServer) -> BTreeMap<String, String> {
    let d = server.deployment("shop", "checkout").expect("checkout");
    d.spec
        .and_then(|s| s.template.spec)
        .map(|s| {
            s.containers
                .into_iter()
                .map(|c| (c.name, c.image.unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// shop/checkout's `spec.paused`.
pub fn paused(server: &TestServer) -> bool {
    server
        .deployment("shop", "checkout")
        .and_then(|d| d.spec)
        .and_then(|s| s.paused)
        .unwrap_or(false)
}

/// shop/checkout's pod template annotation `kubectl.kubernetes.io/restartedAt`.
pub fn restarted_at(server: &TestServer) -> Option<String> {
    server
        .deployment("shop", "checkout")
        .and_then(|d| d.spec)
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.annotations)
        .and_then(|a| a.get("kubectl.kubernetes.io/restartedAt").cloned())
}

/// First invocation of each of `functions` at once, so their cold starts
/// (each a `cargo run` waiting for the shared build directory) overlap
/// instead of queueing; each gets the emulator's first-invoke timeout. Every
/// payload is refused with `NonRetryableInvalidRequest` before any API call
/// (or EKS token): an action function gets another function's request,
/// `verify` a bare string.
pub async fn warm_up(lambda: &Emulator, functions: &[&str]) {
    let calls = functions.iter().map(|&f| {
        let payload = match f {
            "verify" => json!("warm-up"),
            f => json!({
                "action": if f == "rollback" { "restart" } else { "rollback" },
                "target": { "namespace": "shop", "deployment": "checkout" }
            }),
        };
        async move { (f, lambda.invoke(f, &payload).await) }
    });
    for (f, (status, body)) in futures::future::join_all(calls).await {
        assert_eq!(status, 500, "{f}: {body}");
        assert_eq!(
            body["errorType"], "NonRetryableInvalidRequest",
            "{f}: {body}"
        );
    }
}
