//! The two ways `EksClients` finds a cluster:
//! - described: DescribeCluster against moto (`.venv/bin/moto_server`, from
//!   scripts/deps/20-python.sh), whose CA data is random bytes;
//! - configured: endpoint + CA of the project's TLS test API server, which
//!   checks our EKS tokens with `TokenVerifier` and answers 401 otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use secrecy::ExposeSecret;
use selfheal_eks::{
    ClusterEndpoint, ClusterSource, EksClients, Error, ManualClock, cluster::client_from_parts,
    presign_token,
};
use selfheal_tests::tools::{Moto, tool_or_skip};
use selfheal_testserver::TestServer;
use selfheal_token_verifier::{TokenVerifier, VerifiedToken};

mod aws_common;
use aws_common::{REGION, credentials, sdk_config};

/// The shared moto launcher, or `None` (a SKIP line) when moto is not installed.
async fn start_moto(dir: &Path) -> Option<Moto> {
    let bin = tool_or_skip(
        "describe_cluster_returns_motos_endpoint_and_ca",
        Moto::binary(),
    )?;
    Some(Moto::start(&bin, &dir.join("moto.log")).await)
}

#[tokio::test]
async fn describe_cluster_returns_motos_endpoint_and_ca() {
    let dir = tempfile::tempdir().unwrap();
    let Some(moto) = start_moto(dir.path()).await else {
        return;
    };
    let config = sdk_config(Some(&moto.url)).await;

    let eks = aws_sdk_eks::Client::new(&config);
    let created = &aws_common::create_cluster(&eks, "demo").await;
    let moto_endpoint = created.endpoint().unwrap().to_owned();
    let moto_ca = created
        .certificate_authority()
        .unwrap()
        .data()
        .unwrap()
        .to_owned();
    assert!(moto_endpoint.starts_with("https://"), "{moto_endpoint}");
    assert!(!moto_ca.is_empty());

    // Described path: exactly moto's values.
    let source = ClusterSource::describe(&config);
    let described = source.resolve("demo").await.unwrap();
    assert_eq!(
        described,
        ClusterEndpoint {
            endpoint: moto_endpoint.clone(),
            ca_data: Some(moto_ca.clone()),
        }
    );

    // moto's CA is random bytes, not a certificate: building the client says so.
    let clients = EksClients::new(&config, source.clone());
    let err = match clients.client("demo").await {
        Ok(_) => panic!("a client was built with moto's random CA"),
        Err(e) => e,
    };
    assert!(matches!(err, Error::InvalidClusterCa { .. }), "{err}");
    assert_eq!(err.error_type(), "NonRetryableAuthConfig");
    assert!(!err.is_retryable());

    // An unknown cluster is a typed, non-retryable not-found.
    let missing = source.resolve("no-such-cluster").await.unwrap_err();
    assert!(
        matches!(missing, Error::DescribeCluster { ref cluster, .. } if cluster == "no-such-cluster"),
        "{missing}"
    );
    assert_eq!(missing.error_type(), "NonRetryableClusterNotFound");
}

type Accepted = Arc<Mutex<Vec<VerifiedToken>>>;

/// TLS test server that authenticates EKS tokens for `demo` signed with our
/// dummy credentials (re-signed and compared by `TokenVerifier`); returns the
/// tokens it accepted.
async fn eks_test_server() -> (TestServer, Accepted) {
    let verifier = TokenVerifier::new("demo").with_credentials(credentials());
    aws_common::token_server(move |token| verifier.verify_now(token).map_err(|e| e.to_string()))
        .await
}

fn configured(server: &TestServer) -> ClusterSource {
    ClusterSource::Configured {
        cluster: Some("demo".into()),
        endpoint: ClusterEndpoint {
            endpoint: server.url(),
            ca_data: server.ca_pem(),
        },
    }
}

fn status_of(err: kube::Error) -> u16 {
    match err {
        kube::Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other}"),
    }
}

/// GET shop/web with `client`: the Deployment, or the API error's status.
async fn get_web(client: kube::Client) -> Result<Deployment, u16> {
    Api::<Deployment>::namespaced(client, "shop")
        .get("web")
        .await
        .map_err(status_of)
}

#[tokio::test]
async fn configured_endpoint_client_gets_deployment_with_eks_token() {
    let (server, accepted) = eks_test_server().await;
    assert!(server.url().starts_with("https://"));
    let started = SystemTime::now() - Duration::from_secs(1);
    let config = sdk_config(None).await;

    let clients = EksClients::new(&config, configured(&server));
    let client = clients.client("demo").await.unwrap();
    let web = get_web(client).await.unwrap();
    assert_eq!(web.metadata.name.as_deref(), Some("web"));
    let image = web.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("shop/api:1.0"));

    // The request was authenticated by our EKS token, signature checked.
    let first: Vec<VerifiedToken> = accepted.lock().unwrap().clone();
    assert!(!first.is_empty());
    for token in &first {
        assert!(token.signature_checked);
        assert_eq!(token.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(token.region, REGION);
        assert!(token.signed_at >= started && token.signed_at <= SystemTime::now());
    }

    // The cached client is reused for the next call and still works.
    let again = clients.client("demo").await.unwrap();
    assert_eq!(
        again.valid_until(),
        clients.client("demo").await.unwrap().valid_until()
    );
    get_web(again).await.unwrap();
    let all = accepted.lock().unwrap().clone();
    assert!(all.len() > first.len());
    assert!(all.iter().all(|t| t.signed_at == first[0].signed_at));
}

#[tokio::test]
async fn foreign_cluster_or_expired_token_is_rejected_401() {
    let (server, accepted) = eks_test_server().await;
    let ca = server.ca_pem().unwrap();
    let now = SystemTime::now();

    // Signed for another cluster: the signature does not match "demo".
    let other = presign_token(&credentials(), REGION, "other", now).unwrap();
    let client = client_from_parts(&server.url(), Some(&ca), other.token).unwrap();
    assert_eq!(get_web(client).await.unwrap_err(), 401);

    // Signed 16 minutes ago: past the server's 15 minutes.
    let stale = presign_token(
        &credentials(),
        REGION,
        "demo",
        now - Duration::from_secs(16 * 60),
    )
    .unwrap();
    let client = client_from_parts(&server.url(), Some(&ca), stale.token).unwrap();
    assert_eq!(get_web(client).await.unwrap_err(), 401);
    assert!(
        accepted.lock().unwrap().is_empty(),
        "nothing accepted so far"
    );

    // The same through EksClients with a clock running 16 minutes behind:
    // its token is stale on arrival, so the server refuses it.
    let config = sdk_config(None).await;
    let behind = Arc::new(ManualClock::new(now - Duration::from_secs(16 * 60)));
    let clients = EksClients::new(&config, configured(&server)).with_clock(behind.clone());
    let stale_client = clients.client("demo").await.unwrap();
    assert_eq!(get_web(stale_client).await.unwrap_err(), 401);
    // Once the clock says the token is due (14 minutes later), a fresh one is
    // signed (still 2 minutes old: accepted).
    behind.advance(Duration::from_secs(14 * 60));
    let fresh = clients.client("demo").await.unwrap();
    get_web(fresh).await.unwrap();

    // A fresh token for "demo" itself works (the control case).
    let good = presign_token(&credentials(), REGION, "demo", now).unwrap();
    assert!(good.token.expose_secret().starts_with("k8s-aws-v1."));
    let client = client_from_parts(&server.url(), Some(&ca), good.token).unwrap();
    get_web(client).await.unwrap();
}
