//! All five functions (`rollback`, `pause`, `resume`, `restart`, `verify`)
//! in EKS mode under cargo-lambda's Runtime API emulation: no kubeconfig, an
//! EKS token presigned from the (dummy) AWS credentials of the environment,
//! sent to the project's TLS test API server, which re-signs and compares
//! every token (`TokenVerifier`, aws-iam-authenticator's checks) and answers
//! 401 otherwise. Each action's resulting Deployment is asserted, and every
//! request the server got carried a token the verifier accepted.
//!
//! Why: only a real warm process shows that the cached EKS client is replaced
//! once its token is due (`SELFHEAL_TOKEN_LIFETIME_SECONDS=2` here) without a
//! single request going out with a stale or unverifiable token; and each
//! binary has its own `main`, so each must be seen to work in EKS mode.
//!
//! One emulator and one cluster for the whole sequence (CI has two cores).
//!
//! Skipped (loudly) when cargo-lambda is absent, unless `SELFHEAL_REQUIRE_TOOLS`
//! is set, in which case it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[path = "lambda_common/mod.rs"]
mod common;

use aws_credential_types::Credentials;
use selfheal_tests::emulator::Emulator;
use selfheal_tests::tools::free_port;
use selfheal_testserver::TestServer;
use selfheal_token_verifier::TokenVerifier;
use serde_json::{Value, json};

use common::{
    ACCESS_KEY, API_1, API_2, ENVOY, SECRET_KEY, checkout, dummy_aws_env, images, paused,
    restarted_at, warm_up,
};

const TEST: &str = "lambda_eks_mode_refreshes_tokens_in_one_warm_process";
const FUNCTIONS: [&str; 5] = ["rollback", "pause", "resume", "restart", "verify"];
const CLUSTER: &str = "demo";

/// Bearer tokens the server accepted (distinct), how many requests carried
/// an accepted one, and the reasons it refused any.
#[derive(Default)]
struct Seen {
    accepted: HashSet<String>,
    verified: usize,
    rejected: Vec<String>,
}

/// TLS server with checkout at revision 2 (bad api image 1.1.0, rollout
/// finished), set up through the store; then EKS tokens for `demo` signed
/// with the dummy credentials are checked and recorded.
async fn eks_cluster() -> (TestServer, Arc<Mutex<Seen>>) {
    let server = TestServer::builder().tls(true).start().await.unwrap();
    assert!(server.seed_two_revisions(checkout(), "api", API_2).await);

    let verifier = TokenVerifier::new(CLUSTER)
        .with_credentials(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"));
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let record = seen.clone();
    server.set_token_verifier(Arc::new(move |token: &str| {
        let result = verifier.verify_now(token).map_err(|e| e.to_string());
        let mut seen = record.lock().unwrap();
        match &result {
            Ok(_) => {
                seen.accepted.insert(token.to_owned());
                seen.verified += 1;
            }
            Err(why) => seen.rejected.push(why.clone()),
        }
        result.map(|_| ())
    }));
    server.clear_requests();
    (server, seen)
}

/// No `target.cluster`: `SELFHEAL_DEFAULT_CLUSTER` picks `demo`.
fn target() -> Value {
    json!({ "target": { "namespace": "shop", "deployment": "checkout" } })
}

fn request(action: &str) -> Value {
    let mut request = target();
    request["action"] = json!(action);
    request["reason"] = json!("lambda_eks_mode_e2e");
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_eks_mode_refreshes_tokens_in_one_warm_process() {
    let Some(bin) = common::cargo_lambda_ready(TEST).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, seen) = eks_cluster().await;
    assert_eq!(images(&server)["api"], API_2);

    let mut env = dummy_aws_env();
    env.extend(common::eks_env(&server, CLUSTER));
    env.extend([
        ("SELFHEAL_TOKEN_LIFETIME_SECONDS", "2".into()),
        ("SELFHEAL_REQUIRE_OPT_IN", "false".into()),
        ("SELFHEAL_COOLDOWN_SECONDS", "0".into()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        // Debug, not the default info: the secret scan below must also hold
        // for what the SDK, hyper and kube log when a user turns logging up.
        ("AWS_LAMBDA_LOG_LEVEL", "debug".into()),
    ]);
    let lambda = Emulator::start(&bin, free_port(), &env, dir.path().join("watch.log")).await;
    warm_up(&lambda, &FUNCTIONS).await;
    assert!(
        server.requests().is_empty(),
        "refused requests must not reach the API server"
    );

    // verify (read-only) three times, each after the previous token is due.
    for round in 0..3 {
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(2_500)).await;
        }
        let verdict = lambda.ok("verify", &target()).await;
        assert_eq!(verdict["state"], "done", "round {round}: {verdict}");
        assert_eq!(verdict["target"]["deployment"], "checkout", "{verdict}");
    }
    assert_eq!(images(&server)["api"], API_2, "verify must not write");

    // rollback with a fresh token again: only the api image reverts.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let outcome = lambda.ok("rollback", &request("rollback")).await;
    assert_eq!(outcome["status"], "applied", "{outcome}");
    assert_eq!(outcome["target"]["cluster"], CLUSTER, "{outcome}");
    assert_eq!(
        outcome["changes"],
        json!([{ "container": "api", "from": API_2, "to": API_1 }])
    );
    assert_eq!(
        images(&server),
        BTreeMap::from([("api".into(), API_1.into()), ("envoy".into(), ENVOY.into())])
    );

    // And verify once more, still warm, after yet another refresh.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let verdict = lambda.ok("verify", &outcome).await;
    assert!(
        verdict["state"] == "done" || verdict["state"] == "waiting",
        "{verdict}"
    );
    let rolled_back =
        BTreeMap::from([("api".into(), API_1.into()), ("envoy".into(), ENVOY.into())]);

    // pause, then pause again in the same warm process once its token is
    // due (already paused: skipped), resume, restart: each a signed request.
    assert!(!paused(&server));
    let out = lambda.ok("pause", &request("pause")).await;
    assert_eq!(out["status"], "applied", "{out}");
    assert_eq!(out["action"], "pause", "{out}");
    assert!(paused(&server), "pause must set spec.paused");
    assert_eq!(images(&server), rolled_back, "pause keeps images");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let out = lambda.ok("pause", &request("pause")).await;
    assert_eq!(out["status"], "skipped", "{out}");
    assert!(paused(&server));

    let out = lambda.ok("resume", &request("resume")).await;
    assert_eq!(out["status"], "applied", "{out}");
    assert_eq!(out["action"], "resume", "{out}");
    assert!(!paused(&server), "resume must clear spec.paused");
    assert_eq!(images(&server), rolled_back, "resume keeps images");

    assert_eq!(restarted_at(&server), None);
    let out = lambda.ok("restart", &request("restart")).await;
    assert_eq!(out["status"], "applied", "{out}");
    assert_eq!(out["action"], "restart", "{out}");
    let at = restarted_at(&server).expect("restart sets the restartedAt annotation");
    assert!(
        at.parse::<jiff::Timestamp>().is_ok(),
        "restartedAt {at:?} is not a timestamp"
    );
    assert_eq!(images(&server), rolled_back, "restart keeps images");
    assert!(!paused(&server));

    // Tokens: refreshed (several distinct), never one the server refused,
    // and every request the server got carried one the verifier accepted
    // (the verifier runs once per request; none was anonymous).
    {
        let seen = seen.lock().unwrap();
        assert!(
            seen.rejected.is_empty(),
            "server rejected tokens: {:?}\n{}",
            seen.rejected,
            lambda.log_text()
        );
        let requests = server.requests();
        assert_eq!(
            seen.verified,
            requests.len(),
            "requests without a verified EKS token: {:?}",
            requests
                .iter()
                .map(|r| (&r.method, &r.path, r.status))
                .collect::<Vec<_>>()
        );
        assert!(
            seen.accepted.len() >= 2,
            "no token refresh: {} distinct token(s)",
            seen.accepted.len()
        );
        assert!(seen.accepted.iter().all(|t| t.starts_with("k8s-aws-v1.")));
    }
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.status != 401 && r.status != 403),
        "an API request was refused"
    );

    // No credential in any log line: not the secret key, not one of the
    // bearer tokens the server accepted, nor anything token-shaped.
    {
        let seen = seen.lock().unwrap();
        let mut secrets: Vec<&str> = vec![SECRET_KEY];
        secrets.extend(seen.accepted.iter().map(String::as_str));
        // The signed URL inside a token, too (a log of the presigned request).
        let urls: Vec<String> = seen
            .accepted
            .iter()
            .filter_map(|t| t.strip_prefix("k8s-aws-v1."))
            .map(|b64| b64.chars().take(48).collect())
            .collect();
        secrets.extend(urls.iter().map(String::as_str));
        selfheal_tests::secrets::assert_no_leaks(
            "all five functions in EKS mode",
            &lambda.log_text(),
            &secrets,
        );
    }

    // One warm process per function, whose EKS client was rebuilt.
    let pids = common::started_once(&lambda, &FUNCTIONS);
    let inits = lambda.logs_with_message("selfheal function initialised");
    let builds = lambda.logs_with_message("kube client built");
    assert!(
        builds
            .iter()
            .all(|l| l["fields"]["mode"] == "eks" && pids.contains(&l["fields"]["pid"].to_string())),
        "client built outside the warm processes: {builds:?}"
    );
    // verify: 4 invocations 2.5 s apart; pause: 2; the others 1 each.
    let pid_of = |f: &str| {
        inits
            .iter()
            .find(|l| l["fields"]["function"] == f)
            .map(|l| l["fields"]["pid"].clone())
            .unwrap()
    };
    for (f, at_least) in [
        ("verify", 4),
        ("pause", 2),
        ("rollback", 1),
        ("resume", 1),
        ("restart", 1),
    ] {
        let pid = pid_of(f);
        let n = builds.iter().filter(|l| l["fields"]["pid"] == pid).count();
        assert!(
            n >= at_least,
            "{f}: expected an EKS client per due token ({at_least}), got {n}:\n{}",
            lambda.log_text()
        );
    }
}
