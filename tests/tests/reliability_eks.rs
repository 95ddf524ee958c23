//! EKS faults: a token that expires while the process is warm, and
//! DescribeCluster throttling. Both run the kube adapter against the TLS test
//! API server, which checks every EKS token with `TokenVerifier` on a clock
//! the test moves (so "16 minutes later" takes no time).
//!
//! Throttling: moto cannot throttle, so a tiny local endpoint speaks EKS's
//! restJson1 error shape (`x-amzn-ErrorType: ThrottlingException`, HTTP 400)
//! for the first N calls; the SDK's standard retry (3 attempts) runs for real.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use selfheal_core::{OutcomeStatus, Policy, RemediationRequest};
use selfheal_eks::{ClusterEndpoint, ClusterSource, EksClients, ManualClock};
use selfheal_testserver::{TestServer, fixtures};
use selfheal_token_verifier::TokenVerifier;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod aws_common;
use aws_common::{credentials, sdk_config};

const API_1: &str = "registry.example/shop/api:1.0.0";
const API_2: &str = "registry.example/shop/api:1.1.0";
const ENVOY: &str = "registry.example/envoy:1.27";

/// The server's idea of "now" for token checks.
type ServerClock = Arc<Mutex<SystemTime>>;

/// TLS test server accepting EKS tokens for `demo` (as of `clock`), holding
/// `checkout` after a bad rollout (api 1.0.0 → 1.1.0), settled.
async fn eks_cluster(clock: ServerClock) -> TestServer {
    let server = TestServer::builder().tls(true).start().await.unwrap();
    let verifier = TokenVerifier::new("demo").with_credentials(credentials());
    server.set_token_verifier(Arc::new(move |token: &str| {
        let now = *clock.lock().unwrap();
        verifier
            .verify(token, now)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }));
    let checkout = fixtures::checkout(API_1, ENVOY).replicas(1).opt_in(true);
    server.try_apply_objects(checkout.json()).unwrap();
    assert!(server.controller().settle().await);
    // The bad rollout: the stored object (same uid, so its ReplicaSets stay
    // its history) with a new image and the next generation.
    let mut live = server.object("Deployment", "shop", "checkout").unwrap();
    live["spec"]["template"]["spec"]["containers"][0]["image"] = json!(API_2);
    live["metadata"]["generation"] = json!(2);
    server.try_apply_objects(live).unwrap();
    assert!(server.controller().settle().await);
    server
}

fn image(server: &TestServer) -> String {
    server.object("Deployment", "shop", "checkout").unwrap()["spec"]["template"]["spec"]
        ["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn rollback() -> RemediationRequest {
    serde_json::from_value(json!({
        "action": "rollback",
        "target": {"cluster": "demo", "namespace": "shop", "deployment": "checkout"},
        "execution": "eks-reliability"
    }))
    .unwrap()
}

fn remediator(client: kube::Client) -> selfheal_kube::Remediator {
    selfheal_kube::Remediator::new(client, Policy::default())
}

#[tokio::test]
async fn token_expiry_mid_warm_process_refreshes_and_a_stale_client_gets_401() {
    let t0 = SystemTime::now();
    let server_clock: ServerClock = Arc::new(Mutex::new(t0));
    let server = eks_cluster(server_clock.clone()).await;
    let config = sdk_config(None).await;
    let clock = Arc::new(ManualClock::new(t0));
    let clients = EksClients::new(
        &config,
        ClusterSource::Configured {
            cluster: Some("demo".into()),
            endpoint: ClusterEndpoint {
                endpoint: server.url(),
                ca_data: server.ca_pem(),
            },
        },
    )
    .with_clock(clock.clone());
    let advance = |by: Duration| {
        clock.advance(by);
        *server_clock.lock().unwrap() += by;
    };

    // Warm process, first invocation: token signed at t0.
    let first = clients.client("demo").await.unwrap();
    let first_until = *first.valid_until();
    assert!(
        first_until.is_some(),
        "EKS clients carry their token's expiry"
    );
    remediator(first.clone())
        .status("shop", "checkout")
        .await
        .unwrap();

    // 13 minutes later: the cached client (same token) is still accepted.
    advance(Duration::from_secs(13 * 60));
    let cached = clients.client("demo").await.unwrap();
    assert_eq!(cached.valid_until(), first.valid_until(), "still cached");
    remediator(cached).status("shop", "checkout").await.unwrap();

    // 16 minutes after t0 the server refuses the t0 token: a client held
    // across the expiry fails with a typed, non-retryable auth error (the
    // handler invalidates its cache on it) and writes nothing.
    advance(Duration::from_secs(3 * 60));
    let err = remediator(first).remediate(&rollback()).await.unwrap_err();
    assert_eq!(err.error_type(), "NonRetryableForbidden", "{err}");
    assert_eq!(err.http_status(), Some(401));
    assert_eq!(
        image(&server),
        API_2,
        "nothing written with the stale token"
    );

    // The next invocation asks EksClients again: past the 14-minute refresh
    // point, it signs a new token, and the rollback goes through.
    let fresh = clients.client("demo").await.unwrap();
    assert!(*fresh.valid_until() > first_until, "a new token");
    let outcome = remediator(fresh).remediate(&rollback()).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert_eq!(image(&server), API_1);
}

/// A fake EKS endpoint: the first `throttle` calls get ThrottlingException,
/// later ones describe `demo` at `endpoint` with `ca_pem`. Counts calls.
async fn fake_eks(throttle: usize, endpoint: String, ca_pem: String) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let described = json!({"cluster": {
        "name": "demo", "arn": "arn:aws:eks:eu-west-1:123456789012:cluster/demo",
        "endpoint": endpoint, "status": "ACTIVE",
        "certificateAuthority": {"data": base64::engine::general_purpose::STANDARD.encode(ca_pem)}
    }})
    .to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let described = described.clone();
            tokio::spawn(async move {
                // One request per connection: read the head (GET, no body).
                let mut buf = vec![0u8; 16 * 1024];
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => read += k,
                    }
                }
                let (status, extra, body) = if n < throttle {
                    (
                        "400 Bad Request",
                        "x-amzn-ErrorType: ThrottlingException\r\n",
                        r#"{"message":"Rate exceeded"}"#.to_owned(),
                    )
                } else {
                    ("200 OK", "", described)
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (url, calls)
}

#[tokio::test]
async fn describe_cluster_throttling_is_retried_by_the_sdk_then_applies() {
    let server = eks_cluster(Arc::new(Mutex::new(SystemTime::now()))).await;
    let (url, calls) = fake_eks(2, server.url(), server.ca_pem().unwrap()).await;
    let config = sdk_config(Some(&url)).await;
    let clients = EksClients::new(&config, ClusterSource::describe(&config));
    let client = clients.client("demo").await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "two throttled, one answered"
    );
    let outcome = remediator(client).remediate(&rollback()).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert_eq!(image(&server), API_1);
}

#[tokio::test]
async fn describe_cluster_throttling_beyond_the_sdk_budget_is_retryable_aws_error() {
    let server = eks_cluster(Arc::new(Mutex::new(SystemTime::now()))).await;
    let (url, calls) = fake_eks(usize::MAX, server.url(), server.ca_pem().unwrap()).await;
    let config = sdk_config(Some(&url)).await;
    let clients = EksClients::new(&config, ClusterSource::describe(&config));
    let Err(err) = clients.client("demo").await else {
        panic!("throttled on every call, yet a client was built");
    };
    assert_eq!(err.error_type(), "RetryableAwsError", "{err}");
    assert!(err.is_retryable());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "the SDK's 3 attempts, no more"
    );
    assert_eq!(image(&server), API_2, "nothing written");
}
