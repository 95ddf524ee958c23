//! Clusters in other accounts and regions: `EksClients` assumes the cluster's
//! role at moto's STS, calls DescribeCluster in the cluster's region with
//! those credentials, and signs the EKS token with them; the project's TLS
//! test API server authenticates that token.
//!
//! moto keeps every account apart by the calling credentials (an assumed
//! role's keys act in the role's account), so a cluster created with the
//! assumed credentials is only found when DescribeCluster uses them too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::{Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use selfheal_eks::{ClusterEndpoint, ClusterRoles, ClusterSource, EksClients, ManualClock};
use selfheal_tests::tools::{Moto, tool_or_skip};
use selfheal_testserver::TestServer;
use selfheal_token_verifier::TokenVerifier;

mod aws_common;
use aws_common::{ACCESS_KEY, REGION, sdk_config};

const ROLE: &str = "arn:aws:iam::111111111111:role/selfheal-remediation";
const EAST: &str = "arn:aws:eks:us-east-1:111111111111:cluster/east";
const WEST: &str = "arn:aws:eks:eu-west-2:111111111111:cluster/west";

/// moto for one test, logging into its own temporary directory, and an SDK
/// config for it.
struct Aws {
    _dir: tempfile::TempDir,
    _moto: Moto,
    config: SdkConfig,
}

/// [`Aws`] for `test`; `None` (the test is skipped) without moto.
async fn start_moto(test: &str) -> Option<Aws> {
    let bin = tool_or_skip(test, Moto::binary())?;
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start(&bin, &dir.path().join("moto.log")).await;
    let config = sdk_config(Some(&moto.url)).await;
    Some(Aws {
        _dir: dir,
        _moto: moto,
        config,
    })
}

/// `config` in `region` acting with `credentials`.
fn acting_as(config: &SdkConfig, region: &str, credentials: &Credentials) -> aws_sdk_eks::Client {
    let conf = aws_sdk_eks::config::Builder::from(config)
        .region(Region::new(region.to_owned()))
        .credentials_provider(SharedCredentialsProvider::new(credentials.clone()))
        .build();
    aws_sdk_eks::Client::from_conf(conf)
}

async fn create_cluster(eks: &aws_sdk_eks::Client, name: &str) -> String {
    let cluster = aws_common::create_cluster(eks, name).await;
    cluster.endpoint().unwrap().to_owned()
}

fn roles() -> ClusterRoles {
    ClusterRoles::parse(ROLE).unwrap()
}

#[tokio::test]
async fn assumed_role_describes_clusters_in_two_regions_and_signs_their_tokens() {
    let Some(aws) =
        start_moto("assumed_role_describes_clusters_in_two_regions_and_signs_their_tokens").await
    else {
        return;
    };
    let config = aws.config.clone();
    let clients = EksClients::new(&config, ClusterSource::describe(&config)).with_roles(roles());

    // The role's temporary credentials, not the function's own keys.
    let assumed = clients.credentials(EAST).await.unwrap();
    assert_ne!(assumed.access_key_id(), ACCESS_KEY);
    assert!(assumed.session_token().is_some_and(|t| !t.is_empty()));
    assert_eq!(
        clients.credentials(WEST).await.unwrap().access_key_id(),
        assumed.access_key_id(),
        "one role, one cached AssumeRole"
    );

    // One cluster per region in the role's account.
    let east = create_cluster(&acting_as(&config, "us-east-1", &assumed), "east").await;
    let west = create_cluster(&acting_as(&config, "eu-west-2", &assumed), "west").await;
    assert_ne!(east, west);

    // DescribeCluster in each ARN's region, with the assumed credentials.
    assert_eq!(clients.endpoint(EAST).await.unwrap().endpoint, east);
    assert_eq!(clients.endpoint(WEST).await.unwrap().endpoint, west);
    // The same name in another region is another (absent) cluster ...
    let elsewhere = clients
        .endpoint("arn:aws:eks:eu-west-2:111111111111:cluster/east")
        .await
        .unwrap_err();
    assert_eq!(elsewhere.error_type(), "NonRetryableClusterNotFound");
    // ... and the function's own credentials do not see the role's account,
    // nor does a plain name (this account and region, as before).
    let own = EksClients::new(&config, ClusterSource::describe(&config));
    let not_assumed = own.endpoint(EAST).await.unwrap_err();
    assert_eq!(not_assumed.error_type(), "NonRetryableClusterNotFound");
    assert_eq!(
        clients.endpoint("east").await.unwrap_err().error_type(),
        "NonRetryableClusterNotFound"
    );

    // The token is for the cluster's name and region, signed by the role.
    let token = clients.token(WEST).await.unwrap();
    let verified = TokenVerifier::new("west")
        .with_credentials(assumed.clone())
        .verify_now(secrecy::ExposeSecret::expose_secret(&token.token))
        .unwrap();
    assert!(verified.signature_checked);
    assert_eq!(verified.region, "eu-west-2");
    assert_eq!(verified.access_key_id, assumed.access_key_id());
    assert_eq!(verified.session_token.as_deref(), assumed.session_token());
    // Signed with the function's own keys it would not pass as the role.
    assert_ne!(REGION, verified.region);
}

type Seen = Arc<Mutex<Vec<String>>>;

/// TLS test server for cluster `demo` that accepts well-formed EKS tokens
/// and keeps them, to be checked against the assumed credentials afterwards.
async fn recording_server() -> (TestServer, Seen) {
    let structural = TokenVerifier::new("demo");
    aws_common::token_server(move |token| {
        structural.verify_now(token).map_err(|e| e.to_string())?;
        Ok(token.to_owned())
    })
    .await
}

async fn get_web(client: kube::Client) {
    let web = Api::<Deployment>::namespaced(client, "shop")
        .get("web")
        .await
        .unwrap();
    assert_eq!(web.metadata.name.as_deref(), Some("web"));
}

/// The last token the server accepted, verified as the role's.
fn last_token_signed_by(seen: &Seen, credentials: &Credentials) {
    let token = seen.lock().unwrap().last().cloned().unwrap();
    let verified = TokenVerifier::new("demo")
        .with_credentials(credentials.clone())
        .verify_now(&token)
        .unwrap();
    assert!(verified.signature_checked);
    assert_eq!(verified.region, "us-east-1");
    assert_eq!(verified.access_key_id, credentials.access_key_id());
    assert_eq!(
        verified.session_token.as_deref(),
        credentials.session_token()
    );
}

#[tokio::test]
async fn server_sees_the_assumed_role_and_the_client_is_renewed_before_it_expires() {
    let Some(aws) =
        start_moto("server_sees_the_assumed_role_and_the_client_is_renewed_before_it_expires")
            .await
    else {
        return;
    };
    let config = aws.config.clone();
    let (server, seen) = recording_server().await;
    let source = ClusterSource::Configured {
        cluster: Some("demo".into()),
        endpoint: ClusterEndpoint {
            endpoint: server.url(),
            ca_data: server.ca_pem(),
        },
    };
    let cluster = "arn:aws:eks:us-east-1:111111111111:cluster/demo";
    let t0 = SystemTime::now();
    let clock = Arc::new(ManualClock::new(t0));
    // STS's shortest session: credentials expire 15 minutes after t0, so
    // they are replaced at 10 (5 before), ahead of the 14-minute token.
    let clients = EksClients::new(&config, source)
        .with_roles(roles())
        .with_clock(clock.clone())
        .with_role_duration(Duration::from_secs(900));

    let first = clients.client_for(cluster, Some("exec-1")).await.unwrap();
    let first_until = *first.valid_until();
    // Due with the credentials (expiry − 5 min), before the 14-minute token.
    let due = SystemTime::from(first_until.unwrap());
    assert!(due >= t0 + Duration::from_secs(600) && due < t0 + Duration::from_secs(675));
    get_web(first).await;
    let assumed = clients.credentials(cluster).await.unwrap();
    last_token_signed_by(&seen, &assumed);

    // A warm invocation 9 minutes on: the same client and credentials.
    clock.advance(Duration::from_secs(9 * 60));
    let warm = clients.client_for(cluster, Some("exec-2")).await.unwrap();
    assert_eq!(*warm.valid_until(), first_until);
    get_web(warm).await;
    assert_eq!(
        clients.credentials(cluster).await.unwrap().access_key_id(),
        assumed.access_key_id()
    );
    last_token_signed_by(&seen, &assumed);

    // Just past 10 minutes the credentials are near expiry: role assumed
    // again, new client, new token signed with the new credentials.
    clock.advance(Duration::from_secs(75));
    let renewed = clients.client_for(cluster, Some("exec-3")).await.unwrap();
    assert_ne!(*renewed.valid_until(), first_until);
    get_web(renewed).await;
    let fresh = clients.credentials(cluster).await.unwrap();
    assert_ne!(fresh.access_key_id(), assumed.access_key_id());
    last_token_signed_by(&seen, &fresh);
}

/// The handler path: `SELFHEAL_CLUSTER_ROLES` read at cold start, the role
/// assumed for the request's cluster, and one client for two warm invocations.
#[tokio::test]
async fn handler_assumes_the_clusters_role_and_reuses_its_client_when_warm() {
    use lambda_runtime::{Context, LambdaEvent};
    use selfheal_lambda::handler::handle_action;
    use selfheal_lambda::{AppState, config::FunctionConfig};
    use std::collections::HashMap;

    let Some(aws) =
        start_moto("handler_assumes_the_clusters_role_and_reuses_its_client_when_warm").await
    else {
        return;
    };
    let (server, seen) = aws_common::token_server(|token| {
        TokenVerifier::new("demo")
            .verify_now(token)
            .map_err(|e| e.to_string())
    })
    .await;
    let vars: HashMap<&str, String> = HashMap::from([
        ("SELFHEAL_CLUSTER_ENDPOINT", server.url()),
        ("SELFHEAL_CLUSTER_CA", server.ca_pem().unwrap()),
        ("SELFHEAL_DEFAULT_CLUSTER", "demo".into()),
        ("SELFHEAL_CLUSTER_ROLES", format!("demo={ROLE}")),
    ]);
    let config = FunctionConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let state = AppState::with_sdk_config(config, aws.config.clone())
        .await
        .unwrap();
    for execution in ["exec-1", "exec-2"] {
        let payload = serde_json::json!({
            "action": "pause",
            "target": {"cluster": "demo", "namespace": "shop", "deployment": "web"},
            "dryRun": true,
            "execution": execution,
        });
        let outcome = handle_action(
            &state,
            selfheal_core::Action::Pause,
            LambdaEvent::new(payload, Context::default()),
        )
        .await
        .unwrap();
        assert_eq!(outcome.target.deployment.as_deref(), Some("web"));
    }
    assert_eq!(
        state.remediators_built(),
        1,
        "one client for both warm calls"
    );
    let tokens = seen.lock().unwrap().clone();
    assert!(!tokens.is_empty());
    for token in &tokens {
        // The role's temporary credentials, not the function's own key.
        assert_ne!(token.access_key_id, ACCESS_KEY);
        assert!(token.session_token.is_some(), "{token:?}");
        assert_eq!(token.access_key_id, tokens[0].access_key_id);
    }
}
