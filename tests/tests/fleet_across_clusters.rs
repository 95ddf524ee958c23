//! remediate-fleet across clusters, accounts and regions: the REAL
//! `statemachines/remediate-fleet.asl.json` (and its child
//! remediate-deployment) in the local ASL interpreter (tests/asl/runner.mjs),
//! its Task states answered by the REAL handlers (`handle_action`,
//! `handle_verify`, `Notifier::handle`, in this process) in EKS mode: no
//! kubeconfig, clusters found with `DescribeCluster` at moto, roles assumed
//! at moto's STS, EKS tokens presigned and checked by the project's TLS test
//! API servers.
//!
//! Two motos, from the one launcher: `iam` holds IAM with enforcement on
//! (after the setup), so the function acts as an IAM user whose policy
//! grants exactly what the stack grants (`sts:AssumeRole` on the configured
//! roles) and a role whose trust policy does not trust it is refused, as AWS
//! refuses; `services` holds EKS, STS's credentials and SNS, without
//! enforcement, because moto's check cannot verify the signatures of
//! bodiless REST calls (`DescribeCluster`: it hashes the headers as the
//! body) nor of form bodies it re-encodes (SNS messages with spaces).
//!
//! The fleet: two clusters that work, `prod-east` (this account and region,
//! plain name, the function's own credentials) and `prod-west` (account
//! 222222222222, us-west-2, by ARN, through the assumed role), two
//! Deployments each; and two targets that fail the way real clusters do:
//! `legacy`, whose role refuses `AssumeRole` (`NonRetryableAccessDenied`),
//! and a cluster ARN naming no cluster in that account and region
//! (`NonRetryableClusterNotFound`).
//!
//! The one shim ("window" on the motos, test code): every AWS call goes on
//! unchanged (signature, Host and all) through a small proxy that (1) asks
//! `iam` about each `AssumeRole` first and, when allowed, has `services`
//! issue the credentials (so moto tells the accounts apart by them), (2) puts
//! the test API server's URL and CA into `DescribeCluster` answers, since
//! moto invents an unreachable hostname and random CA bytes, and (3) keeps
//! the credentials STS issued, so the API servers can check the tokens'
//! signatures, as EKS does by sending them to STS.
//!
//! Needs moto and node with tests/asl/node_modules; skipped with a message
//! without them unless `SELFHEAL_REQUIRE_TOOLS` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use lambda_runtime::{Context, LambdaEvent};
use selfheal_lambda::config::FunctionConfig;
use selfheal_lambda::{Action, AppState, handle_action, handle_verify};
use selfheal_notify::{Notifier, NotifyConfig};
use selfheal_tests::asl::{Reply, Runner, find_node, serve_functions};
use selfheal_tests::tools::{Moto, encode, http_request, tool_or_skip, xml_text};
use selfheal_testserver::{TestServer, fixtures};
use selfheal_token_verifier::{TokenVerifier, VerifiedToken};
use serde_json::{Value, json};

const TEST: &str = "fleet_across_clusters";
const HOME: &str = "us-east-1";
const TOOLING: &str = "123456789012";
const WORKLOAD: &str = "222222222222";

/// This account and region, named as requests name it.
const EAST: &str = "prod-east";
const EAST_ARN: &str = "arn:aws:eks:us-east-1:123456789012:cluster/prod-east";
/// Another account and region, reached through `WEST_ROLE`.
const WEST: &str = "arn:aws:eks:us-west-2:222222222222:cluster/prod-west";
const WEST_ROLE: &str = "arn:aws:iam::222222222222:role/selfheal-remediation";
/// A cluster whose role does not trust the function: STS refuses.
const LEGACY: &str = "arn:aws:eks:eu-west-1:123456789012:cluster/legacy";
const LEGACY_ROLE: &str = "arn:aws:iam::123456789012:role/selfheal-legacy";
/// No such cluster in that account and region (prod-east is in us-east-1).
const MISSING: &str = "arn:aws:eks:us-west-2:222222222222:cluster/prod-east";

const API_1: &str = "registry.example/shop/api:1.0.0";
const API_2: &str = "registry.example/shop/api:1.1.0";
const ENVOY: &str = "registry.example/envoy:1.27";
const DEPLOYMENTS: [&str; 2] = ["checkout", "cart"];

// ------------------------------------------------------------------ moto --

/// One call to moto as `account` in `region`, before IAM is enforced
/// (moto routes by the credential scope's service); returns the body.
async fn setup_call(
    moto: &Moto,
    (account, region, service): (&str, &str, &str),
    path: &str,
    content_type: &str,
    body: String,
) -> String {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=setup/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    );
    let headers = [
        ("content-type", content_type),
        ("authorization", auth.as_str()),
        ("x-moto-account-id", account),
    ];
    let url = format!("{}{path}", moto.url);
    let (status, _, bytes) =
        http_request("POST", &url, &headers, body, Duration::from_secs(30)).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert_eq!(status, 200, "moto {service} {path}: {text}");
    text
}

/// A query-protocol call (IAM, SNS) in this account and region.
async fn query(moto: &Moto, service: &str, params: &[(&str, &str)]) -> String {
    let body: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let form = "application/x-www-form-urlencoded";
    setup_call(moto, (TOOLING, HOME, service), "/", form, body.join("&")).await
}

/// EKS `CreateCluster` of `name` in `account` and `region`; returns its ARN.
async fn create_cluster(moto: &Moto, account: &str, region: &str, name: &str) -> String {
    let body = json!({
        "name": name,
        "roleArn": format!("arn:aws:iam::{account}:role/eks-cluster"),
        "resourcesVpcConfig": {"subnetIds": ["subnet-11111111"]},
    });
    let scope = (account, region, "eks");
    let created = setup_call(
        moto,
        scope,
        "/clusters",
        "application/json",
        body.to_string(),
    )
    .await;
    let created: Value = serde_json::from_str(&created).unwrap();
    created["cluster"]["arn"].as_str().unwrap().to_owned()
}

fn policy(statements: Value) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// IAM as the recipes in deploy/README.md leave it, in `iam`: the function
/// (an IAM user here) may assume exactly the configured roles, and the
/// legacy role trusts another tool only. Then IAM is enforced there.
/// Returns the function's credentials.
async fn set_up_iam(iam: &Moto) -> Credentials {
    let user = ("UserName", "selfheal-function");
    query(iam, "iam", &[("Action", "CreateUser"), user]).await;
    let key = query(iam, "iam", &[("Action", "CreateAccessKey"), user]).await;
    let grants = policy(json!([
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": [WEST_ROLE, LEGACY_ROLE]},
    ]));
    let put = [
        ("Action", "PutUserPolicy"),
        user,
        ("PolicyName", "selfheal"),
    ];
    query(
        iam,
        "iam",
        &[&put[..], &[("PolicyDocument", &grants)]].concat(),
    )
    .await;
    let trust = policy(json!([{
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:role/another-tool"},
        "Action": "sts:AssumeRole",
    }]));
    let role = [("Action", "CreateRole"), ("RoleName", "selfheal-legacy")];
    query(
        iam,
        "iam",
        &[&role[..], &[("AssumeRolePolicyDocument", &trust)]].concat(),
    )
    .await;

    // From here on every call must be signed by a known key and allowed.
    let url = format!("{}/moto-api/reset-auth", iam.url);
    let (status, _, body) = http_request("POST", &url, &[], "0", Duration::from_secs(10)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    Credentials::new(
        xml_text(&key, "AccessKeyId").unwrap(),
        xml_text(&key, "SecretAccessKey").unwrap(),
        None,
        None,
        "selfheal-function",
    )
}

/// The services in `services`: the three clusters, each in its account and
/// region, and the SNS topic notify publishes to (returned).
async fn set_up_services(services: &Moto) -> String {
    assert_eq!(
        create_cluster(services, TOOLING, HOME, "prod-east").await,
        EAST_ARN
    );
    assert_eq!(
        create_cluster(services, WORKLOAD, "us-west-2", "prod-west").await,
        WEST
    );
    assert_eq!(
        create_cluster(services, TOOLING, "eu-west-1", "legacy").await,
        LEGACY
    );
    let topic = query(
        services,
        "sns",
        &[("Action", "CreateTopic"), ("Name", "selfheal-fleet")],
    )
    .await;
    xml_text(&topic, "TopicArn").unwrap().to_owned()
}

// ---------------------------------------------------------------- window --

/// An `AssumeRole` as STS answered it.
#[derive(Debug, Clone)]
struct Assumed {
    role: String,
    session: String,
    status: u16,
    credentials: Option<Credentials>,
}

type Issued = Arc<Mutex<Vec<Assumed>>>;

/// The shim in front of the two motos (see the module comment).
struct Window {
    iam: String,
    services: String,
    /// Cluster ARN -> (API server URL, base64 of its CA's PEM).
    endpoints: HashMap<String, (String, String)>,
    /// Every AssumeRole and its answer, for the API servers' verifiers.
    issued: Issued,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

type Answer = (hyper::StatusCode, hyper::HeaderMap, Bytes);

impl Window {
    /// Serves the window; returns its URL.
    async fn serve(self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let window = Arc::new(self);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let window = window.clone();
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let window = window.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await?.to_bytes();
                        let (status, headers, bytes) = window.answer(&parts, body).await;
                        let mut response = hyper::Response::new(Full::new(bytes));
                        *response.status_mut() = status;
                        *response.headers_mut() = headers;
                        Ok::<_, hyper::Error>(response)
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        url
    }

    /// The request as it came (signature, Host and all) to `base`.
    async fn forward(&self, base: &str, parts: &http::request::Parts, body: &Bytes) -> Answer {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut forward = hyper::Request::builder()
            .method(parts.method.clone())
            .uri(format!("{base}{path}"));
        for (k, v) in &parts.headers {
            forward = forward.header(k, v);
        }
        let answer = self
            .client
            .request(forward.body(Full::new(body.clone())).unwrap())
            .await
            .unwrap();
        let (status, headers) = (answer.status(), answer.headers().clone());
        let bytes = answer.into_body().collect().await.unwrap().to_bytes();
        (status, headers, bytes)
    }

    async fn answer(&self, parts: &http::request::Parts, body: Bytes) -> Answer {
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        if form.get("Action").map(String::as_str) == Some("AssumeRole") {
            // IAM decides; if it allows, the services' STS issues the keys.
            let decided = self.forward(&self.iam, parts, &body).await;
            let answer = if decided.0.is_success() {
                self.forward(&self.services, parts, &body).await
            } else {
                decided
            };
            let text = String::from_utf8_lossy(&answer.2);
            let credentials = answer.0.is_success().then(|| {
                Credentials::new(
                    xml_text(&text, "AccessKeyId").unwrap(),
                    xml_text(&text, "SecretAccessKey").unwrap(),
                    xml_text(&text, "SessionToken").map(str::to_owned),
                    None,
                    "sts",
                )
            });
            self.issued.lock().unwrap().push(Assumed {
                role: form["RoleArn"].clone(),
                session: form["RoleSessionName"].clone(),
                status: answer.0.as_u16(),
                credentials,
            });
            return answer;
        }
        let (status, mut headers, mut bytes) = self.forward(&self.services, parts, &body).await;
        let describe =
            parts.method == hyper::Method::GET && parts.uri.path().starts_with("/clusters/");
        if describe && status.is_success() {
            let mut described: Value = serde_json::from_slice(&bytes).unwrap();
            let arn = described["cluster"]["arn"].as_str().unwrap_or_default();
            if let Some((endpoint, ca)) = self.endpoints.get(arn) {
                described["cluster"]["endpoint"] = json!(endpoint);
                described["cluster"]["certificateAuthority"]["data"] = json!(ca);
            }
            bytes = Bytes::from(described.to_string());
            headers.remove(hyper::header::CONTENT_LENGTH);
        }
        (status, headers, bytes)
    }
}

// -------------------------------------------------------------- clusters --

type Tokens = Arc<Mutex<Vec<VerifiedToken>>>;

/// A TLS test API server as EKS cluster `name`: `shop/checkout` and
/// `shop/cart` at revision 2 (api 1.1.0); every bearer token must be an EKS
/// token for `name` whose signature checks with credentials STS issued (or
/// the function's own); the verified tokens are kept.
async fn cluster(
    name: &str,
    known: impl Fn(&str) -> Option<Credentials> + Send + Sync + 'static,
) -> (TestServer, Tokens) {
    let server = TestServer::builder().tls(true).start().await.unwrap();
    for deployment in DEPLOYMENTS {
        let seeded = fixtures::checkout(API_1, ENVOY)
            .named("shop", deployment)
            .opt_in(true)
            .json();
        assert!(
            server.seed_two_revisions(seeded, "api", API_2).await,
            "{name} shop/{deployment}"
        );
    }
    let tokens: Tokens = Arc::default();
    let kept = tokens.clone();
    let name = name.to_owned();
    server.set_token_verifier(Arc::new(move |token: &str| {
        let signer = TokenVerifier::new(name.clone())
            .verify_now(token)
            .map_err(|e| e.to_string())?;
        let credentials = known(&signer.access_key_id)
            .ok_or_else(|| format!("no STS credentials with key {}", signer.access_key_id))?;
        let verified = TokenVerifier::new(name.clone())
            .with_credentials(credentials)
            .verify_now(token)
            .map_err(|e| e.to_string())?;
        if !verified.signature_checked {
            return Err("signature not checked".into());
        }
        kept.lock().unwrap().push(verified);
        Ok(())
    }));
    server.clear_requests();
    (server, tokens)
}

fn api_image(server: &TestServer, deployment: &str) -> String {
    let d = server.deployment("shop", deployment).unwrap();
    d.spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers.into_iter().find(|c| c.name == "api"))
        .and_then(|c| c.image)
        .unwrap_or_default()
}

// ------------------------------------------------------------- functions --

/// The handlers as the Lambda functions run them, answering the runner.
struct Functions {
    rollback: AppState,
    verify: AppState,
    notify: Notifier,
}

impl Functions {
    async fn start(sdk: &SdkConfig, topic: &str) -> Functions {
        let vars: HashMap<&str, String> = HashMap::from([
            (
                "SELFHEAL_CLUSTER_ROLES",
                format!("{WEST_ROLE},{LEGACY}={LEGACY_ROLE}"),
            ),
            ("SELFHEAL_COOLDOWN_SECONDS", "0".into()),
        ]);
        let state = || async {
            let config = FunctionConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
            AppState::with_sdk_config(config, sdk.clone())
                .await
                .unwrap()
        };
        let notify =
            NotifyConfig::from_lookup(|k| (k == "SELFHEAL_TOPIC_ARN").then(|| topic.to_owned()))
                .unwrap();
        Functions {
            rollback: state().await,
            verify: state().await,
            notify: Notifier::new(notify, sdk).await.unwrap(),
        }
    }

    async fn invoke(&self, function: &str, payload: Value) -> Reply {
        let event = LambdaEvent::new(payload, Context::default());
        fn answer<T: serde::Serialize, E: std::fmt::Display>(
            result: Result<T, E>,
            error_type: impl Fn(&E) -> &'static str,
        ) -> Reply {
            result
                .map(|out| serde_json::to_value(out).unwrap())
                .map_err(|e| (error_type(&e), e.to_string()))
        }
        match function {
            "rollback" => answer(
                handle_action(&self.rollback, Action::Rollback, event).await,
                |e| e.error_type(),
            ),
            "verify" => answer(handle_verify(&self.verify, event).await, |e| e.error_type()),
            "notify" => answer(self.notify.handle(event.payload).await, |e| e.error_type()),
            other => panic!("{TEST}: the fleet invoked {other}"),
        }
    }
}

// ------------------------------------------------------------------ test --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_reaches_clusters_in_two_accounts_and_regions_and_fails_per_target() {
    let Some(moto_bin) = tool_or_skip(TEST, Moto::binary()) else {
        return;
    };
    let Some(node) = tool_or_skip(TEST, find_node()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let iam = Moto::start(&moto_bin, &dir.path().join("iam.log")).await;
    let services = Moto::start(&moto_bin, &dir.path().join("services.log")).await;
    let function = set_up_iam(&iam).await;
    let topic = set_up_services(&services).await;

    // The clusters' API servers, each known to "EKS" by its ARN; their
    // verifiers take the keys STS issued from what the window recorded.
    let issued: Issued = Arc::default();
    let known = |own: Credentials, issued: Issued| {
        move |key: &str| {
            if key == own.access_key_id() {
                return Some(own.clone());
            }
            let issued = issued.lock().unwrap();
            issued
                .iter()
                .find_map(|a| a.credentials.clone().filter(|c| c.access_key_id() == key))
        }
    };
    let (east, east_tokens) = cluster(EAST, known(function.clone(), issued.clone())).await;
    let (west, west_tokens) = cluster("prod-west", known(function.clone(), issued.clone())).await;
    let ca = |s: &TestServer| base64::engine::general_purpose::STANDARD.encode(s.ca_pem().unwrap());
    let aws_url = Window {
        iam: iam.url.clone(),
        services: services.url.clone(),
        endpoints: HashMap::from([
            (EAST_ARN.to_owned(), (east.url(), ca(&east))),
            (WEST.to_owned(), (west.url(), ca(&west))),
        ]),
        issued: issued.clone(),
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
    .serve()
    .await;

    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(HOME))
        .credentials_provider(SharedCredentialsProvider::new(function.clone()))
        .endpoint_url(&aws_url)
        .load()
        .await;
    let functions = Arc::new(Functions::start(&sdk, &topic).await);
    let url = serve_functions(Arc::new(move |name: String, payload: Value| {
        let functions = functions.clone();
        Box::pin(async move { functions.invoke(&name, payload).await })
    }))
    .await;
    let runner = Runner::start(&node, &url, TEST);

    let mut targets = Vec::new();
    for cluster in [EAST, WEST] {
        for deployment in DEPLOYMENTS {
            targets.push(json!({"cluster": cluster, "namespace": "shop", "deployment": deployment, "container": "api"}));
        }
    }
    for cluster in [LEGACY, MISSING] {
        targets.push(json!({"cluster": cluster, "namespace": "shop", "deployment": "checkout", "container": "api"}));
    }
    let input = json!({
        "request": {"action": "rollback", "reason": format!("{TEST}: bad api 1.1.0 in every account and region")},
        "targets": targets,
        "maxConcurrency": 6,
    });
    let run = runner
        .run("remediate-fleet", "fleet-across-clusters", &input)
        .await;
    assert_eq!(run["status"], "SUCCEEDED", "{run:#}");
    let results = run["output"]["results"].as_array().expect("results");
    assert_eq!(results.len(), 6, "{run:#}");

    // The four targets in reachable clusters: rolled back and verified.
    for result in &results[..4] {
        assert_eq!(result["status"], "succeeded", "{result:#}");
        assert_eq!(result["outcome"]["status"], "applied", "{result:#}");
        assert_eq!(
            result["outcome"]["changes"],
            json!([{"container": "api", "from": API_2, "to": API_1}]),
            "{result:#}"
        );
    }
    for server in [&east, &west] {
        for deployment in DEPLOYMENTS {
            assert_eq!(api_image(server, deployment), API_1, "shop/{deployment}");
        }
    }
    // Each failing cluster fails its own target, named by the handler's errorType.
    let failed = |i: usize, cluster: &str, error: &str| {
        let result = &results[i];
        assert_eq!(result["status"], "failed", "{result:#}");
        assert_eq!(result["target"]["cluster"], cluster, "{result:#}");
        assert_eq!(result["error"], error, "{result:#}");
    };
    failed(4, LEGACY, "NonRetryableAccessDenied");
    failed(5, MISSING, "NonRetryableClusterNotFound");
    let summary = &run["output"]["summary"];
    assert_eq!(summary["total"], 6, "{summary:#}");
    assert_eq!(summary["succeeded"], 4, "{summary:#}");
    assert_eq!(
        summary["failures"],
        json!({"NonRetryableAccessDenied": 1, "NonRetryableClusterNotFound": 1}),
        "{summary:#}"
    );

    // STS: the workload role assumed (session named after selfheal), the
    // legacy role refused by its trust policy.
    let issued = issued.lock().unwrap().clone();
    let west_role: Vec<&Assumed> = issued.iter().filter(|a| a.role == WEST_ROLE).collect();
    assert!(
        !west_role.is_empty() && west_role.iter().all(|a| a.status == 200),
        "{issued:#?}"
    );
    // rollback and verify name the child execution (verify's Parameters
    // pass `$.execution.id`); credentials are cached per role, so a verify
    // may reuse the rollback's session.
    assert!(
        west_role.iter().all(|a| a.session.starts_with("selfheal")),
        "{issued:#?}"
    );
    let child = "selfheal-fleet-across-clusters-";
    assert!(
        west_role.iter().any(|a| a.session.starts_with(child)),
        "{issued:#?}"
    );
    let legacy: Vec<&Assumed> = issued.iter().filter(|a| a.role == LEGACY_ROLE).collect();
    assert!(
        !legacy.is_empty() && legacy.iter().all(|a| a.status == 403),
        "{issued:#?}"
    );

    // Who each cluster saw: prod-west the assumed role (its key and session
    // token, signed for us-west-2), prod-east the function itself.
    let west_tokens = west_tokens.lock().unwrap().clone();
    assert!(!west_tokens.is_empty());
    for token in &west_tokens {
        let by = west_role
            .iter()
            .filter_map(|a| a.credentials.as_ref())
            .find(|c| c.access_key_id() == token.access_key_id)
            .unwrap_or_else(|| panic!("prod-west saw key {}", token.access_key_id));
        assert_eq!(token.session_token.as_deref(), by.session_token());
        assert_eq!(token.region, "us-west-2");
    }
    let east_tokens = east_tokens.lock().unwrap().clone();
    assert!(!east_tokens.is_empty());
    for token in &east_tokens {
        assert_eq!(token.access_key_id, function.access_key_id());
        assert_eq!(token.session_token, None);
        assert_eq!(token.region, HOME);
    }
    // Every request either server got carried one of those tokens.
    for (server, tokens) in [(&east, east_tokens.len()), (&west, west_tokens.len())] {
        let requests = server.requests();
        assert_eq!(requests.len(), tokens, "{requests:?}");
        assert!(requests.iter().all(|r| r.status != 401 && r.status != 403));
    }
}
