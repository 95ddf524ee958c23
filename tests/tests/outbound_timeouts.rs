//! Every outbound call ends, typed and retryable, when the other side accepts
//! the connection and never answers ("black hole"), well before the Lambda
//! timeout that would otherwise end it untyped (docs/limits.md):
//! - ingest's StartExecution (selfheal_aws timeouts) → `Transport`, webhook
//!   503, event error `RetryableStartExecution`;
//! - EKS DescribeCluster (same timeouts) → `RetryableAwsError`;
//! - the Kubernetes API through the verify handler (selfheal-kube's connect and
//!   read timeouts) → `RetryableApiError`, for HTTPS (TLS never answered:
//!   connect timeout) and plain HTTP (response never sent: read timeout).
//!
//! `tokio::time::timeout` here is only a guard that turns a regression into a
//! failure instead of a hang; the bounds asserted are the real timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sfn::config::Credentials;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use selfheal_eks::{ClusterSource, EksClients};
use selfheal_events::Defaults;
use selfheal_ingest::{Ingest, SfnStarter, WebhookSecret};
use selfheal_lambda::{AppState, FunctionConfig, HandlerError, handle_verify};
use serde_json::{Value, json};

/// Lambda timeouts from template.yaml.
const INGEST_TIMEOUT: Duration = Duration::from_secs(20);
const HANDLER_TIMEOUT: Duration = Duration::from_secs(25);
/// A regression (no timeout at all) fails here instead of hanging the suite.
const GUARD: Duration = Duration::from_secs(60);

/// Accepts every connection and never writes a byte; holds the sockets open.
/// Returns its address and how many connections it accepted.
async fn black_hole() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (address, accepted)
}

/// The production timeouts (`selfheal_aws::loader`) with a test endpoint,
/// region and static credentials.
async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    selfheal_aws::loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(Credentials::for_tests())
        .load()
        .await
}

/// Runs `call` under the guard; returns its result and how long it took.
async fn timed<T>(what: &str, call: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let result = tokio::time::timeout(GUARD, call)
        .await
        .unwrap_or_else(|_| panic!("{what} still hanging after {GUARD:?}: no timeout"));
    (result, started.elapsed())
}

/// The AWS SDK gave up at its operation timeout, well before `lambda`, after
/// sending the request once: an attempt that got no answer may have been
/// applied, so it is not sent again (selfheal_aws::OPERATION_ATTEMPT_TIMEOUT).
fn assert_sdk_gave_up(what: &str, elapsed: Duration, attempts: usize, lambda: Duration) {
    eprintln!("{what}: gave up after {elapsed:?}, {attempts} connection(s)");
    let timeout = selfheal_aws::OPERATION_TIMEOUT;
    assert!(
        elapsed >= timeout && elapsed <= timeout + Duration::from_secs(2),
        "{what}: ended after {elapsed:?}, operation timeout is {timeout:?}"
    );
    assert!(
        elapsed < lambda,
        "{what}: {elapsed:?} is not below the Lambda timeout"
    );
    assert_eq!(attempts, 1, "{what}: an unanswered request was sent again");
}

#[tokio::test]
async fn start_execution_to_a_black_hole_is_a_retryable_failure_within_the_timeout() {
    let (address, accepted) = black_hole().await;
    let sdk = sdk_config(&format!("http://{address}")).await;
    let arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:remediate-deployment";
    let ingest = Ingest::new(
        SfnStarter::new(aws_sdk_sfn::Client::new(&sdk), arn),
        WebhookSecret::from_value("s3cret"),
        Defaults::default(),
        8,
    );
    let event = json!({
        "action": "restart",
        "target": {"cluster": "c", "namespace": "shop", "deployment": "checkout"},
        "reason": "outbound_timeouts"
    });

    let received = event.to_string().len();
    let (result, elapsed) = timed("StartExecution", ingest.handle(event, received)).await;
    let error = result.unwrap_err();
    assert_eq!(error.error_type(), "RetryableStartExecution", "{error}");
    let message = Diagnostic::from(error).error_message;
    assert!(message.contains("(Transport: "), "{message}");
    assert_sdk_gave_up(
        "StartExecution",
        elapsed,
        accepted.load(Ordering::SeqCst),
        INGEST_TIMEOUT,
    );
}

#[tokio::test]
async fn describe_cluster_to_a_black_hole_is_retryable_aws_error_within_the_timeout() {
    let (address, accepted) = black_hole().await;
    let sdk = sdk_config(&format!("http://{address}")).await;
    let clients = EksClients::new(&sdk, ClusterSource::describe(&sdk));

    let (result, elapsed) = timed("DescribeCluster", clients.client("prod-eks")).await;
    let error = result.err().expect("no answer cannot build a client");
    assert_eq!(error.error_type(), "RetryableAwsError", "{error}");
    // What the handler reports to the state machine, which retries it.
    let diagnostic = Diagnostic::from(HandlerError::from(error));
    assert_eq!(diagnostic.error_type, "RetryableAwsError");
    assert_sdk_gave_up(
        "DescribeCluster",
        elapsed,
        accepted.load(Ordering::SeqCst),
        HANDLER_TIMEOUT,
    );
}

/// The verify handler in local (kubeconfig) mode against `server`.
async fn verify_against(server: &str) -> (Result<Value, HandlerError>, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
             clusters: [{{name: c, cluster: {{server: '{server}', insecure-skip-tls-verify: true}}}}]\n\
             contexts: [{{name: c, context: {{cluster: c, user: u}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\n"
        ),
    )
    .unwrap();
    let path = kubeconfig.to_str().unwrap().to_owned();
    let config =
        FunctionConfig::from_lookup(|k| (k == "SELFHEAL_KUBECONFIG").then(|| path.clone()))
            .unwrap();
    let state = AppState::new(config).await.unwrap();
    let event = LambdaEvent::new(
        json!({"target": {"namespace": "shop", "deployment": "checkout"}}),
        Context::default(),
    );
    let (result, elapsed) = timed(server, handle_verify(&state, event)).await;
    (
        result.map(|out| serde_json::to_value(out).unwrap()),
        elapsed,
    )
}

#[tokio::test]
async fn kubernetes_api_black_hole_is_retryable_api_error_within_the_timeout() {
    use selfheal_kube::client::{CONNECT_TIMEOUT, READ_TIMEOUT};

    let (tls, _) = black_hole().await;
    let (plain, _) = black_hole().await;
    // Concurrently: the read timeout case takes its full 20 s.
    let (tls_url, plain_url) = (format!("https://{tls}"), format!("http://{plain}"));
    let ((tls_result, tls_elapsed), (plain_result, plain_elapsed)) =
        tokio::join!(verify_against(&tls_url), verify_against(&plain_url));

    // HTTPS: the TLS handshake is never answered, so the connect timeout ends it.
    // HTTP: the request is sent, no response comes, so the read timeout ends it.
    for (what, result, elapsed, bound) in [
        ("TLS handshake", tls_result, tls_elapsed, CONNECT_TIMEOUT),
        ("request", plain_result, plain_elapsed, READ_TIMEOUT),
    ] {
        let error = result
            .err()
            .unwrap_or_else(|| panic!("{what}: verify succeeded"));
        let diagnostic = Diagnostic::from(error);
        eprintln!(
            "Kubernetes API, {what} never answered: gave up after {elapsed:?}: {}",
            diagnostic.error_message
        );
        assert_eq!(
            diagnostic.error_type, "RetryableApiError",
            "{what}: {}",
            diagnostic.error_message
        );
        assert!(
            elapsed >= bound && elapsed <= bound + Duration::from_secs(3),
            "{what}: ended after {elapsed:?}, expected the {bound:?} timeout"
        );
        assert!(elapsed < HANDLER_TIMEOUT, "{what}: {elapsed:?}");
    }
}
