//! `Remediator::watch_status` (the `verify` step and `selfheal status
//! --watch`) with the real kube client against the project's test API server:
//! a rollout that finishes or fails during the window, a window that ends
//! first, and a watch the server ends (410 Gone, an early close) or the
//! network drops. Each asserts the returned verdict and the requests sent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::PostParams;
use secrecy::SecretString;
use selfheal_core::{Policy, RolloutState, RolloutStatus};
use selfheal_kube::{Remediator, client_from_parts};
use selfheal_testserver::fixtures::{API_REPO as API, ENVOY_REPO as ENVOY, NAMESPACE as NS};
use selfheal_testserver::{ControllerConfig, Faults, RecordedRequest, TestServer, fixtures};
use serde_json::json;

const BROKEN: &str = "registry.example/shop/api:broken";
const DEPLOY_PATH: &str = "/apis/apps/v1/namespaces/shop/deployments";

/// A settled `checkout` whose api image then changes with the controller
/// stopped: the rollout waits ("spec update to be observed") until the test
/// lets the controller run. Returns the server and a Remediator on it.
async fn rollout_in_progress(
    builder: selfheal_testserver::TestServerBuilder,
    new_image: &str,
    progress_deadline: Option<i32>,
) -> (TestServer, Remediator) {
    let server = builder.start().await.unwrap();
    server
        .apply_objects(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    let client =
        client_from_parts(&server.url(), None, SecretString::from(server.token())).unwrap();
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let mut checkout = fixtures::checkout(format!("{API}:1.0.0"), format!("{ENVOY}:1.27"));
    if let Some(seconds) = progress_deadline {
        checkout = checkout.progress_deadline(seconds);
    }
    api.create(&PostParams::default(), &checkout.deployment())
        .await
        .unwrap();
    assert!(server.controller().settle().await);
    server.controller().pause_automatic(true);
    let mut changed = checkout.json();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!(new_image);
    server.apply_objects(changed);
    server.clear_requests();
    (server, Remediator::new(client, Policy::default()))
}

fn watches(server: &TestServer) -> Vec<RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.path == DEPLOY_PATH && r.query.get("watch").is_some_and(|w| w == "true"))
        .collect()
}

/// The LISTs by name that give each verdict and each watch's starting point.
fn reads(server: &TestServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| {
            r.method == "GET"
                && r.path == DEPLOY_PATH
                && !r.query.contains_key("watch")
                && r.query.get("fieldSelector").map(String::as_str)
                    == Some("metadata.name=checkout")
        })
        .count()
}

/// Runs `f` after `after`, in the background (a scripted moment).
fn later(after: Duration, f: impl FnOnce() + Send + 'static) {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        f();
    });
}

/// Lets the controller run after `after`: the rollout then finishes.
fn finish_rollout_after(server: &TestServer, after: Duration) {
    server.controller().resume_automatic_after(after);
}

/// A rollout to api 1.1.0 waiting for the controller, on a default server.
async fn api_update() -> (TestServer, Remediator) {
    rollout_in_progress(TestServer::builder(), &format!("{API}:1.1.0"), None).await
}

/// `watch_status` of `checkout` with a 10 s window.
async fn watch(remediator: &Remediator) -> selfheal_kube::Result<RolloutStatus> {
    remediator
        .watch_status(NS, "checkout", Duration::from_secs(10))
        .await
}

/// `watch_status` of `checkout` with `window`: the verdict and how long it took.
async fn timed_watch(remediator: &Remediator, window: Duration) -> (RolloutStatus, Duration) {
    let started = Instant::now();
    let status = remediator
        .watch_status(NS, "checkout", window)
        .await
        .unwrap();
    (status, started.elapsed())
}

#[tokio::test]
async fn returns_done_the_moment_the_rollout_finishes() {
    let (server, remediator) = api_update().await;
    finish_rollout_after(&server, Duration::from_millis(300));
    let started = Instant::now();
    let status = watch(&remediator).await.unwrap();
    let took = started.elapsed();
    assert_eq!(status.state, RolloutState::Done, "{status:?}");
    assert_eq!(
        status.message,
        r#"deployment "checkout" successfully rolled out"#
    );
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    let watch = watches(&server);
    assert_eq!(watch.len(), 1, "{:?}", server.requests());
    assert_eq!(
        watch[0].query.get("fieldSelector").map(String::as_str),
        Some("metadata.name=checkout")
    );
    assert_eq!(watch[0].query["timeoutSeconds"], "10");
    assert!(watch[0].query.contains_key("resourceVersion"));
    assert_eq!(reads(&server), 1);
}

#[tokio::test]
async fn returns_failed_when_the_progress_deadline_passes() {
    let config = ControllerConfig::never_ready_image(BROKEN);
    let (server, remediator) =
        rollout_in_progress(TestServer::builder().controller(config), BROKEN, Some(5)).await;
    let controller = server.controller();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        controller.reconcile_now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        controller.advance(Duration::from_secs(10));
    });
    let status = watch(&remediator).await.unwrap();
    assert_eq!(status.state, RolloutState::Failed, "{status:?}");
    assert_eq!(
        status.message,
        r#"deployment "checkout" exceeded its progress deadline"#
    );
    assert_eq!(watches(&server).len(), 1);
}

#[tokio::test]
async fn answers_waiting_with_a_fresh_read_when_the_window_ends() {
    let (server, remediator) = api_update().await;
    let (status, took) = timed_watch(&remediator, Duration::from_secs(2)).await;
    assert_eq!(status.state, RolloutState::Waiting, "{status:?}");
    assert_eq!(
        status.message,
        "Waiting for deployment spec update to be observed..."
    );
    assert!(
        (Duration::from_millis(1900)..Duration::from_secs(3)).contains(&took),
        "window of 2 s took {took:?}"
    );
    // The server ended the watch at timeoutSeconds; the answer comes from a
    // read after it, not from the state before the window.
    let watch = watches(&server);
    assert_eq!(watch.len(), 1);
    assert_eq!(watch[0].query["timeoutSeconds"], "2");
    assert_eq!(reads(&server), 2);
    assert_eq!(
        remediator
            .watch_status(NS, "checkout", Duration::ZERO)
            .await
            .unwrap(),
        status,
        "a zero window is one read"
    );
}

/// A window longer than one watch request (`WATCH_SEGMENT`, 15 s) is
/// watched in segments: the server ends the first at its `timeoutSeconds`,
/// a fresh read follows, and the next watch sees the rollout finish.
#[tokio::test]
async fn a_long_window_is_watched_in_segments() {
    let (server, remediator) = api_update().await;
    finish_rollout_after(&server, Duration::from_secs(16));
    let (status, took) = timed_watch(&remediator, Duration::from_secs(22)).await;
    assert_eq!(status.state, RolloutState::Done, "{status:?}");
    assert!(
        (Duration::from_secs(16)..Duration::from_secs(19)).contains(&took),
        "answered after {took:?}"
    );
    let watch = watches(&server);
    assert_eq!(watch.len(), 2, "{:?}", server.requests());
    assert_eq!(watch[0].query["timeoutSeconds"], "15");
    let second: u32 = watch[1].query["timeoutSeconds"].parse().unwrap();
    assert!(
        (6..=7).contains(&second),
        "the rest of the window: {second}"
    );
    assert_eq!(reads(&server), 2);
}

#[tokio::test]
async fn a_too_old_resource_version_rereads_and_watches_on() {
    let (server, remediator) = rollout_in_progress(
        TestServer::builder().watch_window(5),
        &format!("{API}:1.1.0"),
        None,
    )
    .await;
    // Between the read and the watch, other Deployments' writes push the
    // read's resourceVersion out of the server's 5-event watch cache.
    let filler = server.clone();
    server
        .faults()
        .before_next("GET", || {})
        .before_next("GET", move || {
            for i in 0..8 {
                filler.apply_objects(json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": format!("filler-{i}"), "namespace": NS},
                    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "filler"}},
                             "template": {"metadata": {"labels": {"app": "filler"}},
                                          "spec": {"containers": [{"name": "c", "image": "c:1"}]}}}
                }));
            }
        });
    finish_rollout_after(&server, Duration::from_millis(500));
    let status = watch(&remediator).await.unwrap();
    assert_eq!(status.state, RolloutState::Done, "{status:?}");
    let watch = watches(&server);
    assert_eq!(watch.len(), 2, "one 410, then a watch from the re-read");
    assert_ne!(
        watch[0].query["resourceVersion"], watch[1].query["resourceVersion"],
        "the second watch starts from the re-read's version"
    );
    assert_eq!(reads(&server), 2);
}

/// [`watch`] of [`api_update`] with `fault` injected 300 ms in and, when
/// `finish` says when, the controller let run then; with the time it took.
async fn watch_through(
    fault: fn(&Faults),
    finish: Option<Duration>,
) -> (TestServer, selfheal_kube::Result<RolloutStatus>, Duration) {
    let (server, remediator) = api_update().await;
    let faults = server.faults();
    later(Duration::from_millis(300), move || fault(&faults));
    if let Some(after) = finish {
        finish_rollout_after(&server, after);
    }
    let started = Instant::now();
    let result = watch(&remediator).await;
    (server, result, started.elapsed())
}

#[tokio::test]
async fn an_early_server_close_rereads_and_watches_on() {
    let end = |f: &Faults| {
        f.end_watches();
    };
    let (server, result, _) = watch_through(end, Some(Duration::from_millis(800))).await;
    let status = result.unwrap();
    assert_eq!(status.state, RolloutState::Done, "{status:?}");
    assert_eq!(watches(&server).len(), 2);
    assert_eq!(reads(&server), 2);
}

#[tokio::test]
async fn a_dropped_connection_is_a_retryable_error_not_a_verdict() {
    let drop = |f: &Faults| {
        f.drop_connections();
    };
    let (server, result, took) = watch_through(drop, None).await;
    let error = result.unwrap_err();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(error.error_type(), "RetryableApiError", "{error}");
    assert!(error.is_retryable());
    // The watch broke, not a read around it.
    assert!(error.to_string().contains("watch"), "{error}");
    // Nothing finished meanwhile: a "done" here would have been false.
    let live = server.deployment(NS, "checkout").unwrap();
    assert_eq!(
        selfheal_core::rollout_status(&live).state,
        RolloutState::Waiting
    );
    assert_eq!(watches(&server).len(), 1);
}
